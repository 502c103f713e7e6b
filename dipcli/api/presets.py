"""Each task's defaults and named presets: data, each entry with where it was measured.

The measurements live in ``benchmarks/results/`` (its README indexes the studies); this module only
says which study chose what. A preset is one fit or several averaged (an ensemble), each fit a
:class:`Recipe`: the net and how to fit it.

References: Ulyanov, Vedaldi & Lempitsky, "Deep Image Prior", CVPR 2018 (the hourglass, the
average of two runs); Jo, Chun & Choi, "Rethinking Deep Image Prior for Denoising", ICCV 2021
(the noisy image as the net's input); Pang, Zheng, Quan & Ji, "Recorrupted-to-Recorrupted",
CVPR 2021 (the loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from dipcli.api.arguments import MAX_FITS

# Per task: the net without a preset (``arch``, ``width``, ``upsample``, ``iters``), the net on a CUDA
# GPU (``gpu_arch``, ``gpu_width``: results/width_psnr), and with --tile auto the tile side the
# default nets were tuned on (``tile``, for the nets in ``tiled``: results/denoise, results/lean).
TASK_DEFAULTS: dict[str, dict] = {
    "denoise": dict(arch="compact", upsample=None, iters=1200, tile=256, tiled=("compact", "lean"),
                    gpu_arch="compact", gpu_width="auto"),
    "two-stage": dict(arch="compact", upsample=None, iters=1200, tile=256, tiled=("compact",),
                      gpu_width="auto"),
    "inpaint": dict(arch="original", width=32, upsample="nearest", iters=1500),  # results/inpaint
    "superres": dict(arch="compact", upsample=None, iters=2000),  # results/superres
}

# The report's two-stage method: λ·TV, λ constant for the first third (results/two_stage).
TWO_STAGE_DEFAULTS = dict(tv_weight=0.79, stage1_frac=1 / 3, schedule="step", tv="anisotropic", stage1="tv")


@dataclass(frozen=True)
class Recipe:
    """One fit of a preset: the net and how to fit it (None: the net's or the user's own)."""

    arch: str
    width: int | None = None
    upsample: str | None = None
    iters: int = 1200
    input: str = "code"  # "observation": the noisy image is the net's input (FitConfig.input)
    recorrupt: bool = False  # Recorrupted-to-Recorrupted as the data loss (optim.losses.Recorrupted)
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
    """A named way to run a task: one fit, or several averaged, and where it was measured."""

    about: str
    recipes: tuple[Recipe, ...]
    # > 0: more fits of the last recipe, from the seeds that follow, while all the fits' budgets
    # at the image's σ add up to at most this many iterations (:func:`members`).
    fill_iters: int = 0


# The recorrupted fit of the noisy image itself: compact net at width 32, jitter σ, average warming
# up, a fixed budget (results/quality, results/explore/r2r-trials); later tiles from the first's
# weights, 400 iterations each (results/explore/warm_tiles.jsonl).
R2R = Recipe("compact", width=32, iters=2000, input="observation", recorrupt=True, jitter_sigma=1.0,
             ema_warmup=9.0, stop="fixed", tile_iters=400)

# A recorrupted fit's budget by σ (0–1 scale): it overfits sooner the noisier the image; a power law
# between these two, the same law beyond them (results/quality_budgets, results/explore/r2r-trials).
PEAK_ITERS = {25 / 255: 2000, 50 / 255: 1000}
# Correlated noise (a photo's) by its level σ × correlation width (CameraNoise.budget_level): the
# law above up to 50, then much steeper: the net fits strong blotchy noise within a few hundred
# iterations and loses 1–2 dB by the white law's budget (results/camera/budget: acceptance-set crops
# through the simulated camera at shot 0.012 and 0.03, each traced to 2,000 iterations).
CORRELATED_PEAK_ITERS = {50 / 255: 1000, 80 / 255: 220}
MIN_ITERS = 150  # no recorrupted budget below this: the average needs that long to settle

# Denoising presets (results/quality: 18 crops at σ = 15, 25, 50 against BM3D and NL-means;
# results/quality_heldout: 7 more). Each writes the noisy image filtered again with the fit as
# pilot (the Wiener stage, physics.wiener), which recovers much of what a short fit misses: 800
# iterations and the stage are within about 0.15 dB of 2,000 and the stage at σ = 15 and 25, in
# two fifths of the time (results/camera/wiener_budget.md, five acceptance-set crops at 256²).
PRESETS: dict[str, Preset] = {
    "fast": Preset("one recorrupted fit of 800 iterations (~60 s per 256² on 2 cores), or where the "
                   "noise caps each fit's budget several, adding up to at most that; the CPU default",
                   (replace(R2R, iters=800),), fill_iters=800),
    "balanced": Preset("the compact net at width 32 fitted to the noisy image itself with a "
                       "recorrupted loss, 2,000 iterations (~140 s per 256²); at σ = 50 two fits of "
                       "1,000 from two seeds, averaged", (R2R,), fill_iters=2400),
    "best": Preset("two balanced fits from seeds --seed and --seed + 1, averaged (twice balanced's time); at "
                   "σ = 50 five fits of 1,000", (R2R, replace(R2R, seed_offset=1)), fill_iters=5000),
}
# `dip denoise` on a CPU without --preset or --arch, an image fitted whole or in tiles (every
# tile after the first then from the first one's weights, Recipe.tile_iters); on a CUDA GPU the
# compact net at --width auto (TASK_DEFAULTS).
CPU_PRESET = "fast"

# Inpainting: the DIP paper's hourglass at width 32, once or averaged over two seeds
# (results/inpaint_quality: eight kinds of hole against biharmonic, Telea and Navier-Stokes).
_INPAINT = TASK_DEFAULTS["inpaint"]
INPAINT = Recipe(_INPAINT["arch"], width=_INPAINT["width"], upsample=_INPAINT["upsample"],
                 iters=_INPAINT["iters"])
INPAINT_PRESETS: dict[str, Preset] = {
    "fast": Preset("one fit of the DIP paper's hourglass at width 32, stopped by WMV", (INPAINT,)),
    "best": Preset("two such fits from seeds --seed and --seed + 1, averaged",
                   (INPAINT, replace(INPAINT, seed_offset=1))),
}
INPAINT_PRESET = "best"
TASK_PRESETS: dict[str, dict[str, Preset]] = {"denoise": PRESETS, "inpaint": INPAINT_PRESETS}


def budget(recipe: Recipe, sigma: float, correlated: bool = False) -> int:
    """The iterations of a preset's fit for noise of level ``sigma`` (0–1 scale; for correlated
    noise σ × its correlation width): the recipe's own, capped for a recorrupted fit above the
    lowest level of :data:`PEAK_ITERS` by its law, or beyond the highest of
    :data:`CORRELATED_PEAK_ITERS`'s by that law where the noise is ``correlated``."""
    if not recipe.recorrupt or sigma <= min(PEAK_ITERS):
        return recipe.iters
    table = CORRELATED_PEAK_ITERS if correlated and sigma > min(CORRELATED_PEAK_ITERS) else PEAK_ITERS
    (s0, n0), (s1, n1) = sorted(table.items())
    slope = math.log(n1 / n0) / math.log(s1 / s0)
    return max(MIN_ITERS, min(recipe.iters, round(n0 * (sigma / s0) ** slope)))


def members(preset: Preset, sigma: float, correlated: bool = False) -> tuple[Recipe, ...]:
    """A preset's fits for noise of level ``sigma`` (0–1 scale, as :func:`budget` takes it): its
    recipes, then, for a preset with a ``fill_iters``, more of its last recipe from the next seeds
    while the budgets add up to at most that (and at most ``--fits``' limit): the time a capped
    budget frees goes to more fits."""
    recipes = preset.recipes
    if preset.fill_iters:
        def total(rs: tuple[Recipe, ...]) -> int:
            return sum(budget(r, sigma, correlated) for r in rs)

        while (len(recipes) < MAX_FITS
               and total(recipes) + budget(recipes[-1], sigma, correlated) <= preset.fill_iters):
            recipes = seeds(preset, len(recipes) + 1)
    return recipes


def seeds(preset: Preset, n: int) -> tuple[Recipe, ...]:
    """``n`` fits of a preset (``--fits``): its first ``n`` recipes, then its last from the seeds
    that follow."""
    recipes = list(preset.recipes[:n])
    while len(recipes) < n:
        recipes.append(replace(recipes[-1], seed_offset=recipes[-1].seed_offset + 1))
    return tuple(recipes)
