"""The camera-noise readout (dipcli.physics.camera): curve, correlation, samples, VST, on tiny images."""

from __future__ import annotations

import re

import imageio.v3 as iio
import numpy as np
import pytest
from scipy import ndimage

from dipcli.io import read_image
from dipcli.physics.camera import (
    NoiseCurve,
    noise_correlation,
    noise_curve,
    read_noise,
    sample_noise,
    white_correlation,
)
from dipcli.physics.vst import stabilise, unstabilise

A, B = 0.01, 0.0004  # σ² = A·x + B: σ 5 (black) to 27 (white) grey levels


def scene(size: int = 96, channels: int = 3) -> np.ndarray:
    """Clean levels: a horizontal ramp through all brightness, a flat disc, a saturated white patch
    and a dark one at 0 (clipping at both ends), and fine stripes (texture, which must not count)."""
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.stack([0.03 + 0.9 * x * (1 - 0.1 * c) for c in range(channels)], axis=2)
    img[(y - 0.3) ** 2 + (x - 0.6) ** 2 < 0.02] = 0.45
    img[:12, :12] = 1.0
    img[-12:, :12] = 0.0
    img[(y > 0.85) & (x > 0.5)] += 0.15 * np.sin(np.pi * x * size / 2)[(y > 0.85) & (x > 0.5)][:, None]
    return np.clip(img, 0, 1)


def noisy(clean: np.ndarray, seed: int = 0, kernel: np.ndarray | None = None) -> np.ndarray:
    """Poisson–Gaussian noise (as its Gaussian approximation), optionally filtered by ``kernel``
    (normalised so that the per-pixel σ stays that of the curve), clipped to [0, 1]."""
    unit = np.random.default_rng(seed).standard_normal(clean.shape)
    if kernel is not None:
        unit = ndimage.convolve(unit, kernel[:, :, None] / np.sqrt((kernel**2).sum()), mode="wrap")
    return np.clip(clean + unit * np.sqrt(A * clean + B), 0, 1)


def assert_curve_close(curve: NoiseCurve, tol: float = 0.15) -> None:
    for level in (0.15, 0.5, 0.85):
        ratio = curve.sigma(level) / np.sqrt(A * level + B)
        assert np.all(np.abs(ratio - 1) < tol), (level, ratio)


def test_the_curve_recovers_a_known_poisson_gaussian_curve_within_15_percent():
    curve = noise_curve(noisy(scene()))
    assert curve.measured and curve.channels == 3
    assert_curve_close(curve)
    assert 0.5 * A < np.mean(curve.a) < 1.5 * A  # signal dependence seen, not a flat σ
    dark, bright = (np.sqrt(A * v + B) * 255 for v in curve.span())
    read = re.fullmatch(r"noise σ (\d+)–(\d+) \(dark to bright, 0–255 scale\)", curve.summary())
    assert read, curve.summary()
    assert abs(int(read[1]) - dark) <= 0.15 * dark + 0.5 and abs(int(read[2]) - bright) <= 0.15 * bright + 0.5


def test_white_noise_reads_as_uncorrelated():
    pixels = noisy(scene(), seed=1)
    _, corr = read_noise(pixels)
    assert corr.measured and corr.width < 1.3
    assert "uncorrelated" in corr.summary()


def test_noise_filtered_by_a_small_kernel_reads_as_correlated_and_keeps_its_level():
    box = np.ones((3, 3))  # Σρ = 9: correlated over 3 px
    # 128², not 96²: noise correlated over 3 px leaves ~7 independent values in an 8² block, so a
    # brightness group's low quantile needs more blocks (on 96² the level is read 4–17 % off).
    pixels = noisy(scene(128), seed=2, kernel=box)
    curve, corr = read_noise(pixels)
    assert curve == noise_curve(pixels)
    assert 2.5 < corr.width < 3.5
    assert_curve_close(curve)  # the per-pixel σ, not the finest scale's (which reads ~1/3 of it)
    assert "correlated over ~3 px" in curve.summary(corr)


def test_sample_noise_reproduces_the_curve_and_the_correlation_it_was_given():
    pixels = noisy(scene(), seed=3, kernel=np.array([[1.0, 2.0, 1.0]]).T @ np.array([[1.0, 2.0, 1.0]]))
    curve, corr = read_noise(pixels)
    flat = np.full((128, 128, 3), 0.6)
    drawn = sample_noise(flat.shape, curve, corr, flat, np.random.default_rng(0))
    assert drawn.dtype == np.float32 and drawn.shape == flat.shape
    np.testing.assert_allclose(drawn.std(axis=(0, 1)), curve.sigma(0.6), rtol=0.06)
    again = noise_correlation(flat + drawn, curve)
    assert abs(again.width - corr.width) < 0.15 * corr.width
    np.testing.assert_allclose(again.mixing @ again.mixing.T, corr.mixing @ corr.mixing.T, atol=0.1)
    same = sample_noise(flat.shape, curve, corr, flat, np.random.default_rng(0))
    np.testing.assert_array_equal(drawn, same)  # seeded
    ramp = np.linspace(0.1, 0.9, 128)[None, :, None] * np.ones((256, 1, 3))
    by_level = sample_noise(ramp.shape, curve, None, ramp, np.random.default_rng(1)).std(axis=0)
    np.testing.assert_allclose(by_level[::16].mean(axis=0), curve.sigma(ramp[0, ::16]).mean(axis=0), rtol=0.1)


def test_the_vst_makes_poisson_gaussian_noise_unit_variance_and_inverts_without_bias():
    rng = np.random.default_rng(0)
    levels = np.linspace(0.1, 1.0, 10)[None, :, None] * np.ones((40000, 1, 1))
    counts = rng.poisson(levels / A) * A + rng.normal(0, np.sqrt(B), levels.shape)
    curve = NoiseCurve((A,), (B,))
    stable = stabilise(counts, curve)
    np.testing.assert_allclose(stable.std(axis=0)[:, 0], 1.0, atol=0.06)
    mean = stable.mean(axis=0, keepdims=True)
    np.testing.assert_allclose(unstabilise(mean, curve)[0, :, 0], levels[0, :, 0], atol=1e-3)
    algebraic = (mean * A / 2) ** 2 / A - 3 * A / 8 - B / A  # f⁻¹(E f(z)): biased low
    assert np.all(algebraic[0, :, 0] < levels[0, :, 0] - 2e-3)
    gaussian = NoiseCurve((0.0,), (B,))  # no shot noise: the transform is a scaling
    np.testing.assert_allclose(unstabilise(stabilise(counts, gaussian), gaussian), counts)


def test_a_grey_image_and_a_16_bit_png_path(tmp_path):
    clean = scene(channels=1)[:, :, 0]
    path = tmp_path / "grey16.png"
    iio.imwrite(path, np.round(noisy(clean[:, :, None], seed=4)[:, :, 0] * 65535).astype(np.uint16))
    image = read_image(path)
    assert image.dtype == np.uint16 and image.pixels.shape[2] == 1
    curve = noise_curve(image.pixels)
    assert curve.channels == 1
    assert_curve_close(curve)
    assert noise_curve(iio.imread(path)).a == pytest.approx(curve.a, rel=1e-3)  # uint16 in, scaled
    corr = noise_correlation(image.pixels[:, :, 0], curve)
    assert corr.width < 1.3
    drawn = sample_noise(clean.shape, curve, corr, clean, np.random.default_rng(0))
    assert drawn.shape == clean.shape


def test_without_smooth_areas_it_falls_back_to_a_flat_estimate_and_says_so():
    tiny = np.random.default_rng(0).uniform(0, 1, (6, 6, 3))
    curve = noise_curve(tiny)
    assert not curve.measured and curve.a == (0.0, 0.0, 0.0)
    assert "too few smooth areas" in curve.summary()
    assert not noise_correlation(tiny, curve).measured
    assert white_correlation(3).width == 1.0
