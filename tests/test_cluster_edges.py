"""Issue 33, items 10–12: `--cluster` addresses that are not a scheduler, and user text in messages.

Each is refused in one `dip: error:` line, before any image is read where the address alone
tells, and within the connect timeout where only a handshake can: a real web server listens
on 127.0.0.1 for that one, in this process, and is shut down after.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import imageio.v3 as iio
import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from dipcli.batch.cluster import have_distributed
from dipcli.cli.app import app
from dipcli.report.progress import err, print_error

needs_dask = pytest.mark.skipif(not have_distributed(), reason="needs pip install 'dipcli[cluster]'")
FAST = ["--iters", "5", "--arch", "compact", "--width", "8", "--precision", "fp32", "--sigma", "25", "-q"]


def invoke(*args, env: dict | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def one_line(res) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dip: error: "), res.output
    assert "Traceback" not in res.output
    return lines[0].removeprefix("dip: error: ")


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "a.png"
    iio.imwrite(path, np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return path


@pytest.fixture
def web_server():
    """A web server (not a Dask scheduler) on a free port of 127.0.0.1, for as long as the test."""
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@needs_dask
def test_10_a_server_that_is_not_a_scheduler_is_refused_within_the_timeout(image, tmp_path, web_server):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    address = f"tcp://127.0.0.1:{web_server}"
    args = ["denoise", str(image), *FAST, "--cluster", address, "-o", str(tmp_path / "out.png")]
    proc = subprocess.run([sys.executable, "-m", "dipcli", *args], capture_output=True, text=True, env=env,
                          timeout=300)  # seconds: the machine may be busy
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"dip: error: --cluster {address}: something listens there but did not answer as a Dask scheduler "
        "within 2 s; give the scheduler's address (tcp://HOST:8786), not a dashboard's or another service's"]
    assert not (tmp_path / "out.png").exists()


@needs_dask
@pytest.mark.parametrize(("address", "says"), [
    ("http://127.0.0.1:8787", "a web address, such as the dashboard's; give the scheduler's, "
                              "tcp://127.0.0.1:8786 by default (its log says \"Scheduler at\")"),
    ("https://sched.example.org:8787/status", "a web address, such as the dashboard's; give the "
                                              "scheduler's, tcp://sched.example.org:8786 by default"),
    ("bogus", "not a Dask scheduler's address (missing port number in address 'bogus'); give "
              "tcp://HOST:8786, a scheduler file (.json) or local[:N]"),
    ("ftp://host:21", "not a Dask scheduler's address (unknown address scheme 'ftp'"),
])
def test_11_an_address_that_cannot_be_a_scheduler_is_refused_before_any_work(image, tmp_path, address, says):
    res = invoke("denoise", image, *FAST, "--cluster", address, "--output-dir", tmp_path / "out")
    assert res.exit_code == 2
    assert one_line(res).startswith(f"--cluster {address}: {says}")
    assert not (tmp_path / "out").exists()


@needs_dask
def test_11_dip_cluster_from_the_environment_says_where_it_came_from(image, tmp_path):
    res = invoke("denoise", image, *FAST, "-o", tmp_path / "out.png", env={"DIP_CLUSTER": "bogus"})
    assert res.exit_code == 2
    assert one_line(res).startswith("--cluster bogus (DIP_CLUSTER): not a Dask scheduler's address")


@needs_dask
@pytest.mark.parametrize("address", ["local:abc", "local:-1", "local:smile"])
def test_12_the_echoed_value_is_shown_as_typed(image, tmp_path, address):
    res = invoke("denoise", image, *FAST, "--cluster", address, "-o", tmp_path / "out.png")
    assert res.exit_code == 2
    assert one_line(res) == f"--cluster {address}: give local (a worker per core) or local:N with N ≥ 1 " \
                            "workers"


def test_12_paths_with_markup_and_emoji_codes_are_shown_as_typed(tmp_path):
    name = str(tmp_path / "[bold]x:smile:[/bold].png")
    res = invoke("denoise", name, *FAST)
    assert res.exit_code == 2
    assert one_line(res) == f"{name}: no image matches this pattern"


def test_12_every_console_shows_user_text_as_typed():
    """print_error whatever console it is given; and the console every message goes through."""
    text = "local:abc: [red]not red[/red] :thumbs_up:"
    console = Console(record=True, width=200, emoji=True)  # Rich's defaults: markup and emoji on
    print_error(text, console)
    assert console.export_text() == f"dip: error: {text}\n"
    with err.capture() as captured:
        err.print(text, markup=False)
    assert captured.get() == f"{text}\n"
