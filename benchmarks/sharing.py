"""Two `dip` processes on the same cores: how much slower is each than alone? (issue 18, case 18)

A shell loop run with ``xargs -P 2`` or ``&`` starts several `dip` processes at once. Each one's
torch uses every core, and OpenMP's idle threads by default *spin* for a while (about 3 ms) after
each parallel region before they sleep: harmless alone, but two such processes steal each other's
cores while spinning. Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``) shares the cores fairly but
wakes the threads for every region, which a lone fit pays for. `dip` sets the passive policy with
a short spin (``GOMP_SPINCOUNT``, :data:`dipcli.signals.SPIN_COUNT`) before torch loads, unless
the user chose either.

This runs the same fixed-budget denoise (default net, 256² crop, ``--stop fixed``) alone and as
two processes at once, in each mode named by ``--modes`` (:data:`MODES`: OpenMP's default,
`dip`'s, the passive policy, and spin counts). Each figure is the wall time of one process.

    python benchmarks/sharing.py --iters 300 --modes passive spin-1000 after spin-10000 spin-30000 before
    python benchmarks/sharing.py                    # OpenMP's default and `dip`'s (before, after)
    python benchmarks/sharing.py --smoke            # a few iterations on a tiny image
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from common import (  # noqa: E402
    DATA,
    SMOKE_SIZE,
    add_smoke_argument,
    centre_crop,
    device_name,
    parse_smoke,
    results_folder,
    smoke_image,
)

from dipcli.signals import SPIN_COUNT  # noqa: E402  # internal: the spin count dip sets, for the label

# mode → the environment a run adds. ``before``: the policy left to OpenMP (an empty value, which
# `dip` leaves alone and OpenMP ignores); ``after``: `dip`'s default; ``passive``: idle threads
# sleep at once (`dip`'s default until 2026-12-08); ``spin-N``: ``GOMP_SPINCOUNT=N``, which `dip`
# leaves alone: PyTorch's OpenMP (libgomp) spins N times (about 0.01 µs each), then sleeps.
MODES = {"before": {"OMP_WAIT_POLICY": ""}, "after": {},
         "passive": {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0"},
         **{f"spin-{n}": {"GOMP_SPINCOUNT": str(n)} for n in (1000, 3000, 10000, 30000, 100000)}}
LABELS = {"before": "spin 300,000, then sleep (OpenMP's default)",
          "after": f"`dip`'s default (passive, spin {SPIN_COUNT:,})",
          "passive": "sleep at once (`OMP_WAIT_POLICY=PASSIVE`)",
          **{m: f"spin {int(m[5:]):,}, then sleep (`GOMP_SPINCOUNT`)"
             for m in MODES if m.startswith("spin-")}}


def image(size: int, smoke: bool) -> np.ndarray:
    """A noisy (σ = 25) crop of kodim03, or in a smoke run the synthetic card."""
    source = DATA / "set9" / "kodim03.png"
    clean = smoke_image(size) if smoke else centre_crop(iio.imread(source).astype(np.float32) / 255, size)
    rng = np.random.default_rng(0)
    return (np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1) * 255).round().astype(np.uint8)


def run(inputs: list[Path], iters: int, env_extra: dict) -> list[float]:
    """Start one `dip denoise` per input at once; the wall time of each."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")}
    env.update(env_extra)
    cmd = [sys.executable, "-m", "dipcli", "denoise", "--sigma", "25", "--stop", "fixed",
           "--iters", str(iters), "--quiet", "--force"]
    start = time.perf_counter()
    procs = [subprocess.Popen([*cmd, str(p)], env=env, stderr=subprocess.PIPE, text=True) for p in inputs]
    times = []
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"dip failed: {err.strip()}")
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=150)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--modes", nargs="+", choices=list(MODES), default=["before", "after"])
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default benchmarks/results/sharing)")
    add_smoke_argument(ap)
    args, smoke = parse_smoke(ap)
    if smoke:
        args.iters, args.size = 3, SMOKE_SIZE
    out_dir = results_folder(args.out, smoke, "sharing")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = [Path(tmp) / f"{k}.png" for k in "ab"]
        for p in inputs:
            iio.imwrite(p, image(args.size, smoke))
        for mode in args.modes:
            env = MODES[mode]
            alone = run(inputs[:1], args.iters, env)[0]
            together = run(inputs, args.iters, env)
            rows.append({"mode": mode, "alone_s": round(alone, 1),
                         "together_s": [round(t, 1) for t in together],
                         "slowdown": round(max(together) / alone, 2)})
            print(rows[-1], flush=True)
    payload = {"device": device_name(), "cores": os.cpu_count(), "iters": args.iters, "size": args.size,
               "command": f"python benchmarks/sharing.py --iters {args.iters} --size {args.size} "
                          f"--modes {' '.join(args.modes)}",
               "rows": rows}
    (out_dir / "sharing.json").write_text(json.dumps(payload, indent=1) + "\n")
    lines = [f"Two `dip denoise` processes at once (default net, {args.size}², `--stop fixed --iters "
             f"{args.iters}`, default threads) against one alone. {payload['device']}.", "",
             "| OpenMP idle threads | one alone (s) | each of two at once (s) | slowdown (two / alone) |",
             "|---|---|---|---|"]
    for r in rows:
        label = LABELS[r["mode"]]
        each = " / ".join(map(str, r["together_s"]))
        lines.append(f"| {label} | {r['alone_s']} | {each} | {r['slowdown']}× |")
    lines += ["", f"Command: `{payload['command']}`"]
    (out_dir / "sharing.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out_dir / 'sharing.md'}")


if __name__ == "__main__":
    main()
