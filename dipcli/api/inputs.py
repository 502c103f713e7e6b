"""A task's input as the caller gave it: an array, a path or an :class:`~dipcli.io.Image`, and back.

The Python API takes numpy arrays (``(H, W)`` or ``(H, W, C)``; uint8, uint16, bool, or float in
[0, 1]) or files, and gives the result back in the same dtype and layout (:class:`Layout`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dipcli.errors import FAILURE, Fail
from dipcli.io import Image, ImageError, from_array, read_image, to_array

ImageLike = np.ndarray | str | os.PathLike | Image


@dataclass
class TaskInput:
    """One input of a task: the image and what goes with it, each named for messages."""

    image: Image
    name: str = "the image"
    clean: Image | None = None  # a clean reference (for superres: the high-resolution one)
    clean_name: str = "the reference"
    mask: Image | None = None  # inpainting: the mask image, polarity still to decide
    mask_name: str = "the mask"


@dataclass
class Layout:
    """How an array came in, so the result goes back the same way: dtype and dimensions."""

    dtype: np.dtype
    ndim: int


def as_image(data: ImageLike, what: str = "image") -> tuple[Image, Layout | None]:
    """An :class:`Image` from an array (``(H, W)`` or ``(H, W, C)``, C in 1–4; uint8, uint16, or
    float in [0, 1]), a path, or an Image; and the array's layout (None for a file)."""
    if isinstance(data, Image):
        return data, None
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise Fail(f"{path}: no such file; check the {what} path")
        try:
            return read_image(path), None
        except ImageError as exc:
            raise Fail(str(exc), FAILURE) from None
    array = np.asarray(data)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise Fail(f"the {what} has shape {array.shape}; give (H, W) or (H, W, C) with 1 to 4 channels")
    layout = Layout(array.dtype, array.ndim)
    planes = array if array.ndim == 3 else array[:, :, None]
    if array.dtype == bool:
        planes = planes.astype(np.uint8) * 255
    if np.issubdtype(planes.dtype, np.floating):
        if not np.isfinite(planes).all():
            raise Fail(f"the {what} has NaN or infinite pixels; replace them (numpy.nan_to_num), or "
                       "for inpainting mark them as holes in the mask")
        if planes.size and not (planes.min() >= 0 and planes.max() <= 1):
            raise Fail(f"the {what} is float but not within [0, 1]; scale it to [0, 1] or give integers")
        colour = planes[:, :, :-1] if planes.shape[2] in (2, 4) else planes
        alpha = planes[:, :, -1].copy() if planes.shape[2] in (2, 4) else None
        return Image(colour.astype(np.float32), np.dtype(np.float32), colour.shape[2] == 1, alpha), layout
    if planes.dtype not in (np.uint8, np.uint16):
        raise Fail(f"the {what} is {planes.dtype}; give uint8, uint16, or float in [0, 1]")
    return from_array(planes), layout


def as_array(image: Image, layout: Layout | None) -> np.ndarray:
    """The restored image as the caller gave the input: dtype, dimensions, alpha."""
    if layout is None or layout.dtype in (np.uint8, np.uint16, bool):
        data = to_array(image)
        if layout is not None and layout.dtype == bool:
            data = data > np.iinfo(data.dtype).max // 2
    else:
        data = np.clip(image.pixels, 0, 1).astype(layout.dtype)
        if image.alpha is not None:
            data = np.concatenate([data, image.alpha[:, :, None].astype(layout.dtype)], axis=2)
        if data.shape[2] == 1:
            data = data[:, :, 0]
    if layout is not None and layout.ndim == 3 and data.ndim == 2:
        data = data[:, :, None]
    return data


def check_reference(clean: Image, image: Image, name: str) -> np.ndarray:
    """A clean reference of the input's size and channels (denoising, inpainting)."""
    if clean.shape != image.shape:
        raise Fail(f"--clean {name} is {clean.shape[1]}×{clean.shape[0]} but the input is "
                   f"{image.shape[1]}×{image.shape[0]}; give the clean version of the same image")
    if clean.pixels.shape[2] != image.pixels.shape[2]:
        raise Fail(f"--clean {name} has {clean.pixels.shape[2]} colour channel(s), the input "
                   f"{image.pixels.shape[2]}; give a reference of the same kind")
    return clean.pixels
