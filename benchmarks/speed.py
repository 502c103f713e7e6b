"""Speed: seconds per iteration of every net, our loop beside a naive one; the default denoise of a
512×512 image; and time to quality on F16.

    cd benchmarks
    python speed.py                                   # CPU: all three parts (~1 h on 2 cores)
    python speed.py --parts iters --sizes 256 512     # only the per-iteration table
    python speed.py --parts ttq --ttq-crop 256        # time to quality on a 256² crop of F16
    python speed.py --tag gpu                         # on a GPU: the same tables, 1024² included
    python speed.py --smoke                           # every part on a 32² synthetic image, seconds

Three parts, each merged into benchmarks/results/speed/speed[-<tag>].json (so they can run apart) and
the whole rewritten as speed[-<tag>].md:

* ``iters``: for each architecture at its default width and each size, seconds per iteration
  (the median over windows of ``--window`` iterations, the first window left out as warm-up)
  and peak memory (the process's peak RSS on a CPU, peak allocated memory on CUDA), each
  configuration in its own process. Beside "ours" (dipcli.optim.loop with the settings `dip denoise`
  uses: precision auto, the auto stop rule, metrics on the device every window) stands "naive":
  the same net, weights and input in the loop of the public DIP code (fp32, and every iteration
  the output is copied to the host and scored with skimage's PSNR, raw and averaged). Where
  deepinv imports, its DeepImagePrior (ConvDecoder, its defaults) is timed as a peer.
  ``speedup_vs_naive`` is naive / ours for the default denoise net at 512².
* ``default``: `dip denoise --add-noise --sigma 25` with no other option on F16_GT.png (512²),
  timed end to end by the CLI: ``default_denoise_512_seconds``.
* ``ttq``: F16 (``--ttq-crop`` for a centre crop), σ = 25: the wall time at which the averaged
  output first reaches 31 and 32 dB, and the PSNR written at the automatic stop, for `dip`'s
  defaults and for the original DIP configuration (5×128 hourglass, fp32, 3,000 iterations).

``--smoke``: each part once, on a 32² synthetic image instead of F16: the default net's two loops
(timed in this process), a `dip denoise` of 10 iterations, and `dip`'s defaults for time to
quality; written into a temporary folder (or ``--out``).
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import (
    DATA,
    SMOKE_ITERS,
    SMOKE_SIZE,
    add_smoke_argument,
    centre_crop_file,
    device_name,
    parse_smoke,
    results_folder,
    run_dip,
    smoke_files,
    smoke_image,
    tempdir,
)

from dipcli import (
    ARCHS,
    Denoise,
    Event,
    FitConfig,
    NetSpec,
    build_net,
    count_params,
    fit,
    read_image,
    resolve_device,
    resolve_precision,
)
from dipcli.api.plan import reg_noise  # internal: plans as `dip` does, to score what it runs
from dipcli.api.presets import TASK_DEFAULTS  # internal: plans as `dip` does, to score what it runs
from dipcli.optim.stopping import make_stop  # internal: the stop rules are what this compares

F16 = DATA / "denoising" / "F16_GT.png"
SIGMA = 25
TARGETS = (31.0, 32.0)


def test_image(size: int, seed: int = 0, smoke: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """F16 (a smoke run: a synthetic image) resized to ``size``² (timing does not care what the
    picture is) and its noisy copy."""
    from skimage.transform import resize

    source = smoke_image() if smoke else read_image(F16).pixels
    clean = resize(source, (size, size), anti_aliasing=True).astype(np.float32)
    return clean, Denoise(SIGMA / 255).observe(clean, seed)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_ours(spec: NetSpec, clean, noisy, device, window: int, windows: int) -> list[float]:
    """Per-iteration seconds of each window of our loop, as `dip denoise` runs it."""
    stamps: list[float] = []

    class Clock:
        def on_event(self, e: Event) -> None:  # events come every `window` iterations, synced
            stamps.append(e.elapsed)

    iters = window * (windows + 1)
    problem = Denoise(SIGMA / 255)
    config = FitConfig(iters=iters, seed=0, check_every=window, reg_noise=reg_noise(problem.sigma),
                       stop=make_stop("auto", problem.noise, iters), precision="auto")
    net = build_net(spec, 3, seed=0)
    fit(problem, net, noisy, config, input_depth=spec.input_depth, reference=clean,
        device=device, subscribers=[Clock()])
    return [(b - a) / window for a, b in zip(stamps, stamps[1:], strict=False)]


def time_naive(spec: NetSpec, clean, noisy, device, window: int, windows: int) -> list[float]:
    """The public DIP code's loop: fp32, and a host copy plus skimage PSNRs every iteration."""
    from skimage.metrics import peak_signal_noise_ratio as psnr

    net = build_net(spec, 3, seed=0).to(device)
    y = torch.from_numpy(noisy).permute(2, 0, 1)[None].to(device)
    z = (torch.rand(1, *spec.input_shape(*noisy.shape[:2]), generator=torch.Generator().manual_seed(0))
         * 0.1).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    avg, times = None, []
    for _ in range(window * (windows + 1)):
        start = time.perf_counter()
        opt.zero_grad()
        out = net(z + torch.randn_like(z) * reg_noise(SIGMA / 255))
        loss = torch.nn.functional.mse_loss(out, y)
        loss.backward()
        avg = out.detach() if avg is None else avg * 0.99 + out.detach() * 0.01
        out_np = out.detach().cpu().numpy()[0].transpose(1, 2, 0)
        psnr(noisy, out_np, data_range=1.0)
        psnr(clean, out_np, data_range=1.0)
        psnr(clean, avg.cpu().numpy()[0].transpose(1, 2, 0), data_range=1.0)
        opt.step()
        sync(device)
        times.append(time.perf_counter() - start)
    times = times[window:]  # the warm-up window
    return [statistics.fmean(times[i: i + window]) for i in range(0, len(times), window)]


def time_deepinv(size: int, clean, noisy, device, window: int, windows: int) -> list[float]:
    """deepinv's DeepImagePrior with its ConvDecoder defaults: each run of `window` iterations."""
    import deepinv as dinv

    y = torch.from_numpy(noisy).permute(2, 0, 1)[None].to(device)
    torch.manual_seed(0)
    net = dinv.models.ConvDecoder(img_size=(3, size, size)).to(device)
    model = dinv.models.DeepImagePrior(net, img_size=[net.net[1].in_channels, 4, 4], iterations=window)
    physics = dinv.physics.Denoising(dinv.physics.GaussianNoise(SIGMA / 255))
    times = []
    for _ in range(windows + 1):
        start = time.perf_counter()
        model(y, physics)
        sync(device)
        times.append((time.perf_counter() - start) / window)
    return times[1:]


def measure_one(arch: str, size: int, loop: str, device: str, window: int, windows: int,
                smoke: bool = False) -> dict:
    """One configuration, in a fresh process so that its peak memory is its own."""
    dev = resolve_device(device)
    clean, noisy = test_image(size, smoke=smoke)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if loop == "deepinv":
        import deepinv as dinv

        per_iter = time_deepinv(size, clean, noisy, dev, window, windows)
        params = count_params(dinv.models.ConvDecoder(img_size=(3, size, size)))
        precision = "fp32"
    else:
        spec = NetSpec(arch).resolved()
        timer = time_ours if loop == "ours" else time_naive
        per_iter = timer(spec, clean, noisy, dev, window, windows)
        params = count_params(build_net(spec, 3, seed=0))
        precision = resolve_precision("auto", dev) if loop == "ours" else "fp32"
    return {"arch": arch, "size": size, "loop": loop, "precision": precision, "params": params,
            "sec_per_iter": statistics.median(per_iter), "windows": [round(t, 5) for t in per_iter],
            "peak_memory_mb": peak_memory_mb(dev)}


def have_deepinv() -> str | None:
    """None if deepinv imports here, else why not."""
    try:
        import deepinv  # noqa: F401
    except Exception as exc:  # ImportError, or its torchvision failing to load beside our torch
        return f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}"
    return None


def measure(arch: str, size: int, loop: str, args: argparse.Namespace, on_cpu: bool,
            smoke: bool = False) -> dict:
    """On a CPU in a fresh process (the peak RSS is then this configuration's alone, and it
    needs fewer iterations above 512²); on CUDA in this one, its peak memory counter reset.
    A smoke run measures in this process too (its memory figures then mean nothing)."""
    if smoke:
        return measure_one(arch, size, loop, args.device, args.window, args.windows, smoke=True)
    if not on_cpu:
        torch.cuda.empty_cache()
        return measure_one(arch, size, loop, args.device, args.window, args.windows)
    window = max(2, args.window // (size // 512 or 1) ** 2)
    cmd = [sys.executable, __file__, "--one", arch, str(size), loop, "--device", args.device,
           "--window", str(window), "--windows", str(args.windows)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def part_iters(args: argparse.Namespace, out: dict, smoke: bool = False) -> None:
    rows = []
    loops = ["ours", "naive"]
    why = "not timed in a smoke run" if smoke else have_deepinv()
    configs = [(arch, size, loop) for size in args.sizes for arch in args.archs for loop in loops]
    if why is None:
        configs += [("deepinv", size, "deepinv") for size in args.sizes]
    out["deepinv"] = why or "imported"
    on_cpu = resolve_device(args.device).type == "cpu"
    for arch, size, loop in configs:
        try:
            row = measure(arch, size, loop, args, on_cpu, smoke)
        except (RuntimeError, ValueError, ImportError) as exc:
            error = str(exc).strip().splitlines()[-1]
            print(f"{arch} {size} {loop}: failed: {error}", flush=True)
            rows.append({"arch": arch, "size": size, "loop": loop, "error": error})
            continue
        rows.append(row)
        print(f"{arch} {size}² {loop}: {row['sec_per_iter']:.4f} s/iter, "
              f"{row['peak_memory_mb']:.0f} MB", flush=True)
    out["iters"] = rows
    default = NetSpec(TASK_DEFAULTS["denoise"]["arch"]).resolved().arch
    pair = {r["loop"]: r for r in rows if r["arch"] == default and r["size"] == 512 and "error" not in r}
    if {"ours", "naive"} <= pair.keys():
        out["speedup_vs_naive"] = pair["naive"]["sec_per_iter"] / pair["ours"]["sec_per_iter"]


def part_default(args: argparse.Namespace, out: dict, smoke: bool = False) -> None:
    if args.default_from:  # the same command, already run by denoise.py on this machine
        done = json.loads(args.default_from.read_text())
        rec = next(r for r in done["rows"] if r["image"] == F16.name and r["size"] == [512, 512])
        rec = {**rec, "precision": rec.get("precision", "auto"), "source": str(args.default_from)}
    else:
        work = tempdir()
        image = smoke_files(work)[0] if smoke else F16
        budget = ["--iters", str(SMOKE_ITERS)] if smoke else []
        start = time.perf_counter()
        rec = run_dip(["denoise", str(image), "--sigma", str(SIGMA), "--add-noise", "--device",
                       args.device, "-o", str(work / "f16.png"), *budget])
        # The command from start to exit: loading torch, reading, noise, fits, writing.
        rec["wall_seconds"] = time.perf_counter() - start
    out["default_denoise_512_seconds"] = rec["seconds"]
    out["default_denoise_512"] = {k: rec.get(k) for k in (
        "psnr", "ssim", "iterations", "best_iteration", "stop_reason", "arch", "width", "params",
        "precision", "peak_psnr", "peak_iteration", "seconds", "wall_seconds", "source", "tile", "tiles")}
    print(f"default denoise of F16 512²: {rec['seconds']:.0f} s, {rec['psnr']:.2f} dB", flush=True)


TTQ_CONFIGS = {
    "dip defaults": [],
    "original DIP (5×128, fp32, 3000 it)": ["--arch", "original", "--iters", "3000",
                                             "--precision", "fp32"],
}


def part_ttq(args: argparse.Namespace, out: dict, smoke: bool = False) -> None:
    work = tempdir()
    src = smoke_files(work)[0] if smoke else centre_crop_file(F16, args.ttq_crop, work)
    rows = []
    configs = list(TTQ_CONFIGS.items())[:1] if smoke else TTQ_CONFIGS.items()
    for name, extra in configs:
        curve = work / "curve.csv"
        rec = run_dip(["denoise", str(src), "--sigma", str(SIGMA), "--add-noise", "--device",
                       args.device, "--plot", str(curve), "-o", str(work / "out.png"), *extra,
                       *(["--iters", str(args.max_iters)] if args.max_iters else [])])
        history = list(csv.DictReader(curve.open()))
        reach = {}
        for target in TARGETS:
            hit = next((h for h in history if h["psnr_ema"] and float(h["psnr_ema"]) >= target), None)
            reach[f"seconds_to_{target:g}"] = float(hit["elapsed"]) if hit else None
            reach[f"iteration_to_{target:g}"] = int(hit["iteration"]) if hit else None
        row = {"config": name, "args": extra, **reach, "psnr_at_stop": rec["psnr"],
               "stop_reason": rec["stop_reason"], "iterations": rec["iterations"],
               "best_iteration": rec["best_iteration"], "seconds": rec["seconds"],
               "peak_psnr": rec.get("peak_psnr"), "peak_iteration": rec.get("peak_iteration"),
               "params": rec["params"], "precision": rec.get("precision")}
        rows.append(row)
        print(f"{name}: {json.dumps({k: v for k, v in row.items() if k != 'args'})}", flush=True)
    out["time_to_quality"] = {"image": src.name if smoke else F16.name, "crop": args.ttq_crop or None,
                              "sigma": SIGMA, "rows": rows}


def fmt(x, spec: str = ".1f", none: str = "not reached") -> str:
    return none if x is None else format(x, spec)


def table(out: dict) -> str:
    lines = [f"Speed. Device: {out['device']}.", ""]
    if "iters" in out:
        lines += ["Seconds per iteration (median of windows, warm-up left out) and peak memory "
                  "(CPU: the process's peak RSS; CUDA: peak allocated). ours = dipcli's loop as "
                  "`dip denoise` runs it; naive = the public DIP code's loop (fp32, host PSNR every "
                  f"iteration), same net and weights. deepinv: {out.get('deepinv')}.", "",
                  "| net | params | size | ours s/iter (precision) | naive s/iter | speed-up "
                  "| ours MB | naive MB |", "|---|---|---|---|---|---|---|---|"]
        rows = [r for r in out["iters"] if "error" not in r]
        keys = dict.fromkeys((r["arch"], r["size"]) for r in rows)
        for arch, size in keys:
            by = {r["loop"]: r for r in rows if r["arch"] == arch and r["size"] == size}
            if "deepinv" in by:
                d = by["deepinv"]
                lines.append(f"| deepinv DeepImagePrior (ConvDecoder) | {d['params']:,} | {size}² "
                             f"| — | {d['sec_per_iter']:.4f} (deepinv's loop) | — | — "
                             f"| {d['peak_memory_mb']:.0f} |")
                continue
            o, n = by.get("ours"), by.get("naive")
            ours = f"{o['sec_per_iter']:.4f} ({o['precision']})" if o else "—"
            naive = f"{n['sec_per_iter']:.4f}" if n else "—"
            gain = f"{n['sec_per_iter'] / o['sec_per_iter']:.2f}×" if o and n else "—"
            mem = [f"{r['peak_memory_mb']:.0f}" if r else "—" for r in (o, n)]
            lines.append(f"| {arch} | {(o or n)['params']:,} | {size}² | {ours} | {naive} | {gain} "
                         f"| {mem[0]} | {mem[1]} |")
        if "speedup_vs_naive" in out:
            lines += ["", f"speedup_vs_naive (default net, 512²): {out['speedup_vs_naive']:.2f}×"]
        lines.append("")
    if "default_denoise_512_seconds" in out:
        d = out["default_denoise_512"]
        tiled = f", {d['tiles']} tiles of {d['tile']}²" if d.get("tiles") else ""
        wall = f" ({d['wall_seconds']:.0f} s for the whole command)" if d.get("wall_seconds") else ""
        lines += [f"`dip denoise` defaults on F16_GT.png (512²), σ = 25: "
                  f"**{out['default_denoise_512_seconds']:.0f} s** of fitting{wall}, "
                  f"{d['psnr']:.2f} dB, stop: "
                  f"{d['stop_reason']} after {d['iterations']} iterations (kept {d['best_iteration']}); "
                  f"{d['arch']} width {d['width']}, {d['precision']}{tiled}.", ""]
    if "time_to_quality" in out:
        t = out["time_to_quality"]
        crop = f"{t['crop']}² centre crop of " if t["crop"] else ""
        lines += [f"Time to quality: {crop}{t['image']}, σ = {t['sigma']}, averaged output, "
                  "automatic stop.", "",
                  "| configuration | params | s to 31 dB (it) | s to 32 dB (it) | PSNR at stop "
                  "| stop @ kept/run | seconds | peak seen (it) |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in t["rows"]:
            lines.append(
                f"| {r['config']} | {r['params']:,} "
                f"| {fmt(r['seconds_to_31'])} ({fmt(r['iteration_to_31'], 'd', '—')}) "
                f"| {fmt(r['seconds_to_32'])} ({fmt(r['iteration_to_32'], 'd', '—')}) "
                f"| {r['psnr_at_stop']:.2f} | {r['stop_reason']} @ {r['best_iteration']}/{r['iterations']} "
                f"| {r['seconds']:.0f} | {fmt(r['peak_psnr'], '.2f', '—')} ({r['peak_iteration']}) |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", default=["iters", "default", "ttq"],
                    choices=["iters", "default", "ttq"])
    ap.add_argument("--sizes", type=int, nargs="+", help="default 256 512 (1024 too on a GPU)")
    ap.add_argument("--archs", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    ap.add_argument("--window", type=int, default=10, help="iterations per timed window "
                    "(on a CPU, fewer above 512²)")
    ap.add_argument("--windows", type=int, default=3, help="timed windows after the warm-up one")
    ap.add_argument("--ttq-crop", type=int, default=0, help="time-to-quality on a centre crop (0: 512²)")
    ap.add_argument("--default-from", type=Path, help="take the default 512² denoise from a "
                    "denoise.py results file made on this machine (`dip denoise` with the same "
                    "options) instead of running it again")
    ap.add_argument("--max-iters", type=int, help="cap the time-to-quality runs (smoke tests)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default benchmarks/results/speed)")
    add_smoke_argument(ap)
    ap.add_argument("--one", nargs=3, metavar=("ARCH", "SIZE", "LOOP"), help=argparse.SUPPRESS)
    args, smoke = parse_smoke(ap)
    if args.one:
        arch, size, loop = args.one
        print(json.dumps(measure_one(arch, int(size), loop, args.device, args.window, args.windows)))
        return
    if smoke:  # the default net only, two windows of two iterations, at 32²
        args.sizes, args.archs = [SMOKE_SIZE], [TASK_DEFAULTS["denoise"]["arch"]]
        args.window, args.windows, args.max_iters, args.default_from = 2, 1, SMOKE_ITERS, None
    args.out = results_folder(args.out, smoke, "speed")
    on_gpu = resolve_device(args.device).type == "cuda"
    args.sizes = args.sizes or ([256, 512, 1024] if on_gpu else [256, 512])
    path = args.out / f"speed{'-' + args.tag if args.tag else ''}.json"
    out = json.loads(path.read_text()) if path.exists() else {}
    out["device"] = device_name()
    parts = {"iters": part_iters, "default": part_default, "ttq": part_ttq}
    for name in args.parts:
        parts[name](args, out, smoke)
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2) + "\n")  # after each part: a long run keeps its work
        path.with_suffix(".md").write_text(table(out) + "\n")
    print(table(out))


if __name__ == "__main__":
    main()
