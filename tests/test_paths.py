"""Issue 33, items 15–18: odd paths, stdin and stdout, and outputs that collide.

Each refusal is one `dip: error:` line with its exit code, made before any fit, and leaves the
folder as it was; what works (a filter from stdin to stdout, {parent} in a name) is checked on
the bytes it writes.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageCms
from typer.testing import CliRunner

from dipcli.cli.app import app

FAST = ["--iters", "5", "--arch", "compact", "--width", "8", "--precision", "fp32", "--sigma", "25",
        "--stop", "fixed", "-q"]
WAIT = 300  # seconds: the most a `dip` process may take here, on a busy machine


def invoke(*args, input: bytes | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def one_error(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("dip: error: "), text
    assert "Traceback" not in text and "Exception ignored" not in text
    return lines[0].removeprefix("dip: error: ")


def noisy(h: int = 24, w: int = 24) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 60 * np.sin(xx / 4 + c) + 40 * np.cos(yy / 5) for c in range(3)], axis=2)
    return np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)


def dip(*args: str, cwd: Path, stdin=None, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "dipcli", *args], cwd=cwd, stdin=stdin, stdout=stdout,
                          stderr=subprocess.PIPE, env=env, timeout=WAIT)


# ---- 15, 16: inputs and outputs that cannot be -----------------------------------------------------

@pytest.mark.parametrize(("arg", "code", "says"), [
    ("imgnoext", 2, "imgnoext_denoised.: unknown image type (none); name the output with one of .png, "),
    ("nosuch", 2, "nosuch: no such file; check the input path"),
    ("-", 1, "-: nothing on stdin; pipe an image in"),
])
def test_15_a_refused_input_leaves_nothing_behind(tmp_path, monkeypatch, arg, code, says):
    monkeypatch.chdir(tmp_path)
    iio.imwrite(tmp_path / "imgnoext", noisy(), extension=".png")
    before = sorted(os.listdir(tmp_path))
    for extra in ([], ["--output-dir", "outs"]) if arg != "-" else ([],):
        res = invoke("denoise", arg, *FAST, *extra, input=b"")
        assert res.exit_code == code, res.output
        want = says.replace(f"{arg}_", f"outs/{arg}_") if extra else says
        assert one_error(res.stderr).startswith(want)
        assert sorted(os.listdir(tmp_path)) == before  # no imgnoext_denoised. folder, no outs/


def test_15_folders_are_made_when_the_first_output_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    iio.imwrite(tmp_path / "a.png", noisy())
    args = [*FAST, "--output-dir", "out/deep", "--plot", "curves/{stem}.csv"]
    res = invoke("denoise", "nosuch.png", *args)
    assert res.exit_code == 2 and sorted(os.listdir(tmp_path)) == ["a.png"]
    res = invoke("denoise", "a.png", *args)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out/deep/a_denoised.png").is_file() and (tmp_path / "curves/a.csv").is_file()


def test_16_an_output_that_is_a_folder_is_refused_before_the_fit(tmp_path):
    iio.imwrite(tmp_path / "a.png", noisy())
    (tmp_path / "odir2.png").mkdir()
    res = invoke("denoise", tmp_path / "a.png", *FAST, "--force", "-o", tmp_path / "odir2.png")
    assert res.exit_code == 2
    assert one_error(res.stderr) == (f"{tmp_path / 'odir2.png'}: is a folder, not a file; name a file in it "
                                     f"(-o {tmp_path / 'odir2.png' / 'a'}.png) or give --output-dir "
                                     f"{tmp_path / 'odir2.png'}")
    assert list((tmp_path / "odir2.png").iterdir()) == []


# ---- 17: stdin and stdout ------------------------------------------------------------------------

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_17_dip_is_a_filter_from_stdin_to_stdout(tmp_path):
    buf = io.BytesIO()
    PILImage.fromarray(noisy()).save(buf, format="PNG", icc_profile=ICC)
    res = invoke("denoise", "-", *FAST, input=buf.getvalue())  # the output of - is stdout
    assert res.exit_code == 0, res.stderr
    with PILImage.open(io.BytesIO(res.stdout_bytes)) as out:
        assert (out.format, out.size, out.info["icc_profile"]) == ("PNG", (24, 24), ICC)
    assert res.stderr == ""  # -q: nothing but the image, and that on stdout

    res = invoke("denoise", "-", *FAST[:-1], "-o", "-", "--format", "jpg", input=buf.getvalue())
    assert res.exit_code == 0, res.stderr
    assert PILImage.open(io.BytesIO(res.stdout_bytes)).format == "JPEG"
    assert "wrote stdout (5 iterations" in res.stderr


def test_17_a_tiff_on_stdin_comes_back_a_tiff_and_a_file_goes_to_stdout(tmp_path):
    buf = io.BytesIO()
    PILImage.fromarray(noisy()).save(buf, format="TIFF")
    args = [a for a in FAST if a not in ("--sigma", "25")]
    res = invoke("inpaint", "-", "--drop", "0.1", *args, input=buf.getvalue())
    assert res.exit_code == 0, res.stderr
    assert res.stdout_bytes[:4] == b"II*\x00"
    iio.imwrite(tmp_path / "a.png", noisy())
    res = invoke("denoise", tmp_path / "a.png", *FAST, "-o", "-")
    assert res.exit_code == 0 and res.stdout_bytes.startswith(b"\x89PNG"), res.stderr
    assert os.listdir(tmp_path) == ["a.png"]


@pytest.mark.parametrize(("args", "data", "code", "says"), [
    (["-", "-o", "-", "--json"], b"", 2, "-o - writes the image to stdout, where --json writes its lines"),
    (["-", "a.png"], b"", 2, "- reads one image from stdin; give it as the only input"),
    (["-", "--output-dir", "o"], b"", 2, "- (stdin) has no file name to name an output after"),
    (["a.png", "--format", "png"], b"", 2, "--format png names the type of an image written to stdout"),
    (["-", "--format", "gif"], b"", 2, "--format gif: give one of png, tif, tiff, jpg, jpeg, bmp"),
    (["-"], b"not an image at all", 1, "-: stdin holds no image dip can read"),
])
def test_17_what_cannot_work_with_stdin_or_stdout_is_one_line(tmp_path, monkeypatch, args, data, code, says):
    monkeypatch.chdir(tmp_path)
    iio.imwrite(tmp_path / "a.png", noisy())
    res = invoke("denoise", *args, *FAST, input=data)
    assert res.exit_code == code, res.output
    assert one_error(res.stderr).startswith(says)
    assert res.stdout_bytes == b"" and os.listdir(tmp_path) == ["a.png"]


def test_17_a_full_stdout_fails_in_one_line(tmp_path):
    iio.imwrite(tmp_path / "a.png", noisy())
    with open("/dev/full", "wb") as devfull:
        proc = dip("denoise", "a.png", *FAST, "-o", "-", cwd=tmp_path, stdout=devfull)
    assert proc.returncode == 1
    assert one_error(proc.stderr.decode()) == "-o -: cannot write the image to stdout (No space left on " \
                                              "device)"


# ---- 18: two inputs of one name -----------------------------------------------------------------

def test_18_two_folders_with_a_png_are_told_apart_by_parent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for folder in ("d1", "d2"):
        (tmp_path / folder).mkdir()
        iio.imwrite(tmp_path / folder / "a.png", noisy())
    res = invoke("denoise", "d1", "d2", *FAST, "--output-dir", "out")
    assert res.exit_code == 2
    assert one_error(res.stderr) == ("out/a_denoised.png: both d1/a.png and d2/a.png would write here; put "
                                     "{parent} in the name, e.g. --name '{parent}_{stem}_{task}.{ext}'")
    assert not (tmp_path / "out").exists()
    res = invoke("denoise", "d1", "d2", *FAST, "--output-dir", "out", "--name", "{parent}_{stem}_{task}."
                 "{ext}")
    assert res.exit_code == 0, res.output
    assert sorted(os.listdir(tmp_path / "out")) == ["d1_a_denoised.png", "d2_a_denoised.png"]
