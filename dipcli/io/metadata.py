"""Photo metadata carried from an input to its output: EXIF, the ICC profile, DPI, PNG text.

A photo tool that drops them changes the photo: without its ICC profile a wide-gamut picture is
shown in other colours, and without EXIF it loses its camera, date and exposure. So what is read
with the pixels rides along in :class:`Metadata` and is written again, in whichever of PNG, JPEG
or TIFF the output is, less what no longer holds:

* the EXIF orientation (the pixels were turned upright on reading) and the thumbnail (a picture
  of the old pixels);
* tags that describe the file's layout (size, strips, compression, bit depth: the writer sets
  its own) — a TIFF's IFD0 mixes them with the photo's tags (Make, Model, DateTime, Artist);
* the EXIF pixel dimensions, which are set to the output's size (super-resolution changes it).

Pillow reads and writes all of it for PNG, JPEG and BMP (DPI only). TIFF is written by tifffile,
which writes IFD0 tags but no sub-IFDs, so a TIFF output keeps IFD0 (Make, Model, DateTime, ...),
the ICC profile and DPI but not the EXIF sub-IFD (exposure, lens) or GPS; a note says so.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import IO, Any

import png
import tifffile
from PIL import ExifTags, PngImagePlugin
from PIL import Image as PILImage

# IFD0 tags about how the pixels are stored, which the writer sets for its own pixels: tifffile's
# own list of tags it will not take from a caller, and the rest of the layout tags of TIFF 6.0.
LAYOUT_TAGS = frozenset(tifffile.TIFF.TAG_FILTERED) - {34665, 34853, 40965} | {
    254, 255, 263, 264, 265, 280, 281, 288, 289, 290, 291, 292, 293, 301, 320, 321, 332, 333, 334,
    336, 337, 340, 341, 347, 513, 514, 515, 517, 518, 519, 520, 521, 529, 530, 531, 532, 37724,
    50838, 50839,
}
ORIENTATION = ExifTags.Base.Orientation
RESOLUTION = (ExifTags.Base.XResolution, ExifTags.Base.YResolution, ExifTags.Base.ResolutionUnit)
SUB_IFDS = (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, ExifTags.IFD.Interop)
PIXEL_SIZE = (ExifTags.Base.ExifImageWidth, ExifTags.Base.ExifImageHeight)
# What tifffile writes from its own arguments rather than from extratags.
TIFF_ARGUMENTS = {ExifTags.Base.ImageDescription: "description", ExifTags.Base.Software: "software",
                  ExifTags.Base.DateTime: "datetime"}
RAW_EXIF_TEXT = "Raw profile type exif"  # ImageMagick's EXIF in a PNG text chunk; read as EXIF


@dataclass(frozen=True)
class Metadata:
    """What a photo says about itself besides its pixels; empty (falsy) when it says nothing."""

    exif: bytes | None = None  # an EXIF block as Pillow writes it: "Exif\\0\\0" and a TIFF structure
    icc: bytes | None = None  # the ICC colour profile
    dpi: tuple[float, float] | None = None
    text: tuple[tuple[str, str], ...] = field(default=())  # PNG tEXt/zTXt/iTXt, key and value

    def __bool__(self) -> bool:
        return bool(self.exif or self.icc or self.dpi or self.text)


NONE = Metadata()


# --- reading ------------------------------------------------------------------------------------


def _kept_exif(exif: PILImage.Exif) -> bytes | None:
    """``exif`` (changed in place) without orientation, layout tags and thumbnail, as bytes; None
    if nothing is left. ``Exif.tobytes`` writes IFD0 and its sub-IFDs, never the thumbnail's IFD."""
    for tag in [t for t in exif if t in LAYOUT_TAGS or t == ORIENTATION]:
        del exif[tag]
    return exif.tobytes() if len(exif) else None


def _copy(exif: PILImage.Exif) -> PILImage.Exif:
    """An EXIF of its own: Pillow caches an image's, and the reader asks it for the orientation."""
    copy = PILImage.Exif()
    copy.load(exif.tobytes())
    return copy


def from_pillow(im: PILImage.Image, decoded: bool) -> Metadata:
    """The metadata of an image Pillow opened (PNG, JPEG, BMP, ...).

    ``decoded``: whether its pixels were read; if not (16-bit PNG, whose pixels come from
    pypng), nothing here may make Pillow decode them, so only what precedes them is read.
    """
    exif = None
    if decoded or "exif" in im.info:
        try:
            exif = _kept_exif(_copy(im.getexif()))
        except Exception:  # a damaged EXIF block: the pixels are still good
            exif = None
    if im.format == "PNG":
        chunks = im.text if decoded else {k: v for k, v in im.info.items() if isinstance(v, str)}
        text = tuple((k, str(v)) for k, v in chunks.items() if not (exif and k == RAW_EXIF_TEXT))
    else:
        text = ()
    dpi = im.info.get("dpi")
    return Metadata(exif, im.info.get("icc_profile") or None,
                    (float(dpi[0]), float(dpi[1])) if dpi and min(dpi) > 0 else None, text)


def from_tiff(fp: IO[bytes]) -> Metadata:
    """The metadata in a TIFF's first IFD, read by Pillow's EXIF reader (no pixels decoded).

    The ICC profile and resolution are tags there; tifffile's own description of the array's
    shape (a JSON ``{"shape": ...}``), ImageJ's, and tifffile's name as software are dropped.
    """
    exif = PILImage.Exif()
    exif.load_from_fp(fp)
    icc = exif.pop(ExifTags.Base.InterColorProfile, None)
    x, y, unit = (exif.pop(tag, None) for tag in RESOLUTION)
    dpi = None
    if x and y and unit in (2, 3):  # inch, centimetre; 1 or none: an aspect ratio only
        scale = 1.0 if unit == 2 else 2.54
        dpi = (float(x) * scale, float(y) * scale)
    description = exif.get(ExifTags.Base.ImageDescription)
    if isinstance(description, str) and description.startswith(('{"shape":', "ImageJ=")):
        del exif[ExifTags.Base.ImageDescription]
    if exif.get(ExifTags.Base.Software) == "tifffile.py":
        del exif[ExifTags.Base.Software]
    return Metadata(_kept_exif(exif), icc if isinstance(icc, bytes) and icc else None, dpi)


# --- writing ------------------------------------------------------------------------------------


def _exif_for(meta: Metadata, size: tuple[int, int]) -> PILImage.Exif | None:
    """The EXIF to write for an output of ``size`` (width, height): its pixel dimensions updated."""
    if not meta.exif:
        return None
    exif = PILImage.Exif()
    exif.load(meta.exif)
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    for tag, value in zip(PIXEL_SIZE, size, strict=True):
        if tag in sub:
            sub[tag] = value
    return exif


def pillow_options(meta: Metadata, fmt: str, size: tuple[int, int]) -> dict[str, Any]:
    """Keyword arguments for Pillow's ``save`` in format ``fmt`` ("PNG", "JPEG", "BMP") that
    write ``meta``; none at all for empty metadata, so such files come out as they always did."""
    options: dict[str, Any] = {}
    if meta.dpi:
        options["dpi"] = meta.dpi
    if fmt == "BMP":
        return options
    exif = _exif_for(meta, size)
    if exif is not None:
        options["exif"] = exif.tobytes()
    if meta.icc:
        options["icc_profile"] = meta.icc
    if fmt == "PNG" and meta.text:
        info = PngImagePlugin.PngInfo()
        for key, value in meta.text:
            info.add_text(key, value)  # iTXt where Latin-1 cannot hold the text
        options["pnginfo"] = info
    return options


def _tiff_tag(code: int, value: object) -> tuple | None:
    """``value`` as a tifffile extratag, or None for a value tifffile cannot write (a rational)."""
    if isinstance(value, str):
        return (code, "s", 0, value, True)
    if isinstance(value, bytes):
        return (code, "B", len(value), value, True)
    values = value if isinstance(value, tuple) else (value,)
    if values and all(isinstance(v, int) and 0 <= v < 2**32 for v in values):
        return (code, "H" if max(values) < 2**16 else "I", len(values), values, True)
    return None


def tiff_options(meta: Metadata, size: tuple[int, int]) -> dict[str, Any]:
    """Keyword arguments for ``tifffile.imwrite`` that write ``meta`` (IFD0 tags, ICC, DPI)."""
    if not meta:
        return {}
    options: dict[str, Any] = {"metadata": None}  # no second description: tifffile's shape JSON
    if meta.icc:
        options["iccprofile"] = meta.icc
    if meta.dpi:
        options.update(resolution=meta.dpi, resolutionunit=2)
    exif = _exif_for(meta, size)
    tags = []
    for code, value in (exif or {}).items():
        if code in TIFF_ARGUMENTS and isinstance(value, str):
            options[TIFF_ARGUMENTS[code]] = value
        elif code not in LAYOUT_TAGS and code not in SUB_IFDS and code not in RESOLUTION:
            tag = _tiff_tag(code, value)
            if tag is not None:
                tags.append(tag)
    options["extratags"] = tags
    return options


def add_png_chunks(path: str, meta: Metadata) -> None:
    """Add ``meta`` to a PNG another writer made (pypng's 16-bit colour PNGs).

    Pillow encodes the chunks (into a 1×1 PNG) and pypng moves them behind the file's header.
    """
    if not meta:
        return
    carrier = io.BytesIO()
    PILImage.new("L", (1, 1)).save(carrier, format="PNG", **pillow_options(meta, "PNG", (1, 1)))
    extra = [c for c in png.Reader(bytes=carrier.getvalue()).chunks()
             if c[0] not in (b"IHDR", b"IDAT", b"IEND")]
    with open(path, "rb") as f:
        chunks = list(png.Reader(file=f).chunks())
    with open(path, "wb") as f:
        png.write_chunks(f, [chunks[0], *extra, *chunks[1:]])


def losses(meta: Metadata, ext: str) -> list[str]:
    """What of ``meta`` a file of type ``ext`` cannot hold, as clauses of the note before the fit."""
    lost = []
    if ext == ".bmp" and (meta.exif or meta.icc or meta.text):
        lost.append("the EXIF data, ICC profile and text will be dropped (BMP holds only DPI)")
    elif ext in (".jpg", ".jpeg", ".tif", ".tiff") and meta.text:
        lost.append(f"the PNG text chunks will be dropped ({'JPEG' if ext[1] == 'j' else 'TIFF'} has none)")
    if ext in (".tif", ".tiff") and meta.exif:
        exif = PILImage.Exif()
        exif.load(meta.exif)
        if any(ifd in exif for ifd in SUB_IFDS[:2]):
            lost.append("the EXIF exposure and GPS data will be dropped (tifffile writes no EXIF "
                        "sub-IFDs; use .jpg or .png to keep them)")
    return lost


__all__ = ["NONE", "Metadata", "add_png_chunks", "from_pillow", "from_tiff", "losses", "pillow_options",
           "tiff_options"]
