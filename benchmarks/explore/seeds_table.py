"""The table of the seeds trial (``seeds_trial.py``): per σ, the average of 1 to 5 fits from
successive seeds against BM3D on the acceptance set, from the logs of benchmarks/quality.py
(``balanced`` is one fit, ``best`` two, at the time of the trial) and of the trial. Writes
results/explore/r2r-trials/seeds.md.

    python benchmarks/explore/seeds_table.py
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"
TRIALS = RESULTS / "explore" / "r2r-trials"  # the trial's logs, its table and write-up
LOGS = (RESULTS / "archive" / "quality-two-seed-presets.jsonl", TRIALS / "seeds.jsonl")
FITS = {"balanced": 1, "best": 2, "best3": 3, "best4": 4, "best5": 5}


def main() -> None:
    rows = [json.loads(line) for log in LOGS for line in log.read_text().splitlines()]
    bm3d = {(r["image"], r["sigma"]): r["psnr"] for r in rows if r["method"] == "bm3d"}
    lines = ["Fits from successive seeds, averaged (recorrupted compact net, width 32; 2,000 "
             "iterations each at σ = 25, 1,200 at σ = 50), on the 18 crops of the acceptance set; "
             "gap to BM3D in dB, seconds per 256² crop on 2 cores.", "",
             "| σ | fits | crops | gap: mean / median / worst | loss to the peak: median / worst "
             "| s per crop |",
             "|---|---|---|---|---|---|"]
    per_image: dict[float, dict[str, dict[int, float]]] = {}
    for sigma in sorted({r["sigma"] for r in rows if r["method"] in FITS}):
        for method, n in FITS.items():
            group = [r for r in rows if r["sigma"] == sigma and r["method"] == method]
            if len(group) < 18:
                continue
            gaps = [r["psnr"] - bm3d[(r["image"], sigma)] for r in group]
            stop = [r["stop_gap_db"] for r in group]
            seconds = statistics.fmean(r["seconds"] for r in group)
            lines.append(f"| {sigma:g} | {n} | {len(group)} | {statistics.fmean(gaps):+.2f} / "
                         f"{statistics.median(gaps):+.2f} / {min(gaps):+.2f} | "
                         f"{statistics.median(stop):.2f} / {max(stop):.2f} | {seconds:.0f} |")
            for r, gap in zip(group, gaps, strict=True):
                per_image.setdefault(sigma, {}).setdefault(r["image"], {})[n] = gap
    for sigma, images in per_image.items():
        counts = sorted({n for gaps in images.values() for n in gaps})
        lines += ["", f"Gap to BM3D per crop, σ = {sigma:g} (dB), by the number of fits averaged:", "",
                  "| crop | " + " | ".join(str(n) for n in counts) + " |", "|---|" + "---|" * len(counts)]
        lines += [f"| {image} | " + " | ".join(f"{gaps[n]:+.2f}" if n in gaps else "" for n in counts) + " |"
                  for image, gaps in images.items()]
    (TRIALS / "seeds.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
