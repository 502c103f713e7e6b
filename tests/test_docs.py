"""docs/make_docs.py: the generated pages are committed as it writes them, and it notices what it must.

docs/benchmarks.md (from benchmarks/results/ and its index), docs/architecture.md (from the
package's imports) and README.md's results table are never typed by hand: when the results, the
index or the package change, `python docs/make_docs.py` rewrites them, and this test (like CI)
fails until that is committed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("make_docs", ROOT / "docs" / "make_docs.py")
make_docs = sys.modules["make_docs"] = importlib.util.module_from_spec(SPEC)  # dataclasses look it up there
SPEC.loader.exec_module(make_docs)

INDEX = """# Benchmark results

| folder | script | what it measures | headline files |
|---|---|---|---|
| [`alpha/`](alpha/) | `alpha.py` | Alpha. | `alpha.md` |
| [`later/`](later/) | `later.py` | Not run yet. | `later.md` |
| [`archive/`](archive/) | — | Superseded. | — |

| archived file | study | superseded by |
|---|---|---|
| `alpha-old.md` | alpha | `alpha/alpha.md` |
"""


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A small benchmarks/results/: one study with a headline table, one not run, an archive."""
    root = tmp_path / "results"
    (root / "alpha").mkdir(parents=True)
    (root / "archive").mkdir()
    (root / "README.md").write_text(INDEX)
    (root / "alpha" / "alpha.md").write_text("# Alpha\n\n| a |\n|---|\n| 1 |\n")
    (root / "alpha" / "README.md").write_text("# Alpha's write-up\n")
    (root / "archive" / "alpha-old.md").write_text("old\n")
    return root


def test_the_committed_pages_are_what_the_script_writes(capsys):
    assert make_docs.main(["--check"]) == 0, capsys.readouterr().err


def test_the_readme_is_a_guide_of_at_most_300_lines():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 300


def test_the_benchmarks_page_copies_each_headline_table(results, tmp_path):
    page = make_docs.benchmarks_page(results, tmp_path / "docs" / "benchmarks.md")
    assert "#### Alpha" in page and "| 1 |" in page  # the table, its heading nested under the study's
    assert "[alpha/README.md](../results/alpha/README.md)" in page
    assert "*Not run yet: no results committed.*" in page.split("## later", 1)[1]


@pytest.mark.parametrize("damage, complaint", [
    (lambda r: (r / "stray.jsonl").write_text("{}\n"), "stray.jsonl: not in any study's folder"),
    (lambda r: (r / "alpha" / "alpha.md").unlink(), "alpha/alpha.md: a headline file that is missing"),
    (lambda r: (r / "archive" / "other.md").write_text("x\n"), "archive/other.md: archived but not"),
    (lambda r: (r / "archive" / "alpha-old.md").unlink(), "archive/alpha-old.md: in the index's archive"),
])
def test_a_results_folder_that_disagrees_with_its_index_stops_it(results, tmp_path, damage, complaint):
    damage(results)
    with pytest.raises(make_docs.Layout, match=complaint):
        make_docs.benchmarks_page(results, tmp_path / "benchmarks.md")


def test_the_readme_table_is_read_from_the_results_files(tmp_path):
    results = tmp_path / "results"
    (results / "quality").mkdir(parents=True)
    (results / "inpaint_quality").mkdir()
    row = {"psnr": 30.0, "seconds": 100.0, "gap": -0.5, "worst_gap": -1.25}
    summary = {f"{m} @ {s}": row for m, _ in make_docs.DENOISERS for s in (15, 25, 50)}
    (results / "quality" / "quality.json").write_text(json.dumps({"summary": summary}))
    fill = {"psnr": 31.0, "seconds": 0.01, "gap_to_best_classical": 0.25, "worst_gap": -0.5}
    methods = {m: fill for m, _ in make_docs.FILLERS}
    inpaint = {"summary": {"methods": methods}}
    (results / "inpaint_quality" / "inpaint_quality.json").write_text(json.dumps(inpaint))
    readme = f"# x\n\n{make_docs.README_BEGIN}\nstale\n{make_docs.README_END}\n\nafter\n"
    out = make_docs.readme_with_results(readme, results)
    assert "stale" not in out and out.endswith(f"{make_docs.README_END}\n\nafter\n")
    assert "| `best` | 30.00 | −0.50 / −1.25 | 100 |" in out
    assert "| `fast` | 31.00 | +0.25 / −0.50 | < 0.1 |" in out
    del summary["best @ 15"]  # a preset not measured at one σ: its row is left out, not invented
    (results / "quality" / "quality.json").write_text(json.dumps({"summary": summary}))
    assert make_docs.readme_with_results(readme, results).count("| `best` |") == 2


def test_the_architecture_page_finds_circles_and_lazy_imports(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text("X = 1\n")
    (package / "a.py").write_text("from pkg import base\nfrom pkg.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import base\n"
        "def f():\n    from .. import a\n    return a\n")
    modules = make_docs.read_package(package)
    assert modules["pkg.a"].eager == {"pkg.base", "pkg.sub.b"}
    assert modules["pkg.sub.b"].lazy == {"pkg.a"} and modules["pkg.sub.b"].typing == {"pkg.base"}
    assert make_docs.circles(modules) == [["pkg.a", "pkg.sub.b"]]
    page = make_docs.architecture_page(package)
    assert "* `a` → `sub.b`" in page and "| 1 | `a` (2), `sub.b` (6) |" in page
