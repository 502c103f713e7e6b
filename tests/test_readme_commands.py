""".ci/readme_commands.py: CI runs the README's quick start as written, so it must find exactly
its two commands, and refuse loudly when the block changes shape."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "readme_commands.py"
SETUP = 'python3 -m venv .venv && .venv/bin/pip install -e ".[test]"'
TESTS = ".venv/bin/python -m pytest -q"


def extract(readme: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(readme)], capture_output=True, text=True,
                          timeout=30)


def test_the_readme_holds_the_setup_then_the_test_command():
    done = extract(ROOT / "README.md")
    assert done.returncode == 0, done.stderr
    setup, tests = done.stdout.splitlines()
    assert setup.startswith("python3 -m venv .venv") and 'pip install -e ".[test]"' in setup
    assert tests == TESTS


@pytest.mark.parametrize("block, complaint", [
    (f"{SETUP}\n{TESTS}\n{TESTS} -x\n", "3 lines, not two commands"),
    (f"{SETUP} \\\n{TESTS}\n", "not a whole command"),  # the first runs on into the second
    (f"{SETUP}\n.venv/bin/python -m pytest\n", "not '.venv/bin/python -m pytest -q'"),
    (f"pip install dipcli\n{TESTS}\n", "does not start with 'python3 -m venv .venv'"),
])
def test_a_quick_start_of_another_shape_fails_in_one_line(tmp_path, block, complaint):
    readme = tmp_path / "README.md"
    readme.write_text(f"# dip\n\n## Quick start\n\nText.\n\n```bash\n{block}```\n\n## Commands\n")
    done = extract(readme)
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and complaint in done.stderr


def test_a_readme_without_the_block_under_its_heading_fails(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# dip\n\n## Quick start\n\nSee below.\n\n## Commands\n\n"
                      f"```bash\n{SETUP}\n{TESTS}\n```\n")
    done = extract(readme)
    assert done.returncode == 1 and "no ```bash block under '## Quick start'" in done.stderr
