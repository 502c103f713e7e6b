"""The Python API: every task as a function, numpy (or a path) in, the same dtype and layout out."""

import re
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

import dipcli
from dipcli import Fail, denoise, inpaint, select_width, superres, two_stage

FAST = dict(iters=20, arch="compact", width=8, precision="fp32")
README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def noisy(smooth):
    rng = np.random.default_rng(0)
    clean = smooth(32, 40)
    return clean, np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1)


def test_denoise_array_in_array_out_same_dtype_and_layout(noisy):
    clean, y = noisy
    for data in ((y * 255).round().astype(np.uint8), (y * 65535).round().astype(np.uint16),
                 y.astype(np.float32), (y[:, :, 0] * 255).round().astype(np.uint8), y[:, :, :1]):
        out = denoise(data, sigma=25, **FAST)
        assert out.image.dtype == data.dtype and out.image.shape == data.shape
    result = denoise(y, sigma=25, clean=clean, **FAST)
    assert result.iterations == 20 and result.psnr is not None and result.ssim is not None
    assert result.settings["sigma"] == 25 and result.settings["arch"] == "compact"
    assert result.history and {"iteration", "loss", "psnr_ema"} <= set(result.history[-1])
    assert result.seconds > 0 and result.stop_reason in ("budget", "discrepancy")


def test_denoise_keeps_alpha_and_estimates_sigma(noisy):
    _, y = noisy
    rgba = np.concatenate([(y * 255).round(), np.full(y.shape[:2] + (1,), 77.0)], axis=2).astype(np.uint8)
    out = denoise(rgba, **FAST)
    assert out.image.shape == rgba.shape and (out.image[:, :, 3] == 77).all()
    assert out.settings["sigma"] > 5 and any("estimated noise" in n for n in out.notes)


def test_progress_callback_sees_every_check(noisy):
    seen = []
    denoise(noisy[1], sigma=25, progress=lambda e: seen.append(e.iteration), **FAST)
    assert seen == [10, 20]


def test_every_task_runs_from_python(noisy, tmp_path):
    clean, y = noisy
    img = (clean * 255).round().astype(np.uint8)
    assert two_stage(y, sigma=25, **FAST).image.shape == y.shape
    known = np.ones(y.shape[:2], bool)
    known[8:16, 10:30] = False
    filled = inpaint(img, known, **FAST)
    np.testing.assert_array_equal(filled.image[known], img[known])  # known pixels kept exactly
    assert 0.05 < filled.settings["missing_fraction"] < 0.2
    big = superres(img, factor=2, **FAST)
    assert big.image.shape == (64, 80, 3) and big.image.dtype == np.uint8
    iio.imwrite(tmp_path / "img.png", img)
    assert superres(tmp_path / "img.png", 2, **FAST).image.shape == (64, 80, 3)  # a path works too
    score = select_width(y, sigma=25)
    assert score.width in (64, 128)


def test_bad_input_raises_one_line_fail(noisy):
    with pytest.raises(Fail, match="0–255 scale") as exc:
        denoise(noisy[1], sigma=300)
    assert exc.value.code == 2 and "\n" not in str(exc.value)
    with pytest.raises(Fail, match="within \\[0, 1\\]"):
        denoise(noisy[1] * 3, sigma=25)
    with pytest.raises(Fail, match="no such file"):
        denoise("nowhere.png", sigma=25)
    with pytest.raises(Fail, match="shape"):
        denoise(np.zeros((4, 4, 4, 4)), sigma=25)


def test_api_is_importable_lazily():
    assert set(dipcli.__all__) >= {"denoise", "two_stage", "inpaint", "superres", "select_width", "Result"}
    with pytest.raises(AttributeError):
        dipcli.nothing_here  # noqa: B018


def test_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    """The README's "From Python" example, run verbatim from the repository root."""
    text = README.read_text()
    section = text[text.index("## From Python"):]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(README.parent)
    monkeypatch.setattr("sys.argv", ["readme"])
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    assert namespace["result"].image.dtype == np.uint8


def test_presets_and_ensembles(noisy):
    """A preset is one fit or several averaged; --arch picks one net instead; unknown names fail."""
    from dipcli.api import presets
    from dipcli.api.presets import PRESETS, Preset, Recipe
    from dipcli.api.spec import Options, make_spec

    clean, y = noisy
    own = Recipe("compact", width=8, iters=20, input="observation", jitter=0.0, ema_warmup=9.0)
    lean = Recipe("lean", width=8, iters=20, seed_offset=1)
    PRESETS["two"] = Preset("test: two small fits averaged", (own, lean))
    try:
        result = denoise(y, sigma=25, clean=clean, preset="two", precision="fp32")
        assert result.settings["preset"] == "two" and result.settings["fits"] == 2
        assert result.iterations == 40 and result.image.shape == y.shape
        one = denoise(y, sigma=25, clean=clean, preset="two", arch="compact", width=8, precision="fp32")
        assert one.settings["arch"] == "compact"  # --arch applies to every fit of the preset
        plain = denoise(y, sigma=25, arch="compact", width=8, iters=20, precision="fp32")
        assert "preset" not in plain.settings  # a net named without a preset: that net alone
        assert make_spec("denoise", Options(device="cpu")).preset == presets.CPU_PRESET
    finally:
        del PRESETS["two"]
    with pytest.raises(Fail, match="unknown --preset"):
        denoise(y, sigma=25, preset="nonesuch")
    with pytest.raises(Fail, match="--preset is for denoise"):
        make_spec("two-stage", Options(preset="best"))


def test_inpaint_presets(noisy):
    """Inpainting's presets: the default preset's fits are the paper's hourglass; `best` fits two
    seeds and averages them, keeping the known pixels; --arch picks one net; unknown names fail."""
    from dipcli.api import presets
    from dipcli.api.spec import Options, make_spec

    clean, _ = noisy
    img = (clean * 255).round().astype(np.uint8)
    known = np.ones(img.shape[:2], bool)
    known[8:24, 12:28] = False
    spec = make_spec("inpaint", Options(device="cpu"), drop=0.5)
    assert spec.preset == presets.INPAINT_PRESET
    nets = {(fit.net.arch, fit.net.width, fit.net.upsample) for fit in spec.fits}
    assert nets == {("original", 32, "nearest")}
    fit = dict(clean=img, iters=20, precision="fp32", width=8)
    two = inpaint(img, known, preset="best", **fit)
    one, other = inpaint(img, known, preset="fast", **fit), inpaint(img, known, preset="fast", seed=1, **fit)
    assert two.settings["preset"] == "best" and two.settings["fits"] == 2 and two.iterations == 40
    assert one.settings["fits"] == 1 and one.iterations == 20
    np.testing.assert_array_equal(two.image[known], img[known])
    # `best` is the fit from --seed and the one from --seed + 1, averaged (as the benchmark scores it)
    mean = (one.image.astype(float) + other.image) / 2
    assert not np.array_equal(one.image, other.image) and np.abs(two.image - mean).max() <= 1
    plain = inpaint(img, known, arch="compact", width=8, iters=10, precision="fp32")
    assert "preset" not in plain.settings
    with pytest.raises(Fail, match="unknown --preset 'balanced'; choose one of: fast, best"):
        inpaint(img, known, preset="balanced")


def test_best_preset_averages_two_recorrupted_fits_of_the_observation_and_denoises(noisy):
    """The presets' loop: the noisy image as input, Recorrupted-to-Recorrupted as the loss, the
    whole budget; fast is balanced's fit with a shorter budget, best is balanced's fit and one from
    the next seed, averaged (the result says it ran both)."""
    from dipcli.api.presets import PRESETS

    fast, balanced, best = (PRESETS[name].recipes for name in ("fast", "balanced", "best"))
    assert all(r.recorrupt and r.input == "observation" for r in (*fast, *balanced, *best))
    assert len(fast) == len(balanced) == 1 and fast[0] == replace(balanced[0], iters=fast[0].iters)
    assert fast[0].iters < balanced[0].iters
    assert best == (balanced[0], replace(balanced[0], seed_offset=1))
    clean, y = noisy
    result = denoise(y, sigma=25, clean=clean, preset="best", iters=60, precision="fp32")
    from skimage.metrics import peak_signal_noise_ratio

    noisy_psnr = peak_signal_noise_ratio(clean, y.astype(np.float64), data_range=1.0)
    assert result.psnr > noisy_psnr + 3 and result.settings["preset"] == "best"
    assert result.iterations == 2 * 60
    three = denoise(y, sigma=25, preset="best", fits=3, iters=10, precision="fp32")
    assert three.iterations == 3 * 10 and three.settings["fits"] == 3
