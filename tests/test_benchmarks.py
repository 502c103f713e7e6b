"""Every benchmark's ``--smoke`` run: the whole script (fits, scores, tables, results files) in seconds.

Each runs as a user runs it, ``python benchmarks/<name>.py --smoke``, in its own process, on one
thread, with ``--out`` a temporary folder and no data folder (``DIP_DATA`` points nowhere: a smoke
run makes its images). None may write into benchmarks/results. A benchmark that the library's
changes break then fails here, not hours into a study.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
RESULTS = BENCHMARKS / "results"
NOT_BENCHMARKS = {"common", "levers"}  # the shared helpers; an exploration script
NAMES = sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem not in NOT_BENCHMARKS)
TIMEOUT = 60  # seconds per smoke run; they take a few (most of it starting torch)
# Peers that only the benchmarks use, from the `bench` extra (CI installs it): without one, the
# benchmark that compares with it is skipped, not failed.
NEEDS = {"quality": "bm3d", "quality_budgets": "bm3d", "inpaint_quality": "cv2", "inpaint_holdout": "cv2"}


def committed_results() -> dict[str, tuple[int, int]]:
    """Size and modification time of every file under benchmarks/results."""
    return {str(p.relative_to(RESULTS)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(RESULTS.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def results_untouched():
    before = committed_results()
    yield
    assert committed_results() == before, "a smoke run wrote into benchmarks/results"


def smoke_env(tmp_path: Path) -> dict[str, str]:
    """One thread, no data, no checkpoints, and the scripts' scratch folders under ``tmp_path``."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DIP_CHECKPOINTS", "DIP_PARTIAL")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", DIP_DATA=str(tmp_path / "no-data"),
               TMPDIR=str(scratch),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return env


def test_every_benchmark_is_listed():
    assert len(NAMES) >= 14 and {"stopping", "inpaint", "superres", "speed"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_smoke_run_writes_its_results_into_the_folder_given(name, tmp_path, results_untouched):
    if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
        pytest.skip(f"{NEEDS[name]} is not installed: pip install 'dipcli[bench]'")
    out = tmp_path / "results"
    done = subprocess.run([sys.executable, str(BENCHMARKS / f"{name}.py"), "--smoke", "--out", str(out)],
                          cwd=tmp_path, env=smoke_env(tmp_path), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, f"{name} --smoke failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert json.loads((out / f"{name}.json").read_text())
    assert (out / f"{name}.md").read_text().strip()


def test_smoke_results_never_go_to_the_committed_folder(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import common

    assert common.results_folder(None, smoke=False) == common.RESULTS
    assert common.results_folder(tmp_path, smoke=True) == tmp_path
    fresh = common.results_folder(None, smoke=True)
    assert fresh.is_dir() and fresh.resolve() != common.RESULTS.resolve()
    fresh.rmdir()
    with pytest.raises(SystemExit, match="never writes into benchmarks/results"):
        common.results_folder(common.RESULTS, smoke=True)
