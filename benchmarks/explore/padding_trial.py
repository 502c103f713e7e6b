"""Exploration (issue 31): the CPU default (`fast`) with zero padding instead of reflection.

    python benchmarks/explore/padding_trial.py --sigmas 15 25 50                 # the acceptance set
    python benchmarks/explore/padding_trial.py --sigmas 15 25 50 --set heldout   # images not chosen on

``padding_speed.py`` measured reflection padding at about a sixth of the default fit's time per
iteration (zero padding, done inside the convolution, costs nothing) and left it, because zero
padding is another net, never scored with the recorrupted presets. This scores it: `fast`'s one
recipe (:data:`dipcli.api.presets.PRESETS`) with its compact net built with zero padding, as a
preset ``fast-zeros`` registered for the run only, through ``benchmarks/quality.py`` (the same
noisy images, the same watched fit and Wiener stage as its `fast` rows). Rows go to this trial's
log (results/explore/padding_trial/<set>.jsonl); ``<set>.md`` beside it sets them against the
`fast` and ``bm3d`` rows of results/quality/quality.jsonl (acceptance) or
results/quality_heldout/quality.jsonl (held out) on the same images (``--table``: only that).
The seconds are each row's own: the `fast` rows were timed in earlier sessions, maybe on another
CPU; ``padding_speed.py`` times the two nets side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import quality  # noqa: E402
from common import RESULTS  # noqa: E402

from dipcli.api.presets import PRESETS, Preset  # noqa: E402  # internal: a preset for this run only
from dipcli.nets import registry  # noqa: E402  # internal: the zero-padded net, registered

NAME = "fast-zeros"
FOLDER = RESULTS / "explore" / "padding_trial"
BASELINE = {"acceptance": RESULTS / "quality" / "quality.jsonl",
            "heldout": RESULTS / "quality_heldout" / "quality.jsonl"}


def register() -> None:
    """The compact net with zero padding as an architecture, and `fast` on it as a preset."""
    compact = registry.ARCHITECTURES["compact"]
    zeros = replace(compact, defaults={**compact.defaults, "padding": "zeros"})
    registry.ARCHITECTURES["compact-zeros"] = zeros
    fast = PRESETS["fast"]
    recipes = tuple(replace(r, arch="compact-zeros") for r in fast.recipes)
    PRESETS[NAME] = Preset("fast with zero padding", recipes, fill_iters=fast.fill_iters)


def rows(path: Path, methods: set[str]) -> dict[tuple[str, float, str], dict]:
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if r["method"] in methods:
                out[(r["image"], r["sigma"], r["method"])] = r
    return out


def table(which: str) -> str:
    """Per σ: mean PSNR (and seconds) of fast, fast-zeros and BM3D on the images all three ran, the
    gap of each net to BM3D (``quality.summarise``) and of fast-zeros to fast, image by image
    (mean / median / worst)."""
    done = {**rows(BASELINE[which], {"fast", "bm3d"}), **rows(FOLDER / f"{which}.jsonl", {NAME})}
    lines = [f"`fast` with zero padding ({NAME}) against `fast` and BM3D, {which} set, 256² crops.", "",
             "| σ | images | fast dB (s) | fast-zeros dB (s) | BM3D dB | fast − BM3D | zeros − BM3D | "
             "zeros − fast |", "|---|---|---|---|---|---|---|---|"]
    for sigma in sorted({k[1] for k in done if k[2] == NAME}):
        names = sorted(k[0] for k in done if k[1] == sigma and k[2] == NAME
                       and all((k[0], sigma, m) in done for m in ("fast", "bm3d")))
        by = quality.summarise([done[(n, sigma, m)] for n in names for m in ("fast", NAME, "bm3d")])
        fast, zeros, bm3d = (by[f"{m} @ {sigma:g}"] for m in ("fast", NAME, "bm3d"))
        d = [done[(n, sigma, NAME)]["psnr"] - done[(n, sigma, "fast")]["psnr"] for n in names]

        def gaps(s: dict) -> str:
            return f"{s['gap']:+.2f} / {s['median_gap']:+.2f} / {s['worst_gap']:+.2f}"

        lines.append(f"| {sigma:g} | {len(names)} | {fast['psnr']:.2f} ({fast['seconds']:.0f}) | "
                     f"{zeros['psnr']:.2f} ({zeros['seconds']:.0f}) | {bm3d['psnr']:.2f} | {gaps(fast)} | "
                     f"{gaps(zeros)} | {statistics.mean(d):+.2f} / {statistics.median(d):+.2f} / "
                     f"{min(d):+.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=list(BASELINE), default="acceptance")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[15, 25, 50])
    ap.add_argument("--only", nargs="+", default=None)
    ap.add_argument("--table", action="store_true", help="only print and write the table")
    a = ap.parse_args()
    FOLDER.mkdir(parents=True, exist_ok=True)
    if not a.table:
        register()
        argv = ["--methods", NAME, "--sigmas", *map(str, a.sigmas), "--set", a.set,
                "--log", str(FOLDER / f"{a.set}.jsonl"), "--out", str(FOLDER / f"tables-{a.set}")]
        quality.main(argv + (["--only", *a.only] if a.only else []))
    text = table(a.set)
    (FOLDER / f"{a.set}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
