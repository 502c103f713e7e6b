"""Exploration (issue 31): with the Wiener stage after it, how short can a later tile's fit be?

    python benchmarks/explore/tile_budget.py --images image_F16_512rgb image_Baboon512rgb \
        image_Lena512rgb kodim01 CBSD68_0047 CBSD68_0010 --sigmas 25 50
    python benchmarks/explore/tile_budget.py --set heldout --sigmas 25 50

An image larger than about 1.5 × 256 px a side is fitted in tiles: the first from fresh weights
for the preset's budget, every later tile from the weights the first ended with for the recipe's
``tile_iters`` (400 for ``fast``: results/explore/warm_tiles.jsonl, fits alone). The stage
(``dipcli.physics.wiener``) made an 800-iteration fit nearly as good as a 2,000-iteration one
(results/camera/wiener_budget.md); this asks the same of the later tiles, whose iterations are
most of a large image's time. Each whole image, with white noise of σ (the noisy copy every
method of benchmarks/quality.py sees), is denoised as `dip denoise --sigma σ` does on a CPU
(the ``fast`` preset), the stage held back; each later tile's running average is kept at each of
CHECKS. The image a budget N gives is the first tile's output blended with the later tiles' at N
(the running average's warm-up does not depend on the budget, so the average at N is what a fit
of budget N ends with), scored alone and with the stage, and seconds are the first tile's plus
each later tile's at N. At the full budget the blend is checked against what `dip` returned.
Rows: results/explore/tile_budget.jsonl (one per image and σ; a run skips those there).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the studies beside this folder
from common import RESULTS  # noqa: E402
from quality import acceptance_set, heldout_set, noisy_copy, scores  # noqa: E402

import dipcli  # noqa: E402
from dipcli import read_image  # noqa: E402
from dipcli.engine.tiles import blend, plan_tiles  # noqa: E402  # internal: the tiles `dip` fits, to blend them at each budget
from dipcli.physics.noise_models import GaussianNoise  # noqa: E402  # internal: the stage's noise model
from dipcli.physics.wiener import wiener_stage  # noqa: E402  # internal: the stage under study

LOG = RESULTS / "explore" / "tile_budget.jsonl"
CHECKS = (100, 150, 200, 250, 300, 400)
MIN_SIDE = 384  # 1.5 × the default tile (256): smaller images are fitted whole


def trace(noisy: np.ndarray, clean: np.ndarray, sigma: float) -> dict:
    """One tiled `dip denoise --sigma σ` with the stage held back: PSNR alone and with the stage,
    and seconds, at each later-tile budget of CHECKS."""
    tiles: list[dict] = []  # per tile: iteration → (average, seconds)

    def watch(event) -> None:
        if not tiles or event.iteration <= max(tiles[-1]):  # a new tile's fit began
            tiles.append({})
        tiles[-1][event.iteration] = (event.ema.detach().float()[0].permute(1, 2, 0).numpy().copy(),
                                      event.elapsed)

    result = dipcli.denoise(noisy, sigma, preset="fast", wiener=False, progress=watch)
    windows = plan_tiles(*noisy.shape[:2], result.settings["tile"])
    if len(windows) != len(tiles):
        raise RuntimeError(f"{len(tiles)} fits seen for {len(windows)} tiles")
    first = tiles[0][max(tiles[0])]
    noise = GaussianNoise(sigma / 255)
    row = {"tiles": len(windows), "tile": result.settings["tile"], "first_iters": max(tiles[0]),
           "later_iters": max(tiles[1]), "budgets": {}}
    for n in (c for c in CHECKS if c <= row["later_iters"]):
        image = blend([first[0], *(tile[n][0] for tile in tiles[1:])], windows, noisy.shape)
        if n == row["later_iters"]:
            row["blend_matches_dip"] = float(np.abs(image - result.image).max())
        row["budgets"][n] = {"fit": scores(image, clean)[0],
                             "stage": scores(wiener_stage(noisy, image, noise), clean)[0],
                             "seconds": first[1] + sum(t[n][1] for t in tiles[1:])}
    return row


def images(names: list[str], which: str) -> dict[str, Path]:
    """The named images of the acceptance set (all of its tiled ones if none), or the held-out set's."""
    files = acceptance_set() if which == "acceptance" else heldout_set()
    if names:
        files = {n: files[n] for n in names}
    return files


def summary(rows: list[dict]) -> str:
    """Per set and σ, each budget's mean loss to the longest with the stage, and its worst."""
    lines = ["| set | σ | images | later-tile iterations | stage − longest's stage: mean | worst | "
             "fit alone − longest's stage | seconds (mean) |", "|---|---|---|---|---|---|---|---|"]
    for key in sorted({(r["set"], r["sigma"]) for r in rows}):
        group = [r for r in rows if (r["set"], r["sigma"]) == key]
        longest = max(int(n) for n in group[0]["budgets"])
        for n in sorted({int(n) for r in group for n in r["budgets"]}):
            loss = [r["budgets"][str(n)]["stage"] - r["budgets"][str(longest)]["stage"] for r in group]
            alone = [r["budgets"][str(n)]["fit"] - r["budgets"][str(longest)]["stage"] for r in group]
            secs = [r["budgets"][str(n)]["seconds"] for r in group]
            lines.append(f"| {key[0]} | {key[1]:g} | {len(group)} | {n} | {statistics.mean(loss):+.2f} | "
                         f"{min(loss):+.2f} | {statistics.mean(alone):+.2f} | {statistics.mean(secs):.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", nargs="*", default=[])
    ap.add_argument("--set", choices=("acceptance", "heldout"), default="acceptance")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[25.0, 50.0])
    a = ap.parse_args()
    done = set()
    if LOG.exists():
        done = {(r["image"], r["sigma"]) for r in map(json.loads, LOG.read_text().splitlines())}
    for sigma in a.sigmas:
        for name, path in images(a.images, a.set).items():
            clean = read_image(path).pixels
            if (name, sigma) in done or max(clean.shape[:2]) < MIN_SIDE:
                continue
            row = {"image": name, "set": a.set, "sigma": sigma, "size": list(clean.shape),
                   **trace(noisy_copy(clean, name, sigma), clean, sigma)}
            brief = {n: (round(b["fit"], 2), round(b["stage"], 2), round(b["seconds"]))
                     for n, b in row["budgets"].items()}
            print(json.dumps({k: v for k, v in row.items() if k != "budgets"}), brief, flush=True)
            LOG.parent.mkdir(parents=True, exist_ok=True)
            with LOG.open("a") as f:
                f.write(json.dumps(row) + "\n")
    rows = [json.loads(line) for line in LOG.read_text().splitlines()]
    table = summary(rows)
    (LOG.with_suffix(".md")).write_text(
        "# Later tiles' budget with the Wiener stage\n\nWritten by `benchmarks/explore/tile_budget.py`.\n\n"
        + table + "\n")
    print(table)


if __name__ == "__main__":
    main()
