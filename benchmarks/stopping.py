"""Early-stopping benchmark: how close `--stop auto` comes to the peak PSNR, and the time it saves.

    python benchmarks/stopping.py                                  # every task, 256×256 crops (CPU: days)
    python benchmarks/stopping.py --full --iters 3000 --jobs 4     # whole images (a GPU job)
    python benchmarks/stopping.py --tasks denoise --only House --sigmas 25
    python benchmarks/stopping.py --smoke                          # every task on a 32² synthetic image

Cases, one fit each (``--tasks`` picks; ``--jobs N`` runs N at once):

* ``denoise`` and ``two-stage``: the nine Set9 images at each σ of ``--sigmas`` (25 and 50), the
  noise added with the seed as ``dip … --add-noise`` does;
* ``inpaint``: kate and vase with their masks (known pixels found with ``--mask-known auto``),
  cropped around the holes;
* ``superres``: zebra ×4 in make-LR mode (Lanczos-2 downsampling), scored as the SR literature
  does: Y channel (BT.601), a 4-pixel border left out.

Every case is planned by the task's own planner (``dipcli.api.plan``) and fitted by ``run_plan``,
with the task's defaults (net from TASK_DEFAULTS, reg-noise, learning rate, precision, the stop
rule that ``--stop auto`` builds), so what is measured is what `dip` runs, the image fitted whole
(``--tile 0``). ``--arch``/``--width`` override.

Budgets. A stop rule can only be judged on a budget that runs past the PSNR peak, and its WMV
patience is a fraction of the budget, so the budget is part of what is measured. ``--iters``
sets the budget of denoise and two-stage (default: the CLI's; 3000 with ``--full``, the DIP
paper's, well past the peak); inpaint and superres run their own CLI budgets (3000 and 2000, the
paper's, which are what a user runs) unless ``--other-iters`` is given, e.g. for a smoke test.

One fit per case answers everything. It runs the whole budget (the loop sees a rule that never
stops), while :class:`Shadow` hands each of the loop's own Check objects to the auto rule (and,
when σ is known, to each of its parts alone) and records where each would have stopped and which
averaged output it would have written. The clean image is only used to score: the PSNR of the
averaged output at every check gives the peak, and the outputs each rule would have written are
scored as written (8-bit; inpainting with the known pixels kept; super-resolution on Y).

Per case: peak PSNR and its iteration, PSNR at the detected stop, the gap, iterations to stop,
the kept iteration, the fixed-budget PSNR, and wall time to the stop against the whole budget
(both from the same run, so both include the per-check metrics and the shadowed rules' small
cost; with ``--jobs`` > 1 the fits share the device and the seconds are not timings). For tuning
the rules offline, each row also holds a per-check trace: iteration, PSNR of the averaged output
(live, unquantised), its data loss (``ema_loss``), the clipping-corrected noise floor the
discrepancy rule compares it with (denoising), and the WMV windowed variance of the raw outputs.

Writes benchmarks/results/stopping/stopping[-<tag>].json (top-level ``median_gap_db`` and
``worst_gap_db`` over the denoising runs, denoise and two-stage together; summaries per task and
per σ; per-case rows) and .md. ``--smoke``: one synthetic 32² case per task, 10 iterations, into
a temporary folder (or ``--out``).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from common import (
    DATA,
    SMOKE_ITERS,
    SMOKE_SIZE,
    add_study_arguments,
    centre_crop_file,
    crop_file,
    device_name,
    hole_crop,
    into_study,
    mean,
    parallel_map,
    parse_smoke,
    results_folder,
    smoke_files,
    tempdir,
    write_results,
)

from dipcli import Check, Event, StopRule, load_mask, psnr, read_image

# internal: the study watches each stop rule inside the one loop (plans, events, the rules themselves)
from dipcli.api.execute import run_plan
from dipcli.api.inputs import TaskInput  # internal: plans as `dip` does, to score what it runs
from dipcli.api.plan import Plan, make_plan  # internal: plans as `dip` does, to score what it runs

# internal: plans as `dip` does, to score what it runs
from dipcli.api.presets import TASK_DEFAULTS, TWO_STAGE_DEFAULTS
from dipcli.api.spec import Options, make_spec  # internal: plans as `dip` does, to score what it runs

# internal: the stop rules are what this compares
from dipcli.optim.stopping import WMVStop, clipped_noise_variance, make_stop

RULES = ("auto", "discrepancy", "wmv")  # auto and each of its parts alone
TASKS = ("denoise", "two-stage", "inpaint", "superres")
DENOISING = ("denoise", "two-stage")  # the tasks with a noise model: σ given, every rule measured
INPAINT_CASES = ("kate", "vase")
SR_CASE, SR_FACTOR, SR_KERNEL = DATA / "sr" / "zebra_GT.png", 4, "lanczos2"
FULL_BUDGET = 3000  # the DIP paper's denoising budget, for whole-image (GPU) runs
Case = tuple[str, Path, float | None, argparse.Namespace]  # task, image, σ (0–255), the study's arguments


@dataclass
class Verdict:
    """What one rule would have done, had it been in charge."""

    rule: StopRule
    stop_iteration: int | None = None  # the check at which it fired
    reason: str = "budget"
    kept_iteration: int | None = None  # the check whose averaged output it would write
    kept: torch.Tensor | None = None


class Shadow:
    """A stop rule that never stops: it feeds every check to other rules and notes their verdicts.

    Running the full budget this way gives the true peak and every rule's choice from one fit.
    It also records, per check, what the rules decide on, so that their parameters can be tuned
    offline: the averaged output's data loss, the noise floor the discrepancy rule compares it
    with (when σ, on the 0–1 scale, is known), and the WMV score of a probe that sees every check
    (the rules stop listening once they fire; the probe does not).
    """

    name = "shadow"

    def __init__(self, rules: dict[str, StopRule], sigma: float | None) -> None:
        self.verdicts = {name: Verdict(rule) for name, rule in rules.items()}
        self.sigma = sigma
        self.ema_loss: dict[int, float] = {}
        self.noise_floor: dict[int, float] = {}
        self.wmv_variance: dict[int, float | None] = {}
        self._probe = WMVStop()

    def observe(self, check: Check) -> bool:
        self.ema_loss[check.iteration] = check.ema_loss
        if self.sigma is not None:
            self.noise_floor[check.iteration] = clipped_noise_variance(check.ema, self.sigma)
        self._probe.observe(check)
        self.wmv_variance[check.iteration] = self._probe.score
        for v in self.verdicts.values():
            if v.stop_iteration is not None:
                continue
            if v.rule.observe(check):
                v.kept_iteration, v.kept = check.iteration, check.ema.detach().clone()
            if v.rule.should_stop():
                v.stop_iteration, v.reason = check.iteration, v.rule.name
        return False

    def should_stop(self) -> bool:
        return False

    def describe(self) -> str:
        return " | ".join(f"{k}: {v.rule.describe()}" for k, v in self.verdicts.items())


class Peak:
    """Subscriber: the averaged output with the best PSNR so far (the loop updates its own in place)."""

    def __init__(self) -> None:
        self.psnr, self.iteration, self.ema = -np.inf, 0, None

    def on_event(self, e: Event) -> None:
        if e.psnr_ema is not None and e.psnr_ema > self.psnr:
            self.psnr, self.iteration, self.ema = e.psnr_ema, e.iteration, e.ema.detach().clone()


class Snapshots:
    """Subscriber: at each of ``iterations``, the averaged output, the seconds so far and the
    peak so far, so that one fit also scores the same fit with any of those shorter budgets (a
    seeded fit's first N iterations do not depend on its budget). ``peak`` is the fit's
    :class:`Peak`, subscribed before this one."""

    def __init__(self, iterations: Sequence[int], peak: Peak) -> None:
        self.iterations, self.taken, self.peak = set(iterations), {}, peak

    def on_event(self, e: Event) -> None:
        if e.iteration in self.iterations:
            self.taken[e.iteration] = {"ema": e.ema.detach().clone(), "seconds": e.elapsed,
                                       "peak_ema": self.peak.ema, "peak_iteration": self.peak.iteration}


def to_hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def as_written(pixels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``pixels`` quantised to the bit depth `dip` writes them at (that of the input)."""
    scale = 65535.0 if dtype == np.uint16 else 255.0
    return np.round(np.clip(pixels, 0, 1) * scale) / scale


def written_psnr(pixels: np.ndarray, reference: np.ndarray, dtype: np.dtype = np.dtype(np.uint8)) -> float:
    """PSNR of ``pixels`` after quantisation to ``dtype``, as `dip` would write them."""
    mse = float(np.mean((as_written(pixels, dtype) - reference) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def scorer(task: str, p: Plan) -> Callable[[np.ndarray], float]:
    """How the task's result is scored, as written: RGB PSNR; for inpainting with the known
    pixels kept (what `dip inpaint` writes); for super-resolution on Y with an F-pixel border."""
    dtype = p.image.dtype
    if task == "superres":
        factor = p.extra["factor"]
        return lambda x: float(psnr(as_written(x, dtype), p.reference, luma=True, border=factor))

    def score(x: np.ndarray) -> float:
        return written_psnr(p.problem.composite(x, p.image.pixels) if p.composite else x, p.reference, dtype)

    return score


PSNR_MEASURE = {"denoise": "RGB", "two-stage": "RGB", "inpaint": "RGB, known pixels kept",
                "superres": f"Y (BT.601), {SR_FACTOR}-pixel border"}


def task_options(args: argparse.Namespace, iters: int) -> Options:
    """The options `dip TASK` would hold with these flags (the image fitted whole: ``--tile 0``)."""
    from dipcli.api.spec import tile_count  # internal: plans as `dip` does, to score what it runs

    return Options(iters=iters, arch=args.arch, width=args.width, lr=args.lr, seed=args.seed,
                   device=args.device, precision=args.precision, tile=tile_count(0))


def sig4(x: float | None) -> float | None:
    """Four significant digits: losses and variances are ~1e-3 to 1e-6, where 4 decimals is nothing."""
    return None if x is None else float(f"{x:.4g}")


def watch(task: str, p: Plan, rules: Sequence[str], check_every: int | None = None,
          keep_images: bool = False, snapshots: Sequence[int] = ()) -> dict:
    """Fit a planned case for its whole budget with its stop rules shadowed; return the measures.

    ``rules`` names the verdicts wanted: ``auto`` is the rule the planner built into ``p.config``
    (exactly what ``--stop auto`` runs), any other name the rule ``make_stop`` gives for it.
    ``keep_images``: also return the averaged outputs at the peak and at each rule's stop
    (``images``), e.g. to score an ensemble of several fits. ``snapshots``: iterations at which
    to keep the averaged output and the peak so far (``snapshots`` in the result, see
    :class:`Snapshots`), to score shorter budgets of the same fit.
    """
    noise = p.problem.noise
    sigma = None if noise is None else noise.sigma
    config = p.config
    start = p.extra.get("stage1_end") or 0  # two-stage: WMV watches stage 2, as the task's does
    chosen = {name: config.stop if name == "auto" else make_stop(name, noise, config.iters, start=start)
              for name in rules}
    shadow, peak = Shadow(chosen, sigma), Peak()
    snaps = Snapshots(snapshots, peak)
    config = replace(config, stop=shadow, check_every=check_every or config.check_every)
    done = run_plan(replace(p, config=config), [peak, snaps])
    res = done.fit
    score = scorer(task, p)
    elapsed = {h["iteration"]: h["elapsed"] for h in res.history}
    peak_psnr = score(to_hwc(peak.ema))

    def verdict(v: Verdict) -> dict:
        stop_at = v.stop_iteration or res.iterations
        # A rule that never fired leaves the last average, as dip's loop does at the budget.
        fired = v.stop_iteration is not None and v.kept is not None
        psnr = score(to_hwc(v.kept) if fired else res.ema)
        to_stop = elapsed.get(stop_at, res.seconds) if v.stop_iteration else res.seconds
        found = {"stop_iteration": stop_at, "reason": v.reason,
                 "kept_iteration": v.kept_iteration if fired else res.iterations, "psnr": psnr,
                 "gap_db": peak_psnr - psnr, "seconds_to_stop": to_stop}
        if keep_images:
            found["image"] = to_hwc(v.kept) if fired else res.ema
        return found

    checks = [h["iteration"] for h in res.history]
    trace = {"iteration": checks,
             "psnr": [None if h["psnr_ema"] is None else round(h["psnr_ema"], 4) for h in res.history],
             "ema_loss": [sig4(shadow.ema_loss.get(i)) for i in checks],
             "wmv_variance": [sig4(shadow.wmv_variance.get(i)) for i in checks]}
    out = {
        "peak_psnr": peak_psnr, "peak_iteration": peak.iteration, "fixed_psnr": score(res.ema),
        "verdicts": {name: verdict(v) for name, v in shadow.verdicts.items()},
        "iterations": res.iterations, "seconds": res.seconds, "sec_per_iter": res.seconds / res.iterations,
        "net": f"{p.net.arch} w{p.net.width} {p.net.upsample}", "params": done.params,
        "precision": res.precision, "device": done.device, "check_every": config.check_every,
        "trace": trace,
    }
    if keep_images:
        out["peak_image"] = to_hwc(peak.ema)
    if snaps.taken:
        out["snapshots"] = {}
        for n, t in snaps.taken.items():
            image, peak_image = to_hwc(t["ema"]), to_hwc(t["peak_ema"])
            out["snapshots"][n] = {"image": image, "psnr": score(image), "seconds": t["seconds"],
                                   "peak_image": peak_image, "peak_psnr": score(peak_image),
                                   "peak_iteration": t["peak_iteration"]}
    if sigma is not None:
        trace["noise_floor"] = [sig4(shadow.noise_floor.get(i)) for i in checks]
        # The tolerance that would have stopped the discrepancy rule at the peak.
        floor, loss = shadow.noise_floor.get(peak.iteration), shadow.ema_loss.get(peak.iteration)
        out.update(residual_over_sigma2_at_peak=None if loss is None else loss / sigma**2,
                   noise_floor_over_sigma2_at_peak=None if floor is None else floor / sigma**2,
                   tolerance_at_peak=loss / floor if loss is not None and floor else None)
    return out


def plan_case(task: str, path: Path, sigma: float | None, o: Options, size: int,
              work: Path, **two_stage: object) -> Plan | None:
    """Crop the case's files into ``work``, read them as `dip` does, and plan the task's fit.

    ``two_stage`` overrides the two-stage command's option defaults (TWO_STAGE_DEFAULTS). None
    for an inpainting crop without holes (small ``size``): there is nothing to measure.
    """
    if task == "inpaint":
        # The mask's polarity (``--mask-known auto``) is decided on the whole mask: in a crop
        # around the holes they may well be the larger part.
        mask_path = path.with_name(f"{path.stem}_mask.png")
        mask, polarity = load_mask(mask_path, read_image(path).pixels.shape, "auto")
        window = hole_crop(mask, size) if size else (slice(None), slice(None))
        if mask[window].all():
            return None
        image = read_image(crop_file(path, window, work))
        src = TaskInput(image, path.name, clean=image, mask=read_image(crop_file(mask_path, window, work)))
        spec = make_spec("inpaint", o, has_clean=True, has_mask=True, mask_known=polarity)
        return make_plan(spec, src)
    src = TaskInput(read_image(centre_crop_file(path, size, work)), path.name)
    if task == "superres":
        spec = make_spec("superres", o, factor=SR_FACTOR, kernel=SR_KERNEL, make_lr=True)
    elif task == "two-stage":
        spec = make_spec("two-stage", o, sigma=sigma, add_noise=True, **{**TWO_STAGE_DEFAULTS, **two_stage})
    else:
        spec = make_spec("denoise", o, sigma=sigma, add_noise=True)
    return make_plan(spec, src)


def rescore_budget_stops(row: dict) -> dict:
    """A row measured before dip kept the last average at the budget, brought up to date.

    Until then a fit that ran out of budget wrote its rule's interim candidate; now it writes its
    last average, whose PSNR every row holds as ``fixed_psnr``. Rows made by this version are
    unchanged by it.
    """
    last = row["fixed_psnr"] if "fixed_psnr" in row else row["end_psnr"]  # two_stage.py's name
    if row["stop_reason"] == "budget" and row["kept_iteration"] != row["budget"]:
        row.update(stop_psnr=last, kept_iteration=row["budget"], rescored=True)
        if "gap_db" in row:
            row["gap_db"] = row["peak_psnr"] - last
    for v in row.get("rules", {}).values():
        if v["reason"] == "budget" and v["kept_iteration"] != row["budget"]:
            v.update(psnr=last, gap_db=row["peak_psnr"] - last,
                     kept_iteration=row["budget"], rescored=True)
    return row


def budget(task: str, args: argparse.Namespace) -> int:
    """The iteration budget of ``task`` in this study (see the module docstring, "Budgets")."""
    if task in DENOISING:
        return args.iters or (FULL_BUDGET if args.full else TASK_DEFAULTS[task]["iters"])
    return args.other_iters or TASK_DEFAULTS[task]["iters"]


def run_case(case: Case) -> dict | None:
    """One case (task, image, σ) from start to finish; a plain dict, so that it pickles for --jobs.

    None when the case has nothing to measure (an inpainting crop without holes).
    """
    task, path, sigma255, args = case
    work = tempdir()
    iters = budget(task, args)
    p = plan_case(task, path, sigma255, task_options(args, iters), args.size, work)
    if p is None:
        print(f"{task} {path.name}: skipped, the {args.size}-pixel crop has no holes; use a larger --size",
              flush=True)
        return None
    m = watch(task, p, RULES if task in DENOISING else ("auto",), args.check_every)
    verdicts = m.pop("verdicts")
    auto = verdicts.pop("auto")
    h, w = p.reference.shape[:2]
    row = {
        "task": task, "image": path.name, "sigma": sigma255, "size": [h, w], "budget": iters,
        "psnr_measure": PSNR_MEASURE[task],
        "peak_psnr": m.pop("peak_psnr"), "peak_iteration": m.pop("peak_iteration"),
        "fixed_psnr": m.pop("fixed_psnr"),
        "stop_psnr": auto["psnr"], "gap_db": auto["gap_db"],
        "stop_iteration": auto["stop_iteration"], "kept_iteration": auto["kept_iteration"],
        "stop_reason": auto["reason"],
        "seconds_full": m["seconds"], "seconds_to_stop": auto["seconds_to_stop"],
        "seconds_saved": m["seconds"] - auto["seconds_to_stop"],
        "saved_fraction": 1 - auto["seconds_to_stop"] / m.pop("seconds"),
        **m, "rules": verdicts,
    }
    sigma = "" if sigma255 is None else f" σ={sigma255:g}"
    print(f"{task} {row['image']}{sigma}: peak {row['peak_psnr']:.2f} dB @ {row['peak_iteration']}, "
          f"stop {row['stop_psnr']:.2f} dB @ {row['stop_iteration']} ({row['stop_reason']}), "
          f"{row['seconds_to_stop']:.0f}/{row['seconds_full']:.0f} s", flush=True)
    return row


def summary(rows: list[dict]) -> dict:
    """Gap to the peak (median, worst) and time saved; each part of auto alone where measured."""
    if not rows:
        return {"runs": 0, "median_gap_db": None, "worst_gap_db": None, "mean_saved_fraction": None}
    gaps = [r["gap_db"] for r in rows]
    out = {"runs": len(rows), "median_gap_db": statistics.median(gaps), "worst_gap_db": max(gaps),
           "mean_saved_fraction": mean(r["saved_fraction"] for r in rows)}
    for name in RULES[1:]:
        g = [r["rules"][name]["gap_db"] for r in rows if name in r["rules"]]
        if g:
            out[f"{name}_alone"] = {"median_gap_db": statistics.median(g), "worst_gap_db": max(g)}
    return out


def table(rows: list[dict], args: argparse.Namespace, device: str, summ: dict,
          by_task: dict[str, dict]) -> str:
    crop = "whole images" if not args.size else f"{args.size}×{args.size} crops"
    budgets = ", ".join(f"{t} {budget(t, args)}" for t in args.tasks)
    nets = ", ".join(sorted({f"{r['task']}: {r['net']}" for r in rows}))
    lines = [
        f"Early stopping, `--stop auto` (discrepancy + WMV for denoising with σ known, WMV alone "
        f"otherwise), {crop}, budgets {budgets} iterations, `dip`'s nets ({nets}), seed {args.seed}. "
        f"Device: {device}{' (fits run side by side: seconds are not timings)' if args.jobs > 1 else ''}. "
        "Peak = best averaged output at a check; PSNRs of the images as written (8-bit; inpainting "
        f"with the known pixels kept; super-resolution on Y with a {SR_FACTOR}-pixel border).",
        "",
        "| task | image | σ | peak dB (@ it) | stop dB | gap dB | stopped @ (rule) | kept it | fixed dB "
        "| s to stop / full | saved | disc. alone gap | WMV alone gap | tol. at peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def gap(r: dict, name: str) -> str:
        return f"{r['rules'][name]['gap_db']:.2f}" if name in r["rules"] else "—"

    for r in rows:
        tol, sigma = r.get("tolerance_at_peak"), r["sigma"]
        lines.append(
            f"| {r['task']} | {r['image']} | {'—' if sigma is None else f'{sigma:g}'} "
            f"| {r['peak_psnr']:.2f} ({r['peak_iteration']}) "
            f"| {r['stop_psnr']:.2f} | {r['gap_db']:.2f} | {r['stop_iteration']} ({r['stop_reason']}) "
            f"| {r['kept_iteration']} | {r['fixed_psnr']:.2f} "
            f"| {r['seconds_to_stop']:.0f} / {r['seconds_full']:.0f} | {100 * r['saved_fraction']:.0f} % "
            f"| {gap(r, 'discrepancy')} | {gap(r, 'wmv')} | {'—' if tol is None else f'{tol:.3f}'} |")
    if summ["runs"]:
        disc, wmv = summ["discrepancy_alone"], summ["wmv_alone"]
        lines.append(
            f"Denoising (denoise and two-stage, {summ['runs']} runs), gap to the peak with auto: "
            f"median {summ['median_gap_db']:.2f} dB, worst {summ['worst_gap_db']:.2f} dB; discrepancy "
            f"alone: median {disc['median_gap_db']:.2f}, worst {disc['worst_gap_db']:.2f}; WMV alone: "
            f"median {wmv['median_gap_db']:.2f}, worst {wmv['worst_gap_db']:.2f}. "
            f"Mean wall time saved: {100 * summ['mean_saved_fraction']:.0f} %.")
    for task, s in by_task.items():
        if s["runs"]:
            lines.append(f"{task} ({s['runs']} runs): gap median {s['median_gap_db']:.2f} dB, worst "
                         f"{s['worst_gap_db']:.2f} dB; mean time saved "
                         f"{100 * s['mean_saved_fraction']:.0f} %.")
    return "\n".join(lines[:4 + len(rows)]) + "\n\n" + "\n\n".join(lines[4 + len(rows):])


def images(only: str | None, count: int | None) -> list[Path]:
    chosen = sorted((DATA / "set9").glob("*.png"))
    if only:
        chosen = [p for p in chosen if only.lower() in p.name.lower()]
    return chosen[:count] if count else chosen


def cases(args: argparse.Namespace, smoke: bool = False) -> list[Case]:
    """Every (task, image, σ) to fit, in the order of the table.

    A smoke run: one case per task, all on a synthetic image (with a mask beside it, for inpaint).
    """
    if smoke:
        image, _ = smoke_files(tempdir())
        return [(task, image, args.sigmas[0] if task in DENOISING else None, args) for task in args.tasks]
    out: list[Case] = []
    for task in args.tasks:
        if task in DENOISING:
            out += [(task, path, s, args) for path in images(args.only, args.images) for s in args.sigmas]
            continue
        paths = ([DATA / "inpainting" / f"{n}.png" for n in INPAINT_CASES] if task == "inpaint"
                 else [SR_CASE])
        out += [(task, p, None, args) for p in paths if not args.only or args.only.lower() in p.name.lower()]
    return out


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, bool]:
    """The study's arguments, and whether this is a smoke run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_study_arguments(ap)
    ap.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    ap.add_argument("--other-iters", type=int, default=None,
                    help="budget of inpaint and superres (default: each task's CLI budget)")
    args, smoke = parse_smoke(ap, argv)
    if args.full:
        args.size = 0
    if smoke:  # a few iterations on a tiny synthetic image, a check every other one
        args.size, args.iters, args.other_iters = SMOKE_SIZE, SMOKE_ITERS, SMOKE_ITERS
        args.sigmas, args.check_every, args.jobs = args.sigmas[:1], 2, 1
    args.out = results_folder(args.out, smoke)  # not the study's folder: the namespace keys the fits
    return args, smoke


def main(argv: list[str] | None = None) -> dict:
    args, smoke = parse_args(argv)
    todo = cases(args, smoke)
    if not todo:
        raise SystemExit(f"no images found under {DATA}")
    rows = [rescore_budget_stops(r) for r in parallel_map(run_case, todo, args.jobs) if r is not None]
    device = device_name()
    denoising = [r for r in rows if r["task"] in DENOISING]
    summ = summary(denoising)
    by_task = {t: summary([r for r in rows if r["task"] == t]) for t in args.tasks}
    by_sigma = {f"{s:g}": summary([r for r in denoising if r["sigma"] == s]) for s in args.sigmas}
    payload = {
        **summ, "gaps_over": "denoise and two-stage runs", "by_task": by_task, "by_sigma": by_sigma,
        "budgets": {t: budget(t, args) for t in args.tasks}, "size": args.size, "arch": args.arch,
        "width": args.width, "precision": args.precision, "seed": args.seed,
        "check_every": rows[0]["check_every"], "jobs": args.jobs, "device": device, "rows": rows,
    }
    tag = f"-{args.tag}" if args.tag else ""
    write_results(f"stopping{tag}", payload, table(rows, args, device, summ, by_task),
                  folder=into_study(args.out, "stopping"))
    return payload


if __name__ == "__main__":
    main()
