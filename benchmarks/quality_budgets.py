"""How a recorrupted fit's PSNR depends on its budget, read off `best`'s kept traces, per σ.

    python benchmarks/quality.py --methods best --sigmas 25 50 --iters 2000 \
        --log /tmp/best2000.jsonl                                  # fits and keeps the traces
    python benchmarks/quality_budgets.py --sigmas 25 50       # results/quality_budgets/quality_budgets.md

`best`'s fits in ``benchmarks/quality.py``'s fit cache (``results/quality-fits/``, not committed)
keep the PSNR of the averaged output every 10 iterations of their whole budget: 2,000 iterations
(above σ = 25 `best`'s own budget is capped, hence ``--iters 2000``).
`results/quality_budgets/quality_budgets.md` holds the width-32 fit of today's presets at σ = 25;
`results/archive/quality_budgets-width64.md` the width-64 fit of the presets before (σ = 25, and
σ = 50 from the fits run before the cap, `results/archive/quality-best2000-sigma50.jsonl`), where
the cap comes from. A seeded fit's
first N iterations do not depend on its budget, so the PSNR at iteration N of that trace is what a
budget of N gives (as a float: the written 8-bit image differs by a few hundredths of a dB). For
each σ and budget this writes the mean, median and worst gap to BM3D on the acceptance set, and
per image where the fit peaked: the numbers behind ``dipcli.api.presets.budget`` and the presets'
budgets. No fitting: seconds.
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
from pathlib import Path

from common import (  # noqa: E402
    SMOKE_SIZE,
    add_smoke_argument,
    centre_crop,
    parse_smoke,
    results_folder,
    smoke_image,
    study_folder,
)
from quality import (  # noqa: E402
    FITS,
    acceptance_set,
    fit_key,
    fit_once,
    noisy_copy,
    plan_fits,
    run_baseline,
    scores,
)

from dipcli import read_image  # noqa: E402

FULL = 2000  # the budget the traces were kept for
SMOKE_FULL = 40  # a smoke run's one fit: a trace of four checks


def kept(fit: dict) -> dict:
    return {"trace": fit["trace"], "peak_psnr": fit["peak_psnr"], "peak_iteration": fit["peak_iteration"]}


def traces(sigma: float, crop: int) -> dict[str, dict]:
    """image → the trace of `best`'s full-budget fit at ``sigma`` (images without one are left out)."""
    out = {}
    for name, path in acceptance_set().items():
        clean = centre_crop(read_image(path).pixels, crop)
        noisy = noisy_copy(clean, name, sigma)
        members, recipes, _ = plan_fits("best", noisy, clean, sigma, None)
        cached = FITS / f"{fit_key(members[0], recipes[0], f'{name}/{crop}', sigma)}-{FULL}.pkl"
        if cached.exists():
            out[name] = kept(pickle.loads(cached.read_bytes()))
    return out


def smoke_traces(folder: Path, sigma: float) -> tuple[dict[str, dict], dict]:
    """A smoke run's traces and BM3D scores: one short `best` fit of a synthetic card."""
    clean = smoke_image(SMOKE_SIZE)
    noisy = noisy_copy(clean, "card", sigma)
    members, recipes, _ = plan_fits("best", noisy, clean, sigma, SMOKE_FULL)
    fit = fit_once(members[0], recipes[0], f"card/{SMOKE_SIZE}", sigma, folder / "fits")
    bm3d = scores(run_baseline("bm3d", noisy, sigma), clean)[0]
    return {"card": kept(fit)}, {("card", sigma): bm3d}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigmas", type=float, nargs="+", default=[25, 50])
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--budgets", type=int, nargs="+",
                    default=[300, 500, 700, 900, 1000, 1100, 1200, 1400, 1600, 1800, 2000])
    ap.add_argument("--out", type=Path, default=None)
    add_smoke_argument(ap)
    args, smoke = parse_smoke(ap, argv)
    folder = results_folder(args.out, smoke, "quality_budgets")
    folder.mkdir(parents=True, exist_ok=True)
    if smoke:
        args.sigmas, args.budgets = [25], [10, 20, 30, 40]
    else:
        log = study_folder("quality") / "quality.jsonl"
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        bm3d = {(r["image"], r["sigma"]): r["psnr"] for r in rows if r["method"] == "bm3d"}
    lines = ["PSNR of `best`'s averaged output at iteration N of its 2,000-iteration fit, as the gap to "
             "BM3D (dB) on the acceptance set (256² crops).", ""]
    payload: dict = {}
    for sigma in args.sigmas:
        if smoke:
            fits, bm3d = smoke_traces(folder, sigma)
        else:
            fits = traces(sigma, args.crop)
        if not fits:
            continue
        lines += [f"## σ = {sigma:g} ({len(fits)} images)", "",
                  "| budget | gap to BM3D: mean / median / worst "
                  "| loss to each fit's own peak: mean / worst |",
                  "|---|---|---|"]
        table = {}
        for n in args.budgets:
            gaps, losses = [], []
            for name, f in fits.items():
                psnr = f["trace"]["psnr"][f["trace"]["iteration"].index(n)]
                gaps.append(psnr - bm3d[(name, sigma)])
                losses.append(f["peak_psnr"] - psnr)
            table[n] = {"mean_gap": statistics.fmean(gaps), "median_gap": statistics.median(gaps),
                        "worst_gap": min(gaps), "mean_loss": statistics.fmean(losses),
                        "worst_loss": max(losses)}
            t = table[n]
            lines.append(f"| {n} | {t['mean_gap']:+.2f} / {t['median_gap']:+.2f} / {t['worst_gap']:+.2f} "
                         f"| {t['mean_loss']:.2f} / {t['worst_loss']:.2f} |")
        peaks = {name: f["peak_iteration"] for name, f in fits.items()}
        lines += ["", "Peak iteration per image: " + ", ".join(f"{k} {v}" for k, v in sorted(
            peaks.items(), key=lambda kv: kv[1])) + ".", ""]
        payload[f"{sigma:g}"] = {"images": len(fits), "budgets": table, "peaks": peaks}
    (folder / "quality_budgets.md").write_text("\n".join(lines) + "\n")
    (folder / "quality_budgets.json").write_text(json.dumps(payload, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
