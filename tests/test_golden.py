"""The restructured code writes the same bits as before: see tests/golden.py."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import golden  # noqa: E402


def test_fixed_commands_write_the_recorded_files(tmp_path):
    recorded = json.loads(golden.RECORD.read_text())
    if recorded["machine"] != golden.machine():
        pytest.skip(f"hashes were recorded on {recorded['machine']}, this is {golden.machine()}: "
                    "floating-point results differ across CPUs and torch versions")
    hashes = golden.run_all(tmp_path, golden.cli_invoke)
    changed = [name for name in recorded["hashes"] if hashes.get(name) != recorded["hashes"][name]]
    assert not changed, f"these commands now write other bits: {changed}"
    assert set(hashes) == set(recorded["hashes"])
