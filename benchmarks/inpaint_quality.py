"""Inpainting quality per kind of hole, against the classical fillers (issue 21).

    python benchmarks/inpaint_quality.py                              # every kind, method, image
    python benchmarks/inpaint_quality.py --methods biharmonic telea ns fast --images 2
    python benchmarks/inpaint_quality.py --table-only                 # rebuild the tables from the log
    python benchmarks/inpaint_quality.py --smoke                      # a tiny run of the whole script

`benchmarks/inpaint.py` compares DIP with biharmonic inpainting on the repository's own masks at
the paper's budget (a GPU run). This study asks what a user of this CPU gets per kind of hole:
the same masked 256² crop given to every method, and per method the PSNR over the whole image and
over the holes alone, SSIM, and seconds.

Holes (True = known in the masks below; every mask is seeded, so every method and every run sees
the same holes):

* ``scratches``: 25 straight strokes 5 px wide, 60-190 px long, at random places and angles
  (about a fifth of the pixels, the repair job of a scanned print);
* ``text``: lines of 24-px text, as a caption or a watermark stamped over a photo;
* ``random25``, ``random50``, ``random75``: that share of the pixels missing, each on its own
  (the DIP paper's "restoration" experiment at 50 %);
* ``block64``: a 64² hole at the centre; ``quarter``: a 128² one (a quarter of the crop);
* ``repo``: the repository's kate, vase, library and DSC_4081 images with their own masks, 256²
  crops centred on the holes (one image per mask, so this kind has four images and no others).

Images for the synthetic kinds: 256² centre crops of House, F16, kodim03 and kodim01 (Set9: smooth
to busy), in that order; ``--images N`` takes the first N.

Methods:

* ``biharmonic``: scikit-image's ``inpaint_biharmonic``;
* ``telea`` and ``ns``: OpenCV's ``cv2.inpaint`` with ``INPAINT_TELEA`` (Telea 2004, fast
  marching) and ``INPAINT_NS`` (Bertalmio, Bertozzi & Sapiro 2001, Navier-Stokes), radius 3, on
  the 8-bit image (``opencv-python-headless``, in the ``bench`` extra only);
* ``fast``: `dip inpaint --preset fast` (one fit), planned and fitted through the Python API as
  the command runs it, with its automatic stop shadowed (``stopping.watch``): the row holds the
  result the user gets and the best PSNR anywhere in the budget, so the loss due to the stop and
  the loss due to the method are separate numbers; ``fast-seed1``: the same from ``--seed 1``;
* ``best`` (the default): `dip inpaint --preset best`, the average of those two fits
  (:data:`ENSEMBLES`);
* any name in :data:`VARIANTS`: the same with some options changed (other nets, budgets);
* ``A+B`` (e.g. ``fast+biharmonic``): the two methods' results averaged, an ensemble of a DIP
  fit and a classical filler whose errors differ (the known pixels are kept either way). A fit's
  result is kept in benchmarks/results/inpaint-fits/ (not committed), so a blend reuses it.

Every result is scored as written: 8-bit, the known pixels kept. Rows are appended to a JSON
Lines log (``--log``) as they finish, and a row already there is not run again, so the study
resumes where it was cut off. Run one heavy process at a time. Tables:
benchmarks/results/inpaint_quality/inpaint_quality.md and .json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from common import (  # noqa: E402
    DATA,
    RESULTS,
    add_smoke_argument,
    centre_crop,
    device_name,
    hole_crop,
    parse_smoke,
    results_folder,
    smoke_image,
    study_folder,
)
from stopping import as_written  # noqa: E402

from dipcli import Inpaint, bernoulli_mask, read_image  # noqa: E402

SIZE = 256
IMAGES = ("image_House256rgb", "image_F16_512rgb", "kodim03", "kodim01")
KINDS = ("scratches", "text", "random25", "random50", "random75", "block64", "quarter", "repo")
REPO_MASKS = ("kate", "vase", "library", "DSC_4081")
CLASSICAL = ("biharmonic", "telea", "ns")
FITS = RESULTS / "inpaint-fits"  # each fit's result as written, so that a blend reuses it
# Other ways of running `dip inpaint`: the API's keyword arguments that differ from its defaults.
VARIANTS: dict[str, dict] = {
    "fast": dict(preset="fast"),  # one fit: `dip inpaint --preset fast`
    "fast-seed1": dict(preset="fast", seed=1),  # the same from --seed 1
    "compact": dict(preset="fast", arch="compact"),
    "w64": dict(preset="fast", width=64),
    "iters3000": dict(preset="fast", iters=3000, stop="fixed"),
}
# Presets that are ensembles, as the blends they are: `dip inpaint --preset best` (the default)
# averages the fit from --seed 0 and the one from --seed 1 before writing (tests/test_api.py
# checks that it equals this blend to within one 8-bit level).
ENSEMBLES = {"best": "fast+fast-seed1"}
TEXT = ("DEEP IMAGE PRIOR", "dip inpaint --mask", "no training data", "2026 (c) dipcli",
        "restore me please", "SAMPLE  SAMPLE")


def scratches(size: int, seed: int, count: int = 25, width: int = 5) -> np.ndarray:
    """``count`` straight strokes ``width`` px wide at seeded places, angles and lengths
    (60-190 px on a 256² crop; a smaller crop gets fewer, shorter ones)."""
    from skimage.draw import line
    from skimage.morphology import dilation, disk

    rng = np.random.default_rng(seed)
    scale = size / SIZE
    strokes = np.zeros((size, size), dtype=bool)
    for _ in range(max(1, round(count * scale**2))):
        y0, x0 = rng.uniform(0, size, 2)
        angle, length = rng.uniform(0, np.pi), rng.uniform(60, 190) * scale
        y1, x1 = y0 + length * np.sin(angle), x0 + length * np.cos(angle)
        rr, cc = line(int(y0), int(x0), int(np.clip(y1, 0, size - 1)), int(np.clip(x1, 0, size - 1)))
        strokes[rr, cc] = True
    return ~dilation(strokes, disk(width // 2))


def text(size: int) -> np.ndarray:
    """Lines of 24-px text across the image (Pillow's bundled font), as a caption or watermark."""
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=24)
    for row, words in enumerate(TEXT):
        draw.text((8 + 10 * (row % 3), 14 + row * size // len(TEXT)), words, fill=255, font=font)
    return np.asarray(canvas) < 128


def block(size: int, side: int) -> np.ndarray:
    """A ``side``-square hole at the centre."""
    known = np.ones((size, size), dtype=bool)
    top = (size - side) // 2
    known[top:top + side, top:top + side] = False
    return known


def synthetic_mask(kind: str, size: int, seed: int) -> np.ndarray:
    """The mask of a synthetic kind (True = known)."""
    if kind == "scratches":
        return scratches(size, seed)
    if kind == "text":
        return text(size)
    if kind.startswith("random"):
        return bernoulli_mask((size, size), int(kind[6:]) / 100, seed)
    if kind == "block64":
        return block(size, size // 4)  # 64² on a 256² crop
    if kind == "quarter":
        return block(size, size // 2)
    raise ValueError(f"unknown kind {kind!r}")


def cases(kinds: list[str], images: int, size: int, smoke: bool) -> list[tuple[str, str]]:
    """(kind, image) pairs in run order: kind by kind, so a cut-off study has every kind it reached."""
    names = ["card"] if smoke else list(IMAGES[:images])
    return [(kind, name) for kind in kinds
            for name in ((REPO_MASKS[:images] if not smoke else []) if kind == "repo" else names)]


def load(kind: str, name: str, size: int, smoke: bool) -> tuple[np.ndarray, np.ndarray]:
    """The clean crop and its mask (True = known) for one case."""
    if kind == "repo":
        from dipcli import load_mask

        clean = read_image(DATA / "inpainting" / f"{name}.png").pixels
        mask, _ = load_mask(read_image(DATA / "inpainting" / f"{name}_mask.png"), clean.shape, "auto")
        window = hole_crop(mask, size)
        return clean[window], mask[window]
    if smoke:
        clean = smoke_image(size)
    else:
        clean = centre_crop(read_image(DATA / "set9" / f"{name}.png").pixels, size)
    seed = sum(map(ord, f"{kind}/{name}"))  # each image its own holes of the kind
    return clean, synthetic_mask(kind, size, seed)


def written(x: np.ndarray) -> np.ndarray:
    """``x`` quantised to 8 bits, as every method here writes it (stopping.as_written)."""
    return as_written(x, np.dtype(np.uint8))


def scores(out: np.ndarray, clean: np.ndarray, known: np.ndarray) -> dict:
    """PSNR over the whole image and over the holes, and SSIM, of ``out`` as written (8-bit,
    the known pixels kept)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    out = written(np.where(known[:, :, None], clean, out))
    holes = ~known
    return {"psnr": float(peak_signal_noise_ratio(clean, out, data_range=1.0)),
            "psnr_holes": float(peak_signal_noise_ratio(clean[holes], out[holes], data_range=1.0)),
            "ssim": float(structural_similarity(clean, out, data_range=1.0, channel_axis=2,
                                                gaussian_weights=True, use_sample_covariance=False))}


def run_classical(method: str, observed: np.ndarray, known: np.ndarray) -> np.ndarray:
    holes = ~known
    if method == "biharmonic":
        from skimage.restoration import inpaint_biharmonic

        return inpaint_biharmonic(observed, holes, channel_axis=2)
    import cv2

    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]
    image8 = np.round(observed * 255).astype(np.uint8)
    if image8.shape[2] == 3:
        image8 = np.ascontiguousarray(image8[:, :, ::-1])  # OpenCV's channel order; the filler is per channel
    out = cv2.inpaint(image8, holes.astype(np.uint8) * 255, 3, flag)
    out = out.reshape(image8.shape)
    if out.shape[2] == 3:
        out = out[:, :, ::-1]
    return out.astype(np.float32) / 255


def run_dip(method: str, clean: np.ndarray, known: np.ndarray, iters: int | None) -> tuple[dict, np.ndarray]:
    """`dip inpaint` with every default but :data:`VARIANTS`' changes, its whole budget run with
    the automatic stop shadowed: the measures, and the result at the stop."""
    from stopping import watch

    from dipcli import Image

    # internal: the stop rule is shadowed through the plan (stopping.watch)
    from dipcli.api.inputs import TaskInput
    from dipcli.api.plan import make_plan  # internal: plans as `dip` does, to score what it runs
    from dipcli.api.spec import Options, make_spec  # internal: plans as `dip` does, to score what it runs

    change = dict(VARIANTS[method])
    if iters is not None:
        change["iters"] = iters
    o = Options(**change)
    image = Image(clean, np.dtype(np.uint8), clean.shape[2] == 1)
    mask = Image(known[:, :, None].astype(np.float32), np.dtype(np.uint8), True)
    spec = make_spec("inpaint", o, has_clean=True, has_mask=True, mask_known="white")
    plan = make_plan(spec, TaskInput(image, clean=image, mask=mask))
    m = watch("inpaint", plan, ["auto"], keep_images=True)
    auto = m["verdicts"]["auto"]
    peak, got = scores(m["peak_image"], clean, known), scores(auto["image"], clean, known)
    return {**got, "seconds": auto["seconds_to_stop"],
            "peak_psnr": peak["psnr"], "peak_psnr_holes": peak["psnr_holes"],
            "stop_gap_db": peak["psnr"] - got["psnr"],
            "stop_iteration": auto["stop_iteration"], "stop_reason": auto["reason"],
            "peak_iteration": m["peak_iteration"], "budget_seconds": m["seconds"],
            "iterations_budget": m["iterations"], "net": m["net"], "precision": m["precision"],
            "tile": plan.tile}, auto["image"]


def result(method: str, clean: np.ndarray, known: np.ndarray, iters: int | None,
           cache: Path | None) -> tuple[dict, np.ndarray]:
    """One method's measures and result (as written, known pixels kept); a blend ``A+B`` averages
    its parts' results, and a fit's result is read from ``cache`` when it has been run before."""
    method = ENSEMBLES.get(method, method)
    if "+" in method:
        parts = [result(part, clean, known, iters, cache) for part in method.split("+")]
        out = np.mean([image for _, image in parts], axis=0)
        return {**scores(out, clean, known), "seconds": sum(r["seconds"] for r, _ in parts)}, written(out)
    if method in CLASSICAL:
        observed = Inpaint(known).observe(clean)
        start = time.perf_counter()
        out = run_classical(method, observed, known)
        seconds = time.perf_counter() - start
        out = written(np.where(known[:, :, None], clean, out))
        return {**scores(out, clean, known), "seconds": seconds}, out
    kept = cache / f"{method}-{iters}.npz" if cache else None
    if kept is not None and kept.exists():
        with np.load(kept) as f:
            return json.loads(str(f["row"])), f["image"].astype(np.float32) / 255
    row, out = run_dip(method, clean, known, iters)
    out = written(np.where(known[:, :, None], clean, out))
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(kept, row=json.dumps(row), image=np.round(out * 255).astype(np.uint8))
    return row, out


def run_one(method: str, kind: str, name: str, size: int, iters: int | None, smoke: bool,
            cache: Path | None) -> dict:
    clean, known = load(kind, name, size, smoke)
    row = {"kind": kind, "image": name, "method": method, "size": list(clean.shape),
           "missing": float((~known).mean())}
    measures, _ = result(method, clean, known, iters, cache and cache / kind / name)
    return {**row, **measures}


def summarise(rows: list[dict]) -> dict:
    """Per kind and method: means over the kind's images; per method, the mean over the kinds
    (each kind weighing the same) and the worst kind's gap to the best classical filler. Only
    the cases that every method has run are counted, so that all compare on the same images."""
    out: dict = {"kinds": {}, "methods": {}}
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    ran = {(r["kind"], r["image"], r["method"]) for r in rows}
    common = {(k, i) for k, i, _ in ran if all((k, i, m) in ran for m in methods)}
    rows = [r for r in rows if (r["kind"], r["image"]) in common]
    kinds = [k for k in kinds if any(k == c[0] for c in common)]
    for kind in kinds:
        for method in methods:
            group = [r for r in rows if (r["kind"], r["method"]) == (kind, method)]
            if not group:
                continue
            s = {k: statistics.fmean(r[k] for r in group) for k in ("psnr", "psnr_holes", "ssim", "seconds")}
            s["images"] = len(group)
            if "peak_psnr" in group[0]:
                s["peak_psnr"] = statistics.fmean(r["peak_psnr"] for r in group)
                s["worst_stop_gap"] = max(r["stop_gap_db"] for r in group)
                s["median_stop_gap"] = statistics.median(r["stop_gap_db"] for r in group)
            out["kinds"][f"{kind} / {method}"] = s
    for method in methods:
        per_kind = {k: out["kinds"][f"{k} / {method}"] for k in kinds if f"{k} / {method}" in out["kinds"]}
        gaps = []
        for kind, s in per_kind.items():
            classical = [out["kinds"][f"{kind} / {c}"]["psnr"] for c in CLASSICAL
                         if f"{kind} / {c}" in out["kinds"]]
            if classical:
                gaps.append(s["psnr"] - max(classical))
        summary = {"kinds": len(per_kind),
                   **{k: statistics.fmean(s[k] for s in per_kind.values())
                      for k in ("psnr", "psnr_holes", "ssim", "seconds")}}
        if gaps:
            summary.update(gap_to_best_classical=statistics.fmean(gaps), worst_gap=min(gaps))
        fits = [r for r in rows if r["method"] == method and "stop_gap_db" in r]
        if fits:
            summary.update(median_stop_gap=statistics.median(r["stop_gap_db"] for r in fits),
                           worst_stop_gap=max(r["stop_gap_db"] for r in fits))
        out["methods"][method] = summary
    return out


def table(summary: dict, size: int, images: int) -> str:
    lines = [f"Inpainting, {size}² crops (the synthetic kinds on the first {images} of House, F16, kodim03, "
             f"kodim01; `repo` on the repository's own masks), the same masked image for every method, "
             f"scored as written (8-bit, known pixels kept). {device_name()}.", "",
             "Per method, the mean over the kinds (each kind weighs the same):", "",
             "| method | kinds | PSNR | holes PSNR | SSIM | to the best classical: mean / worst kind "
             "| stop: median / worst loss | s per image |", "|---|---|---|---|---|---|---|---|"]
    for method, s in summary["methods"].items():
        gap = f"{s['gap_to_best_classical']:+.2f} / {s['worst_gap']:+.2f}" if "worst_gap" in s else ""
        stop = f"{s['median_stop_gap']:.2f} / {s['worst_stop_gap']:.2f}" if "worst_stop_gap" in s else ""
        lines.append(f"| {method} | {s['kinds']} | {s['psnr']:.2f} | {s['psnr_holes']:.2f} | {s['ssim']:.4f} "
                     f"| {gap} | {stop} | {s['seconds']:.1f} |")
    kinds = list(dict.fromkeys(k.split(" / ")[0] for k in summary["kinds"]))
    methods = list(summary["methods"])
    lines += ["", "Per kind, PSNR whole image / holes (dB), the best in bold:", "",
              "| kind | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for kind in kinds:
        got = {m: summary["kinds"].get(f"{kind} / {m}") for m in methods}
        top = max(s["psnr"] for s in got.values() if s)
        cells = ["" if s is None else (f"**{s['psnr']:.2f}**" if s["psnr"] == top else f"{s['psnr']:.2f}")
                 + f" / {s['psnr_holes']:.2f}" for s in got.values()]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += ["", "Per kind (PSNR whole / holes, dB; seconds):", "",
              "| kind | method | images | PSNR | holes PSNR | SSIM | peak in budget | s per image |",
              "|---|---|---|---|---|---|---|---|"]
    for key, s in summary["kinds"].items():
        kind, method = key.split(" / ")
        peak = f"{s['peak_psnr']:.2f}" if "peak_psnr" in s else ""
        lines.append(f"| {kind} | {method} | {s['images']} | {s['psnr']:.2f} | {s['psnr_holes']:.2f} "
                     f"| {s['ssim']:.4f} | {peak} | {s['seconds']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=[*CLASSICAL, "fast", "fast-seed1", "best"],
                    help=f"of {', '.join([*CLASSICAL, *VARIANTS, *ENSEMBLES])}, or A+B")
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--images", type=int, default=len(IMAGES), help="the first N images of each kind")
    ap.add_argument("--iters", type=int, default=None, help="override the DIP budget")
    ap.add_argument("--log", type=Path, default=study_folder("inpaint_quality") / "inpaint_quality.jsonl")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--table-only", action="store_true")
    add_smoke_argument(ap)
    args, smoke = parse_smoke(ap, argv)
    names = [*CLASSICAL, *VARIANTS, *ENSEMBLES]
    unknown = [m for m in args.methods if any(p not in names for p in m.split("+"))]
    if unknown:
        ap.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    folder = results_folder(args.out, smoke, "inpaint_quality")
    folder.mkdir(parents=True, exist_ok=True)
    size = SIZE
    if smoke:
        size, args.iters, args.kinds = 32, 10, ["scratches", "block64"]
        args.methods = [*CLASSICAL, "fast", "fast-seed1", "best", "fast+biharmonic"]
        args.log = folder / "inpaint_quality.jsonl"
    done = {}
    if args.log.exists():
        for line in args.log.read_text().splitlines():
            r = json.loads(line)
            done[(r["kind"], r["image"], r["method"])] = r
    if not args.table_only:
        todo = cases(args.kinds, args.images, size, smoke)
        # The classical fillers first (seconds in all), then the fits, kind by kind.
        order = sorted(args.methods, key=lambda m: (m not in CLASSICAL, "+" in ENSEMBLES.get(m, m)))
        for method in order:
            for kind, name in todo:
                if (kind, name, method) in done:
                    continue
                row = run_one(method, kind, name, size, args.iters, smoke, None if smoke else FITS)
                done[(kind, name, method)] = row
                with args.log.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                peak = f" (peak {row['peak_psnr']:.2f})" if "peak_psnr" in row else ""
                print(f"{kind} {name} {method}: {row['psnr']:.2f} dB (holes {row['psnr_holes']:.2f}), "
                      f"{row['seconds']:.1f} s{peak}", flush=True)
    rows = list(done.values())
    summary = summarise(rows)
    payload = {"device": device_name(), "size": size, "images": args.images, "summary": summary, "rows": rows}
    (folder / "inpaint_quality.json").write_text(json.dumps(payload, indent=1) + "\n")
    (folder / "inpaint_quality.md").write_text(table(summary, size, args.images))
    print(f"wrote {folder / 'inpaint_quality.md'}")


if __name__ == "__main__":
    main()
