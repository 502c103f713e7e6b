"""Issue 18, writing: output formats that cannot hold the image, file modes, atomic and durable writes."""

import itertools
import os
import stat

import numpy as np
import pytest

import dipcli.io as dio
import dipcli.io.write as dio_write
from dipcli.io import (
    ImageError,
    atomic_write,
    from_array,
    output_plan,
    read_image,
    to_array,
    write_image,
    write_text_atomic,
)

# --- 6. every input kind into every output format -----------------------------------------------

KINDS = {1: "grey", 2: "grey+alpha", 3: "RGB", 4: "RGBA"}
LOSSY = (".jpg", ".bmp")


def smooth(dtype, channels: int) -> np.ndarray:
    """Gradients, which JPEG keeps within a few levels; a ramp of alpha when there is one."""
    y, x = np.mgrid[0:24, 0:32] / np.array([23.0, 31.0])[:, None, None]
    planes = [x, y, (x + y) / 2, 1 - x][:channels]
    return np.round(np.stack(planes, axis=2) * np.iinfo(dtype).max).astype(dtype)


@pytest.mark.parametrize(("dtype", "channels", "ext"),
                         list(itertools.product([np.uint8, np.uint16], KINDS, [".png", ".tif", *LOSSY])))
def test_every_kind_writes_to_every_format_as_planned(tmp_path, dtype, channels, ext):
    data = smooth(dtype, channels)
    image = from_array(data)
    deep, alpha = dtype == np.uint16, channels in (2, 4)

    note = output_plan(image, ext)
    if ext in LOSSY and (deep or alpha):
        assert note is not None and "\n" not in note
        assert ("16-bit" in note) == deep and ("alpha" in note) == alpha
        assert ".png or .tif" in note
    else:
        assert note is None

    write_image(tmp_path / f"out{ext}", image)
    back = read_image(tmp_path / f"out{ext}")
    colours = 1 if channels in (1, 2) else 3
    assert back.pixels.shape == (24, 32, colours) and back.grey == (colours == 1)
    assert back.dtype == (np.uint8 if ext in LOSSY else dtype)
    assert (back.alpha is not None) == (alpha and ext not in LOSSY)

    got = to_array(back).astype(int)
    if ext in LOSSY:  # 8 bits, rounded from the image, alpha left out
        want = np.round(data[..., :colours].astype(float) / (257 if deep else 1)).astype(int)
        want = want[..., 0] if colours == 1 else want
        np.testing.assert_allclose(got, want, atol=10 if ext == ".jpg" else 0)
    else:
        np.testing.assert_array_equal(got, data[..., 0] if channels == 1 else data)


def test_output_plan_refuses_what_cannot_be_written_before_any_fit():
    image = from_array(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ImageError, match=r"^output: unknown image type \.gif; use one of \.png, "):
        output_plan(image, ".gif")
    with pytest.raises(ImageError, match=r"unknown image type \(none\)"):
        output_plan(image, "")
    assert output_plan(image, ".JPG") is None  # suffixes are case-blind, as in write_image
    floating = dio.Image(pixels=image.pixels, dtype=np.dtype(np.float32))  # issue 33: a float TIFF's
    assert output_plan(floating, ".tif") is None
    assert output_plan(floating, ".png") == (".png output: float32 pixels will be stored as 16-bit integers "
                                             "(PNG cannot hold them); use .tif to keep them")
    with pytest.raises(ImageError, match="unsupported pixel type int32"):
        output_plan(dio.Image(pixels=image.pixels, dtype=np.dtype(np.int32)), ".png")


# --- 5. file modes -------------------------------------------------------------------------------


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring the old one after it."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_to(mask: int) -> None:
        os.umask(mask)

    yield set_to
    os.umask(saved)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_outputs_get_the_mode_the_umask_gives(tmp_path, umask):
    image = from_array(np.zeros((4, 4, 3), np.uint8))
    umask(0o022)
    write_image(tmp_path / "a.png", image)
    write_text_atomic(tmp_path / "a.html", "<p>report</p>")
    assert mode(tmp_path / "a.png") == 0o644 and mode(tmp_path / "a.html") == 0o644
    umask(0o077)
    write_image(tmp_path / "b.jpg", image)
    assert mode(tmp_path / "b.jpg") == 0o600


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_overwriting_keeps_the_old_files_mode(tmp_path, umask):
    umask(0o022)
    (tmp_path / "a.txt").write_text("old")
    os.chmod(tmp_path / "a.txt", 0o640)
    write_text_atomic(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "new" and mode(tmp_path / "a.txt") == 0o640


# --- 5. atomic and durable ------------------------------------------------------------------------


def test_data_is_synced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        what = "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else f"file of {os.fstat(fd).st_size} bytes"
        events.append(f"fsync {what}")
        real_fsync(fd)

    def replace(src, dst):
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(dio_write.os, "fsync", fsync)
    monkeypatch.setattr(dio_write.os, "replace", replace)
    write_text_atomic(tmp_path / "r.txt", "12345")
    assert events == ["fsync file of 5 bytes", "replace", "fsync folder"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_write(target) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".report.") and tmp.suffix == ".html"
            tmp.write_text("half of the ne")
            raise RuntimeError("disk on fire")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_a_failed_image_write_leaves_no_temporary(tmp_path, monkeypatch):
    (tmp_path / "out.png").write_bytes(b"old")

    def broken_encode(path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError("No space left on device")

    monkeypatch.setattr(dio_write, "encode", broken_encode)
    with pytest.raises(ImageError) as exc:
        write_image(tmp_path / "out.png", from_array(np.zeros((4, 4, 3), np.uint8)))
    assert "cannot write (OSError: No space left on device)" in str(exc.value)
    assert "\n" not in str(exc.value)
    assert (tmp_path / "out.png").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_a_clear_error_and_leaves_nothing(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ImageError, match="cannot write .*Permission"):
            write_image(folder / "out.png", from_array(np.zeros((4, 4, 3), np.uint8)))
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_write_text_atomic_writes_utf8(tmp_path):
    write_text_atomic(tmp_path / "r.html", "λ = 0.5 → 28 dB\n")
    assert (tmp_path / "r.html").read_bytes() == "λ = 0.5 → 28 dB\n".encode()
