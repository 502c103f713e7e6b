"""`dip inpaint` and `dip superres` end to end on tiny images."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from dipcli.cli.app import app

runner = CliRunner()
FAST = ["--iters", "20", "--width", "8", "--quiet"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def scene(tmp_path, smooth):
    img = (smooth(30, 37) * 255).round().astype(np.uint8)
    iio.imwrite(tmp_path / "img.png", img)
    mask = np.full((30, 37), 255, np.uint8)  # white = known
    mask[10:18, 12:25] = 0
    iio.imwrite(tmp_path / "mask.png", mask)
    return tmp_path


def test_inpaint_keeps_known_pixels_exactly(scene):
    res = invoke("inpaint", scene / "img.png", "--mask", scene / "mask.png", "--arch", "compact", *FAST)
    assert res.exit_code == 0, res.output
    out = iio.imread(scene / "img_inpainted.png")
    src = iio.imread(scene / "img.png")
    known = iio.imread(scene / "mask.png") > 127
    assert out.shape == src.shape
    np.testing.assert_array_equal(out[known], src[known])


def test_inpaint_mask_polarity_is_detected_and_reported(scene):
    inverted = 255 - iio.imread(scene / "mask.png")  # holes white, as editors paint them
    iio.imwrite(scene / "inv.png", inverted)
    res = invoke("inpaint", scene / "img.png", "--mask", scene / "inv.png", "--arch", "compact",
                 "--iters", "20", "--width", "8", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["mask_known"] == "black"


def test_inpaint_no_composite_writes_network_output(scene):
    res = invoke("inpaint", scene / "img.png", "--mask", scene / "mask.png", "--arch", "compact",
                 "--no-composite", "-o", scene / "raw.png", *FAST)
    assert res.exit_code == 0, res.output
    out, src = iio.imread(scene / "raw.png"), iio.imread(scene / "img.png")
    known = iio.imread(scene / "mask.png") > 127
    assert not np.array_equal(out[known], src[known])


def test_inpaint_drop_experiment_reports_hole_psnr(scene):
    res = invoke("inpaint", scene / "img.png", "--drop", "0.5", "--arch", "compact",
                 "--iters", "20", "--width", "8", "--json")
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)
    assert rec["psnr_holes"] < rec["psnr"] and abs(rec["missing_fraction"] - 0.5) < 0.1


@pytest.mark.parametrize("make, words", [
    (lambda d: iio.imwrite(d / "m.png", np.full((10, 10), 255, np.uint8)), "same size"),
    (lambda d: iio.imwrite(d / "m.png", np.full((30, 37), 255, np.uint8)), "nothing to inpaint"),
    (lambda d: iio.imwrite(d / "m.png", np.zeros((30, 37), np.uint8)), "missing"),
    (lambda d: (d / "m.png").write_bytes(b"junk"), "cannot read"),
    (lambda d: iio.imwrite(d / "m.png", np.tile([[0, 255]], (30, 19))[:, :37].astype(np.uint8)),
     "--mask-known"),
])
def test_inpaint_mask_errors(scene, make, words):
    make(scene)
    before = set(scene.iterdir())
    res = invoke("inpaint", scene / "img.png", "--mask", scene / "m.png", *FAST)
    assert res.exit_code in (1, 2) and words in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert set(scene.iterdir()) == before


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_superres_output_is_exactly_factor_times_input(tmp_path, smooth, factor):
    lr = (smooth(13, 17) * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "lr.png", lr)
    res = invoke("superres", tmp_path / "lr.png", "--factor", factor, *FAST)
    assert res.exit_code == 0, res.output
    out = iio.imread(tmp_path / f"lr_x{factor}.png")
    assert out.shape == (13 * factor, 17 * factor, 3) and out.dtype == np.uint8


def test_superres_make_lr_reports_ours_and_bicubic(tmp_path, smooth):
    hr = (smooth(48, 40) * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "hr.png", hr)
    res = invoke("superres", tmp_path / "hr.png", "--factor", 2, "--make-lr", "--json",
                 "--iters", "20", "--width", "8")
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)
    assert {"psnr_y", "psnr_rgb", "psnr_bicubic_y", "psnr_bicubic_rgb"} <= rec.keys()
    assert iio.imread(tmp_path / "hr_x2.png").shape == (48, 40, 3)


@pytest.mark.parametrize("args, words", [(["--factor", "5"], "2, 3, 4, 8"),
                                         (["--kernel", "sinc"], "lanczos2")])
def test_superres_errors(tmp_path, smooth, args, words):
    iio.imwrite(tmp_path / "lr.png", (smooth(16, 16) * 255).astype(np.uint8))
    res = invoke("superres", tmp_path / "lr.png", *args, *FAST)
    assert res.exit_code == 2 and words in res.output


def test_stop_option_is_validated(tmp_path, smooth):
    iio.imwrite(tmp_path / "n.png", (smooth(16, 16) * 255).astype(np.uint8))
    res = invoke("denoise", tmp_path / "n.png", "--sigma", 25, "--stop", "soon", *FAST)
    assert res.exit_code == 2 and "wmv" in res.output


@pytest.mark.parametrize("opts, net", [([], ("original", 32, "nearest")),
                                       (["--arch", "original"], ("original", 128, "nearest")),
                                       (["--width", "16"], ("original", 16, "nearest"))])
def test_inpaint_default_net_is_the_hourglass_at_width_32(scene, opts, net):
    res = invoke("inpaint", scene / "img.png", "--mask", scene / "mask.png", "--iters", "1",
                 "--json", *opts)
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout)
    assert (record["arch"], record["width"], record["upsample"]) == net
