"""The camera noise model in the fit (issue 32): its draws, `--noise auto|gaussian|camera`, the readout.

Tiny images and tens of iterations; the readout itself (curve, correlation) is tests/test_camera_noise.py.
"""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from scipy import ndimage
from test_camera_noise import A, B, assert_curve_close, noisy, scene
from typer.testing import CliRunner

import dipcli
from dipcli.api.inputs import TaskInput
from dipcli.api.plan import make_plan
from dipcli.api.spec import Options, make_spec
from dipcli.cli.app import app
from dipcli.io import Image
from dipcli.optim import FitConfig, fit
from dipcli.optim.parts import Input
from dipcli.physics import Denoise, GaussianNoise
from dipcli.physics.camera import noise_correlation, read_noise
from dipcli.physics.noise import estimate_noise
from dipcli.physics.noise_models import CameraNoise, camera_like, level_checked, read_camera_noise
from dipcli.tensors import jitter, to_nchw

BOX = np.ones((3, 3))  # white noise through it: correlated over 3 px
FAST = ["--iters", "20", "--width", "8", "--json"]


def correlated(seed: int = 0, channels: int = 3) -> np.ndarray:
    return noisy(scene(channels=channels), seed=seed, kernel=BOX)


def as_read(pixels: np.ndarray) -> CameraNoise:
    """The model with its level as the block readout gives it, before the cross-check."""
    curve, correlation = read_noise(pixels)
    return CameraNoise(curve, correlation, float(np.sqrt(np.mean(curve.variance(pixels)))))


def test_the_finest_scale_pulls_a_level_that_texture_inflated_towards_the_truth():
    clean = scene()
    texture = ndimage.gaussian_filter(np.random.default_rng(3).standard_normal(clean.shape[:2]), 1.0)
    clean = np.clip(clean + 0.1 * (texture / texture.std())[:, :, None], 0, 1)
    pixels = noisy(clean, seed=1, kernel=BOX)
    true = np.sqrt(np.mean(A * clean + B))
    read, model = as_read(pixels), read_camera_noise(pixels)
    assert read.sigma > 1.5 * true  # the blocks take texture for noise
    assert abs(model.sigma / true - 1) < 0.6 * abs(read.sigma / true - 1)
    np.testing.assert_array_equal(model.correlation.kernels, read.correlation.kernels)  # the shape stays
    levels = np.array([[0.1], [0.5], [0.9]])
    np.testing.assert_allclose(model.curve.sigma(levels), read.curve.sigma(levels) * model.sigma / read.sigma,
                               rtol=1e-6)
    assert read_camera_noise(pixels).curve == model.curve  # seeded: the same photo reads the same
    assert_curve_close(read_camera_noise(noisy(scene())).curve)  # a known curve is still found within 15 %


def test_a_model_without_a_measured_curve_keeps_its_level():
    tiny = noisy(scene(size=6))
    read = as_read(tiny)
    assert not read.curve.measured and level_checked(read, tiny) is read


def test_the_model_draws_its_curve_and_correlation_in_torch():
    model = read_camera_noise(correlated())
    flat = torch.full((1, 3, 128, 128), 0.6)
    drawn = model.sample(flat, torch.Generator().manual_seed(0))
    assert drawn.shape == flat.shape and drawn.dtype == torch.float32
    np.testing.assert_allclose(drawn.std(dim=(0, 2, 3)).numpy(), model.curve.sigma(0.6), rtol=0.06)
    again = noise_correlation(0.6 + drawn[0].permute(1, 2, 0).numpy(), model.curve)
    assert abs(again.width - model.correlation.width) < 0.15 * model.correlation.width
    same = model.sample(flat, torch.Generator().manual_seed(0))
    assert torch.equal(drawn, same)  # seeded
    ramp = torch.linspace(0.1, 0.9, 64).expand(1, 3, 256, 64)  # σ follows the brightness
    by_level = model.sample(ramp, torch.Generator().manual_seed(1)).std(dim=2)[0].numpy()
    want = model.curve.sigma(ramp[0, 0, 0].numpy()[:, None]).T
    np.testing.assert_allclose(by_level[:, ::8].mean(axis=1), want[:, ::8].mean(axis=1), rtol=0.1)


def test_auto_takes_the_camera_model_for_a_photos_noise_and_white_noise_for_white():
    white = np.clip(scene() + np.random.default_rng(6).normal(0, 25 / 255, (96, 96, 3)), 0, 1)
    for pixels, camera in ((correlated(), True),  # correlated (and signal-dependent)
                           (noisy(scene(), seed=5), True),  # white but signal-dependent: shot noise
                           (white, False)):  # white of one σ
        model = read_camera_noise(pixels)
        assert camera_like(model, estimate_noise(pixels)) == camera, model.curve.summary(model.correlation)


def plan(pixels: np.ndarray, **given):
    options = Options(device="cpu", tile=given.pop("tile", Options().tile))
    spec = make_spec("denoise", options, **given)
    return make_plan(spec, TaskInput(Image(pixels.astype(np.float32), np.dtype(np.uint8))))


def test_the_plan_reads_the_model_once_and_the_tiles_share_it():
    from dipcli.api.spec import tile_count

    p = plan(correlated(), tile=tile_count(48))
    model = p.problem.camera
    assert p.tile == 48 and model is not None and p.problem.noise is model
    assert p.problem.window(slice(0, 48), slice(40, 88)).noise is model
    assert p.extra["noise_model"] == "camera" and p.config.recorrupt
    assert p.config.reg_noise == pytest.approx(model.sigma)  # α = 1: e is one draw of the noise
    assert "camera noise model" in p.notes[0] and "correlated over ~3 px" in p.notes[0]
    white = plan(correlated(), noise="gaussian")
    assert white.problem.camera is None and white.extra["noise_model"] == "gaussian"
    given = plan(correlated(), sigma=20)  # auto with a σ: white noise of that σ, as always
    assert given.problem.camera is None and given.extra["noise_sigma_range"] == [20, 20]


def test_correlated_noise_gets_the_budget_of_its_level_times_its_width_and_white_keeps_its_own():
    from dipcli.api.presets import PRESETS, R2R, budget, members

    model = read_camera_noise(correlated())
    level, is_correlated = model.budget_level
    assert is_correlated and level == pytest.approx(model.sigma * model.correlation.width)
    assert GaussianNoise(0.1).budget_level == (0.1, False)
    # Up to a level of 50 (0–255) correlated noise follows the white law at σ·w; past it, a
    # steeper one (220 iterations at 80 against the white law's 625), never under MIN_ITERS.
    assert budget(R2R, 40 / 255, True) == budget(R2R, 40 / 255) == 1250
    assert budget(R2R, 80 / 255, True) == 220 < budget(R2R, 80 / 255) == 625
    assert budget(R2R, 200 / 255, True) == 150
    # balanced fills its time with more short fits, at most --fits' limit of them.
    fits = members(PRESETS["balanced"], 80 / 255, True)
    assert len(fits) == 10 and [r.seed_offset for r in fits] == list(range(10))
    assert len(members(PRESETS["best"], 200 / 255, True)) == 16
    # fast (the CPU default) keeps its time: three fits of 220 in its 800 iterations.
    assert [budget(r, 80 / 255, True) for r in members(PRESETS["fast"], 80 / 255, True)] == [220] * 3
    p = plan(correlated())
    assert p.config.iters == budget(PRESETS["fast"].recipes[0], *model.budget_level)  # the CPU default


def test_a_recorrupted_fit_with_the_camera_model_lowers_the_loss_and_removes_the_noise():
    pixels = correlated(channels=1)[:64, :64].astype(np.float32)
    clean = scene(channels=1)[:64, :64]
    model = read_camera_noise(pixels)
    net = dipcli.build_net(dipcli.NetSpec("compact", width=8, input_depth=1), 1, seed=0)
    config = FitConfig(iters=100, input="observation", recorrupt=True, reg_noise=model.sigma, ema_warmup=9.0)
    result = fit(Denoise(model.sigma, True, model), net, pixels, config)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.6 * losses[0]
    # It learnt to denoise, not to copy: half the noise's error or less (0.024 against 0.060; the
    # same fit without recorruption copies its input and stays at 0.044).
    assert np.std(result.ema - clean) < 0.5 * np.std(pixels - clean)


def test_the_shake_is_a_draw_of_the_noise_model_and_white_jitter_is_unchanged():
    y = to_nchw(correlated()[:32, :32], channels_last=True)
    model = read_camera_noise(correlated())
    config = FitConfig(input="observation", recorrupt=True, reg_noise=0.5 * model.sigma)
    torch.manual_seed(0)
    _, shake = Input(config, torch.nn.Identity(), [y], (32, 32), 3, torch.Generator(), torch.device("cpu"),
                     [model]).draw()
    torch.manual_seed(0)
    want = 0.5 * model.sample(y)
    assert torch.equal(shake, want)  # α = reg_noise / σ
    white = FitConfig(input="observation", recorrupt=True, reg_noise=0.1)
    torch.manual_seed(0)
    inp, shake = Input(white, torch.nn.Identity(), [y], (32, 32), 3, torch.Generator(), torch.device("cpu"),
                       [GaussianNoise(0.1)]).draw()
    torch.manual_seed(0)
    assert torch.equal(shake, 0.1 * jitter(y[:1])) and torch.equal(inp, y + shake)


runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_noise_camera_on_a_grey_photo_and_a_16_bit_png_end_to_end(tmp_path, dtype):
    top = np.iinfo(dtype).max
    path = tmp_path / f"grey{top}.png"
    iio.imwrite(path, np.round(correlated(seed=4, channels=1)[:, :, 0] * top).astype(dtype))
    res = invoke("denoise", path, "--noise", "camera", *FAST, "-o", tmp_path / "out.png")
    assert res.exit_code == 0, res.output
    out = iio.imread(tmp_path / "out.png")
    assert out.dtype == dtype and out.shape == (96, 96)
    record = json.loads(res.stdout)
    assert record["noise_model"] == "camera" and record["noise"].startswith("noise σ ")
    dark, bright = record["noise_sigma_range"]
    truth = np.sqrt(A * np.array([0.1, 0.9]) + B) * 255
    assert 3 < dark < bright < 40 and bright > 1.5 * dark and truth[1] > truth[0]
    assert 2 < record["noise_correlation_px"] < 4 and record["sigma"] > 5


def test_the_json_and_the_result_carry_the_readout_of_white_noise_too(tmp_path):
    path = tmp_path / "rgb.png"
    iio.imwrite(path, np.round(correlated()[:40, :40] * 255).astype(np.uint8))
    res = invoke("denoise", path, "--sigma", 12, *FAST, "-o", tmp_path / "out.png")
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout)
    assert record["noise_model"] == "gaussian" and record["noise_sigma_range"] == [12, 12]
    assert record["noise_correlation_px"] is None and record["noise"] == "noise σ 12, white Gaussian (given)"
    result = dipcli.denoise(correlated(), noise="camera", iters=5, width=8)
    assert result.settings["noise_model"] == "camera" and "correlated" in result.settings["noise"]
    assert "noise_sigma_range" in result.settings and result.notes[0].startswith("noise σ")


@pytest.mark.parametrize("args, says", [
    (["--sigma", "25", "--noise", "camera", "--add-noise"], "--add-noise adds white Gaussian noise of"),
    (["--noise", "poisson"], "unknown --noise 'poisson'; choose one of: auto, gaussian, camera"),
])
def test_noise_options_that_cannot_work_exit_2_with_one_line(tmp_path, args, says):
    path = tmp_path / "rgb.png"
    iio.imwrite(path, np.zeros((16, 16, 3), np.uint8))
    res = invoke("denoise", path, *args, "-o", tmp_path / "out.png")
    assert res.exit_code == 2
    assert len(res.stderr.strip().splitlines()) == 1 and says in res.stderr
    assert not (tmp_path / "out.png").exists()
    with pytest.raises(dipcli.Fail, match="use it with --noise gaussian or auto"):
        dipcli.denoise(np.zeros((16, 16)), sigma=25, noise="camera", add_noise=True)


def test_sigma_with_the_camera_model_sets_its_level_and_keeps_its_shape_and_correlation(tmp_path):
    pixels = np.round(correlated() * 255) / 255  # as the photo saved below holds them
    read = read_camera_noise(pixels)
    half = read.at_level(read.sigma / 2)
    assert np.sqrt(np.mean(half.curve.variance(pixels))) == pytest.approx(read.sigma / 2, rel=1e-5)
    levels = np.array([[0.1], [0.5], [0.9]])
    np.testing.assert_allclose(half.curve.sigma(levels), read.curve.sigma(levels) / 2, rtol=1e-6)
    assert half.correlation is read.correlation
    assert half.budget_level[0] == pytest.approx(read.budget_level[0] / 2)
    path = tmp_path / "photo.png"
    iio.imwrite(path, np.round(pixels * 255).astype(np.uint8))
    level = round(read.sigma * 255 / 2, 2)
    res = invoke("denoise", path, "--noise", "camera", "--sigma", level, *FAST, "-o", tmp_path / "out.png")
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout)
    full = invoke("denoise", path, "--noise", "camera", *FAST, "-o", tmp_path / "full.png")
    assert record["noise_model"] == "camera"
    np.testing.assert_allclose(record["noise_sigma_range"],
                               np.array(json.loads(full.stdout)["noise_sigma_range"]) / 2, rtol=0.005)
    assert record["noise_correlation_px"] == json.loads(full.stdout)["noise_correlation_px"]
    result = dipcli.denoise(pixels, level, noise="camera", iters=5, width=8)
    assert result.notes[0].endswith(f"RMS σ {read.sigma * 255:.3g}) at the RMS σ given")
    with pytest.raises(ValueError, match="positive noise level"):
        read.at_level(0.0)


def test_the_html_report_draws_the_noise_curve_read(tmp_path):
    path = tmp_path / "photo.png"
    iio.imwrite(path, np.round(correlated() * 255).astype(np.uint8))
    res = invoke("denoise", path, "--noise", "camera", *FAST, "-o", tmp_path / "out.png",
                 "--html", tmp_path / "report.html")
    assert res.exit_code == 0, res.output
    curve = json.loads(res.stdout)["noise_curve"]
    assert len(curve["brightness"]) == 9 and len(curve["sigma"]) == 3 and len(curve["sigma"][0]) == 9
    page = (tmp_path / "report.html").read_text()
    assert "Noise read from the image" in page and "aria-label='noise level against brightness'" in page
    assert page.count("class='noise ") == 3 and "correlated over" in page
