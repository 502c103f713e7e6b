"""The --html batch report: opened in real headless Chromium (no mocks), and checked as text.

The browser tests drive Debian's ``chromium`` through tests/browser.py and skip only when it is
not installed. They check what a person relies on: every picture decodes, one summary row per
input, a failed input shows its error, the slider and zoom really move the layers, a page
written mid-batch is already valid, and nothing is fetched from the network.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from browser import Browser, Page, find_chromium  # noqa: E402

from dipcli.report.html import Entry, HtmlReport, curves_svg, removed_part  # noqa: E402

COMMAND = "dip denoise 'a/*.png' 'b/*.png' --sigma 25 --html report.html"
ERROR = "b/broken.png: cannot read <b>not</b> an image & no fallback"


def smooth(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.5 + 0.4 * np.sin(3 * xx + k + seed) * np.cos(2 * yy - k) for k in range(c)], axis=2)
    return img.astype(np.float32)


def history(n: int = 12, stage: bool = False) -> list[dict]:
    return [{"iteration": 25 * i, "loss": 0.05 * 0.7 ** i + 0.004,
             "psnr_raw": None if i == 0 else 20 + 8 * (1 - 0.8 ** i),
             "psnr_ema": None if i == 0 else 20 + 8.5 * (1 - 0.82 ** i)} for i in range(n)]


def denoise_entry() -> Entry:
    """An ok two-stage denoise of a 40×32 RGB input, with a reference and curves."""
    rng = np.random.default_rng(0)
    clean = smooth(32, 40, 3)
    noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)
    output = (0.9 * clean + 0.05).astype(np.float32)
    record = {"input": "a/photo.png", "output": "a/photo_denoised.png", "status": "ok", "task": "two-stage",
              "sigma": 25.0, "arch": "lean", "width": 48, "width_auto": True, "scales": 5,
              "upsample": "bilinear", "params": 12345, "iterations": 275, "best_iteration": 200,
              "stop_rule": "auto", "stop_reason": "wmv", "seconds": 3.25, "psnr": 27.41, "ssim": 0.8123,
              "device": "cpu", "precision": "fp32", "seed": 0, "stage1_end": 100}
    return Entry(record, observed=noisy, output=output, reference=clean, history=history(12))


def inpaint_entry() -> Entry:
    """An ok inpaint of a 24×24 grey input with alpha; same stem as the denoise one, other folder."""
    clean = smooth(24, 24, 1, seed=1)
    known = np.random.default_rng(1).random((24, 24)) > 0.3
    alpha = np.ones((24, 24), np.float32)
    alpha[:, :4] = 0.2
    record = {"input": "b/photo.png", "output": "b/photo_inpainted.png", "status": "ok", "task": "inpaint",
              "arch": "original", "width": 32, "iterations": 150, "best_iteration": 150,
              "stop_reason": "budget", "seconds": 1.5, "missing_fraction": float(1 - known.mean())}
    return Entry(record, observed=clean * known[:, :, None], output=clean, mask=known, alpha=alpha,
                 history=history(7))


def failed_entry() -> Entry:
    return Entry({"input": "b/broken.png", "status": "failed", "error": ERROR}, observed=None, output=None)


def batch(path: Path, *, embed: bool = False) -> HtmlReport:
    report = HtmlReport(path, command=COMMAND, title="test batch", embed=embed)
    for entry in (denoise_entry(), inpaint_entry(), failed_entry()):
        report.add(entry)
    return report


# ---- in the browser -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:
        pytest.skip("needs chromium, a system package for the report's browser tests: "
                    "apt-get install chromium")
    b = Browser.launch(timeout=20)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def page(browser: Browser):
    p = browser.new_page()
    try:
        yield p
    finally:
        p.close()


IMAGES = """(async () => {
  const imgs = Array.from(document.images);
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  return imgs.map(i => ({src: i.src.slice(0, 90), w: i.naturalWidth, h: i.naturalHeight}));
})()"""

ROWS = """Array.from(document.querySelectorAll('#summary tbody tr')).map(r =>
  Array.from(r.cells).map(c => c.textContent.trim()))"""


def open_page(page: Page, path: Path) -> list[dict]:
    page.goto(path.resolve().as_uri())
    images = page.evaluate(IMAGES)
    undecoded = [i["src"] for i in images if i["w"] <= 0]
    assert not undecoded, f"images that did not decode: {undecoded}"
    return images


def test_batch_page_in_browser(tmp_path: Path, page: Page) -> None:
    report = batch(tmp_path / "report.html")
    images = open_page(page, report.path)
    # denoise: 4 thumbnails + 2 slider layers; inpaint: 3 + 2; the failed input has none
    assert len(images) == 11

    rows = page.evaluate(ROWS)
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert [r[2] for r in rows] == ["ok", "ok", "failed"]
    assert rows[0][4] == "40×32" and rows[0][6] == "275 / 200" and rows[0][9] == "27.41"
    assert ERROR in rows[2][7]  # the error, shown literally: its "<b>" is text, not markup
    assert page.evaluate("document.querySelectorAll('#summary b').length") == 0

    # the slider: moving it re-clips the top layer and moves the divider
    slide = """(v => {
      const c = document.querySelector('.cmp'), top = c.querySelector('.layer.top');
      const before = getComputedStyle(top).clipPath, r = c.querySelector('input.reveal');
      r.value = v; r.dispatchEvent(new Event('input', {bubbles: true}));
      return {before, after: getComputedStyle(top).clipPath,
              divider: c.querySelector('.divider').style.left,
              left: c.querySelector('.img-left').getAttribute('data-kind'),
              right: c.querySelector('.img-right').getAttribute('data-kind')};
    })(20)"""
    moved = page.evaluate(slide)
    assert moved["before"] != moved["after"]
    assert "80%" in moved["after"] and moved["divider"] == "20%"
    assert (moved["left"], moved["right"]) == ("observed", "output")

    # zoom: both layers scale together, pixel for pixel (40 px wide → 320 CSS px at 8×)
    zoom = """(() => {
      const c = document.querySelector('.cmp');
      c.querySelector("button[data-zoom='8']").click();
      const w = s => c.querySelector(s).getBoundingClientRect().width;
      return [w('.img-left'), w('.img-right'), getComputedStyle(c.querySelector('.img-left')).imageRendering];
    })()"""
    assert page.evaluate(zoom) == [320, 320, "pixelated"]

    # picking another layer shows that picture (the reference) on the left
    pick = """(() => {
      const c = document.querySelector('.cmp'), s = c.querySelector('.pick-left');
      s.value = 'reference'; s.dispatchEvent(new Event('change'));
      return c.querySelector('.img-left').src === document.getElementById('e1-reference').src;
    })()"""
    assert page.evaluate(pick) is True

    # sorting: a second click on "#" sorts descending
    sort = """(() => {
      const th = document.querySelector('#summary th'); th.click(); th.click();
      return Array.from(document.querySelectorAll('#summary tbody tr')).map(r => r.cells[0].textContent);
    })()"""
    assert page.evaluate(sort) == ["3", "2", "1"]

    # the curves: one chart per input with a history, the kept and last iterations marked
    assert page.evaluate("document.querySelectorAll('svg.chart').length") == 2
    assert page.evaluate("document.querySelectorAll('svg.chart .mark.kept').length") == 2
    assert page.evaluate("document.querySelectorAll('svg.chart .stage1').length") == 1


def test_page_written_mid_batch_is_valid(tmp_path: Path, page: Page) -> None:
    report = HtmlReport(tmp_path / "out" / "mid.html", command=COMMAND)
    report.add(denoise_entry())  # the batch is still running: one input so far
    images = open_page(page, report.path)
    assert len(images) == 6 and all(i["src"].startswith("file://") for i in images)
    assert len(page.evaluate(ROWS)) == 1
    assert page.evaluate("document.querySelectorAll('section.entry').length") == 1

    report.add(failed_entry())  # and the rewritten page shows both
    open_page(page, report.path)
    assert [r[2] for r in page.evaluate(ROWS)] == ["ok", "failed"]


# every URL the document refers to, resolved; plus what the recorder saw
REFERENCES = """Array.from(document.querySelectorAll('[src],[href]')).map(e => e.src || e.href)"""


@pytest.mark.parametrize("embed", [False, True], ids=["files", "embedded"])
def test_page_loads_nothing_from_the_network(tmp_path: Path, page: Page, embed: bool) -> None:
    report = batch(tmp_path / "report.html", embed=embed)
    images = open_page(page, report.path)
    local = ("file://", "data:")
    assert page.requests, "the request recorder saw nothing; it is not recording"
    assert [u for u in page.requests if not u.startswith(local)] == []
    assert [u for u in page.evaluate(REFERENCES) if not u.startswith(local)] == []
    if embed:
        assert all(i["src"].startswith("data:image/png;base64,") for i in images)
        assert not (tmp_path / "report_files").exists()


def test_request_recorder_catches_remote_urls(tmp_path: Path, page: Page) -> None:
    """The control for the test above: a page that does reach out is caught (DNS is off, so
    nothing leaves the machine)."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><link rel='stylesheet' href='https://cdn.example.invalid/x.css'>"
                   "<img src='http://example.invalid/x.png'>")
    page.goto(bad.resolve().as_uri())
    remote = [u for u in page.requests if not u.startswith(("file://", "data:"))]
    assert "http://example.invalid/x.png" in remote


# ---- without a browser --------------------------------------------------------------------------

def test_page_text_is_escaped_and_files_are_beside_it(tmp_path: Path) -> None:
    report = HtmlReport(tmp_path / "r.html", command="dip denoise '<script>x</script>.png' && echo \"hi\"",
                        title="<i>title</i>")
    nasty = denoise_entry()
    nasty.record.update(input="<script>alert(1)</script>.png", arch="\"'><img src=x onerror=alert(2)>")
    report.add(nasty)
    failed = {"input": "q\"'><svg onload=alert(3)>.png", "status": "failed", "error": "<script>no</script>"}
    report.add(Entry(failed, observed=None, output=None))
    report.add(inpaint_entry())
    text = report.path.read_text(encoding="utf-8")

    assert text.count("<script") == 1  # the page's own script, nothing injected
    for markup in ("<script>alert(1)", "<img src=x", "<svg onload", "<i>title</i>", "<script>no"):
        assert markup not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in text
    assert "&lt;i&gt;title&lt;/i&gt;" in text

    files = sorted(p.name for p in (tmp_path / "r_files").iterdir())
    # denoise: observed, output, reference, removed; inpaint: observed, output, mask
    assert len(files) == 4 + 3
    assert all(f.startswith(("001-", "003-")) and f.endswith(".png") for f in files)
    assert "003-photo-mask.png" in files and "001-script-removed.png" in files
    assert not list(tmp_path.glob(".*.tmp")) and not list((tmp_path / "r_files").glob(".*"))
    rgb = iio.imread(tmp_path / "r_files" / "001-script-output.png")
    assert rgb.shape == (32, 40, 3) and rgb.dtype == np.uint8
    grey_alpha = iio.imread(tmp_path / "r_files" / "003-photo-observed.png")
    assert grey_alpha.shape == (24, 24, 2)  # grey + the input's alpha
    assert "src='r_files/001-script-output.png'" in text


def test_same_stem_in_two_folders_does_not_collide(tmp_path: Path) -> None:
    report = HtmlReport(tmp_path / "report.html", command=COMMAND)
    a, b = denoise_entry(), denoise_entry()
    b.record["input"] = "b/photo.png"
    b.output = np.zeros_like(b.output)
    report.add(a)
    report.add(b)
    one = iio.imread(tmp_path / "report_files" / "001-photo-output.png")
    two = iio.imread(tmp_path / "report_files" / "002-photo-output.png")
    assert one.max() > 0 and two.max() == 0


def test_empty_report_is_a_valid_page(tmp_path: Path) -> None:
    report = HtmlReport(tmp_path / "deep" / "empty.html", command=COMMAND)
    report.write()
    text = report.path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "No input has finished yet" in text
    assert not (tmp_path / "deep" / "empty_files").exists()


def test_removed_part_scales_noise_to_a_fixed_spread() -> None:
    rng = np.random.default_rng(0)
    output = smooth(64, 64, 3)
    for sigma in (5 / 255, 50 / 255):  # the picture looks the same whatever the noise level
        observed = output + rng.normal(0, sigma, output.shape).astype(np.float32)
        picture, k = removed_part(observed, output)
        assert k == pytest.approx(0.5 / (3 * sigma), rel=0.05)
        assert picture.mean() == pytest.approx(0.5, abs=0.01)
        assert picture.std() == pytest.approx(0.5 / 3, rel=0.06)
    flat, _ = removed_part(output, output)
    assert np.all(flat == 0.5)


def test_curves_svg_is_well_formed_and_marks_the_stops() -> None:
    svg = curves_svg(history(12), kept=200, last=275, stage1_end=100)
    root = ET.fromstring(svg[: svg.index("</svg>") + len("</svg>")])
    classes = [e.get("class") for e in root.iter()]
    assert {"mark kept", "mark last", "stage1", "loss", "psnr raw", "psnr ema"} <= set(classes)
    assert "kept 200" in svg and "last 275" in svg
    assert curves_svg([]) == ""
    # no PSNR (no reference) and a loss that reaches 0: still a chart, loss only
    plain = curves_svg([{"iteration": i, "loss": 0.0 if i == 3 else 0.1 / (i + 1)} for i in range(5)], kept=4)
    assert "class='loss'" in plain and "psnr" not in plain


def test_superres_with_alpha(tmp_path: Path) -> None:
    """A low-res input is shown at the output's size; the input's alpha follows it there."""
    small, big = smooth(12, 16, 3), smooth(48, 64, 3)
    alpha = np.ones((12, 16), np.float32)
    alpha[:6] = 0.0
    record = {"input": "lr.png", "status": "ok", "task": "superres", "factor": 4, "iterations": 10,
              "best_iteration": 10}
    report = HtmlReport(tmp_path / "sr.html", command="dip superres lr.png --factor 4")
    report.add(Entry(record, observed=small, output=big, alpha=alpha))
    text = report.path.read_text(encoding="utf-8")
    assert "16×12 → 64×48" in text and "--w:64;--h:48" in text
    out = iio.imread(tmp_path / "sr_files" / "001-lr-output.png")
    assert out.shape == (48, 64, 4) and out[:24, :, 3].max() == 0 and out[24:, :, 3].min() == 255
    assert not (tmp_path / "sr_files" / "001-lr-removed.png").exists()  # denoising only


# ---- end to end: `dip ... --html` -----------------------------------------------------------------

def make_batch_folder(tmp_path: Path) -> tuple[Path, Path]:
    """Three inputs: two with clean references in clean/, and one that cannot be read."""
    folder, clean_dir = tmp_path / "in", tmp_path / "clean"
    folder.mkdir()
    clean_dir.mkdir()
    rng = np.random.default_rng(3)
    for name, shape in (("a.png", (32, 40, 3)), ("b.png", (24, 24, 1))):
        clean = smooth(shape[0], shape[1], shape[2], seed=len(name))
        noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1)
        pixels = noisy[..., 0] if shape[2] == 1 else noisy
        iio.imwrite(folder / name, (pixels * 255).round().astype(np.uint8))
        pixels = clean[..., 0] if shape[2] == 1 else clean
        iio.imwrite(clean_dir / name, (pixels * 255).round().astype(np.uint8))
    (folder / "c.png").write_bytes(b"not a png")
    return folder, clean_dir


def run_dip(*args: object):
    from typer.testing import CliRunner

    from dipcli.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


FAST_FIT = ("--sigma", "25", "--iters", "20", "--arch", "compact", "--width", "8", "-q")


def test_cli_html_report_of_a_real_batch_in_browser(tmp_path: Path, page: Page) -> None:
    folder, clean_dir = make_batch_folder(tmp_path)
    res = run_dip("denoise", folder, *FAST_FIT, "--clean-dir", clean_dir, "--html", tmp_path / "r.html")
    assert res.exit_code == 1, res.output  # c.png failed, the batch went on
    images = open_page(page, tmp_path / "r.html")
    assert images  # every one decoded (open_page checks natural width > 0)
    rows = page.evaluate(ROWS)
    assert sorted(r[2] for r in rows) == ["failed", "ok", "ok"] and len(rows) == 3
    failed = next(r for r in rows if r[2] == "failed")
    assert "cannot read" in failed[7]
    ok_a = next(r for r in rows if "a.png" in r[1])
    assert ok_a[9] not in ("", "—")  # a.png had a reference: its PSNR is in the table
    moved = page.evaluate("""(() => {
      const c = document.querySelector('.cmp'), top = c.querySelector('.layer.top');
      const before = getComputedStyle(top).clipPath, r = c.querySelector('input.reveal');
      r.value = 10; r.dispatchEvent(new Event('input', {bubbles: true}));
      return [before, getComputedStyle(top).clipPath];
    })()""")
    assert moved[0] != moved[1]
    assert all(u.startswith(("file:", "data:")) for u in page.requests)


def test_cli_html_page_written_mid_batch_opens(tmp_path: Path, page: Page, monkeypatch) -> None:
    """Ctrl-C during the second input: the page holds the first result and the interrupted one."""
    from dipcli.engine import run as job

    folder, _ = make_batch_folder(tmp_path)
    (folder / "c.png").unlink()
    real_fit, calls = job.fit_group, []

    class CtrlC:
        def on_event(self, e):
            raise KeyboardInterrupt

    def second_interrupted(members, *args, **kw):
        calls.append(1)
        if len(calls) == 2:
            for m in members:
                m.subscribers = [*m.subscribers, CtrlC()]
        return real_fit(members, *args, **kw)

    monkeypatch.setattr(job, "fit_group", second_interrupted)
    res = run_dip("denoise", folder, *FAST_FIT, "--html", tmp_path / "r.html")
    assert res.exit_code == 130
    open_page(page, tmp_path / "r.html")
    assert [r[2] for r in page.evaluate(ROWS)] == ["ok", "interrupted"]
