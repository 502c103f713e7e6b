"""Two-stage denoising (issue 6): does a TV-regularised first stage beat plain DIP?

    python benchmarks/two_stage.py                                 # 256×256 crops (CPU: many hours)
    python benchmarks/two_stage.py --full --jobs 4                 # whole images, 3000 iterations (GPU)
    python benchmarks/two_stage.py --full --jobs 4 --variants dip tv-step \\
        --tv-weights 0.3 0.79 2.0 --tag lambda                     # choose the default λ from evidence
    python benchmarks/two_stage.py --smoke           # every variant on a 32² synthetic image, 10 iterations

The claim ("It Takes Two to Better Denoise"; README, "Two stages"): data + λ·TV for the first third of
the iterations, then plain DIP from the same weights, gives a higher peak PSNR than plain DIP
and a much higher PSNR at the end of the budget (on F16, σ = 25: peak 32.28 → 32.6 dB, end
29.0 → 30.1–30.4 dB after 3,000 iterations).

Images: F16 (denoising/F16_GT.png) and the other eight Set9 images (``--images N``: the first
N, F16 first), centre crops of ``--size`` or whole with ``--full``; σ of ``--sigmas`` (25, 50),
the noise added with the seed as ``dip two-stage --add-noise`` does. Variants, each planned by
the task's own ``dipcli.api.plan.plan_two_stage`` (so the same net, seed, learning rate, reg-noise,
precision and budget as `dip two-stage` with these options):

* ``dip``: λ = 0, i.e. plain DIP (bit for bit `dip denoise`, a test checks that);
* ``tv-step``: the report's method, the command's defaults (λ = 0.79 per-pixel TV, constant for
  the first third); with ``--tv-weights A B …`` one ``tv-step-λ`` variant per weight instead;
* ``tv-cosine``: the same λ decayed along a half cosine over the first third;
* ``prefilter``: stage 1 fits a TV-denoised copy of the noisy image (Chambolle, weight σ).

Budget: ``--iters`` (default: the task's two-stage budget; 3000 with ``--full``, the report's).
One fit per (image, σ, variant) runs the whole budget with the auto stop rule shadowed (see
benchmarks/stopping.py), which gives per fit: the peak PSNR of the averaged output (and its
iteration), the PSNR at the end of the budget, the PSNR where ``--stop auto`` would have
stopped, the PSNR curve (every check), and seconds per iteration (not a timing with ``--jobs``
> 1: the fits share the device). PSNRs of peak, end and stop are of the images as written (8-bit).

Writes benchmarks/results/two_stage/two_stage[-<tag>].json (rows with their curves; mean peak, end and
at-stop PSNR per variant and σ, and the mean paired difference from ``dip``), .md (per-fit
table and that summary) and .png (PSNR against iteration, a panel per image and σ, like the
report's Figure 11).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import (
    DATA,
    SMOKE_ITERS,
    SMOKE_SIZE,
    add_study_arguments,
    device_name,
    into_study,
    mean,
    parallel_map,
    parse_smoke,
    results_folder,
    smoke_files,
    tempdir,
    write_results,
)
from stopping import FULL_BUDGET, plan_case, rescore_budget_stops, task_options, watch

# internal: plans as `dip` does, to score what it runs
from dipcli.api.presets import TASK_DEFAULTS, TWO_STAGE_DEFAULTS
from dipcli.extras import needs  # internal: names a missing extra as the CLI does

TASK = "two-stage"
# name: options of `dip two-stage` that differ from its defaults
VARIANTS: dict[str, dict] = {
    "dip": {"tv_weight": 0.0},
    "tv-step": {},
    "tv-cosine": {"schedule": "cosine"},
    "prefilter": {"stage1": "prefilter"},
}


def images(only: str | None, count: int | None, smoke: bool = False) -> list[Path]:
    """F16 first, then the Set9 images other than its own copy of F16 (a smoke run: a synthetic one)."""
    if smoke:
        return [smoke_files(tempdir())[0]]
    chosen = [DATA / "denoising" / "F16_GT.png",
              *(p for p in sorted((DATA / "set9").glob("*.png")) if "f16" not in p.name.lower())]
    if only:
        chosen = [p for p in chosen if only.lower() in p.name.lower()]
    return chosen[:count] if count else chosen


def variants(args: argparse.Namespace) -> dict[str, dict]:
    """The variants asked for; ``--tv-weights`` turns tv-step into one variant per λ."""
    chosen = {name: VARIANTS[name] for name in args.variants}
    if args.tv_weights and "tv-step" in chosen:
        step = chosen.pop("tv-step")
        chosen.update({f"tv-step-{w:g}": {**step, "tv_weight": w} for w in args.tv_weights})
    return chosen


def run_variant(case: tuple[Path, float, str, dict, argparse.Namespace]) -> dict:
    """One (image, σ, variant) fit; a plain dict (curves as lists) so that it pickles for --jobs."""
    path, sigma, name, options, args = case
    work = tempdir()
    p = plan_case(TASK, path, sigma, task_options(args, args.iters), args.size, work, **options)
    m = watch(TASK, p, ("auto",), args.check_every)
    auto = m["verdicts"]["auto"]
    trace = m["trace"]
    row = {
        "image": path.name, "sigma": sigma, "variant": name,
        **{k: p.extra[k] for k in ("tv_weight", "schedule", "stage1", "stage1_frac", "stage1_end")},
        "size": list(p.reference.shape[:2]), "budget": args.iters, "net": m["net"],
        "precision": m["precision"],
        "peak_psnr": m["peak_psnr"], "peak_iteration": m["peak_iteration"], "end_psnr": m["fixed_psnr"],
        "stop_psnr": auto["psnr"], "stop_iteration": auto["stop_iteration"],
        "kept_iteration": auto["kept_iteration"], "stop_reason": auto["reason"],
        "seconds": m["seconds"], "sec_per_iter": m["sec_per_iter"],
        "curve": {"iteration": trace["iteration"], "psnr": trace["psnr"], "ema_loss": trace["ema_loss"]},
    }
    print(f"{row['image']} σ={sigma:g} {name}: peak {row['peak_psnr']:.2f} dB @ {row['peak_iteration']}, "
          f"end {row['end_psnr']:.2f} dB, auto stop {row['stop_psnr']:.2f} dB @ {row['stop_iteration']} "
          f"({row['stop_reason']}), {row['sec_per_iter']:.3f} s/it", flush=True)
    return row


def summary(rows: list[dict], names: list[str], sigmas: list[float]) -> list[dict]:
    """Mean peak, end and at-stop PSNR per variant and σ, and the mean paired difference from dip.

    The differences pair each fit with plain DIP's on the same image and σ, so an image that is
    easy for every variant does not move them.
    """
    base = {(r["image"], r["sigma"]): r for r in rows if r["variant"] == "dip"}
    out = []
    for sigma in sigmas:
        for name in names:
            sel = [r for r in rows if r["variant"] == name and r["sigma"] == sigma]
            if not sel:
                continue
            s = {"variant": name, "sigma": sigma, "images": len(sel)}
            for key in ("peak_psnr", "end_psnr", "stop_psnr"):
                s[f"mean_{key}"] = mean(r[key] for r in sel)
                paired = [r[key] - base[(r["image"], sigma)][key] for r in sel if (r["image"], sigma) in base]
                s[f"delta_{key}_vs_dip"] = mean(paired) if paired else None
            s["mean_peak_iteration"] = mean(r["peak_iteration"] for r in sel)
            s["mean_sec_per_iter"] = mean(r["sec_per_iter"] for r in sel)
            out.append(s)
    return out


def signed(x: float | None) -> str:
    return "—" if x is None else f"{x:+.2f}"


def table(rows: list[dict], summ: list[dict], args: argparse.Namespace, device: str) -> str:
    crop = "whole images" if not args.size else f"{args.size}×{args.size} centre crops"
    net = rows[0]["net"] if rows else "?"
    lines = [
        f"Two-stage denoising against plain DIP, {crop}, budget {args.iters} iterations, `dip two-stage`'s "
        f"net ({net}, {rows[0]['precision'] if rows else '?'}), seed {args.seed}, stage 1 = first "
        f"{TWO_STAGE_DEFAULTS['stage1_frac']:.3g} of the budget. Device: {device}"
        f"{' (fits run side by side: seconds are not timings)' if args.jobs > 1 else ''}. "
        "PSNR (dB) of the averaged output as written (8-bit): best at a check (peak), after the "
        "whole budget (end), and where `--stop auto` would have stopped (stop). Δ: mean paired "
        "difference from `dip` on the same images.",
        "",
        "| variant | σ | images | mean peak | Δ peak | mean end | Δ end | mean stop | Δ stop "
        "| mean peak it | s/iter |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summ:
        lines.append(
            f"| {s['variant']} | {s['sigma']:g} | {s['images']} | {s['mean_peak_psnr']:.2f} "
            f"| {signed(s['delta_peak_psnr_vs_dip'])} | {s['mean_end_psnr']:.2f} "
            f"| {signed(s['delta_end_psnr_vs_dip'])} | {s['mean_stop_psnr']:.2f} "
            f"| {signed(s['delta_stop_psnr_vs_dip'])} | {s['mean_peak_iteration']:.0f} "
            f"| {s['mean_sec_per_iter']:.3f} |")
    lines += [
        "",
        "| image | σ | variant | λ | peak dB (@ it) | end dB | stop dB (@ it, rule) | s/iter |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lam = "—" if r["variant"] == "prefilter" else f"{r['tv_weight']:g}"
        lines.append(
            f"| {r['image']} | {r['sigma']:g} | {r['variant']} | {lam} "
            f"| {r['peak_psnr']:.2f} ({r['peak_iteration']}) | {r['end_psnr']:.2f} "
            f"| {r['stop_psnr']:.2f} ({r['stop_iteration']}, {r['stop_reason']}) | {r['sec_per_iter']:.3f} |")
    return "\n".join(lines)


def plot(rows: list[dict], names: list[str], sigmas: list[float], path: Path) -> None:
    """PSNR of the averaged output against iteration: one panel per image (columns) and σ (rows),
    a line per variant, stage 1 shaded and the auto stop marked — the report's Figure 11.

    Without matplotlib the figure alone is left out: the tables are the study's results."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"the plot was skipped: {needs('matplotlib', prefer='bench')}")
        return

    pictures = list(dict.fromkeys(r["image"] for r in rows))
    fig, axes = plt.subplots(len(sigmas), len(pictures), squeeze=False, sharex=True,
                             figsize=(3.4 * len(pictures), 2.8 * len(sigmas)))
    colours = {name: f"C{i}" for i, name in enumerate(names)}
    for i, sigma in enumerate(sigmas):
        for j, image in enumerate(pictures):
            ax = axes[i][j]
            sel = [r for r in rows if r["image"] == image and r["sigma"] == sigma]
            if sel:
                ax.axvspan(0, sel[0]["stage1_end"], color="0.92", lw=0)
            for r in sel:
                c = r["curve"]
                ax.plot(c["iteration"], c["psnr"], lw=1, color=colours[r["variant"]], label=r["variant"])
                ax.plot([r["kept_iteration"]], [r["stop_psnr"]], "o", ms=3, color=colours[r["variant"]])
            done = [p for r in sel for p in r["curve"]["psnr"] if p is not None]
            if done:  # the interesting range: from a little below the end values to the peak
                top = max(done)
                ax.set_ylim(max(min(done), top - 8), top + 0.3)
            ax.set_title(f"{Path(image).stem}, σ = {sigma:g}", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel("PSNR (dB)", fontsize=8)
            if i == len(sigmas) - 1:
                ax.set_xlabel("iteration", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Plain DIP against two-stage (stage 1 shaded; dots: where --stop auto stops)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, bool]:
    """The study's arguments, and whether this is a smoke run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_study_arguments(ap)
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--tv-weights", type=float, nargs="+", default=None,
                    help="sweep λ of tv-step (default: the command's, "
                         f"{TWO_STAGE_DEFAULTS['tv_weight']:g})")
    args, smoke = parse_smoke(ap, argv)
    if args.full:
        args.size = 0
    if smoke:  # every variant, a few iterations on a tiny synthetic image
        args.size, args.iters, args.sigmas = SMOKE_SIZE, SMOKE_ITERS, args.sigmas[:1]
        args.check_every, args.jobs = 2, 1
    args.iters = args.iters or (FULL_BUDGET if args.full else TASK_DEFAULTS[TASK]["iters"])
    args.out = results_folder(args.out, smoke)  # not the study's folder: the namespace keys the fits
    return args, smoke


def main(argv: list[str] | None = None) -> dict:
    args, smoke = parse_args(argv)
    chosen = variants(args)
    todo = [(path, sigma, name, options, args) for path in images(args.only, args.images, smoke)
            for sigma in args.sigmas for name, options in chosen.items()]
    if not todo:
        raise SystemExit(f"no images found under {DATA}")
    rows = [rescore_budget_stops(r) for r in parallel_map(run_variant, todo, args.jobs)]
    device = device_name()
    names = list(chosen)
    summ = summary(rows, names, args.sigmas)
    payload = {
        "summary": summ, "budget": args.iters, "size": args.size, "arch": args.arch, "width": args.width,
        "precision": args.precision, "seed": args.seed, "variants": chosen,
        "two_stage_defaults": TWO_STAGE_DEFAULTS, "jobs": args.jobs, "device": device, "rows": rows,
    }
    tag = f"-{args.tag}" if args.tag else ""
    folder = into_study(args.out, "two_stage")
    write_results(f"two_stage{tag}", payload, table(rows, summ, args, device), folder=folder)
    plot(rows, names, args.sigmas, folder / f"two_stage{tag}.png")
    return payload


if __name__ == "__main__":
    main()
