"""--cluster: a batch's inputs as tasks on a Dask cluster (issue 19).

Real clusters on 127.0.0.1: a `dask scheduler` and two `dask worker` processes of one thread
each, shared by the tests of this module (the last one kills a worker mid-fit), and the
`--cluster local:2` that `dip` starts itself. Every wait is bounded, and every process started
here is ended by its fixture (or by `dip`).
"""

from __future__ import annotations

import csv
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
from typer.testing import CliRunner

from dipcli.cli.app import app

needs_dask = pytest.mark.needs("distributed")

runner = CliRunner()
FAST = ["--iters", "15", "--arch", "compact", "--width", "8", "--precision", "fp32", "--sigma", "25"]
WAIT = 60  # seconds: the most any wait here may take


def invoke(*args, env: dict | None = None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def folder(tmp_path, smooth) -> Path:
    """imgs/ with six noisy 24×24 images."""
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for k in range(6):
        clean = smooth(24, 24, seed=k) * 255
        noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
        iio.imwrite(d / f"im{k}.png", noisy)
    return d


def same_files(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and len(names) == 6
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def start(args: list[str], log: Path) -> subprocess.Popen:
    """`dask ARGS` in the background, its output in ``log``."""
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=out, stderr=subprocess.STDOUT,
                                env=ONE_THREAD)



@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes of one thread on 127.0.0.1, and a client.

    The workers run without a nanny, so that the worker killed by the last test stays dead and
    its task must go to the other one.
    """
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    file = folder / "scheduler.json"
    procs = [start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(file)], folder / "scheduler.log")]
    try:
        procs += [start(["worker", "--scheduler-file", str(file), "--nthreads", "1", "--no-nanny",
                         "--no-dashboard", "--local-directory", str(folder), "--name", f"w{k}"],
                        folder / f"w{k}.log") for k in range(2)]
        deadline = time.monotonic() + WAIT
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with Client(scheduler_file=str(file), timeout=WAIT) as client:
            client.wait_for_workers(2, timeout=WAIT)
            yield file, client
    finally:
        for p in procs[1:]:  # the workers need no goodbye: their scratch space is the fixture's
            p.kill()
        procs[0].terminate()
        for p in procs:
            try:
                p.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=WAIT)


@needs_dask
def test_a_batch_on_two_workers_is_bit_identical_to_jobs_1(cluster, folder, tmp_path):
    _, client = cluster
    address = client.scheduler.address
    local = invoke("denoise", folder, *FAST, "--jobs", "1", "--output-dir", tmp_path / "local", "-q")
    assert local.exit_code == 0, local.output
    report = tmp_path / "r.csv"
    res = invoke("denoise", folder, *FAST, "--cluster", address, "--output-dir", tmp_path / "remote",
                 "--report", report, "-q")
    assert res.exit_code == 0, res.output
    same_files(tmp_path / "local", tmp_path / "remote")
    table = rows(report)
    assert len(table) == 6 and {r["status"] for r in table} == {"ok"}
    assert [Path(r["input"]).name for r in table] == [f"im{k}.png" for k in range(6)]
    workers = {r["worker"] for r in table}
    assert workers == set(client.scheduler_info()["workers"])  # both fitted images


@needs_dask
def test_shared_fs_and_the_environment_variable(cluster, folder, tmp_path):
    """DIP_CLUSTER stands for --cluster; with --shared-fs the workers write the files themselves."""
    out = tmp_path / "out"
    res = invoke("denoise", folder, *FAST, "--shared-fs", "--output-dir", out, "--json", "-q",
                 env={"DIP_CLUSTER": cluster[1].scheduler.address})
    assert res.exit_code == 0, res.output
    assert len(list(out.glob("*_denoised.png"))) == 6
    assert res.stdout.count('"worker": "tcp://127.0.0.1:') == 6


@needs_dask
def test_cluster_local_2_end_to_end(folder, tmp_path):
    for extra in sorted(folder.iterdir())[2:]:
        extra.unlink()
    report = tmp_path / "r.json"
    res = invoke("denoise", folder, *FAST, "--cluster", "local:2", "--output-dir", tmp_path / "out",
                 "--report", report, "-q")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["im0_denoised.png", "im1_denoised.png"]
    records = json.loads(report.read_text())
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert all(r["worker"].startswith("tcp://127.0.0.1:") for r in records)


def test_without_the_extra_cluster_is_refused(folder, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    res = invoke("denoise", folder, *FAST, "--cluster", "local:2", "--output-dir", tmp_path / "out")
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        "dip: error: --cluster needs distributed: pip install 'dipcli[cluster]'"]
    assert not (tmp_path / "out").exists()


@needs_dask
@pytest.mark.parametrize("args, message", [
    (["--cluster", "local:2", "--jobs", "2"], "choose one"),
    (["--cluster", "local:0"], "local:N with N ≥ 1"),
    (["--cluster", "missing.json"], "no such scheduler file"),
    (["--shared-fs"], "give --cluster too"),
    (["--cluster", "local", "--gif", "{stem}.gif", "--save-every", "5"], "add --shared-fs"),
])
def test_combinations_that_cannot_work_are_refused_before_any_work(folder, tmp_path, args, message):
    res = invoke("denoise", folder, *FAST, *args, "--output-dir", tmp_path / "out")
    assert res.exit_code == 2 and message in res.stderr, res.output
    assert not (tmp_path / "out").exists()


def executing_on(client) -> dict[str, list[str]]:
    """The keys of the tasks each worker is running now."""
    def executing(dask_worker) -> list[str]:  # on each worker (a closure: this module is not there)
        return sorted(str(ts.key) for ts in dask_worker.state.executing)

    return client.run(executing)


def dip_on(file: Path, folder: Path, tmp_path: Path, iters: int) -> subprocess.Popen:
    """`dip denoise FOLDER --cluster FILE` in the background, with a report."""
    args = [*FAST, "--iters", str(iters), "--stop", "fixed", "--cluster", str(file),
            "--output-dir", str(tmp_path / "out"), "--report", str(tmp_path / "r.csv"), "-q"]
    return subprocess.Popen([sys.executable, "-m", "dipcli", "denoise", str(folder), *args], env=ONE_THREAD,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(dip: subprocess.Popen) -> tuple[str, str]:
    try:
        return dip.communicate(timeout=WAIT)
    finally:
        if dip.poll() is None:
            dip.kill()
            dip.wait(timeout=WAIT)


@needs_dask
def test_ctrl_c_cancels_the_rest_and_reports_what_is_done(cluster, folder, tmp_path, ctrl_c_deliverable):
    file, client = cluster
    # Fits long enough that warm workers are still busy when the first result is in.
    dip = dip_on(file, folder, tmp_path, iters=2000)
    deadline = time.monotonic() + WAIT
    while not (tmp_path / "r.csv").exists() and time.monotonic() < deadline and dip.poll() is None:
        time.sleep(0.05)  # the report appears with the first result
    dip.send_signal(signal.SIGINT)
    _, err = finish(dip)
    assert dip.returncode == 130, err
    table = rows(tmp_path / "r.csv")
    assert 1 <= len(table) < 6 and {r["status"] for r in table} == {"ok"}
    assert len(list((tmp_path / "out").glob("*_denoised.png"))) == len(table)
    deadline = time.monotonic() + WAIT  # the cancelled fits stop at their next check, writing nothing
    while any(executing_on(client).values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(executing_on(client).values())
    assert len(list((tmp_path / "out").glob("*_denoised.png"))) == len(table)


# ---- a worker dies mid-fit (last: it leaves the module's cluster one worker short) ----------------

@needs_dask
def test_a_worker_killed_mid_fit_loses_no_result(cluster, folder, tmp_path):
    file, client = cluster
    pids = client.run(os.getpid)
    dip = dip_on(file, folder, tmp_path, iters=200)
    killed = None
    deadline = time.monotonic() + WAIT
    while killed is None and time.monotonic() < deadline and dip.poll() is None:
        for address, keys in executing_on(client).items():
            if keys:
                os.kill(pids[address], signal.SIGKILL)
                killed = address, keys[0]
                break
        time.sleep(0.05)
    _, err = finish(dip)
    assert killed is not None, "no fit was ever seen running"
    assert dip.returncode == 0, err
    assert len(list((tmp_path / "out").glob("*_denoised.png"))) == 6
    table = rows(tmp_path / "r.csv")
    assert [r["status"] for r in table] == ["ok"] * 6
    address, key = killed  # the input whose fit died with its worker was fitted again elsewhere
    victim = next(r for r in table if f"-{Path(r['input']).name}-" in key)
    assert victim["worker"] != address


# ---- a worker's heap ------------------------------------------------------------------------------

HEAP_PROBE = """
import ctypes, ctypes.util
import numpy as np
from dipcli.batch.worker import roomy_heap

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = Info

def mapped():  # bytes malloc holds in mmapped chunks while a 16 MiB array lives, after one before it
    for _ in range(2):
        a = np.ones(2 << 20)
        m = libc.mallinfo2().hblkhd
        del a
    return m

before = mapped()
roomy_heap()
print(before, mapped())
"""


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc")
def test_a_worker_keeps_big_buffers_in_the_heap_despite_the_nannys_trim_threshold():
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_, which pins glibc's mmap threshold at 128 KiB:
    every activation of a fit is then mapped afresh at each step (a fit ran 2x slower). After
    roomy_heap() a 16 MiB buffer comes from the heap again, as it does in `dip` itself."""
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    out = subprocess.run([sys.executable, "-c", HEAP_PROBE], env=env, capture_output=True, text=True,
                         timeout=WAIT)
    if "mallinfo2" in out.stderr:
        pytest.skip("glibc older than 2.33 (no mallinfo2)")
    assert out.returncode == 0, out.stderr
    before, after = map(int, out.stdout.split())
    assert before >= 16 << 20  # the nanny's setting: the buffer was mmapped
    assert after < before - (8 << 20)  # now it is not
