"""Peak memory and time of one upload check of a 48-megapixel phone photo (issue 12).

    .venv/bin/python bench/upload_memory.py

Makes an 8064 × 6048 JPEG (under 10 MB) in a child process, then runs `check_upload`
on it in a fresh process and prints the peak resident memory (ru_maxrss) above the
imports, and the time taken.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MAKE = """
import sys
from PIL import Image, ImageChops
w, h = 8064, 6048
grad = Image.linear_gradient("L").resize((w, h))
noise = Image.effect_noise((w, h), 12)
green = ImageChops.add(grad.transpose(Image.Transpose.ROTATE_180), noise, 2)
Image.merge("RGB", (grad, green, noise)).save(sys.argv[1], "JPEG", quality=80)
"""

MEASURE = """
import resource, sys, time
from citoyens.documents.uploads import check_upload
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
checked = check_upload(data, "photo.jpg")
elapsed = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"48 Mpx JPEG of {len(data) / 1e6:.1f} MB -> {checked.size / 1e6:.2f} MB stored; "
      f"peak memory +{(after - before) / 1024:.0f} MiB; {elapsed:.2f} s")
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        photo = str(Path(folder) / "photo.jpg")
        subprocess.run([sys.executable, "-c", MAKE, photo], check=True)  # noqa: S603
        subprocess.run([sys.executable, "-c", MEASURE, photo], check=True, cwd=ROOT)  # noqa: S603


if __name__ == "__main__":
    main()
