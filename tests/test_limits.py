"""Issue 33, part A: what `dip` refuses, and that it refuses it in one line before anything runs.

Memory (a net that cannot fit, costed without allocating it; --fits bounded), the Python API's
arguments checked at the door, NaN pixels, --save-every 0, an out-of-range --seed, and an
explicit --stop against a preset that runs a fixed budget (docs/limits.md says why each).
Every case checks the exit code (or the Fail's code), the one line, no traceback, and that
nothing was written or fitted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import dipcli.engine.run
from dipcli import Fail, denoise, inpaint, select_width, superres, two_stage
from dipcli.api.inputs import TaskInput, as_image
from dipcli.api.plan import make_plan
from dipcli.api.spec import Options, make_spec
from dipcli.cli.app import app
from dipcli.engine.memory import USABLE, fit_bytes, footprint, kept_bytes, measure
from dipcli.nets import NetSpec, build_net

ROOT = Path(__file__).resolve().parent.parent
GB = 2**30


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("dip: error:"), text
    assert "Traceback" not in text
    return lines[0]


def noisy(h: int, w: int, seed: int = 0) -> np.ndarray:
    """The issue's test image: 128 + 60 sin(x/4) + 40 cos(y/5) per channel, plus N(0, 25²)."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 4) + 40 * np.cos(yy / 5)
    noise = np.random.default_rng(seed).normal(0, 25, (h, w, 3))
    return np.clip(base[:, :, None] + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def s16(tmp_path) -> Path:
    iio.imwrite(tmp_path / "s16.png", noisy(16, 16))
    return tmp_path / "s16.png"


@pytest.fixture
def s32(tmp_path) -> Path:
    iio.imwrite(tmp_path / "s32.png", noisy(32, 32))
    return tmp_path / "s32.png"


def written(folder: Path) -> list[str]:
    """Whatever appeared in the folder besides the test's input images."""
    return sorted(p.name for p in folder.iterdir() if p.name not in ("s16.png", "s32.png"))


# ---- 1: a net that cannot fit is costed, not built, and refused in one line -------------------------

# Runs a command and prints its CPU seconds and peak memory (kB) on its last stderr line. A small
# process of its own starts it: Linux keeps a process's peak memory across fork and exec, so a
# child forked straight from this (large) test process would report the test's memory as its own.
MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
use = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.write(done.stderr)
sys.stderr.write(f"\\nMEASURED {done.returncode} {use.ru_utime + use.ru_stime} {use.ru_maxrss}\\n")
"""


def test_1_a_net_deeper_than_the_image_is_refused_in_seconds_with_little_memory(s16):
    """`--scales 12` pads a 16² image to 8192² (the kernel's OOM killer took it at 23.6 GB)."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "dipcli", "denoise", str(s16),
                           "--sigma", "25", "--arch", "compact", "--scales", "12",
                           "-o", str(s16.with_name("out.png"))],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.monotonic() - start
    err, measured = done.stderr.rstrip().rsplit("\n", 1)
    _, code, seconds, kb = measured.split()
    assert int(code) == 1, err
    line = one_error_line(err)
    assert "pads this 16×16 image to 8192×8192" in line and "fewer --scales" in line
    assert written(s16.parent) == []
    # CPU seconds rather than wall time: the suite shares two cores with other work.
    assert float(seconds) < 5, f"{float(seconds):.1f} s of CPU ({wall:.1f} s wall)"
    assert int(kb) * 1024 < 1 * GB, f"peak RSS {int(kb) / 2**20:.2f} GB"  # Linux: kB


@pytest.mark.parametrize("args, words", [
    (["--scales", "16"], "pads this 16×16 image to 131072×131072"),
    (["--width", "100000"], "470,035,900,023 weights"),
    (["--scales", "12", "--tile", "0"], "pads this 16×16 image to 8192×8192"),  # no tiling: checked too
])
def test_1_a_net_too_large_for_any_machine_is_one_line_and_exit_1(s16, args, words):
    res = invoke("denoise", s16, "--sigma", 25, "--arch", "compact", *args, "-o", s16.with_name("out.png"))
    assert res.exit_code == 1, res.output
    line = one_error_line(res.output)
    assert words in line and "needs at least" in line and "free" in line
    assert written(s16.parent) == []


@pytest.mark.parametrize("args, words", [
    (["--scales", "20"], "at most 16"), (["--width", str(2**20 + 1)], "at most 1048576"),
])
def test_1_nets_past_what_can_even_be_costed_are_usage_errors(s16, args, words):
    res = invoke("denoise", s16, "--sigma", 25, "--arch", "compact", *args)
    assert res.exit_code == 2 and words in one_error_line(res.output)
    assert written(s16.parent) == []


def test_1_nets_lists_no_net_past_the_width_bound():
    res = invoke("nets", "--width", 2**20 + 1, "--size", 8)
    assert res.exit_code == 2 and "at most 1048576" in one_error_line(res.output)


@pytest.mark.parametrize("tile", ["0", "96"])
def test_1_a_given_tile_too_large_for_the_memory_free_is_refused(tmp_path, monkeypatch, tile):
    iio.imwrite(tmp_path / "s32.png", noisy(80, 96))
    spec = NetSpec("compact", width=8).resolved()
    room = fit_bytes(spec, 64, 64, 3, "fp32") / USABLE  # a 64² fit, not a 96×80 one
    monkeypatch.setattr(dipcli.engine.run, "available_bytes", lambda device: room)
    res = invoke("denoise", tmp_path / "s32.png", "--sigma", 25, "--arch", "compact", "--width", 8,
                 "--precision", "fp32", "--iters", 5, "--tile", tile, "-o", tmp_path / "out.png")
    assert res.exit_code == 1 and "give a smaller --tile" in one_error_line(res.output)
    assert written(tmp_path) == []


@pytest.mark.parametrize("arch", ["compact", "lean", "original", "deep-decoder", "convdecoder"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_1_costing_without_building_gives_the_numbers_a_real_net_does(arch, precision):
    """Parameters counted on the meta device, activations measured on the small probe: for the
    nets dip ships, exactly what building the net and running it on the probe gives."""
    spec = NetSpec(arch).resolved()
    net = build_net(spec, 3, seed=0)
    real = kept_bytes(net, torch.zeros(1, *spec.input_shape(128, 128)), precision) / 128**2
    assert measure(spec, 3, precision) == (real, sum(p.numel() for p in net.parameters()))


def test_1_a_deep_net_is_probed_with_its_first_six_scales():
    """Deeper scales run on a 4^k-th of the pixels: the 6-scale probe's figure stands for them."""
    deep, six = NetSpec("compact", scales=12).resolved(), NetSpec("compact", scales=6).resolved()
    assert footprint(deep, 3, "fp32").per_pixel == footprint(six, 3, "fp32").per_pixel
    assert footprint(deep, 3, "fp32").params > footprint(six, 3, "fp32").params
    assert footprint(deep, 3, "fp32").step == 8192


# ---- 2: --fits is bounded, and planning many fits measures the net once -----------------------------

def test_2_fits_past_the_bound_is_refused_before_any_fit(s32):
    res = invoke("denoise", s32, "--sigma", 25, "--preset", "best", "--fits", 1000, "--iters", 1)
    assert res.exit_code == 2
    assert "--fits 1000: give a whole number of fits from 1 to 16" in one_error_line(res.output)
    assert written(s32.parent) == []
    assert "(1 to 16)" in " ".join(invoke("denoise", "--help").output.split())


def test_2_planning_the_most_fits_measures_the_net_once(s32, monkeypatch):
    calls = []
    monkeypatch.setattr("dipcli.engine.memory.measure", lambda *a: calls.append(a) or measure(*a))
    footprint.cache_clear()
    image, _ = as_image(s32)
    spec = make_spec("denoise", Options(preset="best", fits=16, iters=1, device="cpu"), sigma=25)
    plan = make_plan(spec, TaskInput(image))
    assert len(plan.ensemble) == 15 and len(calls) == 1


# ---- 19: the Python API's arguments, checked at the door --------------------------------------------

IMG = noisy(16, 16)


@pytest.mark.parametrize("task, kwargs, words", [
    (denoise, dict(sigma=25, iters=5.5), "iters=5.5: give a whole number of iterations"),
    (denoise, dict(sigma=25, iters=True), "iters=True: give a whole number"),
    (denoise, dict(sigma="25"), "sigma='25': give the noise level as a number"),
    (denoise, dict(sigma=25, seed="a"), "seed='a': give a whole number, from 0 to 4294967295"),
    (denoise, dict(sigma=25, seed=1.5), "seed=1.5: give a whole number"),
    (denoise, dict(sigma=25, seed=2**40), "seed=1099511627776: give a whole number, from 0"),
    (denoise, dict(sigma=25, lr="0.01"), "lr='0.01': give the learning rate as a positive number"),
    (denoise, dict(sigma=25, width=5.5), "width=5.5: give a whole number of channels"),
    (denoise, dict(sigma=25, preset="best", fits=2.0), "fits=2.0: give a whole number of fits"),
    (denoise, dict(sigma=25, preset="best", fits=17), "fits=17: give a whole number of fits, from 1 to 16"),
    (denoise, dict(sigma=25, raw="no"), "raw='no': give True or False"),
    (denoise, dict(sigma=25, arch=5), "arch=5: give a name as a string"),
    (denoise, dict(sigma=25, progress=3), "progress=3: give a function"),
    (two_stage, dict(sigma=25, tv_weight="1"), "tv_weight='1': give the weight"),
    (inpaint, dict(drop="0.5"), "drop='0.5': give the fraction of pixels"),
    (superres, dict(factor=2.0), "factor=2.0: give a whole number, one of 2, 3, 4, 8"),
    (superres, dict(factor="4"), "factor='4': give a whole number, one of 2, 3, 4, 8"),
    (superres, dict(factor=True), "factor=True: give a whole number"),
    (select_width, dict(sigma="25"), "sigma='25': give the noise level"),
])
def test_19_api_arguments_of_the_wrong_kind_are_named_before_anything_runs(task, kwargs, words, monkeypatch):
    monkeypatch.setattr("dipcli.api.tasks.run_plan", lambda *a, **k: pytest.fail("a fit started"))
    with pytest.raises(Fail) as caught:
        task(IMG, **kwargs)
    assert caught.value.code == 2 and words in str(caught.value)
    assert "\n" not in str(caught.value)


class Accepted(Exception):
    """Raised where the task would plan: the arguments got past the door."""


def test_19_numpy_numbers_are_numbers(monkeypatch):
    def planner(*args, **kwargs):
        raise Accepted

    monkeypatch.setattr("dipcli.api.tasks.make_plan", planner)
    with pytest.raises(Accepted):
        denoise(IMG, sigma=np.float32(25), iters=np.int64(10), seed=np.uint8(3), width=np.int32(8))


# ---- 20, 21, 22: NaN pixels, --save-every 0, --seed out of range ----------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_20_nan_and_inf_pixels_are_named_as_such(bad):
    image = IMG.astype(np.float32) / 255
    image[3, 4, 1] = bad
    with pytest.raises(Fail) as caught:
        denoise(image, sigma=25)
    assert caught.value.code == 2 and "NaN or infinite pixels" in str(caught.value)
    assert "within [0, 1]" not in str(caught.value)


@pytest.mark.parametrize("picture", [["--snapshots", "snaps"], ["--gif", "p.gif"]])
def test_21_save_every_0_says_n_must_be_1_or_more(s32, picture):
    picture = [str(s32.parent / p) if i else p for i, p in enumerate(picture)]
    res = invoke("denoise", s32, "--sigma", 25, "--save-every", 0, *picture)
    assert res.exit_code == 2
    line = one_error_line(res.output)
    assert "--save-every N with N 1 or more" in line and "go together" not in line
    assert written(s32.parent) == []


@pytest.mark.parametrize("seed", ["1180591620717411303424", "-1", "4294967296"])
def test_22_a_seed_out_of_range_names_seed_and_the_range(s32, seed):
    res = invoke("denoise", s32, "--sigma", 25, "--seed", seed)
    assert res.exit_code == 2
    assert f"--seed {seed}: give a whole number from 0 to 4294967295" in one_error_line(res.output)
    assert written(s32.parent) == []


# ---- 24: an explicit --stop against a preset that runs a fixed budget -------------------------------

@pytest.mark.parametrize("args, preset", [
    (["--iters", "4000", "--stop", "auto"], "preset fast (the default without --arch)"),
    (["--preset", "best", "--stop", "wmv"], "preset best runs"),
])
def test_24_an_explicit_stop_is_refused_where_the_preset_fixes_the_budget(s32, args, preset):
    res = invoke("denoise", s32, "--sigma", 25, "--device", "cpu", *args)
    assert res.exit_code == 2
    line = one_error_line(res.output)
    assert preset in line and "fixed budget" in line and "--arch" in line
    assert written(s32.parent) == []


def test_24_stop_applies_where_nothing_fixes_it(s32):
    image, _ = as_image(s32)

    def planned(name: str, **options):
        params = dict(drop=0.3) if name == "inpaint" else dict(sigma=25)
        return make_plan(make_spec(name, Options(device="cpu", **options), **params), TaskInput(image))

    agreeing = make_spec("denoise", Options(device="cpu", stop="fixed"))  # what the preset does anyway
    assert agreeing.preset == "fast"
    one_net = planned("denoise", arch="compact", stop="wmv")
    assert type(one_net.config.stop).__name__ == "WMVStop"
    default = planned("denoise", arch="compact")
    assert type(default.config.stop).__name__ != "FixedStop"  # None is auto: the noise rule
    inpainting = planned("inpaint", stop="fixed", iters=5)
    assert inpainting.spec.options.preset is None and type(inpainting.config.stop).__name__ == "FixedStop"
