"""Shared helpers for the benchmark scripts: data paths, crops, running `dip` and writing results."""

from __future__ import annotations

import argparse
import csv
import hashlib
import inspect
import json
import multiprocessing
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from dipcli.extras import missing, needs, required_imports  # internal: names a missing extra as the CLI does

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("DIP_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"  # one folder per study: results/README.md is the index


def study_folder(study: str) -> Path:
    """Where the study ``study`` keeps its results: ``benchmarks/results/<study>/``.

    A study is named after the script that writes it (``quality``, ``stopping``, ...), or after
    the script and its mode (``quality_whole``: ``quality.py --whole``); benchmarks/results/README.md
    lists them, with the files that are each one's current answer.
    """
    return RESULTS / study


def device_name() -> str:
    """What the fits ran on; ``DIP_DEVICE_NAME`` names it when the tables are written elsewhere
    (from DIP_CHECKPOINTS results made on a lent GPU)."""
    if os.environ.get("DIP_DEVICE_NAME"):
        return os.environ["DIP_DEVICE_NAME"]
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    model = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                 if ln.startswith("model name")]
        model = names[0] if names else model
    return f"CPU ({model}, {os.cpu_count()} cores), torch {torch.__version__}"


def centre_window(shape: tuple[int, ...], size: int) -> tuple[slice, slice]:
    """The ``size``-square window at the centre of an image of ``shape`` (size 0: all of it)."""
    if not size:
        return slice(None), slice(None)
    h, w = shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return slice(top, top + size), slice(left, left + size)


def centre_crop(pixels: np.ndarray, size: int) -> np.ndarray:
    """The centre ``size``-square of ``pixels`` (size 0 = the whole image)."""
    return pixels[centre_window(pixels.shape, size)]


def hole_crop(mask: np.ndarray, size: int) -> tuple[slice, slice]:
    """A ``size``-square window centred on the holes' centroid, moved inside the image.

    Inpainting crops must contain the holes, or there is nothing to measure.
    """
    h, w = mask.shape
    ys, xs = np.nonzero(~mask)
    cy, cx = (int(ys.mean()), int(xs.mean())) if ys.size else (h // 2, w // 2)
    top = min(max(0, cy - size // 2), max(0, h - size))
    left = min(max(0, cx - size // 2), max(0, w - size))
    return slice(top, top + size), slice(left, left + size)


def crop_file(path: Path, window: tuple[slice, slice], folder: Path) -> Path:
    """Write ``path``'s pixels inside ``window`` (its own bit depth and channels) into ``folder``.

    The benchmarks that go through `dip`'s own reading code (the CLI, or ``read_image`` before
    ``dipcli.api.plan.plan_*``) need files, not arrays, so a crop is written out as a PNG of the
    same name.
    """
    out = folder / f"{path.stem}.png"
    iio.imwrite(out, iio.imread(path)[window])
    return out


def centre_crop_file(path: Path, size: int, folder: Path) -> Path:
    """Write a centre crop of ``path`` (size 0 = the whole image) into ``folder``; return its path."""
    return crop_file(path, centre_window(iio.imread(path).shape, size), folder)


def load_labels() -> list[tuple[str, int]]:
    """The paper's width labels: (path under texture_widths/, width) for its 86 images, in file order.

    Shared by the estimator's classification study and the PSNR study that judges it.
    """
    with open(DATA / "texture_widths" / "labels.csv") as f:
        return [(r["file"], int(r["width"])) for r in csv.DictReader(f)]


def run_dip(args: list[str]) -> dict:
    """Run the installed `dip` CLI with --json and return its record (raises on failure)."""
    cmd = [sys.executable, "-m", "dipcli", *args, "--json", "--quiet", "--force"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {done.returncode}): {done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# A JSON list of numbers (or nulls) only, as json.dumps(indent=2) spreads it over many lines.
_NUMBER_LIST = re.compile(r"\[(\s*(?:-?[\d.eE+-]+|null|NaN|-?Infinity)"
                          r"(?:,\s*(?:-?[\d.eE+-]+|null|NaN|-?Infinity))*\s*)\]")


def to_json(payload: dict) -> str:
    """Indented JSON with every list of numbers on one line.

    Per-check traces (hundreds of numbers per row) would otherwise take a line per number and
    make the results files tens of thousands of lines long.
    """
    text = json.dumps(payload, indent=2)
    return _NUMBER_LIST.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", text)


def write_results(name: str, payload: dict, table: str, folder: Path) -> None:
    """Write ``<name>.json`` and ``.md`` into ``folder`` (a study's, :func:`results_folder`) and
    print the table."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(to_json(payload) + "\n")
    (folder / f"{name}.md").write_text(table + "\n")
    print(table)


def side_by_side(jobs: int) -> str:
    """What a table says of its seconds when its fits shared the device."""
    return " (fits run side by side: seconds are not timings)" if jobs > 1 else ""


def tempdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="dipbench-"))


def mean(xs) -> float:
    return float(np.mean(list(xs)))


def add_fit_arguments(ap) -> None:
    """The net, optimiser and output options that the task benchmarks share."""
    ap.add_argument("--arch", default="compact")
    ap.add_argument("--width", type=int, default=None, help="net width (default: the arch's)")
    ap.add_argument("--upsample", default=None, help="nearest|bilinear|bicubic (default: the arch's)")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--only", help="run only images whose name contains this")
    ap.add_argument("--tag", default="", help="suffix for the results file names")
    ap.add_argument("--results", "--out", type=Path, default=None,
                    help="results folder (default: the study's, benchmarks/results/<study>)")
    ap.add_argument("--jobs", type=int, default=1, help="fits side by side (for a GPU; their "
                    "seconds then share the device and are not speed figures)")
    add_smoke_argument(ap)


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def parallel_map(fn: Callable, items: Iterable, jobs: int = 1) -> list:
    """``[fn(x) for x in items]``, in ``jobs`` worker processes when ``jobs`` > 1.

    For a GPU, where one small DIP net leaves the card mostly idle and several fits side by side
    finish sooner. Their wall times then share the device, so a run with ``jobs`` > 1 measures
    quality, not speed. ``fn`` must be a module-level function returning JSON-able values;
    results keep the items' order.

    With ``DIP_CHECKPOINTS`` set to a folder, each result is appended there as it arrives and a
    rerun of the same call skips the items already done: a study cut off by a time limit (a lent
    GPU's, say) resumes instead of starting over. ``DIP_PARTIAL=1`` beside it fits nothing and
    returns only the results already kept: the tables of a study that could not finish.
    """
    items = list(items)
    keys = [hashlib.sha1(f"{fn.__module__}.{fn.__name__}{x!r}".encode()).hexdigest() for x in items]
    done: dict[str, object] = {}
    log = None
    if os.environ.get("DIP_CHECKPOINTS"):
        folder = Path(os.environ["DIP_CHECKPOINTS"])
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha1(''.join(keys).encode()).hexdigest()[:16]}.jsonl"
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut short when the run was killed
                    continue
                done[rec["key"]] = rec["result"]
        log = path.open("a")
    todo = [(k, x) for k, x in zip(keys, items, strict=True) if k not in done]
    if log is not None and os.environ.get("DIP_PARTIAL") == "1":
        log.close()
        print(f"DIP_PARTIAL: {len(done)} of {len(items)} results kept, {len(todo)} not run", flush=True)
        return [done[k] for k in keys if k in done]

    def keep(key: str, result: object) -> None:
        done[key] = result
        if log is not None:
            log.write(json.dumps({"key": key, "result": result}) + "\n")
            log.flush()

    try:
        if jobs <= 1:
            for key, x in todo:
                keep(key, fn(x))
        else:
            threads = max(1, (os.cpu_count() or 1) // jobs)
            ctx = multiprocessing.get_context("spawn")  # CUDA cannot be forked
            with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                     initargs=(threads,)) as pool:
                futures = {pool.submit(fn, x): key for key, x in todo}
                for future in as_completed(futures):
                    keep(futures[future], future.result())
    finally:
        if log is not None:
            log.close()
    return [done[k] for k in keys]


def add_study_arguments(ap) -> None:
    """The options of the studies that fit `dip`'s own task configurations (stopping, two-stage).

    Net options default to None, i.e. to what `dip` itself would run for the task
    (``dipcli.api.presets.TASK_DEFAULTS`` and the architecture's own width), so that the study measures
    what `dip` runs.
    """
    ap.add_argument("--iters", type=int, default=None,
                    help="iteration budget (default: the task's CLI budget; 3000 with --full)")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[25, 50], help="0–255 scale")
    ap.add_argument("--size", type=int, default=256, help="centre crop size (default 256)")
    ap.add_argument("--full", action="store_true", help="whole images (for a GPU)")
    ap.add_argument("--images", type=int, help="only the first N images")
    ap.add_argument("--only", help="only images whose name contains this")
    ap.add_argument("--arch", default=None, help="generator (default: the task's)")
    ap.add_argument("--width", default=None, help="net width, or auto (default: the arch's)")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--precision", default="auto", help="auto (as `dip`), fp32 or bf16")
    ap.add_argument("--check-every", type=int, default=None,
                    help="iterations between checks (default: the CLI's, 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    ap.add_argument("--jobs", type=int, default=1,
                    help="fits at once, in worker processes (quality only: they share the device)")
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default: the study's, benchmarks/results/<study>)")
    ap.add_argument("--tag", default="", help="suffix for the results file names")
    add_smoke_argument(ap)


# ---- smoke runs -----------------------------------------------------------------------------------
#
# Every benchmark takes ``--smoke``: its whole path (fitting, scoring, tables, results files) on a
# synthetic image of SMOKE_SIZE² for a few iterations and one setting, in seconds, with no data
# from DATA. It writes into ``--out`` or a fresh temporary folder, never under benchmarks/results.
# tests/test_benchmarks.py runs them all, so that a change to the library that breaks a benchmark
# shows there rather than hours into a study.

SMOKE_SIZE = 32  # side of the synthetic image (superres ×4 needs 32: an 8-pixel low-resolution side)
SMOKE_ITERS = 10  # iterations of each fit


def add_smoke_argument(ap) -> None:
    ap.add_argument("--smoke", action="store_true",
                    help=f"a tiny run of the whole script ({SMOKE_SIZE}² synthetic image, {SMOKE_ITERS} "
                    "iterations, one setting) that writes into --out or a temporary folder, never "
                    "benchmarks/results")


def parse_smoke(ap: argparse.ArgumentParser,
                argv: list[str] | None = None) -> tuple[argparse.Namespace, bool]:
    """``ap.parse_args(argv)`` without ``smoke`` in it, and whether ``--smoke`` was given.

    The flag is kept out of the namespace because a study's arguments are part of each fit's
    checkpoint key (:func:`parallel_map`): the runs logged in results/gpu-checkpoints keep their
    keys only while the namespace of a real run holds what it held when they ran.

    Every benchmark parses its arguments here, so here it is refused, before any work, when an
    optional module that the calling script imports is missing (:func:`refuse_missing_extras`).
    """
    args = ap.parse_args(argv)
    refuse_missing_extras(ap, Path(inspect.stack(0)[1].filename))
    return args, vars(args).pop("smoke")


def refuse_missing_extras(ap: argparse.ArgumentParser, script: Path) -> None:
    """Exit 2 with one line naming the extra when ``script`` imports an optional module that is not
    installed (:func:`dipcli.extras.required_imports`): a study that would end in a traceback
    hours later, at its figure, says so at once instead."""
    absent = missing(required_imports(script))
    if absent:
        ap.exit(2, f"{needs(absent[0], ap.prog, prefer='bench')}\n")


def results_folder(out: Path | None, smoke: bool, study: str | None = None) -> Path:
    """Where a run writes: ``out`` if given, else the study's folder (:func:`study_folder`;
    benchmarks/results itself when no study is named). A smoke run writes, without ``out``, into a
    fresh temporary folder, and never anywhere under benchmarks/results."""
    if not smoke:
        return out or (study_folder(study) if study else RESULTS)
    if out is not None and out.resolve().is_relative_to(RESULTS.resolve()):
        raise SystemExit("--smoke never writes into benchmarks/results: give another --out")
    folder = out or Path(tempfile.mkdtemp(prefix="dipbench-smoke-"))
    print(f"smoke run: results go to {folder}", flush=True)
    return folder


def into_study(folder: Path, study: str) -> Path:
    """``folder``, or the study's own folder (:func:`study_folder`) where ``folder`` is
    benchmarks/results itself.

    For the studies whose fits are keyed by their whole namespace (:func:`parallel_map`):
    stopping, two_stage, upsampling and width_psnr keep ``args.out`` as benchmarks/results, as it
    was when results/gpu-checkpoints/ was logged (so those logs still match), and write their
    tables into their own folder through this.
    """
    return study_folder(study) if folder.resolve() == RESULTS.resolve() else folder


def synthetic_card(size: int, seed: int = 0) -> np.ndarray:
    """A clean synthetic ``(size, size, 3)`` uint8 image: smooth shading, discs of flat colour,
    and a band of fine stripes (texture), so that every measure has something to see."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.5 + 0.3 * np.sin(6 * x + 4 * y)], axis=2)
    for _ in range(40):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.01, 0.08)
        img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
    band = (y > 0.45) & (y < 0.55)
    img[band] = (0.5 + 0.4 * np.sin(2 * np.pi * x * size / 8))[band][:, None]
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def smoke_image(size: int = SMOKE_SIZE, seed: int = 0) -> np.ndarray:
    """The smoke runs' clean image: :func:`synthetic_card` as float32 ``(H, W, 3)`` in [0, 1], as
    ``read_image(...).pixels`` gives an 8-bit file."""
    return synthetic_card(size, seed).astype(np.float32) / 255


def smoke_mask(size: int = SMOKE_SIZE) -> np.ndarray:
    """A ``(size, size)`` bool mask, True where pixels are known: a square hole off centre and a
    line scratch: about a tenth of the pixels missing."""
    known = np.ones((size, size), dtype=bool)
    known[size // 4: size // 2, size // 4: size // 2] = False
    known[3 * size // 4, :] = False
    return known


def smoke_files(folder: Path, size: int = SMOKE_SIZE, seed: int = 0) -> tuple[Path, Path]:
    """Write the smoke image and its mask (white = known) as PNGs into ``folder``: for the
    benchmarks that read files (the CLI, or `dip`'s reader). Returns (image, mask)."""
    folder.mkdir(parents=True, exist_ok=True)
    image, mask = folder / "card.png", folder / "card_mask.png"
    iio.imwrite(image, synthetic_card(size, seed))
    iio.imwrite(mask, smoke_mask(size).astype(np.uint8) * 255)
    return image, mask
