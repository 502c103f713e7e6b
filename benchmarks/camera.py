"""Camera noise with a reference (issue 32): clean images through a simulated camera, and every method.

    python benchmarks/camera.py --methods bm3d nlmeans readout          # the cheap methods
    python benchmarks/camera.py                                         # and the DIP methods
    python benchmarks/camera.py --table-only                            # tables from the log
    python benchmarks/camera.py --smoke                                 # a tiny run of the script

No real noisy/clean pairs can be had here, so the pairs are made. The simulated camera follows
Brooks et al., "Unprocessing Images for Learned Raw Denoising" (CVPR 2019), without their colour
matrix and tone curve: sRGB → linear (the inverse sRGB curve), inverse white balance (their
seeded random gains: brightness 1/N(0.8, 0.1), red U(1.9, 2.4), blue U(1.5, 1.9)), an RGGB Bayer
mosaic, Poisson–Gaussian noise of variance shot·x + read with their relation
log(read) = 2.18·log(shot) + 1.2 (its mean line, no scatter), bilinear demosaicking
(:func:`demosaic`, ``colour-demosaicing``'s bilinear method), white balance, the sRGB curve,
JPEG at quality 90 (Pillow, 4:2:0).
The clean image through the same pipeline without noise is the reference. Levels (``--levels``):
shot 0.004, 0.012 (the issue's, Brooks et al.'s highest) and 0.03. The Set12 images are grey:
they go through a monochrome camera (no mosaic, no colour gains).

Images: the acceptance set of benchmarks/quality.py as 256² centre crops (``acceptance``), and
a held-out set for reporting (``heldout``): the 3rd and 4th CBSD68 image by file name in each
width class of texture_widths/ (the acceptance set takes the first two).

Methods (``--methods``), each on the same noisy JPEG:

* ``noisy``: the input itself; ``readout``: the noise readout (dipcli.physics.camera) against the
  true noise (noisy − reference): σ at mid-grey and the correlation width;
* ``bm3d``: BM3D (CBM3D for colour) with the best single σ against the reference, found by a
  hill climb over the grid :data:`BM3D_GRID` (0–255 scale) from σ = 11;
* ``nlmeans``: scikit-image's NL-means, σ from skimage's ``estimate_sigma`` (what a user gets;
  h = 0.8σ, 5×5 patches, 13×13 search, as in quality.py); ``nlmeans-best``: its σ searched like
  BM3D's;
* ``gaussian``: ``dipcli.denoise(noisy, noise="gaussian", wiener=False)``: the default
  before the camera noise model (white noise of the σ estimated; bit for bit what
  ``dipcli.denoise(noisy)`` ran then);
* ``fit``: ``dipcli.denoise(noisy, wiener=False)``: the default's fit alone, without the
  Wiener stage (what ``default`` wrote before the detail return: rows of that time are labelled
  ``fit``);
* ``default``: ``dipcli.denoise(noisy)``, no σ: the product as it is (``noise="auto"``, the
  Wiener stage on; rows of the pixel-domain detail return that preceded it are in
  results/archive/camera-give-back.jsonl, rows with the level as read, before it was
  cross-checked by the finest wavelet scale, in results/archive/camera-unchecked-level.jsonl);
* ``camera``: ``dipcli.denoise(noisy, noise="camera")``: the camera noise model, whatever the
  rule of ``auto`` says;
* ``camera-true``: ``dipcli.denoise(noisy, true σ, noise="camera")`` (``dip denoise --noise camera
  --sigma``): the camera model read from the image at the RMS σ of the noise the camera added
  (noisy − reference, :func:`true_sigma`): what a user who knows the level gets, where the
  readout takes texture for noise. Simulated camera only (camera_iso.py's reference is another
  frame).

Each DIP row keeps what the fit took the noise to be (``noise_model``, ``noise``: the readout).

Rows are appended to a JSON Lines log as they finish and a row already there is not run again.
The tables (benchmarks/results/camera/camera.md, .json) give per set, level and method the mean
PSNR/SSIM, the gap to BM3D (mean / median / worst) and the seconds per image.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import statistics
import time
from pathlib import Path

import numpy as np
from common import (
    RESULTS,
    SMOKE_ITERS,
    add_smoke_argument,
    centre_crop,
    parse_smoke,
    results_folder,
    smoke_image,
    write_results,
)
from quality import acceptance_set, scores
from quality import heldout_set as quality_heldout

from dipcli import read_image

LEVELS = (0.004, 0.012, 0.03)  # shot noise (variance per unit of linear signal)
BM3D_GRID = (3, 4, 6, 8, 11, 16, 22, 32, 45, 64)  # σ (0–255) tried by the hill climb
METHODS = ("noisy", "readout", "bm3d", "nlmeans", "nlmeans-best", "gaussian", "fit", "default", "camera",
           "camera-true")
DIP = {"gaussian": "gaussian", "fit": "auto", "default": "auto", "camera": "camera",  # → denoise(noise=...)
       "camera-true": "camera"}
FIT_ONLY = ("gaussian", "fit")  # methods run with wiener=False: the fit's image alone
OUT = RESULTS / "camera"
FITS = RESULTS / "camera-fits"  # each DIP fit's image, for studies of what follows the fit (not committed)
FIT_ALONE: dict[str, np.ndarray] = {}  # the last DIP run's fit before what the product writes adds to it


# ---- the simulated camera ----------------------------------------------------------------------


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def read_noise(shot: float) -> float:
    """Brooks et al.'s read-noise variance for a shot-noise level: log(read) = 2.18·log(shot) + 1.2."""
    return float(np.exp(2.18 * np.log(shot) + 1.2))


def gains(rng: np.random.Generator) -> np.ndarray:
    """White-balance gains (R, G, B) times the brightness gain, as Brooks et al. draw them."""
    rgb = 1 / rng.normal(0.8, 0.1)
    return rgb * np.array([rng.uniform(1.9, 2.4), 1.0, rng.uniform(1.5, 1.9)])


def mosaic(linear: np.ndarray) -> np.ndarray:
    """RGGB Bayer samples of a linear RGB image: ``(H, W)``."""
    raw = linear[:, :, 1].copy()
    raw[0::2, 0::2] = linear[0::2, 0::2, 0]
    raw[1::2, 1::2] = linear[1::2, 1::2, 2]
    return raw


def jpeg(srgb: np.ndarray, quality: int = 90) -> np.ndarray:
    """Round trip through Pillow's JPEG encoder (4:2:0 for colour, its default), float [0, 1] out."""
    from PIL import Image

    grey = srgb.shape[2] == 1
    pixels = np.round(np.clip(srgb, 0, 1) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels[:, :, 0] if grey else pixels).save(buf, format="JPEG", quality=quality)
    out = np.asarray(Image.open(buf), dtype=np.float32) / 255
    return out[:, :, None] if grey else out


def demosaic(raw: np.ndarray) -> np.ndarray:
    """Bilinear demosaicking of an RGGB mosaic ``(H, W)`` into ``(H, W, 3)``: each colour's samples
    convolved with the bilinear kernels (green [[0,1,0],[1,4,1],[0,1,0]]/4, red and blue
    [[1,2,1],[2,4,2],[1,2,1]]/4, mirrored at the border), as ``colour-demosaicing``'s
    ``demosaicing_CFA_Bayer_bilinear`` computes it (Losson, Macaire & Yang 2010), without the
    dependency."""
    from scipy.ndimage import convolve

    masks = np.zeros((3, *raw.shape))
    masks[0, 0::2, 0::2] = masks[2, 1::2, 1::2] = 1
    masks[1] = 1 - masks[0] - masks[2]
    green = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 4
    red_blue = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4
    return np.stack([convolve(raw * masks[c], green if c == 1 else red_blue) for c in range(3)], axis=2)


def camera(clean: np.ndarray, shot: float | None, seed: int) -> np.ndarray:
    """``clean`` sRGB ``(H, W, C)`` in [0, 1] through the simulated camera; ``shot`` None: no noise.

    One seed draws the gains (the same with and without noise, so the reference matches) and
    then the noise.
    """
    rng = np.random.default_rng(seed)
    g = gains(rng)
    linear = srgb_to_linear(clean.astype(np.float64))
    colour = clean.shape[2] == 3
    raw = mosaic(linear / g) if colour else linear[:, :, 0] / g[1]
    if shot is not None:
        variance = shot * np.clip(raw, 0, None) + read_noise(shot)
        raw = raw + rng.standard_normal(raw.shape) * np.sqrt(variance)
    if colour:
        rgb = demosaic(raw) * g
    else:
        rgb = (raw * g[1])[:, :, None]
    return jpeg(linear_to_srgb(rgb))


def case_seed(name: str, shot: float) -> int:
    return int.from_bytes(hashlib.sha256(f"camera/{name}/{shot:g}".encode()).digest()[:4], "little")


# ---- the methods -----------------------------------------------------------------------------------


def run_bm3d(noisy: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    s = sigma / 255
    if noisy.shape[2] == 3:
        return np.asarray(bm3d.bm3d_rgb(noisy, s), dtype=np.float32)
    return np.asarray(bm3d.bm3d(noisy[:, :, 0], s), dtype=np.float32)[:, :, None]


def run_nlmeans(noisy: np.ndarray, sigma: float | None) -> np.ndarray:
    """NL-means with σ given (0–255), or σ from skimage's own ``estimate_sigma`` when None."""
    from skimage.restoration import denoise_nl_means, estimate_sigma

    grey = noisy.shape[2] == 1
    image = noisy[:, :, 0] if grey else noisy
    axis = None if grey else 2
    s = float(np.mean(estimate_sigma(image, channel_axis=axis))) if sigma is None else sigma / 255
    out = denoise_nl_means(image, h=0.8 * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6,
                           channel_axis=axis)
    return np.asarray(out, dtype=np.float32).reshape(noisy.shape)


def best_sigma(denoise, noisy: np.ndarray, reference: np.ndarray, grid: tuple[float, ...] = BM3D_GRID,
               start: float = 11, align=None) -> tuple[np.ndarray, dict]:
    """Hill climb over ``grid`` from ``start`` to the σ whose output scores best against the
    reference (PSNR against σ is unimodal for these filters); the output and what was tried.
    ``align`` maps an output onto the reference's pixels (the ISO series: shift, gain, crop)."""
    align = align or (lambda out: out)
    tried: dict[float, tuple[float, np.ndarray]] = {}

    def score(i: int) -> float:
        if grid[i] not in tried:
            out = denoise(noisy, grid[i])
            tried[grid[i]] = (scores(align(out), reference)[0], out)
        return tried[grid[i]][0]

    i = min(range(len(grid)), key=lambda k: abs(grid[k] - start))
    while True:
        here = score(i)
        moves = [j for j in (i - 1, i + 1) if 0 <= j < len(grid) and score(j) > here]
        if not moves:
            break
        i = max(moves, key=score)
    return tried[grid[i]][1], {"sigma": grid[i], "tried": {f"{s:g}": round(p, 3) for s, (p, _) in
                                                          sorted(tried.items())}}


def true_sigma(noisy: np.ndarray, reference: np.ndarray) -> float:
    """The RMS σ (0–255) of the noise the simulated camera added (noisy − reference), over channels
    as ``CameraNoise.sigma`` is over the image."""
    return float(np.sqrt(np.mean((noisy - reference).var(axis=(0, 1))))) * 255


def run_dip(method: str, noisy: np.ndarray, iters: int | None,
            sigma: float | None = None) -> tuple[np.ndarray, dict]:
    import dipcli

    result = dipcli.denoise(noisy, sigma, noise=DIP[method], wiener=method not in FIT_ONLY, iters=iters)
    FIT_ALONE["last"] = np.asarray(result.fit.ema, dtype=np.float32).reshape(noisy.shape)
    keep = ("sigma", "noise_model", "noise", "noise_sigma_range", "noise_correlation_px", "preset", "fits",
            "tiles")
    info = {"iterations": result.iterations, "stop": result.stop_reason, "notes": result.notes,
            **{k: result.settings[k] for k in keep if k in result.settings}}
    return np.asarray(result.image, dtype=np.float32).reshape(noisy.shape), info


def readout(noisy: np.ndarray, reference: np.ndarray) -> dict:
    """The noise readout next to the truth (noisy − reference): σ (0–255) per channel around
    mid-grey (reference 0.4–0.6) and the correlation width, the true one read from the true noise
    laid on flat grey. The readout is the model `dip` takes (its level cross-checked since
    2026-12-07's last change; the rows before: results/archive/camera-unchecked-level.jsonl)."""
    # internal: the model dip reads, and the correlation reader for the true noise's width
    from dipcli.physics.camera import read_noise
    from dipcli.physics.noise_models import read_camera_noise

    model = read_camera_noise(noisy)
    curve, corr = model.curve, model.correlation
    noise = noisy - reference
    mid = (reference > 0.4) & (reference < 0.6)
    true_mid = [float(noise[:, :, c][mid[:, :, c]].std() * 255) if mid[:, :, c].sum() > 50 else None
                for c in range(noisy.shape[2])]
    grey = np.clip(0.5 + noise, 0, 1)
    return {"summary": curve.summary(corr), "sigma_mid": (curve.sigma(0.5) * 255).round(2).tolist(),
            "true_sigma_mid": [None if t is None else round(t, 2) for t in true_mid],
            "width": round(corr.width, 2),
            "true_width": round(read_noise(grey)[1].width, 2)}


def denoised(method: str, noisy: np.ndarray, reference: np.ndarray, iters: int | None,
             grid: tuple[float, ...], align=None) -> tuple[np.ndarray, dict]:
    """One denoising method's output and what it chose."""
    if method == "noisy":
        return noisy, {}
    if method == "bm3d":
        return best_sigma(run_bm3d, noisy, reference, grid, align=align)
    if method == "nlmeans":
        return run_nlmeans(noisy, None), {}
    if method == "nlmeans-best":
        return best_sigma(run_nlmeans, noisy, reference, grid, align=align)
    if method in DIP:
        given = true_sigma(noisy, reference) if method == "camera-true" else None
        return run_dip(method, noisy, iters, given)
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


def again(method: str, noisy: np.ndarray, info: dict, iters: int | None) -> np.ndarray:
    """``method`` on another image with the choices it made on the first (BM3D's σ): the
    registration floor denoises two frames the same way."""
    if method in ("bm3d", "nlmeans-best"):
        return (run_bm3d if method == "bm3d" else run_nlmeans)(noisy, info["sigma"])
    return denoised(method, noisy, noisy, iters, BM3D_GRID)[0]


def run_method(method: str, noisy: np.ndarray, reference: np.ndarray, iters: int | None,
               grid: tuple[float, ...], align=None) -> tuple[dict, np.ndarray | None]:
    """One method on one noisy image: its scores, seconds and choices, and its output."""
    align = align or (lambda out: out)
    start = time.perf_counter()
    if method == "readout":
        return {**readout(noisy, reference), "seconds": time.perf_counter() - start}, None
    out, info = denoised(method, noisy, reference, iters, grid, align)
    psnr, ssim = scores(align(out), reference)
    return {"psnr": psnr, "ssim": ssim, "seconds": time.perf_counter() - start, **info}, out

# ---- images, the run, the tables -------------------------------------------------------------------


def heldout_set() -> dict[str, Path]:
    """name → file: the held-out set of benchmarks/quality.py, its colour CBSD68 images only."""
    return quality_heldout(grey=False)


def cases(sets: list[str], crop: int, smoke: bool,
          only: str | None = None) -> list[tuple[str, str, np.ndarray]]:
    """(set, name, clean crop) for each image of ``sets`` (whose name contains ``only``)."""
    if smoke:
        return [("smoke", "card", smoke_image())]
    out = []
    for name_of_set in sets:
        files = acceptance_set() if name_of_set == "acceptance" else heldout_set()
        for name, path in files.items():
            if only and only not in name:
                continue
            out.append((name_of_set, name, centre_crop(read_image(path).pixels, crop)))
    return out


def load_log(log: Path) -> list[dict]:
    if not log.exists():
        return []
    rows = []
    for line in log.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short when a run was killed
            continue
    return rows


def run(args: argparse.Namespace, log: Path, smoke: bool) -> list[dict]:
    rows = load_log(log)
    done = {(r["set"], r["image"], r["level"], r["method"]) for r in rows}
    iters = SMOKE_ITERS if smoke else args.iters
    grid = BM3D_GRID[4:5] if smoke else BM3D_GRID  # a smoke run: one σ (BM3D takes seconds even at 32²)
    for name_of_set, name, clean in cases(args.sets, args.crop, smoke, args.only):
        for shot in args.levels:
            todo = [m for m in args.methods if (name_of_set, name, shot, m) not in done]
            if not todo:
                continue
            seed = case_seed(name, shot)
            reference, noisy = camera(clean, None, seed), camera(clean, shot, seed)
            for method in todo:
                done_one = run_method(method, noisy, reference, iters, grid)
                row = {"set": name_of_set, "image": name, "level": shot, "method": method, **done_one[0]}
                if method in DIP and not smoke:
                    FITS.mkdir(exist_ok=True)
                    np.save(FITS / f"{name_of_set}-{name}-{shot:g}-{method}.npy", FIT_ALONE["last"])
                rows.append(row)
                with log.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{name_of_set} {name} shot {shot:g} {method}: "
                      + (f"{row['psnr']:.2f} dB" if "psnr" in row else row.get("summary", "")), flush=True)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Per set, level and method: means, and the gaps to BM3D on the same noisy images."""
    bm3d = {(r["set"], r["image"], r["level"]): r["psnr"] for r in rows if r["method"] == "bm3d"}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["set"], r["level"], r["method"]), []).append(r)
    out = []
    for (name_of_set, level, method), group in sorted(groups.items(), key=lambda kv: (
            kv[0][0], kv[0][1], METHODS.index(kv[0][2]) if kv[0][2] in METHODS else 99)):
        s = {"set": name_of_set, "level": level, "method": method, "images": len(group),
             "seconds": statistics.fmean(r["seconds"] for r in group)}
        if "psnr" in group[0]:
            s.update(psnr=statistics.fmean(r["psnr"] for r in group),
                     ssim=statistics.fmean(r["ssim"] for r in group))
            gaps = [r["psnr"] - bm3d[(r["set"], r["image"], r["level"])] for r in group
                    if (r["set"], r["image"], r["level"]) in bm3d]
            if gaps and method != "bm3d":
                s.update(gap=statistics.fmean(gaps), median_gap=statistics.median(gaps), worst_gap=min(gaps))
        else:
            s.update(width=statistics.fmean(r["width"] for r in group),
                     true_width=statistics.fmean(r["true_width"] for r in group),
                     sigma_ratio=_sigma_ratio(group))
        out.append(s)
    return out


def _sigma_ratio(group: list[dict]) -> float | None:
    """Mean over images and channels of the readout's σ at mid-grey over the true one."""
    ratios = [a / t for r in group for a, t in zip(r["sigma_mid"], r["true_sigma_mid"], strict=True) if t]
    return statistics.fmean(ratios) if ratios else None


def table(summary: list[dict], crop: int) -> str:
    lines = [f"# Simulated camera (benchmarks/camera.py), {crop}² centre crops", "",
             "| set | shot | method | images | PSNR | SSIM | gap to BM3D: mean / median / worst "
             "| s per image |",
             "|---|---|---|---|---|---|---|---|"]
    for s in summary:
        if "psnr" not in s:
            continue
        gap = f"{s['gap']:+.2f} / {s['median_gap']:+.2f} / {s['worst_gap']:+.2f}" if "gap" in s else ""
        lines.append(f"| {s['set']} | {s['level']:g} | {s['method']} | {s['images']} | {s['psnr']:.2f} "
                     f"| {s['ssim']:.3f} | {gap} | {s['seconds']:.1f} |")
    reads = [s for s in summary if "width" in s]
    if reads:
        lines += ["", "Noise readout (dipcli.physics.camera) against the true noise (noisy − reference):", "",
                  "| set | shot | images | σ at mid-grey, read / true | width read (px) | true width (px) |",
                  "|---|---|---|---|---|---|"]
        for s in reads:
            ratio = "" if s["sigma_ratio"] is None else f"{s['sigma_ratio']:.2f}"
            lines.append(f"| {s['set']} | {s['level']:g} | {s['images']} | {ratio} | {s['width']:.2f} "
                         f"| {s['true_width']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="camera.py", description=__doc__.split("\n")[0])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--levels", nargs="+", type=float, default=list(LEVELS), help="shot noise levels")
    ap.add_argument("--sets", nargs="+", default=["acceptance", "heldout"], choices=["acceptance", "heldout"])
    ap.add_argument("--only", help="only images whose name contains this")
    ap.add_argument("--crop", type=int, default=256, help="centre crop side (0: whole images)")
    ap.add_argument("--iters", type=int, default=None, help="DIP budget (default: the product's)")
    ap.add_argument("--log", type=Path, default=None, help="JSON Lines log (default <out>/camera.jsonl)")
    ap.add_argument("--out", type=Path, default=None, help=f"results folder (default {OUT})")
    ap.add_argument("--table-only", action="store_true", help="rebuild the tables from the log")
    add_smoke_argument(ap)
    args, smoke = parse_smoke(ap, argv)
    folder = results_folder(args.out or (None if smoke else OUT), smoke)
    folder.mkdir(parents=True, exist_ok=True)
    log = args.log or folder / "camera.jsonl"
    if smoke:
        args.levels = [LEVELS[1]]
    rows = load_log(log) if args.table_only else run(args, log, smoke)
    summary = summarise(rows)
    write_results("camera", {"levels": args.levels, "bm3d_grid": BM3D_GRID, "summary": summary,
                             "rows": rows}, table(summary, 32 if smoke else args.crop), folder)


if __name__ == "__main__":
    main()
