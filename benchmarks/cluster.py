"""`--cluster` against `--jobs`: images per minute, and what a Dask task costs beyond its fit.

    cd benchmarks
    python cluster.py                     # 8 crops of 256², 100 iterations: --jobs 1/2, --cluster local:1/2
    python cluster.py --count 16 --workers 1 2 4
    python cluster.py --smoke             # 2 synthetic 32² images, --jobs 1 and --cluster local:2 (seconds)

Issue 19: "images per minute for a folder of 256² crops with --cluster local:1 and --cluster
local:2 (1 thread each) against --jobs 1 and --jobs 2 ... the overhead per task". Each setting
is one run of the real CLI in a subprocess over the same folder:
`dip denoise FOLDER --sigma 25 --add-noise --stop fixed --iters K --tile 0 --json` plus
`--jobs N` or `--cluster local:N`, with OMP_NUM_THREADS=1, so that every fit has one thread and
the runners differ in nothing but how they hand out the inputs. The crops are Set9's, then
texture_widths', centre-cropped (synthetic cards when the data folder is missing).

Per setting: the command's wall time (start-up of Python, torch and the cluster, reading,
writing, shutting down: all of it), the fits' own seconds (their records' ``seconds``), images
per minute, and the overhead per task: the slot-seconds not spent fitting, per image,
``(wall × N − Σ seconds) / images`` with N the fits that run at once (for N = 1 simply the wall
time less the fits, per image). It includes the fixed start-up, which more images amortise.
Each run's outputs are compared byte for byte with ``--jobs 1``'s: each fit is seeded by --seed
alone, so they must be identical.

Writes benchmarks/results/cluster/cluster[-<tag>].json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
from common import (
    DATA,
    SMOKE_ITERS,
    SMOKE_SIZE,
    add_smoke_argument,
    centre_crop_file,
    device_name,
    mean,
    parse_smoke,
    results_folder,
    synthetic_card,
    write_results,
)

from dipcli.extras import have, needs  # internal: names a missing extra as the CLI does


def crops(count: int, size: int, folder: Path, synthetic: bool) -> str:
    """``count`` images of ``size``² in ``folder``: centre crops of Set9 then texture_widths, or
    synthetic cards (``synthetic``, or no data folder). Returns what they are, for the table."""
    sources = sorted((DATA / "set9").glob("*.png")) + sorted((DATA / "texture_widths").rglob("*.png"))
    if synthetic or len(sources) < count:
        for seed in range(count):
            iio.imwrite(folder / f"card{seed:03d}.png", synthetic_card(size, seed))
        return f"synthetic {size}² cards"
    for path in sources[:count]:
        centre_crop_file(path, size, folder)
    return f"centre crops of {size}² (Set9, then texture_widths)"


def run(folder: Path, out: Path, runner: list[str], args: argparse.Namespace) -> tuple[float, list[dict]]:
    """One `dip denoise` over the folder, every fit on one thread: its wall seconds and records."""
    cmd = [sys.executable, "-m", "dipcli", "denoise", str(folder), "--sigma", "25", "--add-noise",
           "--stop", "fixed", "--iters", str(args.iters), "--tile", "0", "--output-dir", str(out),
           "--json", "--quiet", "--force", *(["--width", str(args.width)] if args.width else []), *runner]
    env = {k: v for k, v in os.environ.items() if k != "DIP_CLUSTER"}  # the runner is the one given
    env["OMP_NUM_THREADS"] = "1"
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return wall, sorted(records, key=lambda r: r["input"])


def identical(a: Path, b: Path) -> bool:
    """Whether two output folders hold the same files, byte for byte."""
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=8, help="images (default 8)")
    ap.add_argument("--size", type=int, default=256, help="crop side (default 256)")
    ap.add_argument("--iters", type=int, default=100, help="fixed budget per image (default 100)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                    help="values of N for --jobs N and --cluster local:N (default 1 2)")
    ap.add_argument("--width", type=int, default=None, help="net width (default: dip's for this device)")
    ap.add_argument("--synthetic", action="store_true", help="synthetic cards instead of the data's crops")
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default benchmarks/results/cluster)")
    add_smoke_argument(ap)
    args, smoke = parse_smoke(ap, argv)
    command = shlex.join(["python", "benchmarks/cluster.py", *(sys.argv[1:] if argv is None else argv)])
    if smoke:  # two tiny images, --jobs 1 and --cluster local:2 (where Dask is installed)
        args.count, args.size, args.iters, args.workers = 2, SMOKE_SIZE, SMOKE_ITERS, [2]
        args.synthetic = True
    args.out = results_folder(args.out, smoke, "cluster")
    cluster = have("distributed")
    if not cluster and not smoke:
        ap.exit(2, f"{needs('distributed', ap.prog)}\n")
    settings = [("--jobs", 1, ["--jobs", "1"])]
    settings += [("--jobs", n, ["--jobs", str(n)]) for n in args.workers if n > 1 and not smoke]
    settings += [("--cluster", n, ["--cluster", f"local:{n}"]) for n in args.workers if cluster]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        images = crops(args.count, args.size, folder, args.synthetic)
        baseline = None
        for option, n, runner in settings:
            out = Path(tmp) / f"out{option}-{n}"
            baseline = baseline or out
            wall, records = run(folder, out, runner, args)
            fits = sum(r["seconds"] for r in records)
            rows.append({
                "runner": " ".join(runner), "slots": n, "images": len(records),
                "wall_seconds": round(wall, 2), "fit_seconds": round(fits, 2),
                "images_per_minute": round(60 * len(records) / wall, 2),
                "overhead_per_task": round((wall * n - fits) / len(records), 2),
                "identical_to_jobs_1": identical(out, baseline),
                "workers": len({r.get("worker") for r in records}) if option == "--cluster" else None,
                "mean_psnr": mean(r["psnr"] for r in records), "arch": records[0]["arch"],
                "width": records[0]["width"], "precision": records[0]["precision"],
            })
            r = rows[-1]
            print(f"{r['runner']}: {r['images_per_minute']:.1f} images/min, wall {wall:.1f} s, fits "
                  f"{fits:.1f} s, overhead {r['overhead_per_task']:.2f} s/task, identical to --jobs 1: "
                  f"{r['identical_to_jobs_1']}", flush=True)
    device = device_name()
    base = rows[0]
    lines = [
        f"`dip denoise` over {args.count} {images}, σ = 25 added, a fixed budget of {args.iters} "
        f"iterations each, the {base['arch']} net at width {base['width']} ({base['precision']}), one thread "
        f"per fit (OMP_NUM_THREADS=1). Device: {device}. Wall: the whole command, start-up of Python, "
        "torch and the local Dask cluster included. Overhead per task: (wall × N − the fits' own "
        "seconds) / images, N the fits run at once: start-up, reading, shipping and writing, and "
        "idle slots at the end.",
        "",
        "| runner | N | images/min | speed-up | wall s | fits s | overhead s/task | workers used | "
        "same bytes as --jobs 1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| `{r['runner']}` | {r['slots']} | {r['images_per_minute']:.1f} | "
                     f"{r['images_per_minute'] / base['images_per_minute']:.2f}× | {r['wall_seconds']:.1f} | "
                     f"{r['fit_seconds']:.1f} | {r['overhead_per_task']:.2f} | "
                     f"{r['workers'] if r['workers'] is not None else ''} | "
                     f"{'yes' if r['identical_to_jobs_1'] else 'no'} |")
    if not cluster:
        lines += ["", "The --cluster runs were left out: Dask's distributed is not installed."]
    lines += ["", f"Command: `{command}`"]
    payload = {"device": device, "command": command, "count": args.count, "size": args.size,
               "iters": args.iters, "images": images, "rows": rows}
    tag = f"-{args.tag}" if args.tag else ""
    write_results(f"cluster{tag}", payload, "\n".join(lines), folder=args.out)
    return payload


if __name__ == "__main__":
    main()
