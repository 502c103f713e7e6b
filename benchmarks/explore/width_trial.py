"""Trial: the presets' recorrupted fit at another width of the compact net, run by
`benchmarks/quality.py` as a preset defined here for the trial (the product's presets unchanged).

    python benchmarks/explore/width_trial.py --methods w128 --sigmas 25 \\
        --only CBSD68_0003 Set12_09 --log benchmarks/results/explore/r2r-trials/width.jsonl --out /tmp/trial

Trial presets: ``wN``: `best`'s recipe at width N, with the budget of ``TRIAL_ITERS`` (about the
five minutes of the acceptance bar on a 2-core CPU at that width). ``pair``: `best`'s fit and
another from ``--seed`` + 1, averaged (the DIP paper's two runs); ``w32pair``: the same at width 32
with 2,000 iterations.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/

import dipcli.api.presets as presets  # noqa: E402

R2R64 = replace(presets.R2R, width=64)  # the recipe of the trials, before it moved to width 32
TRIAL_ITERS = {32: 3000, 48: 2400, 96: 1600, 128: 1000}
for width, iters in TRIAL_ITERS.items():
    presets.PRESETS[f"w{width}"] = presets.Preset(f"trial: width {width}",
                                                  (replace(R2R64, width=width, iters=iters),))

presets.PRESETS["pair"] = presets.Preset("trial: two seeds", (R2R64, replace(R2R64, seed_offset=1)))
W32 = replace(R2R64, width=32, iters=2000)
presets.PRESETS["w32pair"] = presets.Preset("trial: two seeds, width 32", (W32, replace(W32, seed_offset=1)))

import quality  # noqa: E402

if __name__ == "__main__":
    quality.main()
