"""Reading and writing images: float32 in [0, 1] inside, the user's format outside.

The rest of the tool sees an ``(H, W, C)`` float32 array of colour channels (1 or 3). Everything
needed to give the user back what they gave us — dtype, greyscale-ness, an alpha channel — rides
along in :class:`Image` and is restored by :func:`write_image`.

Pixels are read as a viewer shows them: an EXIF/TIFF orientation tag is applied on reading, so
outputs are written upright and without the tag. The photo's other metadata (EXIF, ICC profile,
DPI, PNG text) is read with the pixels and written with them (:mod:`dipcli.io.metadata`). Float
TIFFs (values in [0, 1]) stay float. CMYK/YCCK JPEGs are converted to RGB, and PNG
transparency (a palette's or a colour key's tRNS) becomes an alpha channel. Every reader checks
the pixel count the file declares against :data:`MAX_PIXELS` before decoding anything.
"""

from __future__ import annotations

import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import png
import tifffile
from PIL import ExifTags
from PIL import Image as PILImage

from dipcli.errors import ImageError
from dipcli.io.formats import TIFF, WRITABLE, encode, fit_to_format, output_plan, scale_of, writable_suffix
from dipcli.io.metadata import NONE, Metadata, from_pillow, from_tiff

__all__ = ["MAX_PIXELS", "WRITABLE", "Image", "ImageError", "atomic_write", "crop_to", "default_max_pixels",
           "from_array", "output_plan", "pad_to_multiple", "read_image", "to_array", "write_image",
           "write_text_atomic"]


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


class OutputAppeared(ImageError):
    """The output was created by someone else while this result was being made (two runs, one name).

    ``kept`` is where this result went instead, so that the work is not lost.
    """

    def __init__(self, path: Path, kept: Path) -> None:
        super().__init__(f"{path} appeared while this one was made (another run?); this result is "
                         f"kept as {kept}; pass --force to overwrite instead")
        self.path, self.kept = path, kept


@dataclass(frozen=True)
class Image:
    """Pixels as float32 ``(H, W, C)`` in [0, 1], plus what is needed to write them back."""

    pixels: np.ndarray
    dtype: np.dtype = np.dtype(np.uint8)
    grey: bool = False
    alpha: np.ndarray | None = None  # carried through untouched, in the original dtype
    meta: Metadata = NONE  # EXIF, ICC profile, DPI, PNG text: written again with the pixels
    source_type: str | None = None  # the file type it was read from (".png"): -o -'s default

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]

    def with_pixels(self, pixels: np.ndarray) -> Image:
        return replace(self, pixels=np.asarray(pixels, dtype=np.float32))


# --- reading ------------------------------------------------------------------------------------


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
    data = np.asarray(data)
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
    if orientation in _UPRIGHT:
        data = np.ascontiguousarray(_UPRIGHT[orientation](data))
    return replace(from_array(data), meta=meta, source_type=path.suffix.lower())


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


# --- conversions --------------------------------------------------------------------------------


def from_array(data: np.ndarray) -> Image:
    """Build an :class:`Image` from an ``(H, W, C)`` integer array (C in 1..4)."""
    scale = scale_of(data.dtype)
    alpha = None
    channels = data.shape[2]
    if channels in (2, 4):
        alpha = data[:, :, -1].copy()
        data = data[:, :, :-1]
    pixels = data.astype(np.float32) / scale
    return Image(pixels=pixels, dtype=data.dtype, grey=data.shape[2] == 1, alpha=alpha)


def to_array(image: Image) -> np.ndarray:
    """The integer array to write: the input's dtype, channel count and alpha restored."""
    scale = scale_of(image.dtype)
    data = np.clip(image.pixels, 0.0, 1.0) * scale
    data = (data if np.issubdtype(image.dtype, np.floating) else np.round(data)).astype(image.dtype)
    if image.alpha is not None:
        if image.alpha.shape != data.shape[:2]:
            raise ImageError("alpha channel no longer matches the image size")
        data = np.concatenate([data, image.alpha[:, :, None]], axis=2)
    if data.shape[2] == 1:
        data = data[:, :, 0]
    return data


# --- writing ------------------------------------------------------------------------------------


@contextmanager
def atomic_write(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, it replaces ``path``.

    Write the file in place at the yielded path (by name: any library's ``save``/``imwrite`` will
    do). Readers and a crash or Ctrl-C mid-write therefore see the old file or the new one, never
    half of one: the data is fsync'ed before the rename and the folder after it, so not even a
    power cut can leave an empty file under the final name. On error the temporary file is removed
    and the exception passes on.

    The new file gets the mode any program's new file gets under the user's umask (0644 under
    umask 022), or the mode of the file it replaces, as an editor saving over it would keep.

    With ``overwrite=False`` the file is put in place only if nothing has that name yet, checked
    and done in one step (:func:`_place_new`): a caller that checked for the name at its start
    (`dip` without ``--force``) cannot replace a file that another run wrote meanwhile. The new
    file is then kept under a free name beside it and :class:`OutputAppeared` says which.
    """
    path = Path(path)
    fd, tmp = _create_beside(path)
    try:
        with suppress(FileNotFoundError):
            if stat.S_ISREG((old := os.stat(path)).st_mode):
                os.chmod(tmp, stat.S_IMODE(old.st_mode))
        yield tmp
        os.fsync(fd)  # flushes the file, whichever descriptor wrote it
        os.close(fd)
        fd = -1
        if overwrite:
            os.replace(tmp, path)
        else:
            _place_new(tmp, path)
    except BaseException:
        if fd != -1:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _create_beside(path: Path) -> tuple[int, Path]:
    """Create a new hidden temporary file next to ``path``, mode 0666 less the umask.

    Not ``tempfile.mkstemp``, whose mode 0600 would survive the rename.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}{path.suffix}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _place_new(tmp: Path, path: Path) -> None:
    """Give the finished file ``tmp`` the name ``path`` if no file has it; else keep it beside.

    A hard link creates the name only if it is free, atomically. Where a file system has no hard
    links, an empty file created exclusively claims the name and a rename fills it (a reader may
    see it empty for that moment). If the name was taken, the result goes to the first free
    ``<stem>.<n><suffix>`` beside it and :class:`OutputAppeared` says so.
    """
    if _claim(tmp, path):
        return
    for n in range(1, 1000):
        kept = path.with_name(f"{path.stem}.{n}{path.suffix}")
        if _claim(tmp, kept):
            raise OutputAppeared(path, kept)
    raise FileExistsError(f"{path} and the names for keeping this result beside it are taken")


def _claim(tmp: Path, path: Path) -> bool:
    """Move the finished ``tmp`` to ``path`` if no file has that name; False (nothing done) if one has."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:  # no hard links here (some network and FAT file systems): claim, then fill
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            return False
        os.replace(tmp, path)
        return True
    tmp.unlink()
    return True


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; quietly skipped where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse to sync a folder; the rename itself is done
    finally:
        os.close(fd)


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write a text file (report, HTML page) with :func:`atomic_write`: all of it or nothing."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def write_image(path: str | os.PathLike, image: Image, overwrite: bool = True) -> None:
    """Write ``image`` atomically (see :func:`atomic_write`) in the format the suffix names.

    A format that cannot hold the image gets the conversions :func:`output_plan` announces
    (8-bit, no alpha for JPEG/BMP), so every suffix in WRITABLE works for every image. With
    ``overwrite=False`` a file that has ``path``'s name by the end is kept and this image goes
    beside it (:class:`OutputAppeared`).
    """
    path = Path(path)
    ext = writable_suffix(path.suffix, f"{path}: ")
    image, _ = fit_to_format(image, ext)
    data = to_array(image)
    if not path.parent.exists():
        raise ImageError(f"{path.parent}: output folder does not exist; create it first")
    try:
        with atomic_write(path, overwrite) as tmp:
            encode(tmp, data, ext, image.meta)
    except OutputAppeared:
        raise
    except Exception as exc:
        raise ImageError(f"{path}: cannot write ({exc.__class__.__name__}: {exc})") from None


# --- padding ------------------------------------------------------------------------------------


def pad_to_multiple(pixels: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad bottom and right so both sides divide by ``multiple``; returns the original size.

    Padding (not cropping, as the reference DIP code does) keeps every pixel of the user's image.
    """
    h, w = pixels.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    mode = "reflect" if ph < h and pw < w else "symmetric"
    padded = np.pad(pixels, ((0, ph), (0, pw), (0, 0)), mode=mode)
    return padded, (h, w)


def crop_to(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return pixels[: size[0], : size[1]]
