"""Shared helpers for the benchmark scripts: data paths, crops, running `dip` and writing results."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("DIP_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    model = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                 if ln.startswith("model name")]
        model = names[0] if names else model
    return f"CPU ({model}, {os.cpu_count()} cores), torch {torch.__version__}"


def centre_crop_file(path: Path, size: int, folder: Path) -> Path:
    """Write a centre crop of ``path`` (size 0 = the whole image) into ``folder``; return its path."""
    img = iio.imread(path)
    if size:
        h, w = img.shape[:2]
        top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
        img = img[top: top + size, left: left + size]
    out = folder / f"{path.stem}.png"
    iio.imwrite(out, img)
    return out


def run_dip(args: list[str]) -> dict:
    """Run the installed `dip` CLI with --json and return its record (raises on failure)."""
    cmd = [sys.executable, "-m", "dipcli", *args, "--json", "--quiet", "--force"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_results(name: str, payload: dict, table: str, folder: Path = RESULTS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (folder / f"{name}.md").write_text(table + "\n")
    print(table)


def tempdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="dipbench-"))


def mean(xs) -> float:
    return float(np.mean(list(xs)))
