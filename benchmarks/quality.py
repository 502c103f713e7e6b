"""Denoising quality per second against BM3D and NL-means, on one fixed acceptance set (issue 16).

    python benchmarks/quality.py                                   # every method, σ 25 and 50
    python benchmarks/quality.py --methods bm3d nlmeans fast --sigmas 15 25 50
    python benchmarks/quality.py --table-only                      # rebuild the tables from the log
    python benchmarks/quality.py --whole --sigmas 25               # Set9's whole images
    python benchmarks/quality.py --smoke                           # a tiny run of the whole script

The acceptance set, 18 images as 256² centre crops (``--crop``), chosen by fixed rules:

* the nine Set9 images (``set9/``);
* six CBSD68 images from ``texture_widths/``: the first two by file name in each of the paper's
  width classes 32, 64 and 128 (smooth to busy);
* three greyscale Set12 images there: Set12_01, Set12_05 and Set12_09 (every fourth).

Each image gets ``clip(x + N(0, σ²))`` noise from a seed derived from its name and σ, once: every
method denoises the same noisy array. Methods:

* ``bm3d``: the ``bm3d`` package (CBM3D for colour), σ given: the reference. Its licence is
  non-commercial, so it is a benchmark-only dependency (``pip install 'dipcli[bench]'``), never
  the product's;
* ``nlmeans``: scikit-image's ``denoise_nl_means`` with σ given (fast mode, 5×5 patches, 13×13
  search, h = 0.8 σ, the settings of its documentation);
* any `dip` preset by name (``fast``, ``balanced``, ``best``; see ``dip denoise --preset``),
  planned and fitted through the Python API exactly as ``dip denoise --sigma S --preset P`` runs
  it. Each DIP fit runs its whole budget while its automatic stop rule is shadowed
  (``stopping.watch``): the row holds the PSNR the user gets (the image at the automatic stop
  as the pilot of the Wiener stage, ``--wiener``, quantised as written; its seconds are added),
  the fit's alone (``fit_psnr``; rows logged before that stage hold only that, as ``psnr``), the
  best PSNR anywhere in the budget, and the seconds to the stop, so
  the loss due to stopping and the loss due to the method are separate numbers. A preset whose
  fits are another's with the same or a shorter budget (``balanced`` is ``best``'s first fit, at
  σ = 50 its first two; ``fast`` the first cut at 1,400 iterations) is read from those fits, or
  their snapshots at the budget for the run's σ, when the longer fits ran first (list ``best``
  first): the same seeded computation, not fitted twice (``fit_once``);
* ``default``: ``dip denoise --sigma S`` with no preset named, the CPU default: `balanced` on an
  image fitted whole (every 256² crop, whose fit it shares), `fast` on each tile of one fitted
  in tiles. For the whole-image table (``--whole --methods default``).

Rows are appended to a JSON Lines log (``--log``) as they finish, and a row already in the log is
not run again: the study resumes where it was cut off. Run one heavy process at a time. The
tables (benchmarks/results/quality/quality.md, .json; with ``--whole``
benchmarks/results/quality_whole/quality-whole.md, .json) give per method and σ the mean PSNR and SSIM, the
mean, median and worst gap to BM3D, and the mean seconds per image.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from common import (  # noqa: E402
    DATA,
    RESULTS,
    add_smoke_argument,
    centre_crop,
    device_name,
    parse_smoke,
    results_folder,
    smoke_image,
    study_folder,
)

from dipcli import read_image  # noqa: E402

if TYPE_CHECKING:
    from dipcli.api.plan import Plan  # internal: plans as `dip` does, to score what it runs
    from dipcli.api.presets import Recipe  # internal: plans as `dip` does, to score what it runs

SET9 = ("image_Baboon512rgb", "image_F16_512rgb", "image_House256rgb", "image_Lena512rgb",
        "image_Peppers512rgb", "kodim01", "kodim02", "kodim03", "kodim12")
SET12 = ("Set12_01", "Set12_05", "Set12_09")
HELDOUT_SET12 = ("Set12_03", "Set12_07")  # the held-out set's grey images (``heldout_set``)
BASELINES = ("bm3d", "nlmeans")
DEFAULT = "default"  # `dip denoise` with no --preset: the CPU default
# --whole: Set9's images of 512² and more (tiled by the defaults), and House (256², fitted whole).
WHOLE = ("image_F16_512rgb", "image_Baboon512rgb", "image_House256rgb", "image_Lena512rgb",
         "image_Peppers512rgb", "kodim01", "kodim02", "kodim03", "kodim12")
# Each DIP fit's measures and images, so that a preset sharing a fit with another (one fit cut
# at a shorter budget: ``fit_once``) reuses it. Not committed (.gitignore); --smoke runs without it.
FITS = RESULTS / "quality-fits"


def acceptance_set() -> dict[str, Path]:
    """name → file: Set9, six CBSD68 images (the first two of each width class), three Set12."""
    files = {name: DATA / "set9" / f"{name}.png" for name in SET9}
    root = DATA / "texture_widths"
    for width in ("32", "64", "128"):
        cbsd = sorted(p for p in (root / width).glob("[0-9][0-9][0-9][0-9].png"))
        files.update({f"CBSD68_{p.stem}": p for p in cbsd[:2]})
    for name in SET12:
        files[name] = next(root.glob(f"*/{name}.png"))
    return files


def heldout_set(grey: bool = True) -> dict[str, Path]:
    """name → file, for reporting on images no choice was made on: the 3rd and 4th CBSD68 image
    by file name in each width class (the acceptance set takes the first two) and, with ``grey``,
    two Set12 images the acceptance set skips (:data:`HELDOUT_SET12`)."""
    root = DATA / "texture_widths"
    files = {}
    for width in ("32", "64", "128"):
        cbsd = sorted(p for p in (root / width).glob("[0-9][0-9][0-9][0-9].png"))
        files.update({f"CBSD68_{p.stem}": p for p in cbsd[2:4]})
    for name in HELDOUT_SET12 if grey else ():
        files[name] = next(root.glob(f"*/{name}.png"))
    return files


def noisy_copy(clean: np.ndarray, name: str, sigma: float) -> np.ndarray:
    """The one noisy version every method sees: seeded by the image's name and σ."""
    seed = int.from_bytes(hashlib.sha256(f"{name}/{sigma:g}".encode()).digest()[:4], "little")
    rng = np.random.default_rng(seed)
    return np.clip(clean + rng.normal(0, sigma / 255, clean.shape), 0, 1).astype(np.float32)


def scores(out: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """PSNR and SSIM of ``out`` quantised to 8 bits, as any of the methods would write it."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    written = np.round(np.clip(out, 0, 1) * 255) / 255
    psnr = float(peak_signal_noise_ratio(clean, written, data_range=1.0))
    ssim = float(structural_similarity(clean, written, data_range=1.0, channel_axis=2,
                                       gaussian_weights=True, use_sample_covariance=False))
    return psnr, ssim


def run_baseline(method: str, noisy: np.ndarray, sigma: float) -> np.ndarray:
    s = sigma / 255
    if method == "bm3d":
        import bm3d

        if noisy.shape[2] == 3:
            return np.asarray(bm3d.bm3d_rgb(noisy, s), dtype=np.float32)
        return np.asarray(bm3d.bm3d(noisy[:, :, 0], s), dtype=np.float32)[:, :, None]
    from skimage.restoration import denoise_nl_means

    grey = noisy.shape[2] == 1
    out = denoise_nl_means(noisy[:, :, 0] if grey else noisy, h=0.8 * s, sigma=s, fast_mode=True,
                           patch_size=5, patch_distance=6, channel_axis=None if grey else 2)
    return np.asarray(out, dtype=np.float32).reshape(noisy.shape)


def plan_fits(preset: str | None, noisy: np.ndarray, clean: np.ndarray, sigma: float,
              iters: int | None) -> tuple[list[Plan], list[Recipe | None], Plan]:
    """The fits `dip denoise --preset P` makes of one image, each alone, with its recipe, and the
    plan (planned through the Python API as the CLI plans them)."""
    # internal: each fit of a preset is planned and watched on its own (its recipe, its cache key)
    from dipcli import Image
    from dipcli.api.inputs import TaskInput  # internal: plans as `dip` does, to score what it runs

    # internal: plans as `dip` does, to score what it runs
    from dipcli.api.plan import denoise_fits, make_plan
    from dipcli.api.spec import Options, make_spec  # internal: plans as `dip` does, to score what it runs

    o = Options(preset=preset, iters=iters)
    spec = make_spec("denoise", o, sigma=sigma, has_clean=True)
    image = Image(noisy, np.dtype(np.uint8), noisy.shape[2] == 1)
    plan = make_plan(spec, TaskInput(image, clean=Image(clean, np.dtype(np.uint8))))
    if plan.extra.get("preset", spec.preset) != spec.preset:  # the CPU default, tiled: `fast`
        spec = make_spec("denoise", replace(o, preset=plan.extra["preset"]), sigma=sigma)
    # Each fit alone: watching the first plan with its ensemble attached would fit them all.
    members = [replace(plan, ensemble=[]), *plan.ensemble]
    recipes = [fit.recipe for fit in denoise_fits(spec, (sigma / 255, False))]
    return members, recipes, plan


def run_dip(preset: str | None, noisy: np.ndarray, clean: np.ndarray, sigma: float, iters: int | None,
            case: str = "", cache: Path | None = None, snapshots: Sequence[int] = ()) -> dict:
    """One `dip denoise --preset P` run, each of its fits run for its whole budget with the
    automatic stop shadowed (``stopping.watch``); an ensemble's fits averaged as `dip` averages them."""
    members, recipes, plan = plan_fits(preset, noisy, clean, sigma, iters)
    fits = [fit_once(member, recipe, case, sigma, cache, snapshots)
            for member, recipe in zip(members, recipes, strict=True)]
    autos = [m["verdicts"]["auto"] for m in fits]
    fit_alone = np.mean([a["image"] for a in autos], axis=0)
    # What `dip` writes: the ensemble's mean as the pilot of the Wiener stage (--wiener), timed.
    start = time.perf_counter()
    written = plan.problem.composite(fit_alone, noisy)
    stage_seconds = time.perf_counter() - start
    psnr, ssim = scores(written, clean)
    fit_psnr, _ = scores(fit_alone, clean)
    peak, _ = scores(np.mean([m["peak_image"] for m in fits], axis=0), clean)
    return {"psnr": psnr, "ssim": ssim, "fit_psnr": fit_psnr, "peak_psnr": peak,
            "stop_gap_db": peak - fit_psnr,
            "seconds": sum(a["seconds_to_stop"] for a in autos) + stage_seconds,
            "stage_seconds": stage_seconds,
            "budget_seconds": sum(m["seconds"] for m in fits),
            "fits": [{"net": m["net"], "peak_psnr": m["peak_psnr"], "peak_iteration": m["peak_iteration"],
                      "psnr": a["psnr"], "stop_iteration": a["stop_iteration"], "stop_reason": a["reason"],
                      "seconds": a["seconds_to_stop"], "iterations_budget": m["iterations"],
                      "precision": m["precision"],
                      **({"read_from": m["read_from"]} if "read_from" in m else {})}
                     for m, a in zip(fits, autos, strict=True)],
            "tile": plan.tile}


def shorter_budgets(recipe: Recipe | None, iters: int, sigma: float, extra: Sequence[int] = ()) -> list[int]:
    """The budgets under ``iters`` at ``sigma`` of the presets whose fit is ``recipe`` but for its
    budget, and ``extra`` ones (``--snapshots``): the fit snapshots itself there, so that those
    presets (and budgets) are scored from it without a fit."""
    from dipcli.api.presets import PRESETS, budget  # internal: plans as `dip` does, to score what it runs

    if recipe is None:
        return []
    kind = replace(recipe, iters=0)
    same = {budget(r, sigma / 255) for p in PRESETS.values() for r in p.recipes
            if replace(r, iters=0) == kind}
    return sorted(n for n in same | set(extra) if n < iters)


def fit_key(member: Plan, recipe: Recipe | None, case: str, sigma: float) -> str:
    """The cache name of a fit but for its budget: ``{key}-{iters}.pkl`` in :data:`FITS`."""
    kind = replace(recipe, iters=0) if recipe is not None else None  # the budget is not the recipe's
    base = repr((case, sigma, kind, member.net, member.config.seed))
    return hashlib.sha256(base.encode()).hexdigest()[:16]


def fit_once(member: Plan, recipe: Recipe | None, case: str, sigma: float, cache: Path | None,
             snapshots: Sequence[int] = ()) -> dict:
    """One fit of a preset, watched for its whole budget, from the cache where it is there.

    One fit per (image, σ, recipe, net, seed) and budget, so `balanced`'s first fit is `fast`'s.
    A fit with a shorter budget is read from a longer fit of the same kind where that one kept a
    snapshot at the budget (``stopping.Snapshots``): with the same seed the first N iterations are
    the same computation whatever the budget, so the image, the seconds and the peak so far are
    what a fit with budget N gives, without running it again.
    """
    from stopping import watch

    iters = member.config.iters
    base = fit_key(member, recipe, case, sigma)
    if cache is not None:
        exact = cache / f"{base}-{iters}.pkl"
        if exact.exists():
            return pickle.loads(exact.read_bytes())
        for longer in sorted(cache.glob(f"{base}-*.pkl")):
            fit = pickle.loads(longer.read_bytes())
            snap = fit.get("snapshots", {}).get(iters)
            if snap is not None:
                auto = {"stop_iteration": iters, "reason": "budget", "kept_iteration": iters,
                        "psnr": snap["psnr"], "gap_db": snap["peak_psnr"] - snap["psnr"],
                        "seconds_to_stop": snap["seconds"], "image": snap["image"]}
                return {**fit, "iterations": iters, "seconds": snap["seconds"], "verdicts": {"auto": auto},
                        "peak_psnr": snap["peak_psnr"], "peak_iteration": snap["peak_iteration"],
                        "peak_image": snap["peak_image"],
                        "read_from": f"the {fit['iterations']}-iteration fit at {iters}"}
    fit = watch("denoise", member, ["auto"], keep_images=True,
                snapshots=shorter_budgets(recipe, iters, sigma, snapshots))
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        (cache / f"{base}-{iters}.pkl").write_bytes(pickle.dumps(fit))
    return fit


def run_whole(preset: str, noisy: np.ndarray, clean: np.ndarray, sigma: float, iters: int | None) -> dict:
    """`dip denoise --preset P` on a whole image, as a user runs it (tiles as the defaults choose);
    ``default``: with no preset named."""
    from dipcli import denoise

    start = time.perf_counter()
    result = denoise(noisy, sigma=sigma, preset=None if preset == DEFAULT else preset, iters=iters)
    seconds = time.perf_counter() - start
    psnr, ssim = scores(result.image, clean)
    s = result.settings
    return {"psnr": psnr, "ssim": ssim, "seconds": seconds, "fit_seconds": s["seconds"],
            "iterations": s["iterations"], "stop_reason": s["stop_reason"], "tiles": s.get("tiles"),
            "tile": s.get("tile"), "net": f"{s['arch']} w{s['width']}", "preset": s.get("preset")}


def run_one(method: str, name: str, path: Path | None, sigma: float, crop: int, iters: int | None,
            smoke: bool, whole: bool = False, cache: Path | None = None,
            snapshots: Sequence[int] = ()) -> dict:
    clean = smoke_image(crop or 48) if smoke else centre_crop(read_image(path).pixels, crop)
    noisy = noisy_copy(clean, name, sigma)
    row = {"image": name, "sigma": sigma, "method": method, "size": list(clean.shape)}
    if method in BASELINES:
        start = time.perf_counter()
        out = run_baseline(method, noisy, sigma)
        row["seconds"] = time.perf_counter() - start
        row["psnr"], row["ssim"] = scores(out, clean)
    elif whole:
        row.update(run_whole(method, noisy, clean, sigma, iters))
    else:
        row.update(run_dip(None if method == DEFAULT else method, noisy, clean, sigma, iters,
                           case=f"{name}/{crop}", cache=cache, snapshots=snapshots))
    return row


def summarise(rows: list[dict]) -> dict:
    """Per method and σ: means, and the gaps to BM3D on the same noisy images."""
    bm3d = {(r["image"], r["sigma"]): r["psnr"] for r in rows if r["method"] == "bm3d"}
    out: dict = {}
    for key in sorted({(r["method"], r["sigma"]) for r in rows}, key=lambda k: (k[1], k[0])):
        group = [r for r in rows if (r["method"], r["sigma"]) == key]
        gaps = [r["psnr"] - bm3d[(r["image"], r["sigma"])] for r in group
                if (r["image"], r["sigma"]) in bm3d]
        summary = {"images": len(group), "psnr": statistics.fmean(r["psnr"] for r in group),
                   "seconds": statistics.fmean(r["seconds"] for r in group)}
        if all("fit_psnr" in r for r in group):  # rows from before the return scored the fit alone
            summary["fit_psnr"] = statistics.fmean(r["fit_psnr"] for r in group)
        if any("ssim" in r for r in group):
            summary["ssim"] = statistics.fmean(r["ssim"] for r in group if "ssim" in r)
        if gaps:
            summary.update(gap=statistics.fmean(gaps), median_gap=statistics.median(gaps),
                           worst_gap=min(gaps), best_gap=max(gaps))
        peaks = [r for r in group if "peak_psnr" in r]
        if peaks:
            stop = [r["stop_gap_db"] for r in peaks]
            summary.update(peak_psnr=statistics.fmean(r["peak_psnr"] for r in peaks),
                           median_stop_gap=statistics.median(stop), worst_stop_gap=max(stop))
        out[f"{key[0]} @ {key[1]:g}"] = summary
    return out


def table(rows: list[dict], summary: dict, crop: int, heldout: bool = False) -> str:
    images = ("the held-out set (the 3rd and 4th CBSD68 image of each width class, Set12_03 and "
              "Set12_07 grey; no choice was made on them)" if heldout
              else "the acceptance set (Set9, six CBSD68, three Set12 grey)")
    what = (f"{crop}² centre crops of {images}" if crop
            else "whole images, as `dip denoise` runs them (tiles as the defaults choose)")
    lines = [f"Denoising, {what}, the same noisy file for every method. {device_name()}.", "",
             "| σ | method | images | PSNR | SSIM | gap to BM3D: mean / median / worst | fit alone "
             "| peak in budget | stop: median / worst loss | s per image |", "|---" * 10 + "|"]
    for key, s in summary.items():
        method, sigma = key.split(" @ ")
        gap = f"{s['gap']:+.2f} / {s['median_gap']:+.2f} / {s['worst_gap']:+.2f}" if "gap" in s else ""
        peak = f"{s['peak_psnr']:.2f}" if "peak_psnr" in s else ""
        stop = f"{s['median_stop_gap']:.2f} / {s['worst_stop_gap']:.2f}" if "median_stop_gap" in s else ""
        ssim = f"{s['ssim']:.4f}" if "ssim" in s else ""
        alone = f"{s['fit_psnr']:.2f}" if "fit_psnr" in s else ""
        lines.append(f"| {sigma} | {method} | {s['images']} | {s['psnr']:.2f} | {ssim} | {gap} | {alone} "
                     f"| {peak} | {stop} | {s['seconds']:.1f} |")
    methods = sorted({r["method"] for r in rows})
    sigmas = sorted({r["sigma"] for r in rows})
    for sigma in sigmas:
        lines += ["", f"Per image, σ = {sigma:g} (PSNR, dB):", "",
                  "| image | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for image in dict.fromkeys(r["image"] for r in rows):
            cells = []
            for m in methods:
                key = (image, sigma, m)
                r = next((r for r in rows if (r["image"], r["sigma"], r["method"]) == key), None)
                cells.append("" if r is None else f"{r['psnr']:.2f}")
            lines.append(f"| {image} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["bm3d", "nlmeans", "fast", "best"])
    ap.add_argument("--sigmas", type=float, nargs="+", default=[25, 50])
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--only", nargs="+", default=None, help="image names to run (default: the whole set)")
    ap.add_argument("--set", choices=["acceptance", "heldout"], default="acceptance",
                    help="the images: the acceptance set (choices are made on it) or the held-out set")
    ap.add_argument("--iters", type=int, default=None, help="override each preset's budget")
    ap.add_argument("--snapshots", type=int, nargs="+", default=[],
                    help="more budgets at which each fit keeps its image (for quality_budgets.py)")
    ap.add_argument("--log", type=Path, default=None,
                    help="the rows (default: the study's, results/quality/quality.jsonl or, with --whole, "
                    "results/quality_whole/quality-whole.jsonl)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--whole", action="store_true", help="Set9's whole images (not crops: WHOLE), each "
                    "denoised as `dip denoise` runs it; results quality-whole.*")
    add_smoke_argument(ap)
    args, smoke = parse_smoke(ap, argv)
    study, stem = ("quality_whole", "quality-whole") if args.whole else ("quality", "quality")
    folder = results_folder(args.out, smoke, study)
    folder.mkdir(parents=True, exist_ok=True)
    args.log = args.log or study_folder(study) / f"{stem}.jsonl"
    if args.whole:
        args.crop = 0
    if smoke:
        images: dict[str, Path | None] = {"card": None}
        args.methods, args.sigmas, args.crop, args.iters = ["bm3d", "nlmeans", "fast"], [25], 32, 10
        args.log = folder / f"{stem}.jsonl"
    elif args.whole:
        images = {image: DATA / "set9" / f"{image}.png" for image in WHOLE}
    else:
        images = acceptance_set() if args.set == "acceptance" else heldout_set()
    if args.only and not smoke:
        images = {k: v for k, v in images.items() if k in args.only}
    done = {}
    if args.log.exists():
        for line in args.log.read_text().splitlines():
            r = json.loads(line)
            done[(r["image"], r["sigma"], r["method"])] = r
    if not args.table_only:
        for sigma in args.sigmas:
            for method in args.methods:
                for name, path in images.items():
                    if (name, sigma, method) in done:
                        continue
                    row = run_one(method, name, path, sigma, args.crop, args.iters, smoke, args.whole,
                                  cache=None if smoke else FITS, snapshots=args.snapshots)
                    done[(name, sigma, method)] = row
                    with args.log.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(f"{name} σ={sigma:g} {method}: {row['psnr']:.2f} dB, {row['seconds']:.1f} s"
                          + (f" (peak {row['peak_psnr']:.2f})" if "peak_psnr" in row else ""), flush=True)
    rows = list(done.values())
    summary = summarise(rows)
    payload = {"device": device_name(), "crop": args.crop, "images": list(images), "summary": summary,
               "rows": rows}
    (folder / f"{stem}.json").write_text(json.dumps(payload, indent=1) + "\n")
    (folder / f"{stem}.md").write_text(table(rows, summary, args.crop, args.set == "heldout"))
    print(f"wrote {folder / f'{stem}.md'}")


if __name__ == "__main__":
    main()
