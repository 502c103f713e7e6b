"""dipcli.extras: the extra named for a missing module comes from pyproject, and a script's
optional imports are read from its source."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from dipcli.extras import missing, needs, optional_modules, required_imports

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_a_missing_module_names_the_smallest_extra_that_installs_it():
    assert needs("matplotlib") == "needs matplotlib: pip install 'dipcli[plot]'"
    assert needs("matplotlib", "--plot") == "--plot needs matplotlib: pip install 'dipcli[plot]'"
    assert needs("matplotlib", "x.py", prefer="bench") == "x.py needs matplotlib: pip install 'dipcli[bench]'"
    assert needs("distributed", prefer="bench") == "needs distributed: pip install 'dipcli[cluster]'"
    assert needs("cv2") == "needs opencv-python-headless: pip install 'dipcli[bench]'"


def test_a_module_no_extra_installs_is_refused():
    with pytest.raises(ValueError, match="numpy is not an optional dependency"):
        needs("numpy")
    assert missing({"numpy", "no_such_module_here"}) == ["no_such_module_here"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is Python 3.11's")
def test_the_installed_metadata_holds_pyprojects_extras():
    """A stale install (pyproject edited, `pip install -e` not rerun) would name the wrong extra."""
    import tomllib

    declared = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    found = {(opt.distribution, extra) for opt in optional_modules().values() for extra in opt.extras}
    assert found == {(Requirement(req).name, extra) for extra, reqs in declared.items() for req in reqs}


def test_each_installed_optional_module_is_what_its_distribution_provides():
    """The import names (IMPORT_NAMES where they differ, e.g. cv2) against the installed packages;
    CI installs every extra, so every one is checked there."""
    provides = metadata.packages_distributions()
    installed = {m: opt for m, opt in optional_modules().items() if m in provides}
    assert {"pytest", "ruff"} <= set(installed)
    for module, opt in installed.items():
        assert opt.distribution in provides[module]


def test_required_imports_reads_the_script_and_the_helpers_beside_it(tmp_path):
    (tmp_path / "helper.py").write_text("def run():\n    import bm3d\n")
    (tmp_path / "plain.py").write_text("import numpy\n")
    script = tmp_path / "study.py"
    script.write_text(
        "from typing import TYPE_CHECKING\n"
        "import helper, plain\n"
        "try:\n    import distributed\nexcept (OSError, ModuleNotFoundError):\n    distributed = None\n"
        "if TYPE_CHECKING:\n    import cv2\n"
        "def plot():\n    import matplotlib.pyplot as plt\n")
    assert required_imports(script) == {"bm3d", "matplotlib"}
    script.write_text("try:\n    import matplotlib\nexcept OSError:\n    pass\n")
    assert required_imports(script) == {"matplotlib"}  # a try that lets ImportError through
