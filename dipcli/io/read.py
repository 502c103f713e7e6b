"""Reading an image file into an :class:`~dipcli.io.image.Image`, as a viewer shows it.

An EXIF/TIFF orientation tag is applied on reading; float TIFFs stay float; CMYK/YCCK JPEGs become
RGB; PNG transparency becomes an alpha channel. Every reader checks the pixel count the file
declares against :data:`MAX_PIXELS` before decoding anything.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import png
import tifffile
from PIL import ExifTags
from PIL import Image as PILImage

from dipcli.errors import ImageError
from dipcli.io.formats import TIFF
from dipcli.io.image import Image, from_array
from dipcli.io.metadata import NONE, Metadata, from_pillow, from_tiff

MAX_PIXELS = 2**27
"""Default ceiling on the pixels an input may declare: 134 Mpx (e.g. 11585 x 11585).

A few kilobytes of compressed data can declare billions of pixels (a "decompression bomb"): a
1.5 MB PNG declaring 16000 x 16000 (256 Mpx) at 16-bit RGB took over 7 GB to read. So the ceiling
is checked from the file's header, before anything is decoded. 134 Mpx holds the largest camera
photos (100 Mpx) and ordinary scans, keeps reading one to about 4 GB of memory, and is far beyond
what a fit gets through in a day, even tiled; it refuses that 256 Mpx file. Raise it per
run with ``read_image(..., max_pixels=N)`` (the CLI's ``--max-pixels N``) or for every run with
the environment variable ``DIP_MAX_PIXELS``.
"""

MAX_PIXELS_ENV = "DIP_MAX_PIXELS"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ORIENTATION = ExifTags.Base.Orientation  # 0x0112, also the TIFF tag 274

# How to turn stored pixels upright for each EXIF/TIFF orientation (the table of
# PIL.ImageOps.exif_transpose, applied to arrays so that TIFF and 16-bit PNG get it too).
_UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}

# Guards the moment Pillow's own pixel limit is lifted in _open_lazily.
_PILLOW_LIMIT_LOCK = threading.Lock()


def default_max_pixels() -> int:
    """The pixel ceiling when none is given: ``$DIP_MAX_PIXELS`` if set (and not empty), else MAX_PIXELS.

    Read on every call, not at import, so that a value set later (by the CLI, by a test) applies.
    """
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ImageError(f"{MAX_PIXELS_ENV}={raw!r} is not a positive whole number of pixels; "
                         f"set it to e.g. {MAX_PIXELS} or unset it")
    return value


def read_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> Image:
    """Read PNG/JPEG/TIFF/BMP (8 or 16 bit; grey, RGB, RGBA, palette) as an :class:`Image`.

    ``max_pixels`` caps the pixels the file may declare (None: :func:`default_max_pixels`); the
    check is made from the header, before the pixels are decoded.
    """
    path = Path(path)
    limit = default_max_pixels() if max_pixels is None else max_pixels
    if limit < 1:
        raise ImageError(f"the pixel ceiling must be a positive whole number, not {limit}")
    if not path.exists():
        raise ImageError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    try:
        if path.suffix.lower() in TIFF:
            data, orientation, meta = _read_tiff(path, limit)
        else:
            data, orientation, meta = _read_with_pillow(path, limit)
    except ImageError:
        raise
    except Exception as exc:  # the decoders raise many types; all mean "not an image we can read"
        raise ImageError(f"{path}: cannot read as an image ({exc.__class__.__name__}); "
                         "use a PNG, JPEG, TIFF or BMP file") from None
    data = _as_layout(path, np.asarray(data))
    if orientation in _UPRIGHT:
        data = np.ascontiguousarray(_UPRIGHT[orientation](data))
    return replace(from_array(data), meta=meta, source_type=path.suffix.lower())


def _as_layout(path: Path, data: np.ndarray) -> np.ndarray:
    """The decoded array as ``(H, W, C)`` with C in 1..4, 8/16-bit or float; anything else refused."""
    if data.dtype == bool:
        data = data.astype(np.uint8) * 255
    if np.issubdtype(data.dtype, np.floating):
        _check_float(path, data)
    elif data.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"{path}: unsupported pixel type {data.dtype}; use 8- or 16-bit images")
    if data.ndim == 3 and data.shape[0] in (1, 3, 4) and data.shape[2] > 4:
        raise ImageError(f"{path}: looks like a multi-page or planar image; save a single RGB page")
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3 or data.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"{path}: unsupported layout {data.shape}; use a greyscale or colour image")
    return data


def _check_float(path: Path, data: np.ndarray) -> None:
    """Refuse float pixels outside [0, 1] (docs/limits.md): an offset and scale are the user's
    to choose (HDR, linear light, data), and --sigma is a fraction of the range [0, 1]."""
    if not np.isfinite(data).all():
        raise ImageError(f"{path}: {data.dtype} pixels include NaN or infinity; dip reads float "
                         "images with values in [0, 1]")
    if data.size and (data.min() < 0 or data.max() > 1):
        raise ImageError(f"{path}: {data.dtype} pixels run from {data.min():.4g} to {data.max():.4g}; dip "
                         "reads float images with values in [0, 1]: scale them into [0, 1] and save again")


def _check_pixels(path: Path, width: int, height: int, limit: int, pages: int = 1) -> None:
    """Refuse a file that declares more pixels than ``limit``, before anything is decoded."""
    if width * height * pages <= limit:
        return
    size = f"{width}x{height}" + (f" x {pages} pages" if pages > 1 else "")
    raise ImageError(f"{path}: declares {size} pixels ({width * height * pages:,}), over the ceiling of "
                     f"{limit:,} that guards against decompression bombs; if the file is genuine, "
                     f"raise it with --max-pixels N or {MAX_PIXELS_ENV}=N")


def _open_lazily(path: Path) -> PILImage.Image:
    """``PIL.Image.open`` (header only, nothing decoded) with Pillow's own pixel limit lifted.

    Pillow warns above ~89 Mpx and refuses above ~179 Mpx with its own message, before our
    check (which says how to raise the ceiling) could run; :func:`_check_pixels` replaces it.
    The limit is restored at once, so other users of Pillow in this process keep theirs.
    """
    with _PILLOW_LIMIT_LOCK:
        saved, PILImage.MAX_IMAGE_PIXELS = PILImage.MAX_IMAGE_PIXELS, None
        try:
            return PILImage.open(path)
        finally:
            PILImage.MAX_IMAGE_PIXELS = saved


def _png_ihdr(path: Path) -> tuple[int, int] | None:
    """``(bit depth, colour type)`` from a PNG's IHDR chunk, or None when it is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != _PNG_SIGNATURE:
        return None
    return head[24], head[25]


def _read_with_pillow(path: Path, limit: int) -> tuple[np.ndarray, int, Metadata]:
    """Pixels, EXIF orientation and metadata of anything but TIFF; 16-bit colour PNG pixels come
    from pypng."""
    ihdr = _png_ihdr(path)
    with _open_lazily(path) as im:
        _check_pixels(path, im.width, im.height, limit)
        if im.format in ("GIF", "PNG", "WEBP") and getattr(im, "is_animated", False):
            raise ImageError(f"{path}: is an animation of {im.n_frames} frames; "
                             "save the frame to restore as a single PNG")
        if ihdr is not None and ihdr[0] == 16 and ihdr[1] in (2, 4, 6):
            # Pillow reads 16-bit colour PNGs as 8-bit. Its eXIf chunk precedes the pixels, so
            # asking only when it is there keeps Pillow from decoding them.
            orientation = im.getexif().get(_ORIENTATION, 1) if "exif" in im.info else 1
            return _read_png16(path), orientation, from_pillow(im, decoded=False)
        orientation = im.getexif().get(_ORIENTATION, 1)
        return _pillow_pixels(im, ihdr), orientation, from_pillow(im, decoded=True)


def _pillow_pixels(im: PILImage.Image, ihdr: tuple[int, int] | None) -> np.ndarray:
    """The pixels of an opened Pillow image as grey, grey+alpha, RGB or RGBA integers."""
    key = im.info.get("transparency") if im.mode in ("1", "L", "I;16", "RGB") else None
    if im.mode in ("P", "PA"):
        transparent = im.mode == "PA" or "transparency" in im.info or im.palette.mode == "RGBA"
        im = im.convert("RGBA" if transparent else "RGB")
    elif im.mode == "CMYK":  # CMYK and YCCK JPEGs (libjpeg hands YCCK over as CMYK)
        im = im.convert("RGB")
    data = np.asarray(im)
    if data.dtype == bool:
        data = data.astype(np.uint8) * 255
    if key is None:
        return data
    if ihdr is not None and ihdr[0] in (2, 4):  # Pillow scales these grey levels to 0..255, not the key
        key = key * 255 // (2 ** ihdr[0] - 1)
    return _colour_key_to_alpha(data, key)


def _colour_key_to_alpha(data: np.ndarray, key: int | tuple[int, ...]) -> np.ndarray:
    """Grey -> grey+alpha or RGB -> RGBA: transparent exactly where a pixel equals the tRNS key.

    Done here rather than by ``convert("LA")`` because that would make 16-bit grey 8-bit.
    """
    differs = data != np.asarray(key)
    opaque = differs if data.ndim == 2 else differs.any(axis=-1)
    alpha = opaque.astype(data.dtype) * np.iinfo(data.dtype).max
    return np.dstack([data, alpha])


def _read_png16(path: Path) -> np.ndarray:
    """16-bit colour PNG through pypng, whose ``asDirect`` also turns a tRNS colour key into alpha."""
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    planes = info["planes"]
    return np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(height, width, planes)


def _read_tiff(path: Path, limit: int) -> tuple[np.ndarray, int, Metadata]:
    """The first series of a TIFF (what imageio's tifffile plugin reads), its orientation tag and
    the metadata of its first page."""
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        page = series.keyframe
        width, height = page.imagewidth, page.imagelength
        pages = max(1, series.size // max(1, width * height * page.samplesperpixel))
        _check_pixels(path, width, height, limit, pages)
        data, orientation = series.asarray(), page.tags.valueof(_ORIENTATION, 1)
    try:
        with open(path, "rb") as fp:
            meta = from_tiff(fp)
    except Exception:  # tags Pillow cannot parse (a BigTIFF): the pixels are still good
        meta = NONE
    return data, orientation, meta
