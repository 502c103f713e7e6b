"""Exploration (issue 32): the fit as the pilot of an empirical Wiener filter in a sliding DCT.

    python benchmarks/explore/wiener_return.py            # dev fits (residual_return's cache)
    python benchmarks/explore/wiener_return.py --heldout  # camera.py's held-out fits

BM3D's second stage (Dabov et al., IEEE TIP 2007) filters the noisy image again with the first
stage's estimate as a pilot: per transform coefficient the gain |P|² / (|P|² + s²), P the pilot's
coefficient and s² the noise's variance there. A DIP fit is a pilot too. Here: 8×8 DCT patches
at every pixel (no block matching), the gain from the fit's patch, the noisy patch shrunk and
the patches put back with BM3D's weights 1 / (s² Σ G²). The noise variance of each coefficient is
exact for correlated noise: Σ_d ρ(d) A_uv(d), ρ the noise autocorrelation the camera model read and
A_uv the basis function's own autocorrelation; times σ² at the pilot patch's brightness.
Variants: per RGB channel, or in an orthonormal opponent colour space (where the noise's
covariance is carried through exactly: T D M, D the channels' σ, M the camera model's mixing).
Scored against the fit alone and the pixel-domain return (``give_back``) on the same fits;
``product``: what `dip` writes, ``dipcli.physics.wiener.wiener_stage`` (the opponent-space filter
with the fit, its missed detail given back first, as the pilot). Rows and tables:
results/camera/wiener_return-{dev,heldout}.jsonl and .md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
from scipy import fft, signal

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the studies beside this folder
sys.path.insert(0, str(HERE))
from camera import FITS, camera, case_seed, heldout_set  # noqa: E402
from common import RESULTS, centre_crop  # noqa: E402
from quality import acceptance_set, noisy_copy, scores  # noqa: E402
from residual_return import give_back  # noqa: E402  # the pixel-domain return it was compared with

from dipcli import read_image  # noqa: E402
from dipcli.physics.noise_blocks import LAG  # noqa: E402  # internal: the autocorrelation's reach
from dipcli.physics.noise_models import GaussianNoise, read_camera_noise  # noqa: E402  # internal: the models
from dipcli.physics.wiener import OPPONENT, wiener_stage  # noqa: E402  # internal: the product's stage and colour space
from dipcli.physics.wiener import dct_variances as coefficient_variances  # noqa: E402  # internal: the exact coefficient variances

DEV = FITS / "residual_return"


def patches(img: np.ndarray, n: int) -> np.ndarray:
    """(H−n+1, W−n+1, n, n) views of a 2-D image."""
    return np.lib.stride_tricks.sliding_window_view(img, (n, n))


def put_back(blocks: np.ndarray, weights: np.ndarray, shape: tuple[int, int], n: int) -> np.ndarray:
    acc = np.zeros(shape)
    norm = np.zeros(shape)
    nh, nw = blocks.shape[:2]
    for i in range(n):
        for j in range(n):
            acc[i:i + nh, j:j + nw] += weights * blocks[:, :, i, j]
            norm[i:i + nh, j:j + nw] += weights
    return acc / np.maximum(norm, 1e-12)


def wiener(noisy: np.ndarray, pilot: np.ndarray, unit_var: np.ndarray, sigma2: np.ndarray,
           n: int = 8) -> np.ndarray:
    """One 2-D channel: ``unit_var`` (n, n) the coefficients' variance for unit noise,
    ``sigma2`` the noise variance at each pixel (read at each patch's top-left + n/2)."""
    pad = n // 2
    y = np.pad(noisy, pad, mode="reflect")
    p = np.pad(pilot, pad, mode="reflect")
    s2 = np.pad(sigma2, pad, mode="reflect")
    Y = fft.dctn(patches(y, n), axes=(2, 3), norm="ortho")
    P = fft.dctn(patches(p, n), axes=(2, 3), norm="ortho")
    s = patches(s2, n).mean(axis=(2, 3))[:, :, None, None] * unit_var
    G = P**2 / (P**2 + s)
    out = fft.idctn(G * Y, axes=(2, 3), norm="ortho")
    weights = 1.0 / np.maximum((G**2 * s).sum(axis=(2, 3)), 1e-12)
    full = put_back(out, weights, y.shape, n)
    return full[pad:pad + noisy.shape[0], pad:pad + noisy.shape[1]]


def noise_of(noisy: np.ndarray, pilot: np.ndarray, kind: str, level: float):
    """Per channel: unit-noise coefficient variances (C, n, n) and the variance map (H, W, C);
    and for the opponent space, per pixel the 3×K weights (T D M)² and the kernels' variances."""
    c = noisy.shape[2]
    if kind == "white":
        delta = np.zeros((2 * LAG + 1,) * 2)
        delta[LAG, LAG] = 1
        return np.stack([coefficient_variances(delta, 8)] * c), np.full(noisy.shape, (level / 255) ** 2), None
    model = read_camera_noise(noisy)
    rho = model.correlation.autocorrelation
    unit = np.stack([coefficient_variances(rho[k], 8) for k in range(c)])
    var = np.broadcast_to(model.curve.variance(pilot), noisy.shape)
    return unit, var, model


def opponent_wiener(noisy, pilot, kind, level, model, mode: str = "wiener", box: int = 9) -> np.ndarray:
    """In the opponent colour space: per component j, its coefficient variance per pixel is
    Σ_k (T D M)²_jk V_k (V_k the kernel k's), D the channels' σ at the pilot's brightness."""
    t = OPPONENT
    y, p = noisy @ t.T, pilot @ t.T
    from scipy.ndimage import uniform_filter

    if kind == "white":
        unit, _, _ = noise_of(noisy, pilot, kind, level)
        w = np.full(noisy.shape[:2] + (1,), (level / 255) ** 2)
        return np.clip(np.stack([wiener_k(y[..., j], p[..., j], unit[:1], w, mode=mode, box=box)
                                 for j in range(3)], 2) @ t, 0, 1)

    corr = model.correlation
    kv = []
    for k in range(corr.kernels.shape[0]):
        ac = signal.correlate(corr.kernels[k], corr.kernels[k], mode="full")
        c0 = ac.shape[0] // 2
        kv.append(coefficient_variances(ac[c0 - LAG:c0 + LAG + 1, c0 - LAG:c0 + LAG + 1], 8))
    kv = np.stack(kv)  # (K, 8, 8)
    sig = np.sqrt(np.broadcast_to(model.curve.variance(uniform_filter(pilot, (8, 8, 1))), noisy.shape))
    tdm = np.einsum("jc,hwc,ck->hwjk", t, sig, corr.mixing) ** 2  # (H, W, 3, K)
    outs = []
    for j in range(3):
        # the variance of component j at each pixel, per kernel: weights (H, W, K)
        w = tdm[:, :, j, :]
        per_k = [wiener_k(y[..., j], p[..., j], kv, w, mode=mode, box=box)]
        outs.append(per_k[0])
    return np.clip(np.stack(outs, 2) @ t, 0, 1)


def wiener_k(noisy: np.ndarray, pilot: np.ndarray, kv: np.ndarray, w: np.ndarray, n: int = 8,
             mode: str = "wiener", box: int = 9) -> np.ndarray:
    """:func:`wiener` with a coefficient variance Σ_k w_k(pixel) kv_k (uv) per patch. ``mode``
    "return": the pilot's coefficient plus β·(Y − P), β = max(0, 1 − s/m), m the mean of (Y − P)²
    over ``box``² neighbouring patches: the pilot kept where it explains the patch down to the
    noise (the low frequencies of correlated noise included), the residual's detail given back."""
    pad = n // 2
    y = np.pad(noisy, pad, mode="reflect")
    p = np.pad(pilot, pad, mode="reflect")
    wp = np.pad(w, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    Y = fft.dctn(patches(y, n), axes=(2, 3), norm="ortho")
    P = fft.dctn(patches(p, n), axes=(2, 3), norm="ortho")
    wk = np.lib.stride_tricks.sliding_window_view(wp, (n, n), axis=(0, 1)).mean(axis=(3, 4))  # (h, w, K)
    s = np.einsum("hwk,kuv->hwuv", wk, kv)
    if mode == "return":
        from scipy.ndimage import uniform_filter

        R = Y - P
        m = uniform_filter(R**2, size=(box, box, 1, 1), mode="reflect")
        G = np.clip(1 - s / np.maximum(m, 1e-12), 0, 1)
        out = fft.idctn(P + G * R, axes=(2, 3), norm="ortho")
    else:
        G = P**2 / (P**2 + s)
        out = fft.idctn(G * Y, axes=(2, 3), norm="ortho")
    weights = 1.0 / np.maximum((G**2 * s).sum(axis=(2, 3)), 1e-12)
    full = put_back(out, weights, y.shape, n)
    return full[pad:pad + noisy.shape[0], pad:pad + noisy.shape[1]]


def methods(noisy, fitted, reference, kind, level) -> dict:
    unit, var, model = noise_of(noisy, fitted, kind, level)
    rgb = np.clip(np.stack([wiener(noisy[..., c], fitted[..., c], unit[c], var[..., c])
                            for c in range(noisy.shape[2])], 2), 0, 1)
    row = {"noisy": scores(noisy, reference)[0], "fit": scores(fitted, reference)[0],
           "give_back": scores(give_back(noisy, fitted, np.asarray(var, np.float32), 21), reference)[0],
           "wiener_rgb": scores(rgb, reference)[0]}
    row["product"] = scores(wiener_stage(noisy, fitted, model or GaussianNoise(level / 255)), reference)[0]
    if noisy.shape[2] == 3:
        row["wiener_opp"] = scores(opponent_wiener(noisy, fitted, kind, level, model), reference)[0]
        for box in (5, 9, 15):
            out = opponent_wiener(noisy, fitted, kind, level, model, "return", box)
            row[f"return_opp{box}"] = scores(out, reference)[0]
    return {k: round(v, 3) for k, v in row.items()}


def dev_cases():
    files = acceptance_set()
    for path in sorted(DEV.glob("*.npy")):
        name, case, crop = path.stem.rsplit("-", 2)
        kind, level = case.split(":")
        clean = centre_crop(read_image(files[name]).pixels, int(crop))
        if kind == "white":
            reference, noisy = clean, noisy_copy(clean, name, float(level))
        else:
            seed = case_seed(name, float(level))
            reference, noisy = camera(clean, None, seed), camera(clean, float(level), seed)
        yield name, kind, float(level), noisy, np.load(path), reference


def heldout_cases():
    files = heldout_set()
    for path in sorted(FITS.glob("heldout-*-default.npy")):
        _, name, shot, _ = path.stem.split("-")
        clean = centre_crop(read_image(files[name]).pixels, 256)
        seed = case_seed(name, float(shot))
        yield name, "camera", float(shot), camera(clean, float(shot), seed), np.load(path), \
            camera(clean, None, seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heldout", action="store_true")
    args = ap.parse_args()
    rows = []
    for name, kind, level, noisy, fitted, reference in (heldout_cases() if args.heldout else dev_cases()):
        row = {"image": name, "kind": kind, "level": level, **methods(noisy, fitted, reference, kind, level)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = ["noisy", "fit", "give_back", "wiener_rgb", "wiener_opp", "return_opp5", "return_opp9",
            "return_opp15", "product"]
    which = "heldout" if args.heldout else "dev"
    lines = [f"The fit as the pilot of a Wiener filter, {which} fits (benchmarks/explore/wiener_return.py): "
             "mean PSNR (dB); in brackets the worst change against the fit alone. Grey images have no "
             "opponent space: their colour-only columns take `wiener_rgb`.", "",
             "| noise | images | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for case in dict.fromkeys((r["kind"], r["level"]) for r in rows):
        group = [r for r in rows if (r["kind"], r["level"]) == case]
        cells = []
        for k in keys:
            vals = [r.get(k, r["wiener_rgb"]) for r in group]
            worst = min(v - r["fit"] for v, r in zip(vals, group, strict=True))
            change = "" if k in ("noisy", "fit") else f" ({worst:+.2f})"
            cells.append(f"{statistics.fmean(vals):.2f}{change}")
        label = f"white σ {case[1]:g}" if case[0] == "white" else f"camera, shot {case[1]:g}"
        lines.append(f"| {label} | {len(group)} | " + " | ".join(cells) + " |")
    out = RESULTS / "camera" / f"wiener_return-{which}"
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
