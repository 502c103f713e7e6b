"""A fixed list of `dip` commands whose written files must not change when the code is restructured.

``python tests/golden.py --record`` runs every command on tiny images it makes itself and writes
the SHA-256 of each file they write to ``tests/golden.json``, under the machine facts that the
bits depend on (torch version, CPU ISA): one record per kind of machine, so that a record made on
another CPU is kept beside this one's. ``tests/test_golden.py`` runs the same commands and
compares with the record of the machine it runs on. Every option that a default could decide is
given explicitly (net, width, budget, stop rule, precision fp32), so that a deliberate change of
a default does not count as a change of behaviour: these commands pin what the code computes,
not what the defaults are.

Run in one thread (as the test suite is): the order of floating-point sums, and so the bits,
depend on the number of threads.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np

HERE = Path(__file__).resolve().parent
RECORD = HERE / "golden.json"
PIN = "--precision fp32 --seed 3 --quiet --force"
FAST = f"--iters 30 {PIN}"

# name → command line, run in a folder holding the images made by :func:`make_images`.
COMMANDS: dict[str, str] = {
    "denoise-lean": f"denoise rgb.png --sigma 25 --arch lean --stop discrepancy {FAST} -o out.png",
    "denoise-compact-w16": f"denoise rgb.png --sigma 25 --arch compact --width 16 --stop fixed {FAST} "
                           "-o out.png",
    "denoise-estimated-sigma": f"denoise rgb.png --arch compact --width 8 --stop auto {FAST} -o out.png",
    "denoise-width-auto": f"denoise rgb.png --sigma 25 --arch compact --width auto --stop fixed "
                          f"--iters 5 {PIN} -o out.png",
    "denoise-grey16": f"denoise grey16.png --sigma 15 --arch compact --width 8 --stop fixed {FAST} "
                      "-o out.png",
    "denoise-rgba": f"denoise rgba.png --sigma 25 --arch compact --width 8 --stop wmv {FAST} -o out.png",
    "denoise-add-noise-raw": f"denoise rgb.png --sigma 25 --add-noise --raw --arch deep-decoder --width 8 "
                             f"--stop fixed {FAST} -o out.png",
    "denoise-tiles": f"denoise big.png --sigma 25 --arch compact --width 8 --tile 32 --stop discrepancy "
                     f"{FAST} -o out.png",
    "denoise-group": f"denoise a.png b.png --sigma 25 --arch compact --width 8 --group 2 --stop fixed "
                     f"{FAST} --output-dir outs",
    "denoise-wiener": f"denoise rgb.png --sigma 10 --wiener --arch compact --width 8 --stop fixed {FAST} "
                      "-o out.png",
    "two-stage-tv": f"two-stage rgb.png --sigma 25 --arch compact --width 8 --stop auto {FAST} -o out.png",
    "two-stage-prefilter": f"two-stage rgb.png --sigma 25 --stage1 prefilter --arch compact --width 8 "
                           f"--stop fixed {FAST} -o out.png",
    "inpaint-mask": f"inpaint rgb.png --mask mask.png --arch original --width 8 --upsample nearest "
                    f"--stop wmv {FAST} -o out.png",
    "inpaint-drop": f"inpaint rgb.png --drop 0.5 --arch compact --width 8 --stop fixed {FAST} -o out.png",
    "superres-x2": f"superres rgb.png --factor 2 --arch compact --width 8 --stop fixed {FAST} -o out.png",
    "superres-make-lr": f"superres big.png --factor 4 --make-lr --kernel bicubic --arch compact --width 8 "
                        f"--stop wmv {FAST} -o out.png",
}
SELECT_WIDTH = "select-width rgb.png big.png grey16.png --sigma 25 --json"


def make_images(folder: Path) -> None:
    """Small noisy test images (RGB, RGBA, 16-bit grey, a 64² one for tiles), a mask, a pair."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:64, 0:64] / 64
    base = np.stack([0.5 + 0.4 * np.sin(3 * xx + c) * np.cos(2 * yy - c) for c in range(3)], axis=2)
    base[(yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.06] = 0.9
    noisy = np.clip(base + rng.normal(0, 25 / 255, base.shape), 0, 1)
    to8 = lambda a: np.round(a * 255).astype(np.uint8)  # noqa: E731
    iio.imwrite(folder / "big.png", to8(noisy))
    iio.imwrite(folder / "rgb.png", to8(noisy[8:40, 4:40]))
    alpha = np.full((32, 36, 1), 200, np.uint8)
    iio.imwrite(folder / "rgba.png", np.concatenate([to8(noisy[16:48, 20:56]), alpha], axis=2))
    iio.imwrite(folder / "grey16.png", np.round(noisy[:32, :32].mean(axis=2) * 65535).astype(np.uint16))
    iio.imwrite(folder / "a.png", to8(noisy[:32, :32]))
    iio.imwrite(folder / "b.png", to8(noisy[32:, 32:]))
    mask = np.full((32, 36), 255, np.uint8)
    mask[10:18, 12:25] = 0
    iio.imwrite(folder / "mask.png", mask)


def machine() -> dict:
    """What the bits of a CPU fit depend on besides the code."""
    import torch

    flags = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                words = set(line.split(":", 1)[1].split())
                flags = " ".join(sorted(w for w in words if w.startswith(("avx", "amx", "fma"))))
                break
    return {"torch": torch.__version__, "machine": platform.machine(), "isa": flags}


def load_records() -> list[dict]:
    """Every machine's record (``{"machine": ..., "hashes": ...}``) in :data:`RECORD`."""
    if not RECORD.exists():
        return []
    data = json.loads(RECORD.read_text())
    return data["records"] if "records" in data else [data]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_all(folder: Path, invoke) -> dict[str, str]:
    """Run every command in ``folder`` with ``invoke(args) -> (exit_code, stdout)``; the hashes."""
    import os

    make_images(folder)
    hashes: dict[str, str] = {}
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        for name, line in COMMANDS.items():
            if line.startswith("denoise ") and "--wiener" not in line:
                line += " --no-wiener"  # the fit alone, as recorded before that option
            code, out = invoke(shlex.split(line))
            if code != 0:
                raise RuntimeError(f"{name}: `dip {line}` exited {code}: {out}")
            if name == "denoise-group":
                for f in sorted(Path("outs").iterdir()):
                    hashes[f"{name}/{f.name}"] = sha(f)
            else:
                hashes[name] = sha(Path("out.png"))
                Path("out.png").unlink()
        code, out = invoke(shlex.split(SELECT_WIDTH))
        if code != 0:
            raise RuntimeError(f"select-width exited {code}: {out}")
        hashes["select-width"] = hashlib.sha256(out.encode()).hexdigest()
    finally:
        os.chdir(cwd)
    return hashes


def cli_invoke(args: list[str]) -> tuple[int, str]:
    from typer.testing import CliRunner

    from dipcli.cli.app import app

    res = CliRunner().invoke(app, args)
    return res.exit_code, res.stdout


if __name__ == "__main__":
    import tempfile

    import torch

    torch.set_num_threads(1)
    if "--record" not in sys.argv:
        sys.exit("usage: python tests/golden.py --record   (writes tests/golden.json)")
    with tempfile.TemporaryDirectory() as tmp:
        hashes = run_all(Path(tmp), cli_invoke)
    records = [r for r in load_records() if r["machine"] != machine()]
    records.append({"machine": machine(), "hashes": hashes})
    RECORD.write_text(json.dumps({"records": records}, indent=1) + "\n")
    print(f"recorded {len(hashes)} hashes for this machine in {RECORD} ({len(records)} machines)")
