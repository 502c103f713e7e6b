"""A tiny headless-Chromium driver for tests: the Chrome DevTools Protocol over a pipe, stdlib only.

Why this and not Playwright/Selenium/pyppeteer: those download a browser of their own or need a
websocket package; Debian's ``chromium`` is what CI installs. With ``--remote-debugging-pipe``
Chromium reads protocol messages from file descriptor 3 and writes replies to 4, each a JSON
object ended by a NUL byte, so no port, no websocket and no HTTP handshake are needed.

Every wait is bounded (``timeout``), the browser's stderr goes to a file (a full pipe would block
it), and :meth:`Browser.close` ends the browser and everything it started (its own process group)
and removes its fresh profile folder.

    with Browser.launch() as b:
        page = b.new_page()
        page.goto(Path("report.html").as_uri())
        page.evaluate("document.title")
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # no DNS at all: a test page cannot reach out
)


def find_chromium() -> str | None:
    """The Chromium executable on PATH (Debian names it ``chromium``), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    """The browser died, timed out, or answered a command with an error."""


class Browser:
    """One headless Chromium process and the protocol connection to it."""

    def __init__(self, proc: subprocess.Popen, send_fd: int, recv_fd: int,
                 profile: tempfile.TemporaryDirectory, timeout: float) -> None:
        self.proc = proc
        self.send_fd = send_fd
        self.recv_fd = recv_fd
        self.profile = profile
        self.timeout = timeout
        self.events: list[dict] = []  # events read while waiting for replies, not yet consumed
        self._buffer = b""
        self._next_id = 0

    @classmethod
    def launch(cls, executable: str | None = None, *, timeout: float = 20.0,
               extra_flags: tuple[str, ...] = ()) -> Browser:
        """Start Chromium with a fresh profile; raise BrowserError if it does not answer in time."""
        executable = executable or find_chromium()
        if executable is None:
            raise BrowserError("chromium is not installed")
        profile = tempfile.TemporaryDirectory(prefix="dip-chromium-")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # Chromium wants its pipe ends at exactly fds 3 and 4. bash puts them there and execs the
        # browser (so our child's pid is the browser's; Debian's launcher script execs too). The
        # ends it is handed are first copied to fds >= 10, so that neither can be 3 or 4 and be
        # overwritten by the other's move (dash, Debian's sh, takes single-digit fds only).
        child_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)
        args = [executable, *FLAGS, *extra_flags, f"--user-data-dir={profile.name}",
                "--remote-debugging-pipe", "about:blank"]
        script = f"exec {shlex.join(args)} 3<&{child_r} 4>&{child_w} {child_r}<&- {child_w}>&-"
        log = open(Path(profile.name) / "stderr.log", "wb")  # noqa: SIM115 - closed below
        try:
            proc = subprocess.Popen(
                [shutil.which("bash") or "bash", "-c", script], pass_fds=(child_r, child_w),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
            os.close(child_r)
            os.close(child_w)
        browser = cls(proc, to_browser_w, from_browser_r, profile, timeout)
        try:
            browser.call("Browser.getVersion")
        except BaseException:
            browser.close()
            raise
        return browser

    # ---- protocol ----------------------------------------------------------------------------------

    def call(self, method: str, params: dict | None = None, *, session: str | None = None,
             timeout: float | None = None) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.send_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read(deadline, f"the reply to {method}")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str, *, session: str | None = None, timeout: float | None = None) -> dict:
        """Take the first event called ``method`` (for ``session``), waiting for it if need be."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, event in enumerate(self.events):
                if event["method"] == method and (session is None or event.get("sessionId") == session):
                    return self.events.pop(i)
            message = self._read(deadline, f"the event {method}")
            if "method" in message:
                self.events.append(message)

    def _read(self, deadline: float, what: str) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"timed out waiting for {what}")
            ready, _, _ = select.select([self.recv_fd], [], [], left)
            if ready:
                chunk = os.read(self.recv_fd, 1 << 20)
                if not chunk:
                    raise BrowserError(f"chromium exited while waiting for {what}: {self.stderr_tail()}")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def stderr_tail(self, chars: int = 1500) -> str:
        try:
            return (Path(self.profile.name) / "stderr.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # ---- pages -------------------------------------------------------------------------------------

    def new_page(self, width: int = 1280, height: int = 900) -> Page:
        """A new tab, attached, with the Page, Runtime and Network domains on (requests recorded)."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        for domain in ("Page", "Runtime", "Network"):
            page.call(f"{domain}.enable")
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return page

    def close(self) -> None:
        """End the browser (politely, then by force) and remove its profile; safe to call twice."""
        if self.proc.returncode is None:  # not reaped yet, so its pid still names its process group
            if self.send_fd >= 0:
                try:
                    self.call("Browser.close", timeout=3)
                except (BrowserError, OSError):
                    pass
            try:  # whatever is left of it (renderer, zygote, a hung browser) goes too
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for fd in (self.send_fd, self.recv_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.send_fd = self.recv_fd = -1
        self.profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    """One tab. ``requests`` lists every URL the page asked for since :meth:`goto`."""

    def __init__(self, browser: Browser, target: str, session: str) -> None:
        self.browser = browser
        self.target = target
        self.session = session
        self.requests: list[str] = []

    def call(self, method: str, params: dict | None = None, timeout: float | None = None) -> dict:
        result = self.browser.call(method, params, session=self.session, timeout=timeout)
        self._collect_requests()
        return result

    def _collect_requests(self) -> None:
        keep = []
        for event in self.browser.events:
            if event.get("sessionId") == self.session and event["method"] == "Network.requestWillBeSent":
                self.requests.append(event["params"]["request"]["url"])
            else:
                keep.append(event)
        self.browser.events[:] = keep

    def goto(self, url: str, timeout: float | None = None) -> None:
        """Open ``url`` and wait for its load event (all images and scripts in it)."""
        self.requests.clear()
        self.browser.events[:] = [e for e in self.browser.events if not (
            e.get("sessionId") == self.session and e["method"] == "Page.loadEventFired")]
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        self.browser.wait_event("Page.loadEventFired", session=self.session, timeout=timeout)
        self._collect_requests()

    def evaluate(self, expression: str, timeout: float | None = None) -> Any:
        """The value of a JavaScript expression (promises awaited), as JSON-able Python data."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"script failed: {text}")
        return result["result"].get("value")

    def screenshot(self, path: Path, *, full_page: bool = True, max_height: int = 8000) -> None:
        """Save a PNG of the page (the whole page when ``full_page``, up to ``max_height`` px)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            width = self.evaluate("document.documentElement.clientWidth")
            height = self.evaluate("document.documentElement.scrollHeight")
            clip = {"x": 0, "y": 0, "width": width, "height": min(height, max_height), "scale": 1}
            params.update(captureBeyondViewport=True, clip=clip)
        data = self.call("Page.captureScreenshot", params)["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.browser.call("Target.closeTarget", {"targetId": self.target})
