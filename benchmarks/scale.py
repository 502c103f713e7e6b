"""Seconds and peak memory against megapixels: `dip denoise` with its defaults and BM3D, same files.

    python benchmarks/scale.py                         # 0.065, 0.26, 1, 4 and 12 MP at σ = 25
    python benchmarks/scale.py --sizes 0.065 0.26      # some sizes only
    python benchmarks/scale.py --table-only            # the tables and the plot from the log
    python benchmarks/scale.py --smoke                 # a tiny run of the whole script

The clean reference is one 4000×3000 mosaic of the colour test images in ``shared/data`` (every
CBSD68 image of ``texture_widths/``, then Set9, which holds the four Kodak images: each the centre
480×320 of the image, turned to landscape first and mirrored out where it is smaller, laid left to
right and top to bottom, in file order and again from the start until the 9 × 10 grid is full, cut
to 4000×3000). The smaller
sizes are its centre crops: 256², 512², 1024², 2048² and the whole. Each gets ``clip(x + N(0, σ²))``
noise from a fixed seed and is written as an 8-bit PNG: the one noisy file both methods read.

* ``dip``: ``dip denoise noisy.png --sigma 25`` as a user runs it (its defaults: preset, tiles,
  device), a process of its own.
* ``bm3d``: the ``bm3d`` package's CBM3D with σ given, reading the same PNG and writing a PNG, a
  process of its own. Its licence is non-commercial: a benchmark-only dependency
  (``pip install 'dipcli[bench]'``), never the product's.

Seconds are the whole process's wall time (start-up, reading and writing included); peak memory
is its maximum resident set size. PSNR is of the written 8-bit file against the clean mosaic.
Rows are appended to ``results/scale/scale.jsonl`` as they finish and a row already there is
not run again, so a cut-off run resumes. Run nothing else heavy beside it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from common import (  # noqa: E402
    DATA,
    RESULTS,
    add_smoke_argument,
    device_name,
    parse_smoke,
    results_folder,
    synthetic_card,
    write_results,
)

FOLDER = RESULTS / "scale"
LOG = FOLDER / "scale.jsonl"
SIZES = {0.065: (256, 256), 0.26: (512, 512), 1.0: (1024, 1024), 4.0: (2048, 2048), 12.0: (3000, 4000)}
CELL = (320, 480)  # a mosaic cell: height, width
SIGMA = 25.0

BM3D_RUN = """
import sys, imageio.v3 as iio, numpy as np, bm3d
noisy = iio.imread(sys.argv[1]).astype(np.float32) / 255
out = bm3d.bm3d_rgb(noisy, float(sys.argv[3]) / 255)
iio.imwrite(sys.argv[2], np.round(np.clip(out, 0, 1) * 255).astype(np.uint8))
"""


def mosaic(shape: tuple[int, int] = (3000, 4000)) -> np.ndarray:
    """The clean 4000×3000 reference (see the module's docstring), uint8 RGB."""
    files = sorted((DATA / "texture_widths").glob("*/[0-9][0-9][0-9][0-9].png"), key=lambda p: p.name)
    files += sorted((DATA / "set9").glob("*.png"))
    ch, cw = CELL
    rows, cols = -(-shape[0] // ch), -(-shape[1] // cw)
    out = np.zeros((rows * ch, cols * cw, 3), np.uint8)
    k = 0
    for r in range(rows):
        for c in range(cols):
            img = iio.imread(files[k % len(files)])
            k += 1
            img = img[:, :, :3] if img.ndim == 3 else np.repeat(img[:, :, None], 3, axis=2)
            if img.shape[0] > img.shape[1]:
                img = np.rot90(img)
            short = (max(0, ch - img.shape[0]), max(0, cw - img.shape[1]))  # House is 256²: mirrored out
            img = np.pad(img, ((0, short[0]), (0, short[1]), (0, 0)), mode="symmetric")
            top, left = (img.shape[0] - ch) // 2, (img.shape[1] - cw) // 2
            out[r * ch:(r + 1) * ch, c * cw:(c + 1) * cw] = img[top:top + ch, left:left + cw]
    return out[:shape[0], :shape[1]]


def centre(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    top, left = (image.shape[0] - size[0]) // 2, (image.shape[1] - size[1]) // 2
    return image[top:top + size[0], left:left + size[1]]


def noisy_file(clean: np.ndarray, folder: Path, mp: float) -> Path:
    rng = np.random.default_rng(int(mp * 1000))
    noisy = np.clip(clean / 255 + rng.normal(0, SIGMA / 255, clean.shape), 0, 1)
    path = folder / f"noisy_{mp:g}mp.png"
    iio.imwrite(path, np.round(noisy * 255).astype(np.uint8))
    return path


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (GB) of ``cmd`` run as a process of its own."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as rss:
        start = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd], capture_output=True,
                              text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        kb = int(Path(rss.name).read_text().split()[-1])
    return seconds, kb / 2**20


def psnr(path: Path, clean: np.ndarray) -> float:
    out = iio.imread(path).astype(np.float64)
    mse = np.mean((out - clean.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse))


def run(method: str, noisy: Path, out: Path, extra: list[str]) -> tuple[float, float]:
    if method == "bm3d":
        return timed([sys.executable, "-c", BM3D_RUN, str(noisy), str(out), str(SIGMA)])
    return timed([sys.executable, "-m", "dipcli", "denoise", str(noisy), "--sigma", f"{SIGMA:g}",
                  "-o", str(out), "--force", "--quiet", *extra])


def table(rows: list[dict]) -> str:
    lines = [f"`dip denoise --sigma 25` (defaults) against BM3D on the same noisy file; {device_name()}.",
             "", "| megapixels | size | method | seconds | peak memory (GB) | PSNR (dB) | time / BM3D's | "
             "PSNR − BM3D's |", "|---|---|---|---|---|---|---|---|"]
    by = {(r["mp"], r["method"]): r for r in rows}
    for r in sorted(rows, key=lambda r: (r["mp"], r["method"] != "dip")):
        ref = by.get((r["mp"], "bm3d"))
        ratio = f"{r['seconds'] / ref['seconds']:.1f}×" if ref else ""
        gap = f"{r['psnr'] - ref['psnr']:+.2f}" if ref else ""
        name = " ".join([r["method"], *r.get("args", [])])
        lines.append(f"| {r['mp']:g} | {r['width']}×{r['height']} | {name} | {r['seconds']:.1f} | "
                     f"{r['peak_gb']:.2f} | {r['psnr']:.2f} | {ratio} | {gap} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    for method, style in (("dip", "o-"), ("bm3d", "s--")):
        pts = sorted((r["mp"], r["seconds"]) for r in rows if r["method"] == method and not r.get("args"))
        if pts:
            label = "dip denoise (default)" if method == "dip" else "BM3D"
            ax.plot(*zip(*pts, strict=True), style, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("megapixels")
    ax.set_ylabel("seconds (whole process)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=list(SIZES))
    ap.add_argument("--methods", nargs="+", default=["bm3d", "dip"])
    ap.add_argument("--dip-args", default="", help="more options for dip denoise (a trial, not the default)")
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default results/scale)")
    add_smoke_argument(ap)
    a, smoke = parse_smoke(ap)
    folder = results_folder(a.out, smoke) if smoke else (a.out or FOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / LOG.name
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    if not a.table_only:
        work = Path(tempfile.mkdtemp(prefix="dipscale-"))
        full = synthetic_card(64) if smoke else mosaic()  # a smoke run needs none of shared/data
        sizes = {0.004: (64, 64)} if smoke else {mp: SIZES[mp] for mp in a.sizes}
        extra = a.dip_args.split() + (["--iters", "10", "--arch", "compact", "--width", "8"] if smoke else [])
        for mp, size in sizes.items():
            clean = centre(full, size)
            noisy = noisy_file(clean, work, mp)
            for method in a.methods:
                args = extra if method == "dip" else []
                if any(r["mp"] == mp and r["method"] == method and r.get("args", []) == args for r in rows):
                    continue
                out = work / f"{method}_{mp:g}mp.png"
                seconds, peak = run(method, noisy, out, extra if method == "dip" else [])
                row = {"mp": mp, "height": size[0], "width": size[1], "method": method,
                       "seconds": round(seconds, 2), "peak_gb": round(peak, 3),
                       "psnr": round(psnr(out, clean), 3), "args": extra if method == "dip" else []}
                rows.append(row)
                with log.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    write_results("scale", {"device": device_name(), "sigma": SIGMA, "rows": rows}, table(rows), folder)
    plot(rows, folder / "scale.png")


if __name__ == "__main__":
    main()
