"""Does `--width auto` pay? Denoising PSNR at widths 32/64/128 and auto, against the best (oracle) width.

    cd benchmarks
    python width_psnr.py                          # 256×256 centre crops (CPU: hours)
    python width_psnr.py --full --jobs 4          # whole images, 4 fits side by side (GPU)
    python width_psnr.py --smoke                  # one synthetic 32² image, 10 iterations per width
    python width_psnr.py --only House,0003 --tag two        # just those images

Issue 4's deciding measurement. `--width auto` (dipcli/texture.py) was fitted to the paper's width
labels and scored by how often it agrees with them (texture_width.py); what matters to a user is
PSNR. For every image: `dip denoise IMAGE --sigma 25 --add-noise --seed 0`, the real CLI with the
default net, stop rule and budget (or `--iters`/`--stop` if given), once with `--width auto` and
once at each fixed width. The oracle is the width with the best PSNR for that image.

Two PSNRs per fit: `psnr`, of the output the CLI writes (where its stop rule left it), and
`peak_psnr`, the best seen along the run (what an ideal stop rule would keep). Both are reported,
since a width can look better or worse through the stop rule alone.

Aims (from the issue): auto within 0.2 dB of the oracle on average, and better on average than
every single fixed width; the second decides whether auto becomes the default for denoise and
two-stage.

Images: every Set9 image (their labels are those of the identical `CBM3D_*` copies in
texture_widths, which are therefore not drawn again), plus `--per-class` images from each label
class of texture_widths, evenly spaced in name order, half of them greyscale where the class has
greyscale images. The labels are the paper's for the whole image; a 256×256 crop is a different
picture (and the estimator sees its size), so the crop runs test auto against the oracle, not
against the labels.

Fits are independent tasks (`--jobs`, common.parallel_map). Auto runs first; the fixed width it
picked is then not run again but read from the auto run, which is the same fit bit for bit (same
image, noise, seed and net: checked on a CPU smoke run, equal PSNR, loss and output file). With
`--no-reuse` every width is fitted anyway and the table reports how far the auto run and its
twin differ (a determinism check on the device at hand).

Writes benchmarks/results/width_psnr/width_psnr[-<tag>].json and .md (or into `--out`).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
from common import (
    DATA,
    SMOKE_ITERS,
    SMOKE_SIZE,
    add_smoke_argument,
    centre_crop_file,
    device_name,
    into_study,
    load_labels,
    mean,
    parallel_map,
    parse_smoke,
    results_folder,
    run_dip,
    smoke_files,
    tempdir,
    write_results,
)

from dipcli.texture import WIDTHS  # noqa: E402  # internal: the texture features are what this fits

AUTO = "auto"
GAP_AIM = 0.2  # dB: the "auto within 0.2 dB of the oracle on average"


@dataclass(frozen=True)
class Picture:
    """One test image: where it is, the name the tables use, and the paper's width label."""

    key: str  # "set9/kodim01", "128/0003": unique, readable
    path: Path
    label: int
    colour: bool


def is_colour(path: Path) -> bool:
    return len(iio.improps(path).shape) == 3


def evenly(items: list, k: int) -> list:
    """``k`` of ``items`` spread evenly through the list (the middle of each of k equal runs)."""
    k = min(k, len(items))
    return [items[int((i + 0.5) * len(items) / k)] for i in range(k)]


def labelled() -> list[Picture]:
    """Set9, then every other texture_widths image by label and name, each with its paper label."""
    labels = load_labels()
    by_name = {Path(f).name: w for f, w in labels}
    out = []
    for path in sorted((DATA / "set9").glob("*.png")):
        twin = "CBM3D_" + path.name.removeprefix("image_")
        if twin not in by_name:
            raise SystemExit(f"{path.name}: no {twin} in texture_widths/labels.csv to take its label from")
        out.append(Picture(f"set9/{path.stem}", path, by_name[twin], True))
    for width in WIDTHS:
        for f in sorted(f for f, w in labels if w == width and not Path(f).name.startswith("CBM3D_")):
            path = DATA / "texture_widths" / f
            out.append(Picture(f"{width}/{path.stem}", path, width, is_colour(path)))
    return out


def pictures(per_class: int, only: str | None) -> list[Picture]:
    """The images to run: those matching ``only`` if given, else Set9 and a balanced draw.

    The draw is ``per_class`` texture_widths images per label, half greyscale where the class has
    any, evenly spaced in name order: every run and device gets the same set.
    """
    every = labelled()
    if only:
        wanted = [s.strip().lower() for s in only.split(",") if s.strip()]
        return [p for p in every if any(s in p.key.lower() for s in wanted)]
    chosen = [p for p in every if p.key.startswith("set9/")]
    for width in WIDTHS:
        pool = [p for p in every if p.label == width and not p.key.startswith("set9/")]
        colour = [p for p in pool if p.colour]
        grey = [p for p in pool if not p.colour]
        n_grey = min(len(grey), per_class // 2)
        n_colour = min(len(colour), per_class - n_grey)
        n_grey = min(len(grey), per_class - n_colour)
        chosen += sorted(evenly(colour, n_colour) + evenly(grey, n_grey), key=lambda p: p.key)
    return chosen


def smoke_pictures() -> list[Picture]:
    """A smoke run's one picture: a synthetic image, with a made-up label."""
    return [Picture("smoke/card", smoke_files(tempdir())[0], 64, True)]


def fit(task: dict) -> dict:
    """One `dip denoise` run (a worker task: plain dict in, plain dict out)."""
    args = ["denoise", task["input"], "--sigma", str(task["sigma"]), "--add-noise",
            "--seed", str(task["seed"]), "--width", str(task["width"]), "-o", task["output"]]
    if task["iters"]:
        args += ["--iters", str(task["iters"])]
    if task["stop"]:
        args += ["--stop", task["stop"]]
    rec = run_dip(args)
    keep = ("width", "texture_score", "psnr", "peak_psnr", "peak_iteration", "iterations",
            "best_iteration", "stop_reason", "seconds", "params", "precision", "device")
    return {"key": task["key"], "asked": task["width"], **{k: rec.get(k) for k in keep}}


def tasks_for(items: list[tuple[Picture, Path]], widths: dict[str, list], args) -> list[dict]:
    """The fits to run: for each picture, the widths listed for its key."""
    return [{"key": pic.key, "input": str(crop), "width": w, "sigma": args.sigma, "seed": args.seed,
             "iters": args.iters, "stop": args.stop, "output": str(crop.parent / f"out-{w}.png")}
            for pic, crop in items for w in widths[pic.key]]


def best(psnrs: dict[int, float]) -> int:
    """The oracle width (the smallest of any tied for the best PSNR)."""
    return max(psnrs, key=lambda w: (psnrs[w], -w))


def summarise(pic: Picture, size: list[int], auto: dict, fixed: dict[int, dict]) -> dict:
    """One image's row: each width's PSNRs, auto's pick, the oracle, and auto's loss to it."""
    file = pic.path.relative_to(DATA) if pic.path.is_relative_to(DATA) else pic.path  # smoke: not in DATA
    row = {"image": pic.key, "file": str(file), "label": pic.label,
           "colour": pic.colour, "size": size, "auto_width": auto["width"],
           "texture_score": auto["texture_score"], "auto_reused": auto["width"] not in fixed,
           "runs": {"auto": auto, **{str(w): r for w, r in fixed.items()}}}
    runs = {**fixed, auto["width"]: fixed.get(auto["width"], auto)}
    for metric in ("psnr", "peak_psnr"):
        by_width = {w: runs[w][metric] for w in WIDTHS}
        oracle = best(by_width)
        row[metric] = {"by_width": {str(w): v for w, v in by_width.items()}, "auto": auto[metric],
                       "oracle_width": oracle, "oracle": by_width[oracle],
                       "label": by_width[pic.label], "gap": auto[metric] - by_width[oracle],
                       "auto_is_oracle": by_width[auto["width"]] == by_width[oracle]}
    if auto["width"] in fixed:  # --no-reuse: the auto run's twin was fitted too
        row["auto_minus_twin"] = auto["psnr"] - fixed[auto["width"]]["psnr"]
    return row


def totals(rows: list[dict], metric: str) -> dict:
    """Means over the images, and whether the issue's two aims are met."""
    cols = {str(w): mean(r[metric]["by_width"][str(w)] for r in rows) for w in WIDTHS}
    out = {"mean_by_width": cols, "mean_auto": mean(r[metric]["auto"] for r in rows),
           "mean_oracle": mean(r[metric]["oracle"] for r in rows),
           "mean_label": mean(r[metric]["label"] for r in rows),
           "mean_gap": mean(r[metric]["gap"] for r in rows),
           "auto_is_oracle": sum(r[metric]["auto_is_oracle"] for r in rows),
           "label_is_oracle": sum(r[metric]["oracle_width"] == r["label"] for r in rows)}
    best_fixed = max(cols, key=cols.get)
    out["best_fixed_width"] = int(best_fixed)
    out["auto_minus_best_fixed"] = out["mean_auto"] - cols[best_fixed]
    out["aim_within_gap"] = out["mean_gap"] >= -GAP_AIM
    out["aim_beats_every_fixed"] = out["auto_minus_best_fixed"] > 0
    return out


def section(rows: list[dict], metric: str, tot: dict, title: str) -> list[str]:
    """One markdown table (per image, then the means) and its aims, stated plainly."""
    n = len(rows)
    lines = [f"#### {title}", "",
             "| image | label | size | " + " | ".join(str(w) for w in WIDTHS)
             + " | auto (width) | oracle (width) | auto − oracle |",
             "|---|---|---|" + "---|" * len(WIDTHS) + "---|---|---|"]
    for r in rows:
        m = r[metric]
        cells = " | ".join(f"{m['by_width'][str(w)]:.2f}" for w in WIDTHS)
        lines.append(f"| {r['image']}{'' if r['colour'] else ' (grey)'} | {r['label']} "
                     f"| {r['size'][0]}×{r['size'][1]} | {cells} | {m['auto']:.2f} ({r['auto_width']}) "
                     f"| {m['oracle']:.2f} ({m['oracle_width']}) | {m['gap']:+.2f} |")
    cells = " | ".join(f"**{tot['mean_by_width'][str(w)]:.2f}**" for w in WIDTHS)
    lines += [f"| **mean** | | | {cells} | **{tot['mean_auto']:.2f}** | **{tot['mean_oracle']:.2f}** "
              f"| **{tot['mean_gap']:+.2f}** |", ""]
    yes = {True: "met", False: "NOT met"}
    lines += [
        f"- auto picked the oracle width on {tot['auto_is_oracle']}/{n} images; the paper's label "
        f"was the oracle on {tot['label_is_oracle']}/{n} (mean PSNR at the label's width: "
        f"{tot['mean_label']:.2f} dB).",
        f"- Aim 1, auto within {GAP_AIM} dB of the oracle on average: mean gap "
        f"{tot['mean_gap']:+.2f} dB, **{yes[tot['aim_within_gap']]}**.",
        f"- Aim 2, auto better on average than every fixed width: the best fixed width is "
        f"{tot['best_fixed_width']} ({tot['mean_by_width'][str(tot['best_fixed_width'])]:.2f} dB); "
        f"auto − that = {tot['auto_minus_best_fixed']:+.2f} dB, **{yes[tot['aim_beats_every_fixed']]}**.",
        ""]
    return lines


def report(rows: list[dict], totals_: dict[str, dict], args, device: str) -> str:
    what = "full images" if args.full else f"{args.size}×{args.size} centre crops"
    budget = f"--iters {args.iters}" if args.iters else "the default budget"
    stop = f"--stop {args.stop}" if args.stop else "the default stop rule"
    lines = [
        f"`dip denoise --sigma {args.sigma:g} --add-noise --seed {args.seed}`, default net "
        f"(compact, 2 scales) at widths {'/'.join(map(str, WIDTHS))} and `--width auto`; {budget}, "
        f"{stop}; {what}; {len(rows)} images. Device: {device}"
        + (f"; {args.jobs} fits side by side, so seconds are not timings" if args.jobs > 1 else "") + ".",
        "",
        "Label: the paper's width for the whole image. Oracle: the width with the best PSNR here. "
        "Auto's fit at its chosen width is " + ("fitted separately (--no-reuse)." if args.no_reuse else
                                                "the same run as that width's column (bit-identical)."),
        "",
    ]
    lines += section(rows, "psnr", totals_["psnr"], "PSNR of the written output (dB)")
    lines += section(rows, "peak_psnr", totals_["peak_psnr"], "Peak PSNR seen along the run (dB)")
    twins = [r["auto_minus_twin"] for r in rows if "auto_minus_twin" in r]
    if twins:
        worst = max(abs(d) for d in twins)
        lines.append(f"Auto run vs the fixed-width run at the same width: largest |ΔPSNR| {worst:.2g} dB"
                     f" ({'bit-identical' if worst == 0 else 'not bit-identical on this device'}).")
    verdict = totals_["psnr"]["aim_beats_every_fixed"] and totals_["psnr"]["aim_within_gap"]
    lines.append(f"Verdict (written PSNR, both aims): `--width auto` "
                 f"{'earns' if verdict else 'does not earn'} being the default for denoise and two-stage "
                 f"on this evidence.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="centre crop side (default 256)")
    ap.add_argument("--full", action="store_true", help="whole images (a GPU job)")
    ap.add_argument("--per-class", type=int, default=4,
                    help="texture_widths images per label class besides Set9 (default 4)")
    ap.add_argument("--only", help="instead of the default set: every image (Set9 or texture_widths) whose "
                    "name contains one of these comma-separated strings, e.g. House,0003")
    ap.add_argument("--sigma", type=float, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iters", type=int, default=None, help="iteration budget (default: the CLI's)")
    ap.add_argument("--stop", default=None, help="stop rule (default: the CLI's)")
    ap.add_argument("--no-reuse", action="store_true",
                    help="fit auto's width again instead of reusing the auto run (a determinism check)")
    ap.add_argument("--jobs", type=int, default=1, help="fits side by side (worker processes)")
    ap.add_argument("--tag", default="", help="suffix for the results file names")
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default benchmarks/results/width_psnr)")
    add_smoke_argument(ap)
    args, smoke = parse_smoke(ap)
    if smoke:  # one synthetic image at each width, a few iterations each
        args.size, args.full, args.iters, args.jobs = SMOKE_SIZE, False, SMOKE_ITERS, 1
    args.out = results_folder(args.out, smoke)  # not the study's folder: the namespace keys the fits

    chosen = smoke_pictures() if smoke else pictures(args.per_class, args.only)
    if not chosen:
        raise SystemExit("no images selected")
    # A fixed folder, so that the fits' keys (their file names among them) repeat across runs and
    # DIP_CHECKPOINTS can resume a cut-off study; a smoke run's is a fresh one.
    work = Path(tempfile.gettempdir()) / f"dipbench-width-{'full' if args.full else args.size}"
    if smoke:
        work = tempdir()
    items = []
    for pic in chosen:
        folder = work / pic.key.replace("/", "-")
        folder.mkdir(parents=True, exist_ok=True)
        items.append((pic, centre_crop_file(pic.path, 0 if args.full else args.size, folder)))
    print(f"{len(items)} images, work folder {work}", flush=True)

    autos = {r["key"]: r for r in parallel_map(fit, tasks_for(items, {p.key: [AUTO] for p in chosen}, args),
                                               args.jobs)}
    rest = {p.key: [w for w in WIDTHS if args.no_reuse or w != autos[p.key]["width"]] for p in chosen}
    fixed: dict[str, dict[int, dict]] = {p.key: {} for p in chosen}
    for r in parallel_map(fit, tasks_for(items, rest, args), args.jobs):
        fixed[r["key"]][r["width"]] = r

    rows = []
    for pic, crop in items:
        h, w = iio.improps(crop).shape[:2]
        rows.append(summarise(pic, [w, h], autos[pic.key], fixed[pic.key]))
        print(f"{pic.key}: label {pic.label}, auto {rows[-1]['auto_width']}, "
              f"oracle {rows[-1]['psnr']['oracle_width']}, gap {rows[-1]['psnr']['gap']:+.2f} dB", flush=True)
    totals_ = {m: totals(rows, m) for m in ("psnr", "peak_psnr")}
    device = device_name()
    payload = {"sigma": args.sigma, "seed": args.seed, "crop": 0 if args.full else args.size,
               "iters": args.iters, "stop": args.stop, "per_class": args.per_class, "only": args.only,
               "widths": list(WIDTHS), "reuse": not args.no_reuse, "jobs": args.jobs, "device": device,
               "gap_aim_db": GAP_AIM, "totals": totals_, "rows": rows}
    tag = f"-{args.tag}" if args.tag else ""
    write_results(f"width_psnr{tag}", payload, report(rows, totals_, args, device),
                  into_study(args.out, "width_psnr"))


if __name__ == "__main__":
    main()
