"""Inpainting masks from image files: which pixels are known, with the polarity checked.

A mask is an image of the same size as the one to inpaint. The DIP convention is white = known,
black = missing, but masks painted the other way round are common, so the polarity is either
given (``white``/``black``) or guessed (``auto``: the larger region is the known one — holes are
the minority in any inpainting task worth running). A guess too close to call is refused rather
than silently misused.
"""

from __future__ import annotations

import os

import numpy as np

from dipcli.io import Image, read_image

POLARITIES = ("white", "black", "auto")
AMBIGUOUS = (0.45, 0.55)  # auto refuses when the white share of the mask falls in this range


def mask_grey(image: Image) -> np.ndarray:
    """The mask's ``(H, W)`` grey level in [0, 1].

    Colour masks are reduced to luma; the alpha channel is used when it is the only channel that
    varies (a mask drawn as transparency over a flat colour).
    """
    pixels = image.pixels
    colour_flat = bool(np.all(pixels == pixels[:1, :1]))
    if image.alpha is not None and colour_flat and np.ptp(image.alpha) > 0:
        return image.alpha.astype(np.float32) / np.iinfo(image.alpha.dtype).max
    if pixels.shape[2] == 3:
        from skimage.color import rgb2gray

        return rgb2gray(pixels).astype(np.float32)
    return pixels[:, :, 0]


def load_mask(
    source: str | os.PathLike | Image,
    image_shape: tuple[int, ...],
    known: str = "auto",
) -> tuple[np.ndarray, str]:
    """Read a mask and return ``(mask, polarity_used)``: ``(H, W)`` bool, True = known pixel.

    ``source`` is a path (read with :func:`dipcli.io.read_image`, whose ``ImageError`` passes
    through) or an already read :class:`~dipcli.io.Image`. ``image_shape`` is the image's
    ``(H, W[, C])``. The mask is binarised at mid-grey; ``known`` says which side is known:
    ``white`` (the DIP convention), ``black``, or ``auto`` (the larger region). Raises
    ``ValueError`` with a one-line remedy for a size mismatch, a mask with nothing known or
    nothing missing, or (``auto``) regions too close in size to tell apart.
    """
    if known not in POLARITIES:
        raise ValueError(f"--mask-known must be one of: {', '.join(POLARITIES)} (got {known!r})")
    image = source if isinstance(source, Image) else read_image(source)
    h, w = image_shape[:2]
    mh, mw = image.shape
    if (mh, mw) != (h, w):
        raise ValueError(f"the mask is {mw}×{mh} but the image is {w}×{h}; "
                         "give a mask of the same size as the image")
    white = mask_grey(image) >= 0.5
    share = float(white.mean())
    if known == "auto":
        lo, hi = AMBIGUOUS
        if lo <= share <= hi:
            raise ValueError(f"the mask is {share:.0%} white and {1 - share:.0%} black, too close to "
                             "tell which part is known; pass --mask-known white|black")
        known = "white" if share > 0.5 else "black"
    mask = white if known == "white" else ~white
    if mask.all() or not mask.any():  # a binary mask is all known or all missing only when blank
        colour = "white" if share == 1.0 else "black"
        missing = "black" if known == "white" else "white"
        what = "no pixel is missing and there is nothing to inpaint" if mask.all() \
            else "every pixel is missing"
        raise ValueError(f"the mask is all {colour} and {known} means known, so {what}; "
                         f"give a mask that shows the missing pixels in {missing}")
    return mask, known
