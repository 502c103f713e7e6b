"""The Wiener stage with the fit as its pilot (dipcli.physics.wiener, --wiener)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, signal
from skimage.restoration import denoise_tv_chambolle

import dipcli
from dipcli.metrics import psnr
from dipcli.physics import Denoise
from dipcli.physics import wiener as wn
from dipcli.physics.noise_models import GaussianNoise, read_camera_noise


def texture(size: int = 64, seed: int = 0, channels: int = 3, blur: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random((size, size, channels)), (blur, blur, 0))
    base = (base - base.min()) / (base.max() - base.min()) * 0.8 + 0.1
    return base.astype(np.float32)


def with_noise(clean: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, clean.shape)
    return np.clip(clean + noise, 0, 1).astype(np.float32)


def test_white_noise_has_unit_variance_in_every_coefficient_and_correlated_noise_piles_up_low():
    white = np.zeros((9, 9))
    white[4, 4] = 1
    np.testing.assert_allclose(wn.dct_variances(white), 1.0, atol=1e-12)
    kernel = np.ones((2, 2)) / 2  # unit-norm: noise moving together over 2 px
    v = wn.dct_variances(signal.correlate(kernel, kernel, mode="full"))
    # the total is the patch's noise energy (trace of its covariance), whatever the correlation
    assert v.sum() == pytest.approx(wn.PATCH**2, rel=1e-6)
    assert v[0, 0] > 3 and v[-1, -1] < 0.2  # the DC carries it, the finest frequency little


def test_it_gives_back_the_detail_a_fit_missed_where_the_noise_is_faint():
    clean = texture()
    noisy = with_noise(clean, 3 / 255)
    missed = ndimage.gaussian_filter(clean, (2.0, 2.0, 0)).astype(np.float32)  # a fit short of the image
    out = wn.wiener_stage(noisy, missed, GaussianNoise(3 / 255))
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert psnr(out, clean) > psnr(missed, clean) + 5
    assert psnr(out, clean) > psnr(noisy, clean)  # and keeps noise out


def scene(size: int = 64) -> np.ndarray:
    """A brightness ramp with a flat disc: smooth areas, edges, every level."""
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.stack([0.1 + 0.8 * x * (1 - 0.1 * c) for c in range(3)], axis=2)
    img[(y - 0.3) ** 2 + (x - 0.6) ** 2 < 0.02] = 0.45
    return img.astype(np.float32)


@pytest.mark.parametrize("sigma", [10, 25, 50])
def test_it_takes_out_noise_a_denoisers_estimate_kept(sigma):
    clean = scene()
    clean[:, 40:] += 0.1 * np.sin(np.arange(64) / 1.5)[:, None, None]  # and texture
    noisy = with_noise(clean, sigma / 255)
    pilot = denoise_tv_chambolle(noisy, weight=0.1, channel_axis=2).astype(np.float32)
    out = wn.wiener_stage(noisy, pilot, GaussianNoise(sigma / 255))
    assert psnr(out, clean) > psnr(pilot, clean) + 0.5


def test_a_perfect_pilot_keeps_nearly_all_noise_out():
    clean = np.full((48, 48, 3), 0.5, np.float32)
    noisy = with_noise(clean, 25 / 255, seed=2)
    out = wn.wiener_stage(noisy, clean, GaussianNoise(25 / 255))
    assert np.abs(out - clean).mean() < 0.1 * np.abs(noisy - clean).mean()


@pytest.mark.parametrize("sigma", [10, 25, 50])
def test_each_patch_mean_is_the_pilots(sigma):
    """The DC coefficient is the pilot's, not the noisy patch's shrunk: with a perfect pilot of a
    flat image what noise is left is a small fraction of a grey level on average (the noisy
    patches' means alone would leave 0.5–2.6 grey levels at σ = 10–50)."""
    clean = np.full((48, 48, 3), 0.5, np.float32)
    noisy = with_noise(clean, sigma / 255, seed=2)
    out = wn.wiener_stage(noisy, clean, GaussianNoise(sigma / 255))
    assert np.abs(out - clean).mean() < 0.2 / 255


def test_camera_noise_is_filtered_by_its_own_curve_and_correlation():
    clean = scene(96)
    white = np.random.default_rng(6).standard_normal(clean.shape)
    unit = ndimage.uniform_filter(white, (2, 2, 1), mode="wrap")
    noisy = np.clip(clean + 2 * unit * np.sqrt(0.004 * clean + 0.0002), 0, 1).astype(np.float32)
    model = read_camera_noise(noisy)
    assert model.correlation.width > 1.5
    pilot = denoise_tv_chambolle(noisy, weight=0.1, channel_axis=2).astype(np.float32)
    out = wn.wiener_stage(noisy, pilot, model)
    as_white = wn.wiener_stage(noisy, pilot, GaussianNoise(model.sigma))  # one σ, no correlation
    assert psnr(out, clean) > psnr(pilot, clean) + 0.5
    assert psnr(out, clean) > psnr(as_white, clean) + 0.5


def test_strips_and_steps_cover_every_pixel_and_agree(monkeypatch):
    clean = texture(40, channels=1)[:37]  # odd height: strips, steps and padding that do not divide it
    noisy = with_noise(clean, 10 / 255)
    pilot = ndimage.gaussian_filter(noisy, (1.0, 1.0, 0)).astype(np.float32)
    whole = wn.wiener_stage(noisy, pilot, GaussianNoise(10 / 255))
    monkeypatch.setattr(wn, "STRIP", 3)
    np.testing.assert_allclose(wn.wiener_stage(noisy, pilot, GaussianNoise(10 / 255)), whole, atol=1e-5)
    for step in (2, 3):
        coarse = wn.wiener_stage(noisy, pilot, GaussianNoise(10 / 255), step=step)
        assert np.isfinite(coarse).all() and np.abs(coarse - whole).mean() < 2 / 255


def test_the_problem_composites_only_when_asked():
    noisy = texture(32)
    fit = np.full_like(noisy, 0.5)
    assert Denoise(0.01).composite(fit, noisy) is fit
    assert not np.array_equal(Denoise(0.01, wiener=True).composite(fit, noisy), fit)


@pytest.mark.parametrize("flag", [True, False])
def test_the_api_writes_the_fit_alone_without_it_and_says_which(flag):
    noisy = with_noise(texture(32), 5 / 255, seed=3)
    result = dipcli.denoise(noisy, 5, wiener=flag, iters=20, width=8, seed=0, tile=0)
    assert result.settings["wiener"] is flag
    fit_alone = np.asarray(result.fit.ema).reshape(noisy.shape)
    assert np.array_equal(np.asarray(result.image), fit_alone) != flag


def test_give_back_returns_the_detail_a_fit_missed_and_leaves_a_good_fit_nearly_alone():
    clean = texture()
    noisy = with_noise(clean, 3 / 255)
    missed = ndimage.gaussian_filter(clean, (2.0, 2.0, 0)).astype(np.float32)
    out = wn.give_back(noisy, missed, np.full_like(noisy, (3 / 255) ** 2))
    assert psnr(out, clean) > psnr(missed, clean) + 5
    flat = np.full((64, 64, 3), 0.5, np.float32)
    noisy = with_noise(flat, 25 / 255, seed=2)
    out = wn.give_back(noisy, flat, np.full_like(noisy, (25 / 255) ** 2))
    assert np.abs(out - flat).mean() < 0.15 * np.abs(noisy - flat).mean()
