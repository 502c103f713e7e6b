"""Issue 33, "Results lost": no result may vanish because of a second run, a dead worker, a closed
pipe, Ctrl-C in a script or a hangup; and select-width's --json accounts for every input.

Real `dip` processes and real signals throughout (the one exception: a file system without
hard links, which this machine's is not). Each case checks the exit code, the one message line,
no traceback, and that nothing is lost or half-written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from dipcli.cli.app import app
from dipcli.io import OutputAppeared, atomic_write, from_array, write_image

ROOT = Path(__file__).resolve().parent.parent
NET = ["--arch", "compact", "--width", "8", "--precision", "fp32", "--sigma", "25"]
LONG = [*NET, "--stop", "fixed", "--iters", "100000"]  # runs until a signal stops it
LIMIT = 300  # seconds any process of these tests may run (the machine may be shared and busy)


def noisy(size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([128 + 60 * np.sin(xx / 4) + 40 * np.cos(yy / 5)] * 3, axis=2)
    return np.clip(base + rng.normal(0, 25, base.shape), 0, 255).round().astype(np.uint8)


def images(folder: Path, *names: str, size: int = 32) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = [folder / name for name in names]
    for k, path in enumerate(paths):
        iio.imwrite(path, noisy(size, seed=k))
    return paths


def bounded(command: list[str], limit: float = LIMIT, **popen) -> subprocess.Popen:
    """A process with stdout and stderr as pipes, killed (with its group) after ``limit`` seconds:
    no test waits for ever on a line that never comes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT, start_new_session=True, **popen)
    timer = threading.Timer(limit, lambda: proc.poll() is None and os.killpg(proc.pid, signal.SIGKILL))
    timer.daemon = True
    timer.start()
    return proc


def dip(*args) -> subprocess.Popen:
    """A real `dip` process of this checkout, stderr a pipe (plain progress lines, not bars)."""
    return bounded([sys.executable, "-m", "dipcli", *map(str, args)])


def wait_for(proc: subprocess.Popen, *needles: str, timeout: float = LIMIT) -> list[str]:
    """Read stderr lines until each needle has been seen (in any order); the lines read."""
    lines, missing, deadline = [], set(needles), time.monotonic() + timeout
    while missing and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        missing -= {n for n in missing if n in line}
    assert not missing, f"never saw {missing}: {''.join(lines)}"
    return lines


def finish(proc: subprocess.Popen, timeout: float = 180) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    return out, err


def error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("dip: error:")]


def hidden(folder: Path) -> list[str]:
    """Half-written files: the temporary names of atomic writes."""
    return sorted(p.name for p in folder.rglob(".*"))


def workers(pid: int) -> list[int]:
    """The --jobs worker processes of `dip` process ``pid`` (its spawned children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


# ---- 3: two runs, one output --------------------------------------------------------------------

def test_3_a_file_that_appeared_meanwhile_is_kept_and_the_result_goes_beside_it(tmp_path):
    path = tmp_path / "same.png"
    with pytest.raises(OutputAppeared) as caught:
        with atomic_write(path, overwrite=False) as tmp:
            tmp.write_bytes(b"this run's")
            path.write_bytes(b"another run's")  # written while this one worked
    assert path.read_bytes() == b"another run's"
    assert caught.value.kept == tmp_path / "same.1.png" and caught.value.kept.read_bytes() == b"this run's"
    assert str(path) in str(caught.value) and "--force" in str(caught.value)
    write_image(tmp_path / "new.png", from_array(noisy(16)), overwrite=False)  # a free name: written
    assert iio.imread(tmp_path / "new.png").shape == (16, 16, 3)
    assert not hidden(tmp_path)


def test_3_without_hard_links_the_name_is_still_claimed_exclusively(tmp_path, monkeypatch):
    def no_links(src, dst):  # as on FAT and some network file systems
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "same.png").write_bytes(b"another run's")
    with pytest.raises(OutputAppeared):
        write_image(tmp_path / "same.png", from_array(noisy(16)), overwrite=False)
    assert (tmp_path / "same.png").read_bytes() == b"another run's"
    assert iio.imread(tmp_path / "same.1.png").shape == (16, 16, 3)
    write_image(tmp_path / "free.png", from_array(noisy(16)), overwrite=False)
    assert iio.imread(tmp_path / "free.png").shape == (16, 16, 3) and not hidden(tmp_path)


def test_3_two_runs_writing_one_output_lose_neither_result(tmp_path):
    a, b = images(tmp_path, "a.png", "b.png")
    same = tmp_path / "same.png"
    first = dip("denoise", a, "-o", same, *LONG)
    wait_for(first, "/100000")  # it checked the output (free) and is fitting
    second = dip("denoise", b, "-o", same, *NET, "--iters", "20", "-q")
    finish(second)
    assert second.returncode == 0 and same.exists()
    written = same.read_bytes()
    first.send_signal(signal.SIGTERM)  # the first one stops and writes its best so far
    _, err = finish(first)
    assert first.returncode == 1, err
    (line,) = error_lines(err)
    assert f"{same} appeared" in line and "same.1.png" in line and "--force" in line
    assert same.read_bytes() == written  # the second run's result is untouched
    assert iio.imread(tmp_path / "same.1.png").shape == (32, 32, 3)  # and the first's kept
    assert not hidden(tmp_path)


# ---- 4: a worker killed ---------------------------------------------------------------------------

def test_4_a_killed_worker_costs_a_new_pool_not_the_batch(tmp_path):
    images(tmp_path / "in", "a.png", "b.png", "c.png")
    report = tmp_path / "r.json"
    proc = dip("denoise", tmp_path / "in", "--jobs", 2, *NET, "--stop", "fixed", "--iters", "100",
               "--output-dir", tmp_path / "out", "--report", report)
    wait_for(proc, "dip denoise a.png", "dip denoise b.png")  # both workers are fitting
    os.kill(workers(proc.pid)[0], signal.SIGKILL)
    _, err = finish(proc, timeout=240)
    assert proc.returncode == 0, err
    assert err.count("a worker process died") == 1 and not error_lines(err)
    records = json.loads(report.read_text())
    assert [(Path(r["input"]).name, r["status"]) for r in records] == [
        ("a.png", "ok"), ("b.png", "ok"), ("c.png", "ok")]
    assert all(r["iterations"] == 100 for r in records)  # the cut-short fit ran again in full
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a_denoised.png", "b_denoised.png", "c_denoised.png"]


def test_4_an_input_whose_worker_dies_twice_fails_and_the_batch_ends(tmp_path):
    images(tmp_path / "in", "a.png", "b.png")
    proc = dip("denoise", tmp_path / "in", "--jobs", 2, *LONG, "--output-dir", tmp_path / "out", "--json")
    for round_ in (1, 2):
        wait_for(proc, "dip denoise a.png", "dip denoise b.png")
        os.kill(workers(proc.pid)[0], signal.SIGKILL)
        if round_ == 1:
            wait_for(proc, "a worker process died")
    out, err = finish(proc, timeout=120)
    assert proc.returncode == 1, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert all("died 2 times" in r["error"] for r in records)
    assert len(error_lines(err)) == 2
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


# ---- 5: a closed stdout -----------------------------------------------------------------------------

def test_5_a_reader_that_closes_stdout_costs_no_result(tmp_path):
    images(tmp_path / "in", "a.png", "b.png", "c.png")
    report = tmp_path / "r.csv"
    proc = dip("denoise", tmp_path / "in", *NET, "--iters", "20", "--json", "--report", report,
               "--output-dir", tmp_path / "out")
    assert proc.stdout.read(10)  # `| head -c 10`: read the start of the first line, then leave
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=180)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert proc.returncode == 0, err
    assert err.count("stdout was closed") == 1
    rows = report.read_text().splitlines()
    assert len(rows) == 4 and all(",ok," in row for row in rows[1:])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a_denoised.png", "b_denoised.png", "c_denoised.png"]


# ---- 6: Ctrl-C in a script ---------------------------------------------------------------------------

SCRIPT = """
import sys
import numpy as np
from dipcli import denoise

noisy = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)

def started(event):
    if event.iteration == 10:
        print("fitting", flush=True)

for k in range(3):
    print(f"image {k}", flush=True)
    try:
        denoise(noisy, sigma=25, arch="compact", width=8, stop="fixed", iters=100000, seed=k,
                precision="fp32", progress=started)
    except KeyboardInterrupt as stop:
        r = stop.result
        print(f"kept {r.image.shape} {r.image.dtype} {r.stop_reason} {r.interrupted}", flush=True)
        raise
"""


def test_6_ctrl_c_stops_a_script_and_the_best_so_far_rides_on_the_exception(tmp_path, ctrl_c_deliverable):
    script = tmp_path / "loop.py"
    script.write_text(textwrap.dedent(SCRIPT))
    proc = bounded([sys.executable, str(script)], limit=120)
    deadline = time.monotonic() + 90
    while proc.stdout.readline().strip() != "fitting" and time.monotonic() < deadline:
        pass
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGINT, err  # Python ends on an uncaught Ctrl-C so
    assert "kept (32, 32, 3) uint8 interrupted True" in out
    assert "image 1" not in out  # the loop did not go on
    assert err.rstrip().splitlines()[-1] == \
        "KeyboardInterrupt: interrupted; the best result so far is in its .result"


# ---- 7: SIGHUP ----------------------------------------------------------------------------------------

def test_7_sighup_keeps_the_result_so_far_writes_the_report_and_exits_129(tmp_path):
    images(tmp_path, "a.png", "b.png")
    report = tmp_path / "r.json"
    proc = dip("denoise", tmp_path, *LONG, "--report", report)
    wait_for(proc, "/100000")
    proc.send_signal(signal.SIGHUP)
    _, err = finish(proc, timeout=60)
    assert proc.returncode == 129, err
    assert "interrupted: wrote the result so far" in err and not error_lines(err)
    assert iio.imread(tmp_path / "a_denoised.png").shape == (32, 32, 3)
    assert not (tmp_path / "b_denoised.png").exists()
    records = json.loads(report.read_text())
    assert [(Path(r["input"]).name, r["status"]) for r in records] == [("a.png", "interrupted")]
    assert not hidden(tmp_path)


def test_7_a_hangup_of_the_whole_job_keeps_every_worker_s_fit(tmp_path):
    images(tmp_path / "in", "a.png", "b.png", "c.png")
    report = tmp_path / "r.json"
    proc = dip("denoise", tmp_path / "in", "--jobs", 2, *LONG, "--output-dir", tmp_path / "out",
               "--report", report)  # in its own process group, as a terminal's job is
    wait_for(proc, "a.png [", "b.png [")  # both fits have passed their first check
    os.killpg(proc.pid, signal.SIGHUP)  # what the shell sends its jobs when the terminal closes
    _, err = finish(proc)
    assert proc.returncode == 129, err
    records = json.loads(report.read_text())
    assert [(Path(r["input"]).name, r["status"]) for r in records] == [
        ("a.png", "interrupted"), ("b.png", "interrupted")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_denoised.png", "b_denoised.png"]


# ---- 23: select-width --json ---------------------------------------------------------------------------

def test_23_select_width_json_has_a_record_for_every_input_failures_too(tmp_path):
    images(tmp_path, "a.png")
    (tmp_path / "bad.png").write_bytes(b"junk")
    res = CliRunner().invoke(app, ["select-width", str(tmp_path), "--sigma", "25", "--json"])
    assert res.exit_code == 1
    records = {Path(r["input"]).name: r for r in map(json.loads, res.stdout.splitlines())}
    assert set(records) == {"a.png", "bad.png"}
    assert records["a.png"]["width"] in (32, 64, 128) and "status" not in records["a.png"]
    assert records["bad.png"]["status"] == "failed" and "cannot read" in records["bad.png"]["error"]
    (line,) = error_lines(res.stderr)
    assert "bad.png" in line and "Traceback" not in res.output
