"""Texture score and width: deterministic, bit-depth blind, monotone in texture, and steady under noise.

The score is the label model's (texture_width.py); the width is the PSNR-calibrated rule
(width_rule.py): 128 when textured_l1 >= WIDTH_THRESHOLD, else 64.
"""

import numpy as np
import pytest
from skimage.filters import gaussian

from dipcli import texture
from dipcli.io import Image, read_image, write_image
from dipcli.physics import noise


def busy(h: int, w: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Fine random texture in [0, 1]: what a wide decoder is for."""
    rng = np.random.default_rng(seed)
    tex = np.stack([gaussian(rng.random((h, w)), sigma=0.7) for _ in range(channels)], axis=2)
    return np.clip(0.5 + 2.0 * (tex - tex.mean()), 0, 1)


def flat(h: int, w: int, channels: int = 1) -> np.ndarray:
    """A gentle gradient: no texture at all."""
    ramp = np.linspace(0.3, 0.6, w)[None, :, None]
    return np.broadcast_to(ramp, (h, w, channels)).copy()


def half_textured(h: int = 128, w: int = 128, channels: int = 1) -> np.ndarray:
    """Texture on the left half, flat on the right: a middling score, sensitive to noise handling."""
    img = flat(h, w, channels)
    img[:, : w // 2] = busy(h, w // 2, channels)
    return img


def graded(h: int = 128, w: int = 128, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Texture whose contrast grows from nothing (left) to strong (right).

    Many blocks sit near the texture bar, so this is the picture on which noise handling shows.
    """
    amplitude = np.linspace(0, 0.6, w)[None, :, None]
    return 0.5 + amplitude * (busy(h, w, channels, seed) - 0.5)


def add_noise(pixels: np.ndarray, sigma255: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(pixels + rng.normal(0, sigma255 / 255, pixels.shape), 0, 1)


@pytest.mark.parametrize("sigma", [0.0, 25 / 255, None])
def test_features_are_deterministic(sigma):
    img = add_noise(graded(channels=3), 25)
    assert texture.features(img, sigma) == texture.features(img.copy(), sigma)
    assert texture.complexity(img, sigma) == texture.complexity(img.copy(), sigma)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("sigma", [0.0, None])
def test_8_and_16_bit_copies_measure_the_same(tmp_path, channels, sigma):
    picture = graded(96, 128, channels).astype(np.float32)
    scores = []
    for dtype, name in ((np.uint8, "a8.png"), (np.uint16, "a16.png")):
        write_image(tmp_path / name, Image(pixels=picture, dtype=np.dtype(dtype), grey=channels == 1))
        back = read_image(tmp_path / name)
        assert back.dtype == dtype
        scores.append(texture.complexity(back.pixels, sigma))
    f8, f16 = scores[0].features, scores[1].features
    assert f8.keys() == f16.keys()
    for key in f8:
        tol = 0.5 if key == "sigma" else 0.02  # sigma in grey levels (0-255); fractions and log10 energies
        assert f8[key] == pytest.approx(f16[key], abs=tol), key
    assert scores[0].width == scores[1].width
    assert scores[0].textured == pytest.approx(scores[1].textured, abs=0.02)


@pytest.mark.parametrize("channels", [1, 3])
def test_textured_share_rises_from_flat_to_texture(channels):
    tex, smooth = busy(96, 96, channels), flat(96, 96, channels)
    shares = [texture.complexity(t * tex + (1 - t) * smooth, sigma=0.0).textured
              for t in np.linspace(0, 1, 11)]
    assert all(b >= a - 1e-9 for a, b in zip(shares, shares[1:], strict=False)), shares
    assert shares[-1] > shares[0] + 0.5


@pytest.mark.parametrize("shape", [(80, 112), (80, 112, 1), (80, 112, 3)])
def test_grey_and_rgb_both_work(shape):
    rng = np.random.default_rng(3)
    img = rng.random(shape).astype(np.float32)
    result = texture.complexity(img, sigma=0.0)
    assert result.width in texture.WIDTHS
    assert result.margin >= 0
    assert 0 <= result.textured <= 1


def test_rgb_with_equal_channels_reads_like_grey():
    grey = half_textured(channels=1)
    rgb = np.repeat(grey, 3, axis=2)
    a, b = texture.complexity(grey, 0.0), texture.complexity(rgb, 0.0)
    assert a.width == b.width
    assert a.textured == pytest.approx(b.textured, abs=0.02)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_noise_with_given_sigma_does_not_move_the_verdict(channels, seed):
    clean = graded(128, 128, channels, seed)
    a = texture.complexity(clean, sigma=0.0)
    b = texture.complexity(add_noise(clean, 25, seed + 10), sigma=25 / 255)
    assert abs(texture.WIDTHS.index(a.width) - texture.WIDTHS.index(b.width)) <= 1
    assert b.features["textured_l1"] == pytest.approx(a.features["textured_l1"], abs=0.05)
    assert b.sigma == pytest.approx(25.0)


@pytest.mark.parametrize("channels", [1, 3])
def test_noise_with_estimated_sigma_stays_close(channels):
    # Looser: fine texture inflates the noise estimate a little, so some texture is taken for noise.
    clean = graded(128, 128, channels)
    a = texture.complexity(clean, sigma=0.0)
    b = texture.complexity(add_noise(clean, 25), sigma=None)
    assert b.sigma == pytest.approx(25.0, rel=0.15)
    assert abs(texture.WIDTHS.index(a.width) - texture.WIDTHS.index(b.width)) <= 1
    assert b.textured == pytest.approx(a.textured, abs=0.3)


@pytest.mark.parametrize("sigma255", [25, 50])
def test_noise_estimate_allows_for_clipping(sigma255):
    # Dark and bright areas clip much of the noise; the estimate should still find the σ that was added.
    img = flat(128, 128, 3)
    img[:40] = 0.02
    img[-40:] = 0.97
    noisy = add_noise(img, sigma255)
    assert texture.estimate_noise(noisy) * 255 == pytest.approx(sigma255, rel=0.08)


def test_noise_estimate_on_a_large_image_reads_a_mosaic():
    img = flat(300, 1200, 1)
    img[:, :200] = 0.01  # a dark, clipped strip where the first tile lands: allowed for there too
    noisy = add_noise(img, 25)
    assert noise._noise_sample(noisy).shape[:2] == (300, 1024)
    assert texture.estimate_noise(noisy) * 255 == pytest.approx(25, rel=0.08)


def blend(t: float, h: int, w: int, channels: int, seed: int = 0) -> np.ndarray:
    """``t`` of the random texture over the flat gradient: t = 0 flat, t = 1 fully random."""
    return t * busy(h, w, channels, seed) + (1 - t) * flat(h, w, channels)


def test_width_follows_the_rule():
    for seed, t in enumerate(np.linspace(0, 1, 9)):
        result = texture.complexity(blend(t, 64, 64, 3, seed), sigma=0.0)
        value = result.features["textured_l1"]
        assert result.width == (128 if value >= texture.WIDTH_THRESHOLD else 64)
        assert result.width == texture.rule_width(result.features)
        assert result.margin == pytest.approx(abs(value - texture.WIDTH_THRESHOLD))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("sigma255", [0, 25])
def test_flat_is_64_and_random_texture_is_128(channels, sigma255):
    smooth, tex = flat(128, 128, channels), busy(128, 128, channels)
    if sigma255:
        smooth, tex = add_noise(smooth, sigma255), add_noise(tex, sigma255)
    assert texture.complexity(smooth, sigma=sigma255 / 255).width == 64
    assert texture.complexity(tex, sigma=sigma255 / 255).width == 128


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("sigma255", [0, 25])
def test_width_is_monotone_from_flat_to_random(channels, sigma255):
    ramp = [blend(t, 96, 96, channels) for t in np.linspace(0, 1, 11)]
    if sigma255:
        ramp = [add_noise(img, sigma255) for img in ramp]
    widths = [texture.complexity(img, sigma=sigma255 / 255).width for img in ramp]
    assert widths == sorted(widths), widths
    assert widths[0] == 64 and widths[-1] == 128, widths


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("sigma", [0.0, None])
@pytest.mark.parametrize(("t", "width"), [(0.25, 64), (0.5, 128)])
def test_8_and_16_bit_copies_get_the_same_width(tmp_path, channels, sigma, t, width):
    picture = blend(t, 96, 128, channels).astype(np.float32)
    results = []
    for dtype, name in ((np.uint8, "b8.png"), (np.uint16, "b16.png")):
        write_image(tmp_path / name, Image(pixels=picture, dtype=np.dtype(dtype), grey=channels == 1))
        results.append(texture.complexity(read_image(tmp_path / name).pixels, sigma))
    assert results[0].width == results[1].width == width
    assert results[0].features["textured_l1"] == pytest.approx(results[1].features["textured_l1"], abs=0.02)


def test_rule_constants_are_consistent():
    assert texture.WIDTH_FEATURE in texture.features(flat(64, 64))
    assert 0 < texture.WIDTH_THRESHOLD < 1
    assert set(texture.RULE_WIDTHS) <= set(texture.WIDTHS)
    assert texture.RULE_WIDTHS == tuple(sorted(texture.RULE_WIDTHS))


def test_sigma_on_the_wrong_scale_is_refused():
    with pytest.raises(ValueError, match="0-1 scale"):
        texture.features(flat(64, 64), sigma=25)


def test_too_small_or_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="too small"):
        texture.features(np.zeros((4, 4, 1)))
    with pytest.raises(ValueError, match="image"):
        texture.features(np.zeros((32, 32, 2)))

