"""Texture → decoder width: cross-validated accuracy against the paper's labels, and the model's constants.

    cd benchmarks && python texture_width.py            # features, CV, final fit (a few minutes, CPU)
    python texture_width.py --cache /tmp/texfeat.json   # reuse features while iterating
    python texture_width.py --smoke                     # 15 synthetic 32² images, made-up labels (seconds)

Data: shared/data/texture_widths/labels.csv — 86 clean images with the width (32/64/128) of the
2-scale DIP that suited each at σ = 25 in "The Devil is in the Upsampling". Noise is added here
(seeded per image and level, clipped to [0, 1]) and the features see the noisy image, as a user's
`dip denoise --width auto` would.

Model: proportional-odds (ordinal) logistic regression on standardised features,
P(width <= k) = logistic(t_k - w·z), L2 penalty on w. Fitted on every image at each training
noise level (the σ is given to the features, as `--sigma` does). Scoring uses stratified 5-fold
cross-validation repeated over 5 seeds, folds drawn per image so that no image (at any noise level)
is ever scored by a model that saw it. Reported per condition: exact accuracy, within-one-class
accuracy, and the confusion matrix of the first repeat. Baselines under the same protocol: always
64 (the majority class) and image size alone (`small`). Candidate feature sets are compared too, and a nested
cross-validation scores the choice among them honestly (the choice is made inside each outer fold).

The final model is fitted on all 86 images; its constants are printed in the form texture.py
wants, and the run says whether texture.py already holds them. ``--smoke`` runs all of it on
synthetic images with made-up labels (the numbers mean nothing) into a temporary folder (or
``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import (
    DATA,
    SMOKE_SIZE,
    add_smoke_argument,
    load_labels,
    parse_smoke,
    results_folder,
    smoke_image,
    write_results,
)
from scipy.optimize import minimize
from scipy.special import expit, log_expit

# internal: a module of the package, studied as such
from dipcli import (
    read_image,
    texture,
)

WIDTHS = texture.WIDTHS
FOLDS, REPEATS = 5, 5
LAMBDA = 1.0  # L2 penalty on the standardised weights
TRAIN = ("0", "25", "50")  # σ (given) of the training copies of each image
# condition name -> (σ added, σ given to the features?)
CONDITIONS = {"0": (0, True), "25": (25, True), "50": (50, True),
              "0-est": (0, False), "25-est": (25, False), "50-est": (50, False)}
CANDIDATES = {
    "log2_pixels": ("log2_pixels",),
    "small": ("small",),
    "small+textured_l1": ("small", "textured_l1"),
    "small+textured_l1+l2": ("small", "textured_l1", "textured_l2"),
    "small+textured_l1+l2+l3": ("small", "textured_l1", "textured_l2", "textured_l3"),
    "small+textured_l1+hf_ratio": ("small", "textured_l1", "hf_ratio"),
    "small+detail_l1+l2": ("small", "detail_l1", "detail_l2"),
    "log2_pixels+textured_l1": ("log2_pixels", "textured_l1"),
    "textured_l1": ("textured_l1",),
}


# ---- data --------------------------------------------------------------------------------------

def noisy(pixels: np.ndarray, sigma: int, index: int) -> np.ndarray:
    if sigma == 0:
        return pixels
    rng = np.random.default_rng([index, sigma])
    return np.clip(pixels + rng.normal(0.0, sigma / 255.0, pixels.shape), 0.0, 1.0).astype(np.float32)


# The label model's features: the image's size class and its share of fine texture.
MODEL_FEATURES = ("small", "textured_l1")


def source_hash() -> str:
    """Hash of texture.py without the model constants: pasting new constants keeps the cache."""
    lines = Path(texture.__file__).read_text().splitlines()
    kept = "\n".join(ln for ln in lines if not ln.startswith("MODEL_"))
    return hashlib.sha256(kept.encode()).hexdigest()[:16]


def read_labelled(name: str) -> np.ndarray:
    """The pixels of a labelled image (``name`` as in labels.csv)."""
    return read_image(DATA / "texture_widths" / name).pixels


def smoke_labels(count: int = 15) -> list[tuple[str, int]]:
    """A smoke run's stand-in for the labels: synthetic images, the widths dealt out in turn (five
    of each, so that every cross-validation fold holds one of each class)."""
    return [(f"smoke/{i}.png", WIDTHS[i % len(WIDTHS)]) for i in range(count)]


def read_smoke(name: str) -> np.ndarray:
    """The synthetic image that :func:`smoke_labels` calls ``name``."""
    return smoke_image(SMOKE_SIZE, seed=int(Path(name).stem))


def compute_features(labels, cache: Path | None, read: Callable[[str], np.ndarray] = read_labelled,
                     ) -> tuple[dict[str, list[dict[str, float]]], bool]:
    """Features of every image under every condition (and whether they came from the cache).

    The cache is keyed on texture.py's source, less its model constants.
    """
    key = source_hash()
    if cache and cache.exists():
        stored = json.loads(cache.read_text())
        if stored.get("source") == key:
            return stored["features"], True
    out: dict[str, list[dict[str, float]]] = {c: [] for c in CONDITIONS}
    t0 = time.time()
    for i, (name, _) in enumerate(labels):
        pixels = read(name)
        for cond, (sigma, given) in CONDITIONS.items():
            x = noisy(pixels, sigma, i)
            out[cond].append(texture.features(x, sigma / 255.0 if given else None))
        print(f"\r features {i + 1}/{len(labels)} ({time.time() - t0:.0f} s)", end="", file=sys.stderr)
    print(file=sys.stderr)
    if cache:
        cache.write_text(json.dumps({"source": key, "features": out}))
    return out, False


# ---- the ordinal model -------------------------------------------------------------------------

def fit_ordinal(x: np.ndarray, y: np.ndarray, lam: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Maximum penalised likelihood of P(y <= k) = logistic(t_k - x·w); returns (w, (t1, t2))."""
    n, d = x.shape
    lam = LAMBDA if lam is None else lam

    def unpack(p):
        return p[:d], p[d], p[d] + np.exp(p[d + 1])

    def nll(p):
        w, t1, t2 = unpack(p)
        s = x @ w
        lo, hi = t1 - s, t2 - s
        lp = np.where(y == 0, log_expit(lo),
                      np.where(y == 2, log_expit(-hi),
                               np.log(np.maximum(expit(hi) - expit(lo), 1e-300))))
        return -lp.sum() + lam * w @ w

    p0 = np.concatenate([np.zeros(d), [-1.0, 0.7]])
    res = minimize(nll, p0, method="L-BFGS-B")
    w, t1, t2 = unpack(res.x)
    return w, np.array([t1, t2])


class Model:
    def __init__(self, keys: tuple[str, ...], rows: list[dict[str, float]], y: np.ndarray) -> None:
        self.keys = keys
        x = matrix(rows, keys)
        self.mean, self.scale = x.mean(0), x.std(0) + 1e-12
        self.w, self.t = fit_ordinal((x - self.mean) / self.scale, y)

    def predict(self, rows: list[dict[str, float]]) -> np.ndarray:
        s = ((matrix(rows, self.keys) - self.mean) / self.scale) @ self.w
        return np.searchsorted(self.t, s, side="right")


def matrix(rows: list[dict[str, float]], keys: tuple[str, ...]) -> np.ndarray:
    return np.array([[r[k] for k in keys] for r in rows], dtype=np.float64)


# ---- cross-validation --------------------------------------------------------------------------

def stratified_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=int)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        fold[idx] = (np.arange(len(idx)) + rng.integers(k)) % k
    return fold


def training_rows(feats, idx: np.ndarray, y: np.ndarray):
    rows = [feats[c][i] for c in TRAIN for i in idx]
    return rows, np.concatenate([y[idx]] * len(TRAIN))


def cv_predict(feats, y, keys, seed: int, select=None) -> dict[str, np.ndarray]:
    """Out-of-fold predictions per condition. ``select``: choose keys inside each fold (nested CV)."""
    fold = stratified_folds(y, FOLDS, seed)
    pred = {c: np.zeros(len(y), dtype=int) for c in CONDITIONS}
    for k in range(FOLDS):
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        chosen = select(feats, y, tr, seed) if select else keys
        model = Model(chosen, *training_rows(feats, tr, y))
        for c in CONDITIONS:
            pred[c][te] = model.predict([feats[c][i] for i in te])
    return pred


def inner_select(feats, y, tr: np.ndarray, seed: int) -> tuple[str, ...]:
    """Pick the candidate set with the best inner-CV exact accuracy on the training conditions."""
    sub = {c: [feats[c][i] for i in tr] for c in CONDITIONS}
    best, best_acc = None, -1.0
    for keys in CANDIDATES.values():
        pred = cv_predict(sub, y[tr], keys, seed + 1000)
        acc = np.mean([np.mean(pred[c] == y[tr]) for c in TRAIN])
        if acc > best_acc:
            best, best_acc = keys, acc
    return best


def score(y: np.ndarray, preds: list[dict[str, np.ndarray]]) -> dict[str, dict]:
    out = {}
    for c in CONDITIONS:
        exact = [float(np.mean(p[c] == y)) for p in preds]
        within = [float(np.mean(np.abs(p[c] - y) <= 1)) for p in preds]
        cm = np.zeros((3, 3), dtype=int)
        np.add.at(cm, (y, preds[0][c]), 1)
        out[c] = {"exact": float(np.mean(exact)), "exact_sd": float(np.std(exact)), "exact_per_repeat": exact,
                  "within_one": float(np.mean(within)), "confusion_first_repeat": cm.tolist()}
    return out


# ---- report ------------------------------------------------------------------------------------

def constants_block(model: Model) -> str:
    def tup(v):
        return "(" + ", ".join(f"{float(a):.6g}" for a in v) + ("," if len(v) == 1 else "") + ")"
    return "\n".join([
        "MODEL_FEATURES = (" + ", ".join(f'"{k}"' for k in model.keys) + ("," if len(model.keys) == 1 else "")
        + ")",
        f"MODEL_MEAN = {tup(model.mean)}",
        f"MODEL_SCALE = {tup(model.scale)}",
        f"MODEL_WEIGHTS = {tup(model.w)}",
        f"MODEL_THRESHOLDS = {tup(model.t)}  # logit-scale cut points between 32|64 and 64|128",
    ])


def rule_in_words(model: Model) -> str:
    """The fitted model as thresholds on textured_l1, for large (small = 0) and 256² (small = 1) images."""
    if tuple(model.keys) != ("small", "textured_l1"):
        return ""
    ws, wt = model.w / model.scale
    offset = -(model.w * model.mean / model.scale).sum()
    parts = []
    for small, label in ((0.0, "images of 362² or more"), (1.0, "256² images")):
        cuts = [(t - offset - ws * small) / wt for t in model.t]  # textured_l1 at each class boundary
        low = WIDTHS[int(np.searchsorted(cuts, 0.0, side="right"))]
        ups = [f", or {w} when textured_l1 ≥ {c:.2f}"  # a boundary outside [0, 1] is never crossed
               for w, c in zip(WIDTHS[1:], cuts, strict=True) if 0 < c <= 1]
        parts.append(f"{label}: width {low}" + "".join(ups))
    return "Rule: " + "; ".join(parts) + "."


def table(results: dict, candidates: dict, nested: dict, n: int, counts: dict, final: Model,
          seconds: float, cached: bool) -> str:
    def cond_label(c):
        sigma, given = CONDITIONS[c]
        return ("clean" if sigma == 0 else f"σ = {sigma}") + (", σ given" if given else ", σ estimated")

    lines = [
        "# Texture → width: cross-validated against the paper's labels",
        "",
        f"{n} images ({', '.join(f'{counts[w]} × {w}' for w in WIDTHS)}); stratified {FOLDS}-fold CV "
        f"repeated over {REPEATS} seeds, folds per image; trained on σ = {', '.join(TRAIN)} (given). "
        f"Model: ordinal logistic on {', '.join(final.keys)}.",
        "",
        "| condition | exact | within one class | always 64 | size only (small) |",
        "|---|---|---|---|---|",
    ]
    for c, r in results["model"].items():
        lines.append(f"| {cond_label(c)} | {r['exact']:.1%} ± {r['exact_sd']:.1%} | {r['within_one']:.1%} | "
                     f"{results['majority'][c]['exact']:.1%} | {results['size'][c]['exact']:.1%} |")
    lines += ["", "Confusion matrices (first repeat; rows = label, columns = predicted 32/64/128):", ""]
    for c, r in results["model"].items():
        cm = r["confusion_first_repeat"]
        rows = " · ".join(f"{w}: {row}" for w, row in zip(WIDTHS, cm, strict=True))
        lines.append(f"* {cond_label(c)}: {rows}")
    lines += ["", "Candidate feature sets (exact accuracy, same CV; picking the best of these on the same "
              "data flatters it — the nested line does the picking inside each outer fold):", "",
              "| features | " + " | ".join(cond_label(c) for c in CONDITIONS) + " |",
              "|---|" + "---|" * len(CONDITIONS)]
    for name, r in candidates.items():
        lines.append(f"| {name} | " + " | ".join(f"{r[c]['exact']:.1%}" for c in CONDITIONS) + " |")
    lines.append("| *nested selection* | " + " | ".join(f"{nested[c]['exact']:.1%}" for c in CONDITIONS)
                 + " |")
    lines += ["", "Final model (all images; the package no longer carries it: `--width auto` uses the "
              "PSNR-calibrated rule of width_rule.py):",
              "", "```python", constants_block(final), "```", "", rule_in_words(final), "",
              "Reading these numbers:", "",
              "* Within one class is 100 % for any rule that never says 32 for a 128 image or the reverse; "
              "always-64 gets it too. Exact accuracy is the number to watch.",
              "* The nested line covers the choice among the feature sets above, not the constants inside "
              "texture.py (block size, texture bar, the size cap), which were set while looking at these "
              "86 images: expect a few points less on new ones.",
              "* `small` carries the 32 class: all eight 256² images (seven Set12, CBM3D House) are labelled "
              "32, and no larger image is, bar three very smooth CBSD68 ones (0000, 0013, 0047), which "
              "the model calls 64. Whether that is size or the way those sets were labelled, the labels "
              "cannot tell.",
              "* About half the 128 images (horses on grass, animals by water) have no more measurable fine "
              "texture than typical 64 images; the model calls them 64.", "",
              f"Run time {seconds:.0f} s" + (" (features from the cache)." if cached else
                                            " (features computed for every image and condition).")]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, help="JSON file to keep features in between runs")
    ap.add_argument("--no-nested", action="store_true", help="skip the nested CV (the slow part)")
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default benchmarks/results/texture_width)")
    add_smoke_argument(ap)
    args, smoke = parse_smoke(ap)
    if smoke:  # synthetic images, made-up labels, no cache
        args.cache = None
    folder = results_folder(args.out, smoke, "texture_width")
    t0 = time.time()
    labels = smoke_labels() if smoke else load_labels()
    y = np.array([WIDTHS.index(w) for _, w in labels])
    feats, cached = compute_features(labels, args.cache, read_smoke if smoke else read_labelled)
    keys = MODEL_FEATURES

    def run(keys_, select=None):
        return score(y, [cv_predict(feats, y, keys_, seed, select) for seed in range(REPEATS)])

    majority = {c: np.full(len(y), 1) for c in CONDITIONS}
    results = {"model": run(keys), "size": run(("small",)), "majority": score(y, [majority])}
    candidates = {name: run(k) for name, k in CANDIDATES.items()}
    skipped = {c: {"exact": float("nan")} for c in CONDITIONS}
    nested = skipped if args.no_nested else run(None, inner_select)
    final = Model(keys, *training_rows(feats, np.arange(len(y)), y))
    seconds = time.time() - t0
    counts = {w: int(np.sum(y == i)) for i, w in enumerate(WIDTHS)}
    payload = {
        "images": len(y), "counts": counts, "folds": FOLDS, "repeats": REPEATS, "train_sigmas": TRAIN,
        "conditions": {c: {"sigma": s, "sigma_given": g} for c, (s, g) in CONDITIONS.items()},
        "features": list(keys), "lambda": LAMBDA, "results": results, "candidates": candidates,
        "nested_selection": nested,
        "final_model": {"features": list(keys), "mean": final.mean.tolist(), "scale": final.scale.tolist(),
                        "weights": final.w.tolist(), "thresholds": final.t.tolist()},
        "per_image": [{"file": name, "width": w,
                       **{c: {k: round(v, 5) for k, v in feats[c][i].items()} for c in CONDITIONS}}
                      for i, (name, w) in enumerate(labels)],
        "seconds": round(seconds, 1), "features_from_cache": cached,
    }
    write_results("texture_width", payload, table(results, candidates, nested, len(y), counts, final,
                                                  seconds, cached), folder)
    print("\n# the label model\n" + constants_block(final) + "\n# " + rule_in_words(final))


if __name__ == "__main__":
    main()
