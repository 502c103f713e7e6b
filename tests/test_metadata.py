"""Issue 33, items 8 and 9: photo metadata and float TIFFs survive a restoration.

A JPEG, PNG or TIFF with EXIF (Make, Model, DateTime and an exposure sub-IFD), an ICC profile,
DPI and PNG text goes through `dip denoise`, `inpaint` and `superres`; the output carries them,
less what no longer holds (the orientation, applied on reading; the thumbnail; the old size).
"""

from __future__ import annotations

import io

import numpy as np
import png
import pytest
import tifffile
from PIL import ExifTags, ImageCms, PngImagePlugin
from PIL import Image as PILImage
from typer.testing import CliRunner

from dipcli.cli.app import app

FAST = ["--iters", "8", "--arch", "compact", "--width", "8", "--precision", "fp32", "--stop", "fixed"]
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
WHEN = "2024:05:06 07:08:09"
TASKS = {"denoise": ["--sigma", "25"], "inpaint": ["--drop", "0.1"], "superres": ["--factor", "2"]}


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def noisy(h: int = 24, w: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 60 * np.sin(xx / 4 + c) + 40 * np.cos(yy / 5) for c in range(3)], axis=2)
    return np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)


def with_thumbnail(exif: PILImage.Exif) -> bytes:
    """``exif`` as bytes with a second IFD, the thumbnail's, as cameras write it.

    An EXIF block is a TIFF file after "Exif\\0\\0"; a two-page TIFF is IFD0 and IFD1.
    """
    buf = io.BytesIO()
    first, thumb = PILImage.new("RGB", (1, 1)), PILImage.new("RGB", (8, 8), (255, 0, 0))
    ifd0 = {**{tag: exif[tag] for tag in exif}, ExifTags.IFD.Exif: exif.get_ifd(ExifTags.IFD.Exif)}
    first.save(buf, format="TIFF", tiffinfo=ifd0, save_all=True, append_images=[thumb])
    return b"Exif\x00\x00" + buf.getvalue()


def photo_exif() -> PILImage.Exif:
    exif = PILImage.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Model] = "Canon", "EOS R5"
    exif[ExifTags.Base.DateTime] = WHEN
    exif[ExifTags.Base.Orientation] = 1
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = WHEN
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.ExifImageWidth] = 32
    return exif


def make_photo(path, ext: str) -> None:
    """A 32×24 photo with EXIF, an ICC profile and 300 dpi (and text chunks in a PNG)."""
    im = PILImage.fromarray(noisy())
    exif = photo_exif()
    if ext == ".jpg":
        im.save(path, quality=95, exif=with_thumbnail(exif), icc_profile=ICC, dpi=(300, 300))
    elif ext == ".png":
        text = PngImagePlugin.PngInfo()
        text.add_text("Title", "Harbour at dawn")
        text.add_itxt("Description", "Le port à l'aube ✓", lang="fr")
        im.save(path, exif=exif, icc_profile=ICC, dpi=(300, 300), pnginfo=text)
    else:
        im.save(path, exif=exif, icc_profile=ICC, dpi=(300, 300))


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("ext", [".jpg", ".png", ".tif"])
def test_8_metadata_is_carried_to_the_output(tmp_path, ext, task):
    src, out = tmp_path / f"photo{ext}", tmp_path / f"out{ext}"
    make_photo(src, ext)
    res = invoke(task, src, *TASKS[task], *FAST, "-q", "-o", out)
    assert res.exit_code == 0, res.output
    with PILImage.open(out) as im:
        exif, info, size = im.getexif(), dict(im.info), im.size
        text = dict(im.text) if ext == ".png" else {}
    assert size == ((64, 48) if task == "superres" else (32, 24))
    assert (exif.get(ExifTags.Base.Make), exif.get(ExifTags.Base.Model)) == ("Canon", "EOS R5")
    assert exif.get(ExifTags.Base.DateTime) == WHEN
    assert ExifTags.Base.Orientation not in exif  # applied on reading: the pixels are upright
    assert info["icc_profile"] == ICC
    assert info["dpi"] == pytest.approx((300, 300), abs=0.01)
    if ext != ".tif":  # tifffile writes no EXIF sub-IFD (docs/limits.md)
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        assert sub[ExifTags.Base.DateTimeOriginal] == WHEN
        assert sub[ExifTags.Base.ExifImageWidth] == size[0]  # the new size, not the old one
    if ext == ".jpg":
        assert exif.get_ifd(ExifTags.IFD.IFD1) == {}  # the thumbnail showed the noisy picture
        assert ExifTags.Base.StripOffsets not in exif  # the IFD's layout tags went with it
    if ext == ".png":
        assert text == {"Title": "Harbour at dawn", "Description": "Le port à l'aube ✓"}


@pytest.mark.parametrize("ext", [".jpg", ".png", ".tif"])
def test_8_strip_metadata_writes_none(tmp_path, ext):
    src, out = tmp_path / f"photo{ext}", tmp_path / f"out{ext}"
    make_photo(src, ext)
    res = invoke("denoise", src, "--sigma", "25", *FAST, "-q", "--strip-metadata", "-o", out)
    assert res.exit_code == 0, res.output
    with PILImage.open(out) as im:
        assert "icc_profile" not in im.info and "exif" not in im.info
        assert ExifTags.Base.Make not in im.getexif()
        assert "Title" not in getattr(im, "text", {})


def test_8_sixteen_bit_png_keeps_its_metadata(tmp_path):
    """16-bit colour PNGs are written by pypng; the chunks are added to its file."""
    deep = noisy().astype(np.uint16) * 257
    src, out = tmp_path / "deep.png", tmp_path / "out.png"
    png.Writer(32, 24, bitdepth=16, greyscale=False).write(src.open("wb"), deep.reshape(24, -1))
    carrier = io.BytesIO()  # Pillow encodes the chunks, which go behind pypng's header
    text = PngImagePlugin.PngInfo()
    text.add_text("Title", "deep")
    PILImage.new("L", (1, 1)).save(carrier, format="PNG", icc_profile=ICC, dpi=(300, 300), pnginfo=text,
                                   exif=photo_exif())
    chunks = list(png.Reader(bytes=carrier.getvalue()).chunks())
    ancillary = [c for c in chunks if c[0] not in (b"IHDR", b"IDAT", b"IEND")]
    original = list(png.Reader(filename=str(src)).chunks())
    with src.open("wb") as f:
        png.write_chunks(f, [original[0], *ancillary, *original[1:]])
    res = invoke("denoise", src, "--sigma", "25", *FAST, "-q", "-o", out)
    assert res.exit_code == 0, res.output
    assert png.Reader(filename=str(out)).read()[3]["bitdepth"] == 16
    with PILImage.open(out) as im:
        assert im.info["icc_profile"] == ICC and im.info["Title"] == "deep"
        assert im.getexif()[ExifTags.Base.Make] == "Canon"


def test_8_a_format_that_cannot_hold_it_says_so_before_the_fit(tmp_path):
    make_photo(tmp_path / "photo.png", ".png")
    res = invoke("denoise", tmp_path / "photo.png", "--sigma", "25", *FAST, "-o", tmp_path / "out.bmp")
    assert res.exit_code == 0, res.output
    assert "out.bmp: .bmp output: the EXIF data, ICC profile and text will be dropped" in res.output


# ---- 9. float TIFFs ------------------------------------------------------------------------------

def float_tiff(path, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    data = (noisy().astype(np.float32) / 255) * (high - low) + low
    tifffile.imwrite(path, data, photometric="rgb")
    return data


def test_9_a_float_tiff_in_0_1_is_written_back_as_float(tmp_path):
    float_tiff(tmp_path / "f.tif")
    res = invoke("denoise", tmp_path / "f.tif", "--sigma", "25", *FAST, "-o", tmp_path / "out.tif")
    assert res.exit_code == 0, res.output
    assert "output:" not in res.output  # nothing to announce: nothing lost
    out = tifffile.imread(tmp_path / "out.tif")
    assert out.dtype == np.float32 and out.shape == (24, 32, 3)
    assert 0 <= out.min() and out.max() <= 1 and len(np.unique(out)) > 65536 // 64  # not 16-bit steps


def test_9_a_float_tiff_into_png_says_it_becomes_16_bit(tmp_path):
    float_tiff(tmp_path / "f.tif")
    res = invoke("denoise", tmp_path / "f.tif", "--sigma", "25", *FAST, "-o", tmp_path / "out.png")
    assert res.exit_code == 0, res.output
    assert ".png output: float32 pixels will be stored as 16-bit integers (PNG cannot hold them); use .tif" \
        in " ".join(res.output.split())
    assert png.Reader(filename=str(tmp_path / "out.png")).read()[3]["bitdepth"] == 16


@pytest.mark.parametrize(("low", "high"), [(-0.5, 3.0), (np.nan, 1.0)])
def test_9_a_float_tiff_outside_0_1_is_refused_in_one_line(tmp_path, low, high):
    data = float_tiff(tmp_path / "f.tif", low, high)
    says = ("float32 pixels include NaN or infinity; dip reads float images with values in [0, 1]"
            if np.isnan(low) else f"float32 pixels run from {data.min():.4g} to {data.max():.4g}; dip reads "
            "float images with values in [0, 1]: scale them into [0, 1] and save again")
    res = invoke("denoise", tmp_path / "f.tif", "--sigma", "25", *FAST, "-o", tmp_path / "out.tif")
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"dip: error: {tmp_path / 'f.tif'}: {says}", res.output
    assert not (tmp_path / "out.tif").exists()
