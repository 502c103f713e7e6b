from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr

from dipcli.io import ImageError, pad_to_multiple
from dipcli.metrics import psnr
from dipcli.nets import NetSpec, build_net
from dipcli.optim import FitConfig, fit
from dipcli.optim.losses import Objective, data_loss, recorrupted
from dipcli.physics import (
    SR_FACTORS,
    SR_KERNELS,
    Denoise,
    Inpaint,
    SuperRes,
    bernoulli_mask,
    bicubic_upscale,
    downsampling_kernel,
    load_mask,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].float()


# ------------------------------------------------------------------------------------------- inpaint


def test_bernoulli_mask_drops_the_requested_share_and_repeats_with_the_seed():
    m = bernoulli_mask((64, 64), 0.5, seed=3)
    assert m.dtype == bool and m.shape == (64, 64)
    assert 0.45 < 1 - m.mean() < 0.55
    np.testing.assert_array_equal(m, bernoulli_mask((64, 64), 0.5, seed=3))
    assert not np.array_equal(m, bernoulli_mask((64, 64), 0.5, seed=4))
    assert bernoulli_mask((8, 8), 0.0, seed=0).all()
    with pytest.raises(ValueError, match="drop"):
        bernoulli_mask((8, 8), 1.0, seed=0)


def test_composite_takes_known_pixels_from_the_input_exactly(smooth):
    clean = smooth(12, 10)
    problem = Inpaint(bernoulli_mask((12, 10), 0.4, seed=0))
    observed = problem.observe(clean, seed=0)
    assert np.all(observed[~problem.mask] == 0)
    output = np.random.default_rng(1).random(clean.shape).astype(np.float32)
    out = problem.composite(output, observed)
    np.testing.assert_array_equal(out[problem.mask], clean[problem.mask])
    np.testing.assert_array_equal(out[~problem.mask], output[~problem.mask])
    assert out.dtype == np.float32


def test_inpaint_loss_is_the_mse_over_known_pixels_and_ignores_holes(smooth):
    clean = smooth(8, 8)
    problem = Inpaint(bernoulli_mask((8, 8), 0.5, seed=2))
    observed = problem.observe(clean, seed=0)
    output = np.random.default_rng(0).random(clean.shape).astype(np.float32)
    loss = data_loss(problem, nchw(output), nchw(observed)).item()
    m = problem.mask
    assert loss == pytest.approx(np.mean((output[m] - clean[m]) ** 2), rel=1e-5)
    # Whatever sits in the holes, of the observation or of the output, the loss is the same.
    rng = np.random.default_rng(5)
    other_obs = np.where(m[:, :, None], observed, rng.random(clean.shape)).astype(np.float32)
    other_out = np.where(m[:, :, None], output, rng.random(clean.shape)).astype(np.float32)
    assert data_loss(problem, nchw(other_out), nchw(other_obs)).item() == pytest.approx(loss, rel=1e-6)


def test_inpaint_padding_beyond_the_mask_counts_as_missing(smooth):
    clean = smooth(10, 13)
    problem = Inpaint(bernoulli_mask((10, 13), 0.3, seed=0))
    observed = problem.observe(clean, seed=0)
    padded, _ = pad_to_multiple(observed, 8)  # 16 × 16
    out = torch.rand(1, 3, 16, 16)
    base = data_loss(problem, out, nchw(padded)).item()
    out[..., 10:, :] = 5.0
    out[..., :, 13:] = 5.0
    assert data_loss(problem, out, nchw(padded)).item() == pytest.approx(base, rel=1e-6)
    with pytest.raises(ValueError, match="same size"):
        data_loss(problem, torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_inpaint_mask_is_made_once_per_device_and_dtype_and_needs_no_grad():
    problem = Inpaint(bernoulli_mask((6, 6), 0.5, seed=0))
    out = torch.rand(1, 3, 6, 6, requires_grad=True)
    data_loss(problem, out, torch.rand(1, 3, 6, 6)).backward()
    m = problem.known(out)
    assert m is problem.known(out) and not m.requires_grad and m.device == out.device
    assert problem.known(out.double()).dtype == torch.float64


def test_inpaint_psnr_scores_the_composite(smooth):
    clean = smooth(16, 16)
    problem = Inpaint(bernoulli_mask((16, 16), 0.5, seed=0))
    observed = problem.observe(clean, seed=0)
    output = np.random.default_rng(0).random(clean.shape).astype(np.float32)
    expected = -10 * np.log10(np.mean((problem.composite(output, observed) - clean) ** 2))
    scored = psnr(problem.scored(nchw(output), nchw(clean)), nchw(clean)).item()
    assert scored == pytest.approx(expected, abs=1e-3)


def test_inpaint_rejects_a_mask_with_no_known_pixel():
    with pytest.raises(ValueError, match="no known"):
        Inpaint(np.zeros((4, 4), bool))


def test_inpaint_fits_a_padded_observation(smooth):
    clean = smooth(13, 14)
    problem = Inpaint(bernoulli_mask((13, 14), 0.5, seed=0))
    observed = problem.observe(clean, seed=0)
    spec = NetSpec("compact", width=8).resolved()
    padded, size = pad_to_multiple(observed, spec.multiple)
    result = fit(problem, build_net(spec, 3, seed=0), padded, FitConfig(iters=20, seed=0),
                 input_depth=spec.input_depth, crop=size, reference=clean)
    assert result.ema.shape == clean.shape
    assert result.history[-1]["loss"] < result.history[0]["loss"]


# --------------------------------------------------------------------------------------------- masks


def write(path: Path, data: np.ndarray) -> Path:
    iio.imwrite(path, data)
    return path


def half_mask(h: int = 20, w: int = 20, white_share: float = 0.8) -> np.ndarray:
    """uint8 grey mask: the first ``white_share`` of the pixels (row-major) white, the rest black."""
    flat = np.zeros(h * w, np.uint8)
    flat[: round(white_share * h * w)] = 255
    return flat.reshape(h, w)


def test_auto_polarity_takes_the_larger_region_as_known(tmp_path):
    grey = half_mask(white_share=0.8)
    mask, used = load_mask(write(tmp_path / "w.png", grey), (20, 20, 3), known="auto")
    assert used == "white" and mask.dtype == bool
    np.testing.assert_array_equal(mask, grey == 255)
    mask, used = load_mask(write(tmp_path / "b.png", 255 - grey), (20, 20), known="auto")
    assert used == "black"
    np.testing.assert_array_equal(mask, grey == 255)  # the same pixels are known either way


def test_explicit_polarity_is_obeyed_and_binarised_at_mid_grey(tmp_path):
    grey = half_mask(white_share=0.8)
    grey[0, :3] = (127, 128, 200)
    path = write(tmp_path / "m.png", grey)
    white, used = load_mask(path, (20, 20), known="white")
    assert used == "white" and list(white[0, :3]) == [False, True, True]
    black, used = load_mask(path, (20, 20), known="black")
    assert used == "black"
    np.testing.assert_array_equal(black, ~white)


def test_rgb_mask_and_rgba_mask_with_only_alpha_varying(tmp_path):
    grey = half_mask(white_share=0.7)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    mask, used = load_mask(write(tmp_path / "rgb.png", rgb), (20, 20), known="auto")
    assert used == "white"
    np.testing.assert_array_equal(mask, grey == 255)
    rgba = np.zeros((20, 20, 4), np.uint8)  # flat black colour: only the alpha carries the mask
    rgba[..., 3] = 255 - grey
    mask, used = load_mask(write(tmp_path / "rgba.png", rgba), (20, 20), known="auto")
    assert used == "black"  # opaque is the minority here, so transparent = known
    np.testing.assert_array_equal(mask, grey == 255)


def test_auto_refuses_nearly_equal_regions(tmp_path):
    path = write(tmp_path / "m.png", half_mask(white_share=0.5))
    with pytest.raises(ValueError, match="--mask-known white\\|black"):
        load_mask(path, (20, 20), known="auto")
    mask, _ = load_mask(path, (20, 20), known="white")  # an explicit polarity is fine
    assert mask.mean() == 0.5


def test_mask_of_another_size_is_refused_with_both_sizes(tmp_path):
    path = write(tmp_path / "m.png", half_mask(20, 30))
    with pytest.raises(ValueError, match="30×20.*24×18"):
        load_mask(path, (18, 24, 3), known="auto")


@pytest.mark.parametrize("value", [0, 255])
@pytest.mark.parametrize("known", ["white", "black", "auto"])
def test_blank_masks_are_refused(tmp_path, value, known):
    path = write(tmp_path / "m.png", np.full((10, 10), value, np.uint8))
    with pytest.raises(ValueError, match="nothing to inpaint|every pixel is missing"):
        load_mask(path, (10, 10), known=known)


def test_unreadable_mask_raises_image_error_and_bad_polarity_value_error(tmp_path):
    bad = tmp_path / "m.png"
    bad.write_text("not an image")
    with pytest.raises(ImageError):
        load_mask(bad, (10, 10))
    with pytest.raises(ValueError, match="--mask-known"):
        load_mask(bad, (10, 10), known="grey")


@pytest.mark.skipif(not (DATA / "inpainting").exists(), reason="shared data not present")
@pytest.mark.parametrize("name", ["kate", "library", "vase", "DSC_4081"])
def test_shared_inpainting_masks_are_white_known(name):
    image = iio.imread(DATA / "inpainting" / f"{name}.png")
    mask, used = load_mask(DATA / "inpainting" / f"{name}_mask.png", image.shape, known="auto")
    assert used == "white" and 0 < (~mask).mean() < 0.3


# -------------------------------------------------------------------------------------------- superres


@pytest.mark.parametrize("kernel", SR_KERNELS)
@pytest.mark.parametrize("factor", SR_FACTORS)
def test_downsampling_a_constant_gives_the_constant(kernel, factor):
    problem = SuperRes(factor, kernel)
    hr = np.full((5 * factor, 6 * factor, 3), 0.3, np.float32)
    low = problem.observe(hr, seed=0)
    assert low.shape == (5, 6, 3)
    np.testing.assert_allclose(low, 0.3, atol=1e-6)
    k = downsampling_kernel(factor, kernel)
    assert k.sum() == pytest.approx(1.0) and np.allclose(k, k[::-1])
    assert len(k) == 4 * factor + factor % 2


def test_observe_is_hr_over_factor_and_crops_non_multiples(smooth):
    hr = smooth(35, 42)
    low = SuperRes(4).observe(hr, seed=0)
    assert low.shape == (8, 10, 3) and low.dtype == np.float32
    assert 0 <= low.min() and low.max() <= 1
    problem = SuperRes(4)
    np.testing.assert_array_equal(low, problem.observe(problem.crop_hr(hr), seed=0))
    assert problem.crop_hr(hr).shape == (32, 40, 3) and problem.out_size((8, 10)) == (32, 40)


def test_kernel_is_a_buffer_not_a_parameter():
    problem = SuperRes(4)
    assert list(problem.downsampler.parameters()) == []
    buffers = list(problem.downsampler.buffers())
    assert len(buffers) == 1 and not buffers[0].requires_grad
    out = torch.rand(1, 3, 32, 32, requires_grad=True).contiguous(memory_format=torch.channels_last)
    data_loss(problem, out, torch.rand(1, 3, 8, 8)).backward()
    assert buffers[0].grad is None


def test_sr_refuses_other_factors_kernels_and_a_wrong_output_size():
    with pytest.raises(ValueError, match="2, 3, 4, 8"):
        SuperRes(5)
    with pytest.raises(ValueError, match="lanczos2"):
        SuperRes(2, "sinc")
    with pytest.raises(ValueError, match="out_size"):
        data_loss(SuperRes(2), torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))


def test_downsampling_a_smooth_image_is_close_to_block_means(smooth):
    hr = smooth(32, 32)
    box = SuperRes(4, "box").observe(hr, seed=0)
    np.testing.assert_allclose(box, hr.reshape(8, 4, 8, 4, 3).mean(axis=(1, 3)), atol=1e-6)
    # Lanczos is centred on the same blocks: a one-pixel misalignment would differ by ~0.04.
    assert np.abs(SuperRes(4).observe(hr, seed=0) - box).mean() < 0.01


def test_y_psnr_with_border_crop_matches_a_hand_computation(smooth):
    ref = smooth(20, 24)
    x = np.clip(ref + np.random.default_rng(0).normal(0, 0.05, ref.shape), 0, 1).astype(np.float32)
    y_ref, y_x = rgb2ycbcr(ref)[..., 0] / 255, rgb2ycbcr(x)[..., 0] / 255
    b = 4
    mse = np.mean((y_x[b:-b, b:-b] - y_ref[b:-b, b:-b]) ** 2)
    assert psnr(x, ref, luma=True, border=4).item() == pytest.approx(-10 * np.log10(mse), abs=1e-3)
    sr = SuperRes(4)  # how the SR literature scores: Y channel inside a factor-wide border
    assert psnr(nchw(x), nchw(ref), luma=sr.luma, border=sr.border).item() == pytest.approx(
        -10 * np.log10(mse), abs=1e-3)
    mse_rgb = np.mean((x[b:-b, b:-b] - ref[b:-b, b:-b]) ** 2)
    assert psnr(x, ref, border=4).item() == pytest.approx(-10 * np.log10(mse_rgb), abs=1e-3)
    grey = x[:, :, :1]
    assert psnr(grey, ref[:, :, :1], luma=True).item() == pytest.approx(psnr(grey, ref[:, :, :1]).item())


@pytest.mark.parametrize("factor", [2, 3, 4, 8])
def test_bicubic_upscale_is_exactly_factor_times_for_odd_sizes(factor):
    low = np.random.default_rng(0).random((13, 17, 3)).astype(np.float32)
    up = bicubic_upscale(low, factor)
    assert up.shape == (13 * factor, 17 * factor, 3) and up.dtype == np.float32
    assert 0 <= up.min() and up.max() <= 1
    np.testing.assert_allclose(bicubic_upscale(np.full((5, 7, 1), 0.4, np.float32), factor), 0.4,
                               atol=1e-6)


def test_superres_fits_through_out_size(smooth):
    problem = SuperRes(2)
    hr = smooth(32, 32)
    low = problem.observe(hr, seed=0)
    spec = NetSpec("compact", width=8).resolved()
    result = fit(problem, build_net(spec, 3, seed=0), low, FitConfig(iters=20, seed=0),
                 input_depth=spec.input_depth, out_size=problem.out_size(low.shape[:2]), reference=hr)
    assert result.ema.shape == hr.shape
    assert result.history[-1]["psnr_ema"] is not None


def test_denoise_is_unchanged():
    assert data_loss(Denoise(0.1), torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)).item() == 1.0


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_recorrupted_target_and_input_are_independent_copies_of_the_clean_image(alpha):
    """Pang et al.'s pair: y + αz and y − z/α carry uncorrelated noise, of variance σ²(1 + α²)
    and σ²(1 + 1/α²); so the loss to the target is the loss to the clean image plus a constant."""
    sigma = 0.1
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(1, 3, 200, 200, generator=gen)
    y = clean + sigma * torch.randn(clean.shape, generator=gen)
    shake = alpha * sigma * torch.randn(clean.shape, generator=gen)
    target = recorrupted(y, shake, alpha * sigma, sigma)
    into, out = (y + shake - clean).flatten(), (target - clean).flatten()
    assert abs(torch.corrcoef(torch.stack([into, out]))[0, 1].item()) < 0.01
    assert out.var().item() == pytest.approx(sigma**2 * (1 + 1 / alpha**2), rel=0.02)
    assert into.var().item() == pytest.approx(sigma**2 * (1 + alpha**2), rel=0.02)
    with pytest.raises(ValueError, match="noise level"):
        Objective(Denoise(None), FitConfig(input="observation", recorrupt=True, reg_noise=sigma))
