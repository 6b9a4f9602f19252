"""SQLite writers taken in turn (`database.writer_turn`, issue 15): a writer waits for
the one before it in the kernel, not in SQLite's sleeping busy handler."""

from __future__ import annotations

import threading

from sqlalchemy import create_engine

from citoyens.database import writer_turn, writers_lock_path


def test_the_lock_lies_beside_a_sqlite_file_and_nowhere_else(tmp_path):
    on_file = create_engine(f"sqlite:///{tmp_path}/commune.sqlite3")
    assert writers_lock_path(on_file) == f"{tmp_path}/commune.sqlite3-writers"
    assert writers_lock_path(create_engine("sqlite://")) is None
    postgres = create_engine("postgresql+psycopg://postgres@127.0.0.1/none")
    assert writers_lock_path(postgres) is None
    with writer_turn(postgres):  # nothing to take: PostgreSQL's row locks do it
        pass


def test_a_second_writer_waits_for_the_first_then_goes(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/commune.sqlite3")
    first_in, first_may_leave = threading.Event(), threading.Event()
    second_in = threading.Event()
    order: list[str] = []

    def first():
        with writer_turn(engine):
            order.append("first in")
            first_in.set()
            first_may_leave.wait(10)
            order.append("first out")

    def second():
        first_in.wait(10)
        with writer_turn(engine):
            order.append("second in")
            second_in.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    assert first_in.wait(10)
    assert not second_in.wait(0.3), "the second writer went in beside the first"
    first_may_leave.set()
    assert second_in.wait(10)
    for thread in threads:
        thread.join(10)
    assert order == ["first in", "first out", "second in"]


def test_a_writer_inside_a_writer_takes_nothing_more(tmp_path):
    """A write transaction started inside another on the same thread (a job run in-line
    after a commit) must not wait for itself."""
    engine = create_engine(f"sqlite:///{tmp_path}/commune.sqlite3")
    with writer_turn(engine), writer_turn(engine):
        pass


def test_a_writer_never_waits_longer_than_sqlite_would(tmp_path, monkeypatch):
    """A holder that never ends (a stuck thread) delays the others at most
    TURN_MAX_WAIT_SECONDS; then SQLite's own busy timeout decides."""
    from citoyens import database

    monkeypatch.setattr(database, "TURN_MAX_WAIT_SECONDS", 0.2)
    engine = create_engine(f"sqlite:///{tmp_path}/commune.sqlite3")
    holding, release = threading.Event(), threading.Event()

    def stuck():
        with writer_turn(engine):
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=stuck)
    thread.start()
    try:
        assert holding.wait(10)
        went_on = threading.Event()

        def other():
            with writer_turn(engine):
                went_on.set()

        waiter = threading.Thread(target=other)
        waiter.start()
        assert went_on.wait(10), "the second writer waited for ever"
        waiter.join(10)
    finally:
        release.set()
        thread.join(10)
