"""Issue 18 through the command line: each odd input, option or signal that once broke `dip`.

Each case checks what a user relies on: the exit code, one `dip: error:` line and no traceback
where it fails, nothing half-written left behind, and the right pixels where it succeeds. The
readers' and writers' own cases (CMYK, orientation, tRNS, bombs, modes) are tested in detail in
test_io_read.py and test_io_write.py; here they go through `dip` end to end.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from test_io_read import bombs, set_png_size  # noqa: E402

from dipcli.cli.app import app, main  # noqa: E402
from dipcli.io import from_array, write_image  # noqa: E402

FAST = ["--iters", "10", "--arch", "compact", "--width", "8", "--precision", "fp32", "-q"]
ROOT = Path(__file__).resolve().parent.parent


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("dip: error:"), text
    assert "Traceback" not in text
    return lines[0]


def noisy(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.5 + 0.3 * np.sin(3 * xx + c) * np.cos(2 * yy) for c in range(channels)], axis=2)
    img = np.clip(base + rng.normal(0, 0.1, base.shape), 0, 1)
    return (img * 255).round().astype(np.uint8)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp")


# ---- wrong output, silently ---------------------------------------------------------------------

def test_1_cmyk_jpeg_is_restored_in_rgb(tmp_path):
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:] = (64, 59, 41)
    PILImage.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    # Inpainting keeps the known pixels exactly: the output shows the colours dip read.
    res = invoke("inpaint", tmp_path / "c.jpg", "--drop", 0.05, *FAST, "-o", tmp_path / "out.png")
    assert res.exit_code == 0, res.output
    out = iio.imread(tmp_path / "out.png")
    assert out.shape == (32, 32, 3)  # RGB, not C/M/Y as RGB and K as alpha
    assert np.abs(np.median(out.reshape(-1, 3), 0) - (64, 59, 41)).max() <= 6  # not (172, 193, 210)


def test_2_exif_orientation_is_applied_and_the_output_is_upright(tmp_path):
    img = np.zeros((32, 48, 3), np.uint8)
    img[:, :24] = (220, 30, 30)
    exif = PILImage.Exif()
    exif[0x0112] = 6  # displayed turned 90° clockwise
    PILImage.fromarray(img).save(tmp_path / "o.jpg", exif=exif.tobytes(), quality=95)
    res = invoke("inpaint", tmp_path / "o.jpg", "--drop", 0.05, *FAST, "-o", tmp_path / "out.png")
    assert res.exit_code == 0, res.output
    out = iio.imread(tmp_path / "out.png")
    assert out.shape == (48, 32, 3)  # as a viewer shows the input
    assert out[:20, :, 0].mean() > out[28:, :, 0].mean() + 60  # the red half is now on top


def test_3_palette_png_transparency_is_kept_as_alpha(tmp_path):
    pal = PILImage.fromarray(noisy(32, 32)).convert("P", palette=PILImage.Palette.ADAPTIVE, colors=16)
    index = np.asarray(pal)
    transparent = int(index[0, 0])
    pal.save(tmp_path / "p.png", transparency=transparent)
    res = invoke("denoise", tmp_path / "p.png", "--sigma", 10, *FAST, "-o", tmp_path / "out.png")
    assert res.exit_code == 0, res.output
    out = iio.imread(tmp_path / "out.png")
    assert out.shape == (32, 32, 4)
    np.testing.assert_array_equal(out[:, :, 3] == 0, index == transparent)


@pytest.mark.parametrize("lr", ["inf", "nan", "-1", "0"])
def test_4_impossible_learning_rate_is_a_usage_error(tmp_path, lr):
    iio.imwrite(tmp_path / "a.png", noisy(32, 32))
    res = invoke("denoise", tmp_path / "a.png", "--sigma", 25, *FAST, "--lr", lr)
    assert res.exit_code == 2 and "--lr" in one_error_line(res.output), res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_4_a_fit_that_diverges_fails_with_one_line_and_writes_nothing(tmp_path):
    iio.imwrite(tmp_path / "a.png", noisy(32, 32))
    res = invoke("denoise", tmp_path / "a.png", "--sigma", 25, "--iters", "200", "--arch", "compact",
                 "--width", "8", "--stop", "fixed", "--lr", "1e30", "-q")
    assert res.exit_code == 1 and "lower --lr" in one_error_line(res.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


# ---- errors that came too late, or as tracebacks ---------------------------------------------------

@pytest.mark.parametrize("where", [["-o", "/proc/dip-out.png"], ["--output-dir", "/proc/dip-out"]])
def test_5_unwritable_output_is_refused_before_any_fit(tmp_path, where):
    iio.imwrite(tmp_path / "a.png", noisy(32, 32))
    start = time.monotonic()
    res = invoke("denoise", tmp_path / "a.png", "--sigma", 25, "--iters", "100000", "--stop", "fixed", *where)
    assert res.exit_code == 2 and "cannot write" in one_error_line(res.output)
    assert time.monotonic() - start < 20  # refused up front, not after 100,000 iterations


@pytest.mark.parametrize("report", ["/proc/r.csv", "FOLDER", "/proc/x/r.json"])
def test_6_unwritable_report_is_refused_before_any_fit(tmp_path, report):
    iio.imwrite(tmp_path / "a.png", noisy(32, 32))
    if report == "FOLDER":
        report = tmp_path / "reports.csv"
        report.mkdir()
    res = invoke("denoise", tmp_path / "a.png", "--sigma", 25, *FAST, "--report", report)
    assert res.exit_code == 2
    one_error_line(res.output)
    assert not (tmp_path / "a_denoised.png").exists() and not leftovers(tmp_path)


@pytest.mark.parametrize("kind, suffix, want", [
    ("rgb16", ".bmp", (np.uint8, 3)), ("greyalpha", ".jpg", (np.uint8, None)),
    ("greyalpha", ".bmp", (np.uint8, None)), ("rgba16", ".jpg", (np.uint8, 3)),
])
def test_7_a_format_that_cannot_hold_the_image_converts_with_a_note(tmp_path, kind, suffix, want):
    base = noisy(32, 32)
    data = {"rgb16": base.astype(np.uint16) * 257,
            "greyalpha": np.stack([base[:, :, 0], np.full((32, 32), 200, np.uint8)], axis=2),
            "rgba16": np.concatenate([base, base[:, :, :1]], axis=2).astype(np.uint16) * 257}[kind]
    write_image(tmp_path / "in.png", from_array(data))  # pypng: 16-bit colour PNGs too
    res = invoke("denoise", tmp_path / "in.png", "--sigma", 25, *FAST[:-1], "-o", tmp_path / f"out{suffix}")
    assert res.exit_code == 0, res.output
    assert "out" + suffix in res.output and ("8 bits" in res.output or "alpha" in res.output)
    out = iio.imread(tmp_path / f"out{suffix}")
    assert out.dtype == want[0] and (want[1] is None or out.shape[2] == want[1])


def test_8_thin_images_get_the_size_rule_and_an_8_px_one_is_tiled(tmp_path):
    iio.imwrite(tmp_path / "thin.png", noisy(3, 500))
    res = invoke("denoise", tmp_path / "thin.png", "--sigma", 25, *FAST)
    assert res.exit_code == 2 and "at least 8 pixels per side" in one_error_line(res.output)
    iio.imwrite(tmp_path / "strip.png", noisy(8, 400))
    res = invoke("denoise", tmp_path / "strip.png", "--sigma", 25, "--iters", "10", "--precision", "fp32",
                 "--json")  # the default net, so --tile auto cuts it
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["tiles"] == 2
    assert iio.imread(tmp_path / "strip_denoised.png").shape == (8, 400, 3)


def test_9_width_auto_and_select_width_on_tiny_images(tmp_path):
    iio.imwrite(tmp_path / "small.png", noisy(8, 100))
    res = invoke("denoise", tmp_path / "small.png", "--sigma", 25, "--width", "auto", "--arch", "compact",
                 "--iters", "10", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["width"] == 64  # too small to measure: the net's own width
    iio.imwrite(tmp_path / "dot.png", noisy(1, 1))
    res = invoke("select-width", tmp_path / "dot.png", "--sigma", 25)
    assert res.exit_code == 1 and "too small" in one_error_line(res.output)


@pytest.mark.parametrize("args, words", [
    (["denoise", "a.png", "--iters", "0"], "--iters"),
    (["superres", "a.png", "--factor", "3.5"], "--factor"),
    (["denoise", "a.png", "--jobs", "0"], "--jobs"),
    (["denoise"], "INPUT"),
    (["frobnicate"], "frobnicate"),
    (["denoise", "a.png", "--no-such-option"], "--no-such-option"),
])
def test_10_parser_errors_are_one_line_exit_2(capsys, args, words):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in one_error_line(err)


def dip_process(*args: str, env_extra: dict | None = None) -> subprocess.Popen:
    """A real `dip` process (python -m dipcli), its stderr a pipe (not a terminal)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "dipcli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def catches_sigint(pid: int) -> bool:
    """Whether the process has a handler for SIGINT (Linux: the SigCgt mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(caught & (1 << (signal.SIGINT - 1)))


def test_11_ctrl_c_while_starting_exits_130_quietly(tmp_path, ctrl_c_deliverable):
    iio.imwrite(tmp_path / "a.png", noisy(32, 32))
    proc = dip_process("denoise", str(tmp_path / "a.png"), "--sigma", "25")
    # Python is up once it handles SIGINT (before that the signal kills the process outright, as
    # for any program); torch is still being imported then (it takes seconds). A fixed wait was
    # not enough on a loaded machine.
    deadline = time.monotonic() + 30
    while not catches_sigint(proc.pid) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


# ---- signals, files and memory ---------------------------------------------------------------------

def test_12_sigterm_keeps_the_result_so_far_writes_the_report_and_exits_143(tmp_path):
    iio.imwrite(tmp_path / "a.png", noisy(48, 48))
    iio.imwrite(tmp_path / "b.png", noisy(48, 48, seed=1))
    report = tmp_path / "r.json"
    proc = dip_process("denoise", str(tmp_path), "--sigma", "25", "--arch", "compact", "--width", "8",
                       "--stop", "fixed", "--iters", "100000", "--report", str(report))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until the first fit has reported its first check
        line = proc.stderr.readline()
        if "/100000" in line or not line:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert (tmp_path / "a_denoised.png").exists() and not (tmp_path / "b_denoised.png").exists(), err
    records = json.loads(report.read_text())
    assert [(Path(r["input"]).name, r["status"]) for r in records] == [("a.png", "interrupted")]
    assert not leftovers(tmp_path)


def test_13_outputs_get_the_mode_of_the_users_umask(tmp_path):
    iio.imwrite(tmp_path / "a.png", noisy(32, 32))
    old = os.umask(0o022)
    try:
        res = invoke("denoise", tmp_path / "a.png", "--sigma", 25, *FAST, "--report", tmp_path / "r.csv")
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a_denoised.png").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "r.csv").stat().st_mode & 0o777 == 0o644


def test_14_decompression_bombs_are_refused_from_the_header(tmp_path):
    bombs(tmp_path)
    for name in ("deep.png", "flat.png", "photo.jpg", "scan.tif"):
        start = time.monotonic()
        res = invoke("denoise", tmp_path / name, "--sigma", 25, *FAST)
        assert res.exit_code == 1 and "--max-pixels" in one_error_line(res.output), name
        assert time.monotonic() - start < 10
    iio.imwrite(tmp_path / "ok.png", noisy(32, 32))
    res = invoke("denoise", tmp_path / "ok.png", "--sigma", 25, *FAST, "--max-pixels", 1000)
    assert res.exit_code == 1 and "1,000" in one_error_line(res.output)
    set_png_size(tmp_path / "ok.png", 32, 32)  # unchanged size: the helper keeps a valid file
    res = invoke("denoise", tmp_path / "ok.png", "--sigma", 25, *FAST, "--max-pixels", 1024)
    assert res.exit_code == 0, res.output


def test_15_a_fit_stopped_before_its_first_loss_gives_null_not_nan(tmp_path, monkeypatch):
    from dipcli.optim import parts as fit

    iio.imwrite(tmp_path / "a.png", noisy(32, 32))
    real, calls = fit.jitter, []

    def ctrl_c_early(z):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(z)

    monkeypatch.setattr(fit, "jitter", ctrl_c_early)
    res = invoke("denoise", tmp_path / "a.png", "--sigma", 25, *FAST, "--json",
                 "--report", tmp_path / "r.json")
    assert res.exit_code == 130

    def no_nan(word):
        raise AssertionError(f"{word} in JSON")

    record = json.loads(res.stdout.strip().splitlines()[0], parse_constant=no_nan)
    assert record["final_loss"] is None and record["status"] == "interrupted"
    assert json.loads((tmp_path / "r.json").read_text(), parse_constant=no_nan)[0]["final_loss"] is None


# ---- what a person sees ------------------------------------------------------------------------------

def test_16_progress_stays_legible_at_80_columns():
    from rich.console import Console

    from dipcli.report.progress import RichDisplay

    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=True, color_system=None)
    with RichDisplay(console, count=3, batch=True) as display:
        display.begin(0, "a_rather_long_photo_name.png", "dip denoise a_rather_long_photo_name.png: 256×256, "
                      "σ = 25, lean net (width 64, 2 scales, bilinear), stop: discrepancy", 1200)
        display.update(0, 340, 1200, 30.0, "loss 0.00421 · PSNR 28.11/29.40 dB (raw/avg) · "
                       "best 29.40 @ 340 · residual/noise 1.052 (stop ≤ 1)")
        display.live.refresh()
    frame = buf.getvalue().split("\x1b[2K")[-1]
    lines = [ln for ln in frame.replace("\x1b[1A", "").splitlines() if ln.strip()]
    bar = next(ln for ln in lines if "340/1200" in ln)
    assert "━" in bar and "ETA" in bar and "it/s" in bar  # the bar keeps its room
    assert all(len(ln) <= 80 for ln in lines)
    assert any(ln.strip().startswith("loss 0.00421") for ln in lines)  # numbers on their own line


def test_17_help_shows_flags_as_flags_and_nets_json_says_what_it_prints(capsys):
    assert main(["denoise", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--recursive" in text and "<bool>" not in text
    assert main(["nets", "--help"]) == 0
    assert "per generator" in capsys.readouterr().out


def test_18_idle_threads_spin_briefly_unless_the_user_chose(monkeypatch):
    from dipcli import signals

    previous = signal.getsignal(signal.SIGTERM)
    try:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
        monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
        signals.install()
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
        assert os.environ["GOMP_SPINCOUNT"] == str(signals.SPIN_COUNT)
        monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's policy: left as it is
        monkeypatch.delenv("GOMP_SPINCOUNT")
        signals.install()
        assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE" and "GOMP_SPINCOUNT" not in os.environ
        monkeypatch.delenv("OMP_WAIT_POLICY")  # the user's spin count: left as it is, no policy
        monkeypatch.setenv("GOMP_SPINCOUNT", "0")
        signals.install()
        assert os.environ["GOMP_SPINCOUNT"] == "0" and "OMP_WAIT_POLICY" not in os.environ
    finally:
        signal.signal(signal.SIGTERM, previous)
