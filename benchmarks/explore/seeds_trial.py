"""Trial: `best` with three fits from three seeds instead of two, run by `benchmarks/quality.py`
as a preset defined here for the trial (the product's presets unchanged).

    python benchmarks/explore/seeds_trial.py --methods best3 --sigmas 50 25 \\
        --snapshots 800 1000 --log benchmarks/results/explore/r2r-trials/seeds.jsonl --out /tmp/trial

Trial presets ``best3``, ``best4``, ``best5``: `best`'s two fits (``--seed``, ``--seed`` + 1)
and more from ``--seed`` + 2, … , averaged. The fits they share with `best` (and each other) are
read from the fit cache (benchmarks/results/quality-fits/) where they ran before, so only the
new seeds are fitted.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/

import dipcli.api.presets as presets  # noqa: E402

R2R = presets.R2R
for n in (3, 4, 5):
    presets.PRESETS[f"best{n}"] = presets.Preset(
        f"trial: {n} seeds", tuple(replace(R2R, seed_offset=k) for k in range(n)))

import quality  # noqa: E402

if __name__ == "__main__":
    quality.main()
