"""Reading and writing images: float32 in [0, 1] inside, the user's format outside.

The rest of the tool sees an ``(H, W, C)`` float32 array of colour channels (1 or 3). Everything
needed to give the user back what they gave us — dtype, greyscale-ness, an alpha channel — rides
along in :class:`Image` and is restored by :func:`write_image`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import png

WRITABLE = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")


class ImageError(Exception):
    """An image could not be read or written; the message says why and what to do."""


@dataclass(frozen=True)
class Image:
    """Pixels as float32 ``(H, W, C)`` in [0, 1], plus what is needed to write them back."""

    pixels: np.ndarray
    dtype: np.dtype = np.dtype(np.uint8)
    grey: bool = False
    alpha: np.ndarray | None = None  # carried through untouched, in the original dtype

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]

    def with_pixels(self, pixels: np.ndarray) -> Image:
        return replace(self, pixels=np.asarray(pixels, dtype=np.float32))


def _scale(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    raise ImageError(f"unsupported pixel type {dtype}; use 8- or 16-bit images")


def read_image(path: str | os.PathLike) -> Image:
    """Read PNG/JPEG/TIFF/BMP (8 or 16 bit; grey, RGB, RGBA, palette) as an :class:`Image`."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    try:
        if _is_16bit_colour_png(path):
            data = _read_png16(path)
        else:
            plugin = "tifffile" if path.suffix.lower() in (".tif", ".tiff") else "pillow"
            data = iio.imread(path, plugin=plugin)
    except Exception as exc:  # imageio raises many types; all mean "not an image we can read"
        raise ImageError(f"{path}: cannot read as an image ({exc.__class__.__name__}); "
                         "use a PNG, JPEG, TIFF or BMP file") from None
    data = np.asarray(data)
    if data.dtype == bool:
        data = data.astype(np.uint8) * 255
    if data.dtype not in (np.uint8, np.uint16):
        if np.issubdtype(data.dtype, np.floating) and data.size and 0 <= data.min() and data.max() <= 1:
            data = np.round(data * 65535).astype(np.uint16)
        else:
            raise ImageError(f"{path}: unsupported pixel type {data.dtype}; use 8- or 16-bit images")
    if data.ndim == 3 and data.shape[0] in (1, 3, 4) and data.shape[2] > 4:
        raise ImageError(f"{path}: looks like a multi-page or planar image; save a single RGB page")
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3 or data.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"{path}: unsupported layout {data.shape}; use a greyscale or colour image")
    return from_array(data)


def _is_16bit_colour_png(path: Path) -> bool:
    """Pillow reads 16-bit RGB(A) PNGs as 8-bit; spot them from the header (IHDR) first."""
    with open(path, "rb") as f:
        head = f.read(26)
    return head[:8] == b"\x89PNG\r\n\x1a\n" and head[24] == 16 and head[25] in (2, 4, 6)


def _read_png16(path: Path) -> np.ndarray:
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    planes = info["planes"]
    return np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(height, width, planes)


def _write_png16(path: str, data: np.ndarray) -> None:
    h, w = data.shape[:2]
    planes = 1 if data.ndim == 2 else data.shape[2]
    writer = png.Writer(w, h, bitdepth=16, greyscale=planes in (1, 2), alpha=planes in (2, 4))
    with open(path, "wb") as f:
        writer.write(f, data.reshape(h, w * planes))


def from_array(data: np.ndarray) -> Image:
    """Build an :class:`Image` from an ``(H, W, C)`` integer array (C in 1..4)."""
    scale = _scale(data.dtype)
    alpha = None
    channels = data.shape[2]
    if channels in (2, 4):
        alpha = data[:, :, -1].copy()
        data = data[:, :, :-1]
    pixels = data.astype(np.float32) / scale
    return Image(pixels=pixels, dtype=data.dtype, grey=data.shape[2] == 1, alpha=alpha)


def to_array(image: Image) -> np.ndarray:
    """The integer array to write: the input's dtype, channel count and alpha restored."""
    scale = _scale(image.dtype)
    data = np.round(np.clip(image.pixels, 0.0, 1.0) * scale).astype(image.dtype)
    if image.alpha is not None:
        if image.alpha.shape != data.shape[:2]:
            raise ImageError("alpha channel no longer matches the image size")
        data = np.concatenate([data, image.alpha[:, :, None]], axis=2)
    if data.shape[2] == 1:
        data = data[:, :, 0]
    return data


def write_image(path: str | os.PathLike, image: Image) -> None:
    """Write atomically: a temporary file beside the target, renamed over it when complete.

    A crash or Ctrl-C mid-write therefore never leaves a half-written image.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in WRITABLE:
        raise ImageError(f"{path}: unknown image type {ext or '(none)'}; "
                         f"use one of {', '.join(WRITABLE)}")
    data = to_array(image)
    if ext in (".jpg", ".jpeg") and data.dtype == np.uint16:
        data = (data // 257).astype(np.uint8)  # JPEG has no 16-bit form
    if ext in (".jpg", ".jpeg", ".bmp") and data.ndim == 3 and data.shape[2] in (2, 4):
        data = data[:, :, :-1]  # these formats have no alpha channel
    if not path.parent.exists():
        raise ImageError(f"{path.parent}: output folder does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=ext, dir=path.parent)
    os.close(fd)
    try:
        if ext == ".png" and data.dtype == np.uint16 and data.ndim == 3:
            _write_png16(tmp, data)
        elif ext in (".jpg", ".jpeg"):
            iio.imwrite(tmp, data, extension=ext, quality=95)
        else:
            iio.imwrite(tmp, data, extension=ext)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, Exception):
            raise ImageError(f"{path}: cannot write ({exc.__class__.__name__}: {exc})") from None
        raise


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
