import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image as PILImage

from dipcli.io import (
    ImageError,
    crop_to,
    from_array,
    pad_to_multiple,
    read_image,
    to_array,
    write_image,
)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_round_trip_keeps_size_dtype_channels(tmp_path, dtype, channels, ext):
    rng = np.random.default_rng(0)
    top = np.iinfo(dtype).max
    shape = (37, 53) if channels == 1 else (37, 53, channels)
    data = rng.integers(0, top + 1, size=shape, dtype=dtype)
    src = tmp_path / f"in{ext}"
    write_image(src, from_array(data if data.ndim == 3 else data[:, :, None]))
    img = read_image(src)
    assert img.pixels.dtype == np.float32 and img.pixels.shape[:2] == (37, 53)
    assert 0.0 <= img.pixels.min() and img.pixels.max() <= 1.0
    out = tmp_path / f"out{ext}"
    write_image(out, img)
    back = to_array(read_image(out))
    assert back.dtype == dtype and back.shape == data.shape
    np.testing.assert_array_equal(back, data)


def test_alpha_is_carried_untouched(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, size=(20, 30, 4), dtype=np.uint8)
    iio.imwrite(tmp_path / "a.png", data)
    img = read_image(tmp_path / "a.png")
    assert img.pixels.shape == (20, 30, 3)
    write_image(tmp_path / "b.png", img.with_pixels(img.pixels * 0.5))
    back = iio.imread(tmp_path / "b.png")
    np.testing.assert_array_equal(back[:, :, 3], data[:, :, 3])


def test_palette_image_reads_as_colour(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:8] = (255, 0, 0)
    rgb[8:] = (0, 0, 255)
    PILImage.fromarray(rgb).convert("P", palette=PILImage.ADAPTIVE, colors=4).save(tmp_path / "p.png")
    img = read_image(tmp_path / "p.png")
    assert img.pixels.shape == (16, 16, 3)
    np.testing.assert_allclose(img.pixels[0, 0], [1, 0, 0])


def test_jpeg_and_bmp_read(tmp_path):
    data = np.full((24, 24, 3), 128, np.uint8)
    for ext in (".jpg", ".bmp"):
        iio.imwrite(tmp_path / f"x{ext}", data)
        assert read_image(tmp_path / f"x{ext}").pixels.shape == (24, 24, 3)


def test_unreadable_and_missing_files_raise_clear_errors(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(ImageError, match="cannot read"):
        read_image(bad)
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "missing.png")


def test_failed_write_leaves_nothing_behind(tmp_path):
    img = read_image_from_array(np.zeros((8, 8, 3), np.uint8), tmp_path)
    with pytest.raises(ImageError, match="unknown image type"):
        write_image(tmp_path / "out.unknownext", img)
    (tmp_path / "out.png").mkdir()  # the final rename onto a folder fails mid-write
    with pytest.raises(ImageError, match="cannot write"):
        write_image(tmp_path / "out.png", img)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "src.png"]


def read_image_from_array(data, folder):
    iio.imwrite(folder / "src.png", data)
    return read_image(folder / "src.png")


@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (5, 9)])
def test_pad_and_crop_round_trip(shape):
    x = np.random.default_rng(0).random((*shape, 3)).astype(np.float32)
    padded, size = pad_to_multiple(x, 8)
    assert padded.shape[0] % 8 == 0 and padded.shape[1] % 8 == 0
    np.testing.assert_array_equal(crop_to(padded, size), x)


def test_16bit_colour_png_keeps_full_precision(tmp_path):
    import png

    data = (np.arange(10 * 12 * 3, dtype=np.uint16) * 181).reshape(10, 12, 3)
    with open(tmp_path / "deep.png", "wb") as f:
        png.Writer(12, 10, bitdepth=16, greyscale=False).write(f, data.reshape(10, 36))
    img = read_image(tmp_path / "deep.png")
    assert img.dtype == np.uint16
    np.testing.assert_allclose(img.pixels * 65535, data, atol=1e-2)
