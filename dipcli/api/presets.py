"""Each task's defaults and its named presets, each chosen by a benchmark against the classical
methods (benchmarks/README.md, "Why these defaults"): the net, the budget and how a fit is run,
and for denoising and inpainting several fits to choose from (``--preset``).

References: Jo, Chun & Choi, "Rethinking Deep Image Prior for Denoising", ICCV 2021 (the
``best`` denoiser); Ulyanov, Vedaldi & Lempitsky, "Deep Image Prior", CVPR 2018 (the hourglass,
and the average of two runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

# Per-task defaults, each chosen by a benchmark (benchmarks/README.md, "Why these defaults").
# ``tile``: with --tile auto, images larger than about 1.5 × this per side are fitted in tiles of
# about this size when the net is the task's default (it was tuned on 256² images and converges
# far more slowly on a whole 512² one: benchmarks/README.md, "Denoising"). ``gpu_arch``/``gpu_width``: the net
# on a CUDA GPU. There time is cheap, so denoising keeps the quality-first compact net, at the
# width --width auto picks (128 for most images, +0.3 dB on average, for about the time of 64 at
# 256²). On a CPU, denoising runs a preset (CPU_PRESET below) unless --arch names a net, so its
# ``arch`` (the lean net, the CPU default before the presets) only says that --arch lean is tiled
# as the tile size was tuned for it (benchmarks/README.md, "A 512² image in under five minutes").
TASK_DEFAULTS = {
    "denoise": dict(arch="lean", upsample=None, iters=1200, tile=256, gpu_arch="compact",
                    gpu_width="auto"),
    "two-stage": dict(arch="compact", upsample=None, iters=1200, tile=256, gpu_width="auto"),
    "inpaint": dict(arch="original", width=32, upsample="nearest", iters=1500),
    "superres": dict(arch="compact", upsample=None, iters=2000),
}

# The two-stage options' defaults: the report's method (λ·TV with λ constant for the first third).
TWO_STAGE_DEFAULTS = dict(tv_weight=0.79, stage1_frac=1 / 3, schedule_kind="step", tv="anisotropic",
                          stage1="tv")


@dataclass(frozen=True)
class Recipe:
    """One fit of a preset: the net and how to fit it (None: the net's or the user's own)."""

    arch: str
    width: int | None = None
    upsample: str | None = None
    iters: int = 1200
    input: str = "code"  # "observation": the noisy image is the net's input (FitConfig.input)
    sure_eps: float = 0.0  # > 0: SURE as the data loss (FitConfig.sure_eps)
    recorrupt: bool = False  # Recorrupted-to-Recorrupted as the data loss (FitConfig.recorrupt)
    jitter: float | None = None  # input jitter, as a multiple of the DIP paper's (None: the net's)
    jitter_sigma: float | None = None  # or as a multiple of the noise σ (overrides ``jitter``)
    ema_warmup: float | None = None  # (None: the net's)
    precision: str | None = None  # (None: --precision)
    stop: str | None = None  # (None: --stop)
    seed_offset: int = 0  # ensemble members start from --seed + offset
    # An image fitted in tiles: every tile after the first starts from the weights the first
    # one's fit ended with and runs this many iterations (None: each tile from scratch).
    tile_iters: int | None = None


@dataclass(frozen=True)
class Preset:
    """A named way to run a task: one fit, or several averaged (an ensemble), chosen by a
    benchmark against the classical methods (benchmarks/quality.py for denoising against BM3D,
    benchmarks/inpaint_quality.py for inpainting against the classical fillers)."""

    about: str
    recipes: tuple[Recipe, ...]
    # > 0: more fits of the last recipe, from the seeds that follow, while all the fits' budgets
    # at the image's σ add up to at most this many iterations (:func:`members`).
    fill_iters: int = 0


# The DIP denoiser of Jo, Chun & Choi (ICCV 2021), with the loss of Pang, Zheng, Quan & Ji (CVPR
# 2021): the noisy image is the net's input, so the fit learns a denoiser of this image, and at
# every step the input is moved by fresh noise of σ (e) and the target is the image minus that
# noise (y − e). The two carry independent noise, so the fit is unbiased and does not copy its
# input's noise, with one pass of the net per step where Jo et al.'s SURE needs two (0.087 s
# against 0.19 per iteration on a 256² crop on 2 cores at width 64, for the same PSNR at the same
# iteration: benchmarks/README.md, "Denoising quality"). The running average of the outputs is an
# ensemble over those jitters (their "stochastic temporal ensemble"): it warms up so that it
# follows the fast early climb. The compact net runs at width 32: per iteration it climbs as fast
# as at 64 (within ±0.1 dB at 2,000 iterations on five crops of the acceptance set, ahead on the
# smooth ones) in 0.043 s instead of 0.087, and 128 is slower per iteration as well as per step
# (benchmarks/results/r2r-trials/README.md, "Width"). There is no automatic stop: the noise-level
# rule would stop it far too early (on F16 the averaged output's residual reached the noise floor
# between 800 and 900 iterations, the peak came at 1,700 at width 64), so each preset runs a
# budget known in advance.
R2R = Recipe("compact", width=32, iters=2000, input="observation", recorrupt=True, jitter_sigma=1.0,
             ema_warmup=9.0, stop="fixed", tile_iters=400)

# The fit overfits sooner the noisier the image: at σ = 50 the 18 fits of the acceptance set
# (width 64) peaked between 360 and 1,870 iterations (median ~1,150) and had lost up to 3 dB by
# 2,000; the mean gap to BM3D was flat from 1,000 to 1,200 and the worst image best at 1,200. At
# σ = 25 the mean still rises to 1,700 and is flat to 2,000 (benchmarks/quality_budgets.py). So
# above σ = 25 a recorrupted fit's budget is capped: 2,000 iterations at σ = 25 falling to 1,000
# at σ = 50, a power law in σ between them (beyond σ = 50, the same law, not measured). At width
# 32 one fit at σ = 50 is better at 1,000 than at 1,200 (−0.45 dB to BM3D on average against
# −0.47) and gives away at most 0.25 dB to its peak instead of 0.57 (CBSD68_0000, whose fits peak
# at 490–680); two fits averaged are level (−0.36 against −0.35), at most 0.28 from the peak
# instead of 0.61 (benchmarks/results/r2r-trials/README.md, "More seeds").
PEAK_ITERS = {25: 2000, 50: 1000}


def budget(recipe: Recipe, sigma: float) -> int:
    """The iterations of a preset's fit for noise of ``sigma`` (0-255 scale): the recipe's own,
    capped for a recorrupted fit above σ = 25 where it would otherwise overfit (:data:`PEAK_ITERS`)."""
    (s0, n0), (s1, n1) = sorted(PEAK_ITERS.items())
    if not recipe.recorrupt or sigma <= s0:
        return recipe.iters
    slope = math.log(n1 / n0) / math.log(s1 / s0)
    return min(recipe.iters, round(n0 * (sigma / s0) ** slope))


def members(preset: Preset, sigma: float) -> tuple[Recipe, ...]:
    """A preset's fits for noise of ``sigma`` (0-255 scale): its recipes, then, for a preset with a
    ``fill_iters``, more of its last recipe from the next seeds while the budgets at ``sigma``
    (:func:`budget`) add up to at most that. Where the noise caps each fit's budget, the time it
    frees goes to more fits averaged, which is where they pay most (benchmarks/results/r2r-trials/
    README.md, "More seeds")."""
    recipes = preset.recipes
    if preset.fill_iters:
        while sum(budget(r, sigma) for r in recipes) + budget(recipes[-1], sigma) <= preset.fill_iters:
            recipes = seeds(preset, len(recipes) + 1)
    return recipes


def seeds(preset: Preset, n: int) -> tuple[Recipe, ...]:
    """``n`` fits of a preset (``--fits``): its first ``n`` recipes, then its last from the seeds
    that follow."""
    recipes = list(preset.recipes[:n])
    while len(recipes) < n:
        recipes.append(replace(recipes[-1], seed_offset=recipes[-1].seed_offset + 1))
    return tuple(recipes)


# Two such fits from different seeds err differently (each draws its own recorruptions and starts
# from its own weights), so their average is better than either: at width 32 and 2,000 iterations
# +0.11 to +0.26 dB over one fit on four crops of the acceptance set at σ = 25, where two fits at
# width 64 and 1,200 iterations had gained +0.07 on F16 (the DIP paper's two runs: +0.57 dB).
# Each more fit gains less: on the acceptance set at σ = 25 one, two and three fits are 0.45, 0.24
# and 0.17 dB below BM3D on average (88, 174 and 258 s per 256²); at σ = 50 one, two, four and five
# fits of 1,000 iterations are 0.45, 0.36, 0.30 and 0.29 below (45 to 214 s). So where σ caps
# each fit's budget, `balanced` and `best` spend the time it frees on more fits (``fill_iters``):
# at σ = 50 `balanced` averages two fits (−0.36 dB, 89 s) and `best` five (−0.29, 214 s), at
# σ ≤ 25 one and two (benchmarks/results/r2r-trials/README.md, "More seeds"). ``--fits`` names
# the count.
PRESETS: dict[str, Preset] = {
    "fast": Preset("the balanced fit cut at 1,400 iterations (~60 s per 256² on 2 cores)",
                   (replace(R2R, iters=1400),)),
    "balanced": Preset("the compact net at width 32 fitted to the noisy image itself with a "
                       "recorrupted loss, 2,000 iterations (~88 s per 256²); at σ = 50 two fits of "
                       "1,000 (presets.budget) from two seeds, averaged (~89 s)", (R2R,), fill_iters=2400),
    "best": Preset("two balanced fits from seeds --seed and --seed + 1, averaged (~174 s per 256²); at "
                   "σ = 50 five fits of 1,000 (~214 s)", (R2R, replace(R2R, seed_offset=1)), fill_iters=5000),
}
# The presets `dip denoise` uses on a CPU when no --preset, --arch or --iters is given: `balanced`
# for an image fitted whole (up to 383 px a side with --tile auto: a 256² image in about 90 s),
# `fast` for each tile of one fitted in tiles, so that a 512² image (four tiles of 273²) takes
# under five minutes. On a CUDA GPU the default stays the compact net at --width auto
# (TASK_DEFAULTS), measured there. Measured on the acceptance set: benchmarks/README.md,
# "Denoising quality".
CPU_PRESET = "balanced"
CPU_TILED_PRESET = "fast"

# Inpainting: the DIP paper's hourglass at width 32 (TASK_DEFAULTS), fitted once (`fast`) or
# twice from other seeds and averaged (`best`). Measured by benchmarks/inpaint_quality.py (eight
# kinds of hole, four 256² images each, against biharmonic, Telea and Navier-Stokes): one fit is
# ahead of the fillers on average but 0.25-0.36 dB behind the best of them on large blocks and
# sparse random holes, where single fits differ most (each invents its own content: two seeds
# differed by up to 1.5 dB on a 64² block); the average of two is ahead on every kind, in about
# 200 s per 256² image on a 2-core CPU. It is the default on every device.
_INPAINT = TASK_DEFAULTS["inpaint"]
INPAINT = Recipe(_INPAINT["arch"], width=_INPAINT["width"], upsample=_INPAINT["upsample"],
                 iters=_INPAINT["iters"])
INPAINT_PRESETS: dict[str, Preset] = {
    "fast": Preset("one fit of the DIP paper's hourglass at width 32, stopped by WMV", (INPAINT,)),
    "best": Preset("two such fits from seeds --seed and --seed + 1, averaged",
                   (INPAINT, replace(INPAINT, seed_offset=1))),
}
# Each task's presets, and inpainting's default (when neither --preset nor --arch is given).
TASK_PRESETS: dict[str, dict[str, Preset]] = {"denoise": PRESETS, "inpaint": INPAINT_PRESETS}
INPAINT_PRESET = "best"
