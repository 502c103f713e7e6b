"""Real camera noise scored against a real reference (issue 32): one scene shot at ISO 100 … 51200.

    python benchmarks/camera_iso.py --methods noisy readout bm3d nlmeans   # the cheap methods
    python benchmarks/camera_iso.py                                        # and the DIP methods
    python benchmarks/camera_iso.py --table-only
    python benchmarks/camera_iso.py --smoke

The frames in data/real_noise_iso/ (DSC_8880 … DSC_8889, ISO from the EXIF) hold brightness by
shutter speed, so the ISO 100 frame is a nearly clean reference, but the camera moved between
shots (0.5–5.6 px). Each frame is registered to it by sub-pixel phase correlation
(``skimage.registration.phase_cross_correlation``, upsample factor 20, on grey), and its
brightness matched per channel by a linear fit frame ≈ α·reference + β on the registered overlap
(the reference nearly clean, so it is the regressor). A method denoises the frame as shot; its
output is shifted (``scipy.ndimage.shift``, cubic), mapped by (out − β)/α, cropped to the area
all frames share, and scored against the ISO 100 frame. BM3D's σ is hill-climbed against that
score, as in camera.py, whose methods these are (``gaussian``: the default before the camera
noise model; ``default``: the default now; ``camera``: the camera model whatever ``auto`` says).

What registration itself costs (the floor): ISO 200 against ISO 100, both denoised by the same
method with the same choices (BM3D's σ found for ISO 200), registered and matched the same way.

Also saved: 128² crops around the printed text on the box at ISO 51200 (noisy and each method's
output) and the same crop of ISO 100, as PNGs in the results folder, for the README.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from camera import (
    BM3D_GRID,
    METHODS,
    OUT,
    again,
    load_log,
    run_method,
)
from common import (
    DATA,
    SMOKE_ITERS,
    add_smoke_argument,
    parse_smoke,
    results_folder,
    smoke_image,
    write_results,
)
from quality import scores

from dipcli import read_image

FRAMES = DATA / "real_noise_iso"
TEXT = (slice(196, 324), slice(212, 340))  # the box's printed text and bar code (found by eye, ISO 100)
CROP_ISO = 51200  # the frame whose crops are saved


def exif_iso(path: Path) -> int:
    from PIL import Image

    return int(Image.open(path).getexif().get_ifd(0x8769)[0x8827])  # Exif IFD, ISOSpeedRatings


def load_series(folder: Path) -> dict[int, np.ndarray]:
    """ISO → frame (float ``(H, W, 3)``), from the EXIF of each JPEG."""
    return {exif_iso(p): read_image(p).pixels for p in sorted(folder.glob("*.JPG"))}


def register(reference: np.ndarray, frame: np.ndarray) -> tuple[float, float]:
    """The (dy, dx) that moves ``frame`` onto ``reference``, to 1/20 px."""
    from skimage.registration import phase_cross_correlation

    shift, _, _ = phase_cross_correlation(reference.mean(axis=2), frame.mean(axis=2), upsample_factor=20)
    return float(shift[0]), float(shift[1])


def move(pixels: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    from scipy import ndimage

    return ndimage.shift(pixels, (*shift, 0), order=3, mode="nearest")


def common_window(shifts: list[tuple[float, float]], shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The area every registered frame covers (a margin of the largest shift and the cubic's reach)."""
    m = math.ceil(max(abs(v) for s in shifts for v in s)) + 3
    return slice(m, shape[0] - m), slice(m, shape[1] - m)


def gain_fit(reference: np.ndarray, moved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel α, β of moved ≈ α·reference + β (least squares over the window's pixels)."""
    alpha, beta = [], []
    for c in range(reference.shape[2]):
        a, b = np.polyfit(reference[:, :, c].ravel(), moved[:, :, c].ravel(), 1)
        alpha.append(a)
        beta.append(b)
    return np.array(alpha), np.array(beta)


class Aligner:
    """Maps one frame's outputs onto the reference window: shift, brightness, crop."""

    def __init__(self, reference: np.ndarray, frame: np.ndarray, shift: tuple[float, float],
                 window: tuple[slice, slice]) -> None:
        self.shift, self.window = shift, window
        self.alpha, self.beta = gain_fit(reference[window], move(frame, shift)[window])

    def __call__(self, out: np.ndarray) -> np.ndarray:
        return (move(out, self.shift)[self.window] - self.beta) / self.alpha


def smoke_series() -> dict[int, np.ndarray]:
    """Three synthetic frames of one card: ISO 100 nearly clean, 200 and 51200 shifted and noisier."""
    rng = np.random.default_rng(0)
    clean = smoke_image()
    frames = {}
    for iso, shift, sigma in ((100, (0, 0), 1), (200, (0.6, -1.3), 4), (CROP_ISO, (-1.2, 0.4), 30)):
        frames[iso] = np.clip(move(clean, shift) + rng.normal(0, sigma / 255, clean.shape), 0, 1)
    return frames


def save_crop(folder: Path, name: str, pixels: np.ndarray, window: tuple[slice, slice]) -> None:
    import imageio.v3 as iio

    iio.imwrite(folder / f"{name}.png", np.round(np.clip(pixels[window], 0, 1) * 255).astype(np.uint8))


def save_strip(folder: Path, iso: int = 51200, methods: tuple[str, ...] = ("noisy", "gaussian", "default",
                                                                         "bm3d")) -> None:
    """The text crops side by side, each 2× larger (the README's picture): the noisy frame, each of
    ``methods`` that has a crop, and the ISO 100 reference last; none if a crop is missing."""
    import imageio.v3 as iio

    paths = [folder / f"iso{iso}_text_{m}.png" for m in methods] + [folder / "iso100_text_reference.png"]
    if not all(p.exists() for p in paths):
        return
    crops = [np.repeat(np.repeat(iio.imread(p)[..., :3], 2, 0), 2, 1) for p in paths]
    gap = np.full((crops[0].shape[0], 8, 3), 255, np.uint8)
    iio.imwrite(folder / f"iso{iso}_text_strip.png", np.concatenate(
        [part for c in crops for part in (c, gap)][:-1], axis=1))


def readout_row(frame: np.ndarray) -> dict:
    """What the noise readout and today's white-noise estimate (what `dip` prints) say of a frame."""
    # internal: the readout itself, and the white-noise σ `dip` printed before it, side by side
    from dipcli.physics.noise import estimate_noise
    from dipcli.physics.noise_models import read_camera_noise

    start = time.perf_counter()
    model = read_camera_noise(frame)  # its level cross-checked since 2026-12-07's last change
    curve, corr = model.curve, model.correlation
    return {"summary": curve.summary(corr), "width": round(corr.width, 2),
            "sigma_dark_mid_bright": [(curve.sigma(v) * 255).round(2).tolist() for v in (0.1, 0.3, 0.6)],
            "white_sigma": round(estimate_noise(frame) * 255, 2), "curve": curve.to_dict(),
            "correlation": corr.to_dict(), "seconds": time.perf_counter() - start}


def run(args: argparse.Namespace, frames: dict[int, np.ndarray], log: Path, folder: Path, crop,
        smoke: bool) -> list[dict]:
    rows = load_log(log)
    done = {(r["iso"], r["method"]) for r in rows}
    iters = SMOKE_ITERS if smoke else args.iters
    grid = BM3D_GRID[4:5] if smoke else BM3D_GRID  # a smoke run: one σ (BM3D takes seconds even at 32²)
    ref = frames[100]
    shifts = {iso: register(ref, f) for iso, f in frames.items()}
    window = common_window(list(shifts.values()), ref.shape)
    save_crop(folder, "iso100_text_reference", ref, crop)
    isos = [200, *sorted((i for i in frames if i > 200), reverse=True)]
    isos = [i for i in isos if i in frames and (not args.isos or i in args.isos)]
    for iso in isos:
        align = Aligner(ref, frames[iso], shifts[iso], window)
        where = {"shift": [round(v, 3) for v in shifts[iso]], "gain": align.alpha.round(4).tolist(),
                 "offset": align.beta.round(4).tolist(), "window": [window[0].start, window[0].stop]}
        for method in args.methods:
            if (iso, method) in done:
                continue
            if method == "readout":
                row = {"iso": iso, "method": method, **where, **readout_row(frames[iso])}
            else:
                row, out = run_method(method, frames[iso], ref[window], iters, grid, align)
                row = {"iso": iso, "method": method, **where, **row}
                if iso == 200:
                    twin = again(method, ref, row, iters)[window]
                    row["floor_psnr"], row["floor_ssim"] = scores(align(out), twin)
                if iso == CROP_ISO:
                    save_crop(folder, f"iso{iso}_text_{method}", out, crop)
            rows.append(row)
            with log.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"ISO {iso} {method}: " + (f"{row['psnr']:.2f} dB" if "psnr" in row else row["summary"]),
                  flush=True)
    return rows


def table(rows: list[dict]) -> str:
    isos = sorted({r["iso"] for r in rows})
    methods = [m for m in METHODS if m != "readout" and any(r["method"] == m for r in rows)]
    by = {(r["iso"], r["method"]): r for r in rows}
    lines = ["# The ISO series (benchmarks/camera_iso.py): PSNR (dB) against the registered ISO 100 frame",
             "", "| ISO | shift (dy, dx) px | " + " | ".join(methods) + " |",
             "|---|---|" + "---|" * len(methods)]
    for iso in isos:
        shift = next((r["shift"] for r in rows if r["iso"] == iso), None)
        cells = []
        for m in methods:
            r = by.get((iso, m))
            extra = f" (σ {r['sigma']:.3g})" if r and isinstance(r.get("sigma"), (int, float)) else ""
            if r and r.get("noise_model") == "camera":
                extra = " (camera model)"
            cells.append(f"{r['psnr']:.2f}{extra}" if r else "")
        lines.append(f"| {iso} | {shift[0]:+.2f}, {shift[1]:+.2f} | " + " | ".join(cells) + " |")
    floors = [(m, by[(200, m)]) for m in methods if (200, m) in by and "floor_psnr" in by[(200, m)]]
    if floors:
        lines += ["", "Registration floor: ISO 200 against ISO 100, both denoised by the method (same σ):",
                  "", "| method | PSNR | SSIM |", "|---|---|---|"]
        lines += [f"| {m} | {r['floor_psnr']:.2f} | {r['floor_ssim']:.3f} |" for m, r in floors]
    reads = [by[(iso, "readout")] for iso in isos if (iso, "readout") in by]
    if reads:
        lines += ["", "Noise readout (dipcli.physics.camera) and today's white-noise σ "
                  "(dipcli.physics.noise.estimate_noise):", "",
                  "| ISO | readout | white σ |", "|---|---|---|"]
        lines += [f"| {r['iso']} | {r['summary']} | {r['white_sigma']:.1f} |" for r in reads]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="camera_iso.py", description=__doc__.split("\n")[0])
    methods = [m for m in METHODS if m != "camera-true"]  # the reference is another frame: no true σ
    ap.add_argument("--methods", nargs="+", default=methods, choices=methods)
    ap.add_argument("--isos", nargs="+", type=int, default=None, help="only these ISOs (200 gives the floor)")
    ap.add_argument("--iters", type=int, default=None, help="DIP budget (default: the product's)")
    ap.add_argument("--log", type=Path, default=None, help="JSON Lines log (default <out>/camera_iso.jsonl)")
    ap.add_argument("--out", type=Path, default=None, help=f"results folder (default {OUT})")
    ap.add_argument("--table-only", action="store_true", help="rebuild the tables from the log")
    add_smoke_argument(ap)
    args, smoke = parse_smoke(ap, argv)
    folder = results_folder(args.out or (None if smoke else OUT), smoke)
    folder.mkdir(parents=True, exist_ok=True)
    log = args.log or folder / "camera_iso.jsonl"
    if args.table_only:
        rows = load_log(log)
    else:
        frames = smoke_series() if smoke else load_series(FRAMES)
        crop = (slice(4, 28), slice(4, 28)) if smoke else TEXT
        rows = run(args, frames, log, folder, crop, smoke)
    write_results("camera_iso", {"rows": rows, "bm3d_grid": BM3D_GRID}, table(rows), folder)
    save_strip(folder)


if __name__ == "__main__":
    main()
