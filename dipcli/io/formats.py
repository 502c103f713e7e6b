"""The image types `dip` writes: what each can hold, the conversions it needs, and its encoder.

PNG holds 8 and 16 bits, grey or colour, with or without alpha; JPEG and BMP hold 8-bit grey or
RGB only; TIFF holds all of these and float pixels too. :func:`output_plan` tells before any fit
what an output will lose (depth, alpha, float, metadata), and :func:`fit_to_format` then does
exactly that when it is written. Works on :class:`dipcli.io.Image` (by ``dataclasses.replace``,
so that this module needs nothing from :mod:`dipcli.io`, which imports it).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import png
import tifffile
from PIL import Image as PILImage

from dipcli.errors import ImageError
from dipcli.io.image import Image, scale_of
from dipcli.io.metadata import Metadata, add_png_chunks, pillow_options, tiff_options
from dipcli.io.metadata import losses as metadata_losses

WRITABLE = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
TIFF = (".tif", ".tiff")
# JPEG and BMP hold 8-bit grey or RGB only: 16-bit depth and alpha must go (see output_plan).
EIGHT_BIT_NO_ALPHA = {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}
PILLOW_FORMATS = {".png": "PNG", **EIGHT_BIT_NO_ALPHA}


def writable_suffix(suffix: str, where: str) -> str:
    """``suffix`` in lower case, or an ImageError (prefixed by ``where``) when we cannot write it."""
    ext = suffix.lower()
    if ext not in WRITABLE:
        raise ImageError(f"{where}unknown image type {ext or '(none)'}; use one of {', '.join(WRITABLE)}")
    return ext


def fit_to_format(image: Image, ext: str) -> tuple[Image, list[str]]:
    """``image`` as the format ``ext`` can hold it, and what that loses (nothing: an empty list)."""
    losses = []
    if np.issubdtype(image.dtype, np.floating) and ext not in TIFF:
        deep = ext == ".png"
        losses.append(f"{image.dtype} pixels will be stored as {16 if deep else 8}-bit integers")
        image = replace(image, dtype=np.dtype(np.uint16 if deep else np.uint8))
    if ext in EIGHT_BIT_NO_ALPHA:
        if image.alpha is not None:
            image = replace(image, alpha=None)
            losses.append("the alpha channel (transparency) will be dropped")
        if image.dtype == np.uint16:
            image = replace(image, dtype=np.dtype(np.uint8))  # rounds from the float pixels
            if not any("integers" in loss for loss in losses):
                losses.append("16-bit depth will be reduced to 8 bits")
    return image, losses


def output_plan(image: Image, suffix: str) -> str | None:
    """Decide before any fitting what writing ``image`` as ``suffix`` (e.g. ``".jpg"``) will do.

    Returns None when the output keeps everything, or a one-line note of what it will lose (16-bit
    depth, alpha: JPEG and BMP hold neither; float pixels: only TIFF holds them; metadata a
    format cannot hold), which :func:`dipcli.io.write_image` then does exactly.
    Raises :class:`ImageError` when the image cannot be written as ``suffix`` at all, so that a
    long fit never ends in a failed write.
    """
    ext = writable_suffix(suffix, "output: ")
    scale_of(image.dtype)
    _, losses = fit_to_format(image, ext)
    notes = []
    if losses:
        keep = ".tif" if np.issubdtype(image.dtype, np.floating) else ".png or .tif"
        notes.append(f"{' and '.join(losses)} ({PILLOW_FORMATS[ext]} cannot hold them); use {keep} to "
                     "keep them")
    notes += metadata_losses(image.meta, ext)
    return f"{ext} output: {'; '.join(notes)}" if notes else None


def encode(path: Path, data: np.ndarray, ext: str, meta: Metadata) -> None:
    """Write ``data`` (the array of :func:`dipcli.io.to_array`) and ``meta`` as an ``ext`` file.

    Pillow and tifffile are called directly, not through imageio: when a disk is full, imageio's
    writer fails a second time while it is collected and prints an "Exception ignored"
    traceback. Without metadata the calls are the ones imageio made, so such files keep their bytes.
    """
    size = (data.shape[1], data.shape[0])
    if ext in TIFF:  # RGB said, not guessed: tifffile will take float RGB for separate grey pages
        rgb = {"photometric": "rgb"} if data.ndim == 3 and data.shape[2] in (3, 4) else {}
        tifffile.imwrite(path, data, **rgb, **tiff_options(meta, size))
    elif ext == ".png" and data.dtype == np.uint16 and data.ndim == 3:
        _write_png16(path, data)
        add_png_chunks(path, meta)
    else:
        fmt = PILLOW_FORMATS[ext]
        quality = {"quality": 95} if fmt == "JPEG" else {}
        PILImage.fromarray(data).save(path, format=fmt, **quality, **pillow_options(meta, fmt, size))


def _write_png16(path: str | os.PathLike, data: np.ndarray) -> None:
    """16-bit grey+alpha, RGB or RGBA PNG through pypng (Pillow cannot write them)."""
    h, w = data.shape[:2]
    planes = 1 if data.ndim == 2 else data.shape[2]
    writer = png.Writer(w, h, bitdepth=16, greyscale=planes in (1, 2), alpha=planes in (2, 4))
    with open(path, "wb") as f:
        writer.write(f, data.reshape(h, w * planes))
