"""Where uploaded files live: a small interface, one filesystem implementation.

Keys are generated here (random hex + the extension of the detected type),
never taken from a user's filename, so a key is never a path. Several app
processes must share the store (DESIGN.md): the filesystem one expects a
shared folder; an object-storage implementation can be added beside it and
chosen by `UPLOAD_STORAGE`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from typing import BinaryIO, Protocol

from flask import current_app

# 32 hex characters, a dot, a short lowercase extension: nothing else is a key.
KEY_PATTERN = re.compile(r"[0-9a-f]{32}\.[a-z0-9]{1,5}")


class StorageError(RuntimeError):
    """A key that is not one of ours, or a storage that is not configured."""


class Storage(Protocol):
    """What the documents domain needs from a file store."""

    def save(self, key: str, data: bytes) -> None: ...

    def open(self, key: str) -> BinaryIO: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


def new_key(extension: str) -> str:
    """A fresh random key: 128 bits of randomness and the stored type's extension."""
    key = f"{secrets.token_hex(16)}.{extension.lower()}"
    check_key(key)
    return key


def check_key(key: str) -> str:
    """Refuse anything that is not a key we generated (no "/", no "..", no user input)."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise StorageError("invalid storage key")
    return key


class FilesystemStorage:
    """Files in one folder, named by their key; written atomically (temp file + rename)."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)

    def _path(self, key: str) -> str:
        path = os.path.join(self.root, check_key(key))
        # Belt and braces: the pattern already forbids separators and dots-only names.
        if os.path.dirname(path) != self.root:
            raise StorageError("invalid storage key")
        return path

    def save(self, key: str, data: bytes) -> None:
        path = self._path(key)
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")  # noqa: SIM115 (the response closes it)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(key))

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))


def upload_folder() -> str:
    return current_app.config.get("UPLOAD_FOLDER") or os.path.join(
        current_app.instance_path, "uploads"
    )


def get_storage() -> Storage:
    """The store named by `UPLOAD_STORAGE` (only "filesystem" for now)."""
    kind = current_app.config.get("UPLOAD_STORAGE", "filesystem")
    if kind == "filesystem":
        return FilesystemStorage(upload_folder())
    raise StorageError(
        f"UPLOAD_STORAGE={kind!r} is not supported: use 'filesystem' "
        "(with UPLOAD_FOLDER pointing at a folder every app process shares)."
    )
