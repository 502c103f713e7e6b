"""Issue 18, reading: CMYK JPEGs, EXIF orientation, PNG transparency, decompression bombs."""

import struct
import warnings
import zlib

import numpy as np
import png
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageFile, ImageOps

import dipcli.io as dio
import dipcli.io.read as dio_read
from dipcli.io import ImageError, read_image, to_array, write_image

ORIENTATION = 0x0112


def quadrants(h: int, w: int) -> np.ndarray:
    """An RGB image of four flat quadrants, so that any flip or turn is plain to see."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (220, 30, 30)
    img[: h // 2, w // 2 :] = (30, 200, 40)
    img[h // 2 :, : w // 2] = (40, 50, 210)
    img[h // 2 :, w // 2 :] = (240, 240, 240)
    return img


def exif_bytes(orientation: int) -> bytes:
    exif = PILImage.Exif()
    exif[ORIENTATION] = orientation
    return exif.tobytes()


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# --- 1. CMYK JPEG ------------------------------------------------------------------------------


def test_cmyk_jpeg_reads_as_the_rgb_it_shows(tmp_path):
    colours = [(64, 59, 41), (200, 30, 120), (10, 220, 90), (250, 250, 250)]
    rgb = np.zeros((32, 32, 3), np.uint8)
    for i, colour in enumerate(colours):
        rgb[(i // 2) * 16 : (i // 2 + 1) * 16, (i % 2) * 16 : (i % 2 + 1) * 16] = colour
    PILImage.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    assert PILImage.open(tmp_path / "c.jpg").mode == "CMYK"
    img = read_image(tmp_path / "c.jpg")
    assert img.pixels.shape == (32, 32, 3) and img.alpha is None and not img.grey
    back = to_array(img).astype(int)
    for i, colour in enumerate(colours):
        centre = back[(i // 2) * 16 + 8, (i % 2) * 16 + 8]
        np.testing.assert_allclose(centre, colour, atol=6)


# --- 2. EXIF orientation ------------------------------------------------------------------------


def test_jpeg_with_orientation_6_is_read_upright(tmp_path):
    stored = quadrants(32, 64)
    exif = PILImage.Exif()
    exif[ORIENTATION] = 6
    PILImage.fromarray(stored).save(tmp_path / "o.jpg", exif=exif, quality=95)
    back = to_array(read_image(tmp_path / "o.jpg")).astype(int)
    assert back.shape == (64, 32, 3)  # height and width swapped
    upright = np.rot90(stored, -1).astype(int)  # orientation 6: turn 90 degrees clockwise
    for y, x in [(16, 8), (16, 24), (48, 8), (48, 24)]:  # the quadrants' centres
        np.testing.assert_allclose(back[y, x], upright[y, x], atol=6)

    write_image(tmp_path / "out.jpg", read_image(tmp_path / "o.jpg"))
    with PILImage.open(tmp_path / "out.jpg") as out:
        assert out.size == (32, 64)  # written upright ...
        assert ORIENTATION not in out.getexif()  # ... and without the tag


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillow_exif_transpose_in_every_reader(tmp_path, orientation):
    stored = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    PILImage.fromarray(stored).save(tmp_path / "o8.png", exif=exif_bytes(orientation))
    with PILImage.open(tmp_path / "o8.png") as im:
        expected = np.asarray(ImageOps.exif_transpose(im))

    deep = stored.astype(np.uint16) * 257
    # a 16-bit RGB PNG (read through pypng) with an eXIf chunk (without Pillow's "Exif\0\0")
    with open(tmp_path / "plain16.png", "wb") as f:
        png.Writer(7, 5, bitdepth=16, greyscale=False).write(f, deep.reshape(5, 21))
    chunks = list(png.Reader(filename=str(tmp_path / "plain16.png")).chunks())
    chunks.insert(1, (b"eXIf", exif_bytes(orientation)[6:]))
    with open(tmp_path / "o16.png", "wb") as f:
        png.write_chunks(f, chunks)
    tifffile.imwrite(tmp_path / "o.tif", stored, photometric="rgb", metadata=None,
                     extratags=[(274, "H", 1, orientation, True)])

    assert np.array_equal(to_array(read_image(tmp_path / "o8.png")), expected)
    assert np.array_equal(to_array(read_image(tmp_path / "o16.png")), expected.astype(np.uint16) * 257)
    assert np.array_equal(to_array(read_image(tmp_path / "o.tif")), expected)


# --- 3. PNG transparency (tRNS) -----------------------------------------------------------------


def test_palette_png_with_transparent_index_reads_alpha(tmp_path):
    index = np.zeros((4, 6), np.uint8)
    index[:, 3:] = 1
    index[0, 0] = 2
    im = PILImage.fromarray(index, mode="L").convert("P")
    im.putpalette([255, 0, 0, 0, 0, 255, 0, 255, 0])
    im.save(tmp_path / "p.png", transparency=1)
    img = read_image(tmp_path / "p.png")
    assert img.pixels.shape == (4, 6, 3) and img.alpha is not None and img.alpha.dtype == np.uint8
    np.testing.assert_array_equal(img.alpha, np.where(index == 1, 0, 255))
    np.testing.assert_allclose(img.pixels[1, 0], [1, 0, 0])
    np.testing.assert_allclose(img.pixels[0, 0], [0, 1, 0])

    write_image(tmp_path / "out.png", img)  # carried like an RGBA input's alpha
    with PILImage.open(tmp_path / "out.png") as out:
        assert out.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(out)[:, :, 3], img.alpha)


def test_palette_png_with_partial_alphas_reads_them(tmp_path):
    index = np.array([[0, 1, 2, 2]], np.uint8)
    im = PILImage.fromarray(index, mode="L").convert("P")
    im.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90])
    im.save(tmp_path / "p.png", transparency=bytes([0, 128]))  # entry 2 has no alpha: opaque
    img = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(img.alpha, [[0, 128, 255, 255]])
    np.testing.assert_array_equal(to_array(img)[0, 1], [40, 50, 60, 128])


@pytest.mark.parametrize(
    ("bitdepth", "greyscale", "key", "rows"),
    [
        (8, True, 10, [[0, 10, 20, 255]]),
        (16, True, 1000, [[0, 1000, 2000, 65535]]),
        (2, True, 1, [[0, 1, 2, 3]]),
        (8, False, (1, 2, 3), [[1, 2, 3, 1, 2, 4, 0, 0, 0, 1, 2, 3]]),
        (16, False, (1, 2, 3), [[1, 2, 3, 1, 2, 4, 0, 0, 0, 1, 2, 3]]),
    ],
)
def test_colour_key_png_reads_alpha(tmp_path, bitdepth, greyscale, key, rows):
    with open(tmp_path / "k.png", "wb") as f:
        png.Writer(4, 1, greyscale=greyscale, bitdepth=bitdepth, transparent=key).write(f, rows)
    img = read_image(tmp_path / "k.png")
    assert img.grey == greyscale and img.alpha is not None
    top = 65535 if bitdepth == 16 else 255
    assert img.dtype == (np.uint16 if bitdepth == 16 else np.uint8)
    expected = [[top, 0, top, top]] if greyscale else [[0, top, top, 0]]
    np.testing.assert_array_equal(img.alpha, expected)


# --- 4. decompression bombs ---------------------------------------------------------------------


def set_png_size(path, width: int, height: int) -> None:
    """Make a PNG declare another size: new IHDR width/height and its CRC; the pixels stay small."""
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def set_jpeg_size(path, width: int, height: int) -> None:
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail if any decoder runs: the ceiling must be checked from the header alone."""

    def decoded(*args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(dio_read, "_read_png16", decoded)
    monkeypatch.setattr(ImageFile.ImageFile, "load", decoded)
    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", decoded)


def bombs(folder):
    """A 16-bit RGB PNG, an 8-bit PNG, a JPEG and a TIFF, each tiny but declaring a huge size."""
    with open(folder / "deep.png", "wb") as f:
        png.Writer(16, 16, bitdepth=16, greyscale=False).write(f, np.zeros((16, 48), np.uint16))
    set_png_size(folder / "deep.png", 16000, 16000)
    PILImage.new("RGB", (16, 16)).save(folder / "flat.png")
    set_png_size(folder / "flat.png", 20000, 20000)  # above Pillow's own refusal (179 Mpx) too
    PILImage.new("RGB", (16, 16)).save(folder / "photo.jpg")
    set_jpeg_size(folder / "photo.jpg", 30000, 30000)
    tifffile.imwrite(folder / "scan.tif", np.zeros((16, 16, 3), np.uint8), metadata=None)
    with tifffile.TiffFile(folder / "scan.tif", mode="r+") as tif:
        for tag in ("ImageWidth", "ImageLength", "RowsPerStrip"):
            tif.pages[0].tags[tag].overwrite(100000)
    return {"deep.png": "16000x16000", "flat.png": "20000x20000", "photo.jpg": "30000x30000",
            "scan.tif": "100000x100000"}


def test_bombs_are_refused_from_the_header(tmp_path, no_decoding):
    for name, size in bombs(tmp_path).items():
        with pytest.raises(ImageError) as exc:
            read_image(tmp_path / name)
        message = one_line(exc)
        assert f"declares {size} pixels" in message
        assert f"ceiling of {dio.MAX_PIXELS:,}" in message
        assert "--max-pixels N" in message and "DIP_MAX_PIXELS" in message


def test_the_reported_16000_square_png_is_over_the_default():
    assert 16000 * 16000 > dio.MAX_PIXELS


def test_ceiling_is_inclusive_and_counts_tiff_pages(tmp_path):
    PILImage.new("RGB", (16, 16)).save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png", max_pixels=256).shape == (16, 16)
    with pytest.raises(ImageError, match=r"declares 16x16 pixels \(256\), over the ceiling of 255 "):
        read_image(tmp_path / "a.png", max_pixels=255)
    tifffile.imwrite(tmp_path / "pages.tif", np.zeros((3, 16, 16), np.uint8), photometric="minisblack",
                     metadata=None)
    with pytest.raises(ImageError, match=r"declares 16x16 x 3 pages pixels \(768\)"):
        read_image(tmp_path / "pages.tif", max_pixels=700)
    with pytest.raises(ImageError, match="positive"):
        read_image(tmp_path / "a.png", max_pixels=0)


def test_environment_variable_sets_the_default_ceiling(tmp_path, monkeypatch):
    PILImage.new("L", (16, 16)).save(tmp_path / "a.png")
    monkeypatch.setenv("DIP_MAX_PIXELS", "100")
    assert dio.default_max_pixels() == 100
    with pytest.raises(ImageError, match="over the ceiling of 100 "):
        read_image(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png", max_pixels=1000).shape == (16, 16)  # an explicit value wins
    monkeypatch.setenv("DIP_MAX_PIXELS", " ")
    assert dio.default_max_pixels() == dio.MAX_PIXELS  # empty: unset
    monkeypatch.delenv("DIP_MAX_PIXELS")
    monkeypatch.setattr(dio_read, "MAX_PIXELS", 99)
    assert dio.default_max_pixels() == 99  # the module constant is read at call time


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5", "1e9"])
def test_bad_environment_variable_is_a_clear_error(tmp_path, monkeypatch, value):
    PILImage.new("L", (4, 4)).save(tmp_path / "a.png")
    monkeypatch.setenv("DIP_MAX_PIXELS", value)
    with pytest.raises(ImageError) as exc:
        read_image(tmp_path / "a.png")
    assert one_line(exc).startswith(f"DIP_MAX_PIXELS={value!r} is not a positive whole number")


def test_pillows_own_limit_does_not_get_in_first(tmp_path, monkeypatch):
    # Under our ceiling, Pillow must neither warn nor refuse, whatever its own limit is ...
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 10)
    PILImage.new("RGB", (16, 16), (1, 2, 3)).save(tmp_path / "a.png")
    PILImage.new("RGB", (16, 16), (1, 2, 3)).save(tmp_path / "a.jpg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("a.png", "a.jpg"):
            assert read_image(tmp_path / name).shape == (16, 16)
    assert PILImage.MAX_IMAGE_PIXELS == 10  # ... and its limit is left as it was


def test_animation_is_refused(tmp_path):
    frames = [PILImage.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match="animation of 2 frames"):
        read_image(tmp_path / "a.png")
