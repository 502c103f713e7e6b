"""The detail a denoising fit missed, given back (dipcli.physics.denoise.give_back, --detail-return)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import dipcli
from dipcli.metrics import psnr
from dipcli.physics import Denoise
from dipcli.physics.denoise import give_back


def texture(size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random((size, size, 3)), (1.0, 1.0, 0)) * 0.8 + 0.1
    return base.astype(np.float32)


def test_it_gives_back_the_detail_a_fit_missed_where_the_noise_is_faint():
    clean = texture()
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 3 / 255, clean.shape), 0, 1).astype(np.float32)
    missed = ndimage.gaussian_filter(clean, (2.0, 2.0, 0)).astype(np.float32)  # a fit short of the image
    out = give_back(noisy, missed, np.full_like(noisy, (3 / 255) ** 2))
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert psnr(out, clean) > psnr(missed, clean) + 5
    assert psnr(out, clean) > psnr(noisy, clean)  # and keeps most of the noise out


def test_it_leaves_a_fit_that_explained_the_image_down_to_the_noise_nearly_alone():
    clean = np.full((64, 64, 3), 0.5, np.float32)
    sigma = 25 / 255
    noisy = np.clip(clean + np.random.default_rng(2).normal(0, sigma, clean.shape), 0, 1).astype(np.float32)
    out = give_back(noisy, clean, np.full_like(noisy, sigma**2))
    # A residual that is noise at the model's level comes back only where its local energy
    # happens to run high: a small share of it.
    assert np.abs(out - clean).mean() < 0.15 * np.abs(noisy - clean).mean()


def test_the_problem_composites_only_when_asked():
    noisy = texture(32)
    fit = np.full_like(noisy, 0.5)
    assert Denoise(0.01).composite(fit, noisy) is fit
    back = Denoise(0.01, detail_return=True).composite(fit, noisy)
    assert not np.array_equal(back, fit)


@pytest.mark.parametrize("flag", [True, False])
def test_the_api_writes_the_fit_alone_without_it_and_says_which(flag):
    noisy = np.clip(texture(32) + np.random.default_rng(3).normal(0, 5 / 255, (32, 32, 3)), 0, 1)
    kw = dict(iters=20, width=8, seed=0, tile=0)
    result = dipcli.denoise(noisy.astype(np.float32), 5, detail_return=flag, **kw)
    assert result.settings["detail_return"] is flag
    fit_alone = np.asarray(result.fit.ema).reshape(noisy.shape)
    assert np.array_equal(np.asarray(result.image), fit_alone) != flag
