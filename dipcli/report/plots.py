"""Pictures of a fit: loss/PSNR curves (matplotlib, an optional extra) and a GIF of snapshots.

matplotlib is imported only here and only when a plot is asked for, so the tool runs without it;
:func:`have_matplotlib` (with :func:`needs_matplotlib` for the file type, and the message
:func:`missing_matplotlib`) lets the CLI refuse ``--plot`` up front rather than after a long fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dipcli.extras import have, needs

PLOT_TYPES = (".png", ".svg", ".pdf", ".csv")  # .csv: the curves' numbers, no matplotlib


def have_matplotlib() -> bool:
    return have("matplotlib")


def missing_matplotlib() -> str:
    """The one line that refuses ``--plot`` without matplotlib, naming the extra that installs it."""
    return needs("matplotlib", "--plot")


def needs_matplotlib(path: str | Path) -> bool:
    return Path(path).suffix.lower() != ".csv"


def write_curves_csv(path: Path, history: Sequence[dict]) -> None:
    """The numbers behind the plot, one row per check: for a spreadsheet or a benchmark script."""
    import csv

    columns = list(dict.fromkeys(k for h in history for k in h))
    path.parent.mkdir(parents=True, exist_ok=True)  # made only now: a refused call leaves no folder
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(history)


def plot_curves(path: Path, history: Sequence[dict], *, title: str, kept: int, last: int,
                stage1_end: int | None = None) -> None:
    """Loss (log scale) and, when a reference was given, PSNR against iteration.

    Vertical lines mark where the fit stopped: the iteration whose averaged output was kept
    (the stop rule's best) and the last one run; for two-stage fits the first stage is shaded.
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    its = [h["iteration"] for h in history]
    loss = [h["loss"] for h in history]
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(its, loss, color="C0", lw=1.2, label="data loss (raw output)")
    if loss and min(loss) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("data loss")
    ax.set_xlim(0, max(last, 1) * 1.02)  # the stop lines at the end stay visible
    ax.set_title(title, fontsize=10)
    handles = []
    if any(h.get("psnr_ema") is not None for h in history):
        ax2 = ax.twinx()
        ax2.plot(its, [h.get("psnr_raw") for h in history], color="C1", lw=0.8, alpha=0.45,
                 label="PSNR, raw output")
        ax2.plot(its, [h.get("psnr_ema") for h in history], color="C1", lw=1.5,
                 label="PSNR, averaged output")
        peak = max((h for h in history if h.get("psnr_ema") is not None), key=lambda h: h["psnr_ema"])
        ax2.plot([peak["iteration"]], [peak["psnr_ema"]], "o", color="C1", ms=5,
                 label=f"best PSNR {peak['psnr_ema']:.2f} dB @ {peak['iteration']}")
        ax2.set_ylabel("PSNR (dB)")
        handles += ax2.get_legend_handles_labels()[0]
    if stage1_end:
        ax.axvspan(0, stage1_end, color="C4", alpha=0.10, label=f"stage 1 (to {stage1_end})")
    ax.axvline(kept, color="C2", ls="--", lw=1.2, label=f"kept: iteration {kept}")
    if last != kept:
        ax.axvline(last, color="0.4", ls=":", lw=1.2, label=f"last: iteration {last}")
    handles = ax.get_legend_handles_labels()[0] + handles
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncols=3, frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def gif_frame(data: np.ndarray) -> np.ndarray:
    """A snapshot as a GIF frame: 8 bits, no alpha (GIF transparency is one bit per pixel)."""
    if data.dtype == np.uint16:
        data = (data // 257).astype(np.uint8)
    if data.ndim == 3 and data.shape[2] in (2, 4):
        data = data[:, :, :-1]
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    return data


def write_gif(path: Path, frames: Sequence[Path], ms_per_frame: int = 100, hold_last_ms: int = 1000) -> None:
    """Assemble snapshot PNGs into a looping GIF; the last frame is held so the result shows."""
    import imageio.v3 as iio

    images = np.stack([gif_frame(iio.imread(f)) for f in frames])
    durations = [ms_per_frame] * (len(frames) - 1) + [hold_last_ms]
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, images, extension=".gif", duration=durations, loop=0, is_batch=True)
