"""``-`` for an image: read from stdin, written to stdout, so that `dip` works as a Unix filter.

    dip denoise - --sigma 25 < noisy.png > restored.png
    curl -s https://…/photo.jpg | dip denoise - -o - --format png | display

The input's type is told from its bytes (its signature), and the output is written in that type
unless ``--format`` names another. Both go through a temporary file, so that reading and
writing are exactly those of named files: the same checks, conversions and metadata.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from contextlib import suppress
from pathlib import Path

from PIL import Image as PILImage

from dipcli.errors import ImageError
from dipcli.io import Image, read_image, write_image

TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
TYPES = {"JPEG": ".jpg", "MPO": ".jpg", "TIFF": ".tif"}  # Pillow's format names that are not the suffix


def sniff(data: bytes) -> str:
    """The file type (".png") of an image's bytes, by their signature: TIFF's, or Pillow's guess."""
    if data.startswith(TIFF_SIGNATURES):
        return ".tif"
    try:
        with PILImage.open(io.BytesIO(data)) as im:
            fmt = im.format or ""
    except Exception:  # Pillow knows no such signature
        raise ImageError("-: stdin holds no image dip can read; pipe in a PNG, JPEG, TIFF or BMP file") \
            from None
    return TYPES.get(fmt, f".{fmt.lower()}")


def read_stdin(max_pixels: int | None = None) -> Image:
    """The image on stdin (read to its end), checked and decoded like a file of its type."""
    data = sys.stdin.buffer.read() if sys.stdin is not None else b""
    if not data:
        raise ImageError("-: nothing on stdin; pipe an image in, e.g. dip denoise - < photo.png > out.png")
    with tempfile.TemporaryDirectory(prefix="dip-stdin-") as folder:
        path = Path(folder) / f"stdin{sniff(data)}"
        path.write_bytes(data)
        try:
            return read_image(path, max_pixels=max_pixels)
        except ImageError as exc:
            raise ImageError(str(exc).replace(str(path), "-")) from None


def write_stdout(image: Image, kind: str) -> None:
    """Write ``image`` as a ``kind`` file (".png") to stdout, all at once after it is encoded.

    A stdout that is closed or full fails in one line; stdout is then pointed at /dev/null so
    that Python's own flush at exit does not fail again with a traceback.
    """
    with tempfile.TemporaryDirectory(prefix="dip-stdout-") as folder:
        path = Path(folder) / f"stdout{kind}"
        write_image(path, image)
        data = path.read_bytes()
    try:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except (OSError, ValueError) as exc:  # EPIPE, ENOSPC; ValueError: stdout was closed
        with suppress(OSError, ValueError), open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), sys.stdout.fileno())
        reason = getattr(exc, "strerror", None) or exc.__class__.__name__
        raise ImageError(f"-o -: cannot write the image to stdout ({reason})") from None
