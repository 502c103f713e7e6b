"""How busy is an image? Texture features, and the decoder width they call for.

"The Devil is in the Upsampling" (Liu et al., ICCV 2023) found that the best width of a shallow
2-scale DIP decoder follows the image's texture: narrow for smooth images, wide for busy ones.
This module measures texture on the image the user actually has — a noisy one — and gives the
width `--width auto` uses: 128 when at least ``WIDTH_THRESHOLD`` of the image is textured
(``textured_l1``), else 64, a rule calibrated on PSNR (results/width_rule, results/width_psnr).
The paper's own width labels do not predict PSNR for this package's net and budget; a model of
them is fitted, for the record, by ``benchmarks/texture_width.py``.

How the noise is kept out of the measurement: the image is split into Haar wavelet detail bands.
The Haar transform is orthonormal, so white noise of variance v adds exactly v to the expected
energy of every detail coefficient, at every level. We subtract that known amount block by
block, where v allows for the clipping of noise at 0 and 1 (a bright sky or a black background
carries far less noise than σ² once clipped). What is left estimates the energy of the clean
image's detail, and the features are fractions of the picture whose detail energy clears a fixed
bar: "how much of the image is texture".

Pure numpy/scikit-image (with the SciPy and PyWavelets they depend on): no torch, so the
estimator is testable and usable without a network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pywt
from skimage.filters import gaussian

from dipcli.physics.noise import as_float_image, clipped_mean_and_variance, estimate_noise

WIDTHS = (32, 64, 128)
LUMA = np.array([0.2125, 0.7154, 0.0721])  # the weights of skimage.color.rgb2gray
BLOCK = 32  # side, in pixels, of the blocks over which detail energy is judged
LEVELS = 3  # Haar levels measured: 1 = finest (2-pixel detail), 3 = 8-pixel detail
# A block counts as textured at level j when its clean detail energy per coefficient exceeds
# 10**TEXTURE_BAR[j]; the count is soft (a logistic of width SOFTNESS decades) so that a block
# near the bar moves the score a little rather than flipping it, e.g. between 8- and 16-bit input.
TEXTURE_BAR = {1: -2.5, 2: -2.5, 3: -2.5}
SOFTNESS = 0.1
# Image size enters only below this many pixels (log2; 2**17 ≈ 362²). In the labels every 256²
# image wants width 32 whatever its texture, while among larger images size says nothing about
# 64 vs 128, so the size feature is the number of halvings below this cap, at most one (the
# labels hold nothing smaller than 256² to extrapolate from). They only place the cap between
# 256² (16) and 481×321 (17.24); 17 is a round value in that gap.
SIZE_CAP = 17.0
# Detail below about one 8-bit grey level is not texture: every image is treated as carrying at
# least 8-bit rounding noise (variance q²/12), and energies are floored before taking logs, so an
# 8-bit and a 16-bit copy of the same picture measure the same.
QUANT_VAR = 1.0 / (12 * 255.0**2)
FLOOR = 1e-5

# ---- the width rule: pasted from `python benchmarks/width_rule.py` (see its output) --------------
# Evidence (results/width_psnr.md, width_rule.md): 12 images, 256×256 crops, σ = 25, the default
# compact 2-scale net, budget and stop rule. Width 32 was never the best (mean PSNR 27.80 dB, vs
# 29.23 at 64 and 29.51 at 128), so the rule picks between 64 and 128; 128 was best or within
# 0.17 dB everywhere, and 64 won (by 0.17 dB at most) only on crops with little fine texture.
# T maximises the mean written PSNR over the 12 crops (in sample 29.53 dB, the oracle's). Leave-one-
# out (results/width_rule.md): 29.50 dB, -0.03 dB to the oracle, +0.26 dB vs fixed 64 and -0.01 dB
# vs fixed 128: on this evidence the rule is as good as always-128, not better, while giving
# smooth images the 64-wide net (a quarter of the parameters). Calibrated for denoising at σ = 25
# on 256² crops: other sizes, noise levels and tasks (inpaint and superres call it with σ
# estimated) inherit it unmeasured.
WIDTH_FEATURE = "textured_l1"
WIDTH_THRESHOLD = 0.0857  # width 128 when textured_l1 >= this, else 64
RULE_WIDTHS = (64, 128)  # (below, at or above) the threshold
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    """The texture verdict for one image: the share of it that is textured, and the width.

    ``width``: 128 when ``textured >= WIDTH_THRESHOLD``, else 64. ``margin``: how far
    ``textured`` is from the threshold (a fraction of the image, 0–1): the smaller, the nearer the
    other width.
    """

    width: int
    textured: float  # the features' textured_l1: the share of 32² blocks with fine (2-px) texture
    sigma: float  # noise σ used, 0–255 scale (given, or estimated from the image)
    margin: float
    features: dict[str, float] = field(default_factory=dict)


# ---- noise ---------------------------------------------------------------------------------------

def _channel_noise_var(channel: np.ndarray, s: float) -> np.ndarray:
    """Per-pixel noise variance of one noisy channel, allowing for the clip at 0 and 1.

    The local mean of the observation is a biased (clipped) mean; invert the clipped-mean curve
    to get the underlying level, then read off the clipped variance there.
    """
    grid = np.linspace(-3 * s, 1 + 3 * s, 1024)
    m1, var = clipped_mean_and_variance(grid, s)
    level = np.interp(gaussian(channel, sigma=2.0, mode="reflect"), m1, grid)
    return np.interp(level, grid, var)


def _noise_var(pixels: np.ndarray, s: float) -> np.ndarray:
    """Per-pixel variance of the luminance noise: independent noise of σ = s in each channel, clipped,
    plus 8-bit rounding."""
    weights = LUMA if pixels.shape[2] == 3 else np.ones(1)
    quant = QUANT_VAR * float(np.sum(weights**2))
    if s <= 0:
        return np.full(pixels.shape[:2], quant)
    return quant + sum(w * w * _channel_noise_var(pixels[:, :, k], s) for k, w in enumerate(weights))


# ---- features ------------------------------------------------------------------------------------

def _block_means(a: np.ndarray, b: int) -> np.ndarray:
    h, w = a.shape[0] // b, a.shape[1] // b
    return a[: h * b, : w * b].reshape(h, b, w, b).mean(axis=(1, 3))


def features(pixels: np.ndarray, sigma: float | None = None) -> dict[str, float]:
    """Texture features of a (possibly noisy) image, with the noise's contribution removed.

    ``pixels``: float (H, W, C) in [0, 1], C = 1 or 3. ``sigma``: the noise σ on the 0-1 scale,
    or None to estimate it (then a clean image reads as slightly noisy, and its finest texture
    as noise). Returns:

    * ``sigma``: the σ used, 0-255 scale.
    * ``log2_pixels``: image size; a fixed-width net has more to represent in a bigger image.
    * ``small``: halvings of the pixel count below ``2**SIZE_CAP``, clipped to [0, 1].
    * ``detail_l{j}``: log10 of the clean detail energy per Haar coefficient at level j.
    * ``hf_ratio``: share of levels 1-2 in the detail energy of levels 1-3 (fine vs coarse).
    * ``textured_l{j}``: soft fraction of 32×32 blocks whose clean level-j detail energy clears
      the bar ``10**TEXTURE_BAR[j]`` — the share of the picture that is texture at that scale.
    """
    px = as_float_image(pixels)
    if sigma is not None and not 0 <= sigma <= 1:
        raise ValueError(f"sigma = {sigma} is outside [0, 1]; give it on the 0-1 scale (25/255, not 25)")
    h, w = px.shape[:2]
    block = min(BLOCK, 1 << int(np.log2(min(h, w))))
    if block < 1 << LEVELS:
        raise ValueError(f"image too small for texture features ({h}×{w}); need at least {1 << LEVELS} px")
    s = estimate_noise(px) if sigma is None else float(sigma)
    # Crop to whole blocks (centred) so that every level's coefficients tile the blocks exactly.
    ch, cw = (h // block) * block, (w // block) * block
    top, left = (h - ch) // 2, (w - cw) // 2
    px = px[top: top + ch, left: left + cw]
    luma = px[:, :, 0] if px.shape[2] == 1 else px @ LUMA
    noise = _block_means(_noise_var(px, s), block)

    log2_pixels = float(np.log2(h * w))
    out: dict[str, float] = {"sigma": s * 255.0, "log2_pixels": log2_pixels,
                             "small": float(np.clip(SIZE_CAP - log2_pixels, 0.0, 1.0))}
    details = pywt.wavedec2(luma, "haar", mode="periodization", level=LEVELS)[1:][::-1]
    energies = {}
    for j, bands in enumerate(details, start=1):
        per_coef = sum(band * band for band in bands) / 3.0
        clean = np.maximum(_block_means(per_coef, block >> j) - noise, 0.0)
        energies[j] = float(clean.mean())
        out[f"detail_l{j}"] = float(np.log10(energies[j] + FLOOR))
        log_e = np.log10(clean + FLOOR)
        z = np.clip((log_e - TEXTURE_BAR[j]) / SOFTNESS, -50, 50)
        out[f"textured_l{j}"] = float(np.mean(1.0 / (1.0 + np.exp(-z))))
    total = sum(energies.values())
    out["hf_ratio"] = float((energies[1] + energies[2]) / total) if total > 0 else 0.0
    return out


# ---- the width ---------------------------------------------------------------------------------

def rule_width(feats: dict[str, float]) -> int:
    """The PSNR-calibrated width for these features: 128 when textured_l1 >= WIDTH_THRESHOLD, else 64."""
    return RULE_WIDTHS[int(feats[WIDTH_FEATURE] >= WIDTH_THRESHOLD)]


def complexity(pixels: np.ndarray, sigma: float | None = None) -> Score:
    """Measure an image's texture and pick the decoder width (64 or 128).

    ``sigma`` is the noise σ on the 0–1 scale (None: estimate it).
    """
    feats = features(pixels, sigma)
    textured = feats[WIDTH_FEATURE]
    return Score(width=rule_width(feats), textured=float(textured), sigma=feats["sigma"],
                 margin=float(abs(textured - WIDTH_THRESHOLD)), features=feats)
