"""Issue 33, items 13 and 14: a full disk costs no image and prints one line, not a traceback.

The disk is a real one: a 200 KB tmpfs, filled, mounted in a user and mount namespace of its
own (``unshare``), so that no root is needed and the mount goes away with the process; where
the kernel allows no such namespace the tests skip. `dip` runs in it as a real process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_paths import FAST, WAIT, noisy, one_error  # noqa: E402

FILL = 'mount -t tmpfs -o size=200k tmpfs "$0" && (dd if=/dev/zero of="$0/fill" bs=4k 2>/dev/null; true)'


# ---- 13, 14: a full disk -------------------------------------------------------------------------

def can_mount_tmpfs(where: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", FILL, str(where)],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.fixture
def full(tmp_path) -> Path:
    folder = tmp_path / "full"
    folder.mkdir()
    if not can_mount_tmpfs(folder):
        pytest.skip("no user namespace with a tmpfs here (unshare --user --mount refused)")
    iio.imwrite(tmp_path / "a.png", noisy())
    return folder


def dip_on_full_disk(full: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`dip ARGS` with ``full`` a full 200 KB tmpfs; and what that tmpfs holds after it."""
    script = f'{FILL} || exit 99; "$@"; code=$?; echo "::" >&2; ls -A "$0" >&2; exit $code'
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, str(full),
                           sys.executable, "-m", "dipcli", *args], cwd=full.parent, capture_output=True,
                          text=True, env=env, timeout=WAIT)
    messages, _, listing = proc.stderr.rpartition("::\n")
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout, messages), listing.split()


@pytest.mark.parametrize(("option", "name", "what"), [("--html", "r.html", "the page"),
                                                      ("--report", "r.csv", "the report")])
def test_13_a_report_on_a_full_disk_costs_no_image(full, option, name, what):
    proc, left = dip_on_full_disk(full, "denoise", "a.png", *FAST, option, f"full/{name}", "-o", "out.png")
    assert proc.returncode == 1
    assert one_error(proc.stderr) == (f"{option} full/{name}: cannot write (No space left on device); the "
                                      f"images are still written, {what} is not")
    assert iio.imread(full.parent / "out.png").shape == (24, 24, 3)  # the fit's image is kept
    assert left == ["fill"]  # nothing half-written: no page, no report, no empty folder of pictures


def test_14_an_image_on_a_full_disk_fails_in_one_line(full):
    proc, left = dip_on_full_disk(full, "denoise", "a.png", *FAST, "--raw", "-o", "full/out.png")
    assert proc.returncode == 1
    assert one_error(proc.stderr) == "full/out.png: cannot write (OSError: [Errno 28] No space left on " \
                                     "device)"
    assert left == ["fill"]
