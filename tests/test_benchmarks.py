"""Every benchmark's ``--smoke`` run: the whole script (fits, scores, tables, results files) in seconds.

Each runs as a user runs it, ``python benchmarks/<name>.py --smoke``, in its own process, on one
thread, with ``--out`` a temporary folder and no data folder (``DIP_DATA`` points nowhere: a smoke
run makes its images). None may write into benchmarks/results. A benchmark that the library's
changes break then fails here, not hours into a study.

A benchmark that imports an optional module (BM3D, OpenCV, matplotlib: the ``bench`` extra) is
skipped where that module is missing, with the line that names the extra; which modules each
needs is read from the script itself (:func:`dipcli.extras.required_imports`), as the script
reads it to refuse to start without them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dipcli.extras import missing, needs, required_imports

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
RESULTS = BENCHMARKS / "results"
NOT_BENCHMARKS = {"common", "levers"}  # the shared helpers; an exploration script
NAMES = sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem not in NOT_BENCHMARKS)
TIMEOUT = 60  # seconds per smoke run; they take a few (most of it starting torch)
OPTIONAL = {name: required_imports(BENCHMARKS / f"{name}.py") for name in NAMES}
# Runs a script as `python SCRIPT ARGS…` does, with the modules named in argv[1] unimportable
# (None in sys.modules makes `import` fail and find_spec answer None): a machine without them.
WITHOUT = """
import runpy, sys
from pathlib import Path
sys.modules.update(dict.fromkeys(sys.argv[1].split(",")))
sys.argv = sys.argv[2:]
sys.path[0] = str(Path(sys.argv[0]).parent)
runpy.run_path(sys.argv[0], run_name="__main__")
"""


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
    assert "matplotlib" in OPTIONAL["upsampling"]  # its figure: found inside plot()


@pytest.mark.parametrize("name", NAMES)
def test_smoke_run_writes_its_results_into_the_folder_given(name, tmp_path, results_untouched):
    absent = missing(OPTIONAL[name])
    if absent:
        pytest.skip(needs(absent[0], f"{name}.py", prefer="bench"))
    out = tmp_path / "results"
    done = subprocess.run([sys.executable, str(BENCHMARKS / f"{name}.py"), "--smoke", "--out", str(out)],
                          cwd=tmp_path, env=smoke_env(tmp_path), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, f"{name} --smoke failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert json.loads((out / f"{name}.json").read_text())
    assert (out / f"{name}.md").read_text().strip()


# One benchmark for each optional module the benchmarks use (each run costs a torch start; the
# refusal is the same code in every script, common.parse_smoke).
FIRST_NEEDING = sorted({min(n for n in NAMES if m in OPTIONAL[n]) for m in set().union(*OPTIONAL.values())})


@pytest.mark.parametrize("name", FIRST_NEEDING)
def test_without_its_extra_a_benchmark_says_so_in_one_line_and_exits_2(name, tmp_path):
    """Before any work, not in a traceback at its figure hours later."""
    blocked = sorted(OPTIONAL[name])
    out = tmp_path / "results"
    done = subprocess.run([sys.executable, "-c", WITHOUT, ",".join(blocked), str(BENCHMARKS / f"{name}.py"),
                           "--smoke", "--out", str(out)],
                          cwd=tmp_path, env=smoke_env(tmp_path), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr[-3000:]
    assert done.stderr.splitlines() == [needs(blocked[0], f"{name}.py", prefer="bench")]
    assert "'dipcli[bench]'" in done.stderr and not out.exists()


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


def internal_imports_without_a_reason(script: Path) -> list[str]:
    """`from dipcli.x import name` lines of ``script`` that take a name outside ``dipcli.__all__`` and
    give no ``# internal: why`` (on the line, or on the comment line opening its block of imports)."""
    import ast

    import dipcli

    lines = script.read_text().split("\n")
    bare = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if not (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "dipcli"):
            continue
        if node.module == "dipcli" and all(a.name in dipcli.__all__ for a in node.names):
            continue
        said = any("# internal:" in line for line in lines[node.lineno - 1:node.end_lineno])
        above = node.lineno - 2
        while not said and above >= 0 and lines[above].strip().startswith(("from dipcli", "import ", "#")):
            said = "# internal:" in lines[above]
            above -= 1
        if not said:
            bare.append(f"{script.relative_to(ROOT)}:{node.lineno}: from {node.module} import …")
    return bare


def test_benchmarks_use_the_public_api_or_say_why_not():
    """Issue 35: a study that reaches past ``dipcli.__all__`` says why in one line, so that the
    internals it freezes are known; and no top-level study edits sys.path."""
    scripts = sorted(BENCHMARKS.rglob("*.py"))
    assert not [b for s in scripts for b in internal_imports_without_a_reason(s)]
    assert not [s.name for s in BENCHMARKS.glob("*.py") if "sys.path.insert" in s.read_text()]
