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

from dipcli.errors import ImageError
from dipcli.io.formats import WRITABLE, output_plan
from dipcli.io.image import Image, crop_to, from_array, pad_to_multiple, to_array
from dipcli.io.read import MAX_PIXELS, default_max_pixels, read_image
from dipcli.io.write import OutputAppeared, atomic_write, write_image, write_text_atomic

__all__ = ["MAX_PIXELS", "WRITABLE", "Image", "ImageError", "OutputAppeared", "atomic_write", "crop_to",
           "default_max_pixels", "from_array", "output_plan", "pad_to_multiple", "read_image", "to_array",
           "write_image", "write_text_atomic"]
