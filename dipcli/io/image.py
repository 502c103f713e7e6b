"""The image inside the tool: float32 ``(H, W, C)`` pixels in [0, 1], and what is needed to give the
user back what they gave (dtype, greyscale-ness, alpha, metadata, file type)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from dipcli.errors import ImageError
from dipcli.io.metadata import NONE, Metadata


def scale_of(dtype: np.dtype) -> float:
    """What 1.0 inside is in the file: 255, 65535, or 1.0 for float (TIFF) pixels."""
    if np.issubdtype(dtype, np.floating):
        return 1.0
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    raise ImageError(f"unsupported pixel type {dtype}; use 8- or 16-bit images")



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
