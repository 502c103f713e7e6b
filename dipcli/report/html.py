"""An HTML page to look at a batch's results (``--html FILE``), rewritten after every input.

Numbers in a terminal or a CSV say *how much* a fit improved an image; whether it removed noise
or detail, and where, has to be seen. The page shows, per input, a before/after slider that stays
pixel-aligned at any zoom, the part the fit removed, the loss/PSNR curves, and the settings and
command line needed to reproduce it, above a sortable summary of the whole batch.

Design choices, and why:

* **One self-contained file that works offline.** Inline CSS, a small inline vanilla script and
  inline SVG curves; no CDN, font, server or matplotlib. A report is opened from a results
  folder, often on a machine without network, long after the run.
* **Rewritten atomically after every input** (temp file beside it, then ``os.replace``), images
  first: a batch stopped by Ctrl-C, a crash or a time limit always leaves a valid page showing
  everything finished so far, and a browser refreshing mid-run never sees half a file.
* **Each input is rendered once**, when it is added: its images are encoded and its HTML section
  is cached, so rewriting the page costs only joining strings, not re-encoding every image.
* **Images are 8-bit PNGs** in ``<page stem>_files/`` (or base64 ``data:`` URIs with
  ``embed=True``): display only, the real outputs are the tool's own files. Names start with the
  input's position in the report, so two inputs with the same stem never collide.
* **Everything from records and paths is escaped**: a file name is user data, not markup.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import imageio.v3 as iio
import numpy as np

from dipcli.io import atomic_write

DENOISING = ("denoise", "two-stage")  # tasks whose removed part (observed − output) means something
ZOOMS = (1, 2, 4, 8)
THUMB_PX = 176  # display width of a thumbnail: three fit beside a 512 px slider


@dataclass
class Entry:
    """One finished (or failed, skipped, interrupted) input, as the report shows it.

    Every array is optional: a failed input may have nothing but its record.
    """

    record: dict  # the input's JSON record; only "input" and "status" are required
    observed: np.ndarray | None  # what the fit saw: float (H, W, C) in [0, 1], C = 1 or 3
    output: np.ndarray | None  # the restored image: float (H', W', C) in [0, 1]
    reference: np.ndarray | None = None  # clean reference, same size as output
    mask: np.ndarray | None = None  # inpainting: (H, W) bool, True = known
    alpha: np.ndarray | None = None  # the input's alpha (H, W) in [0, 1], for display
    history: Sequence[dict] = ()  # per-check points: iteration, loss, psnr_raw, psnr_ema


class HtmlReport:
    """The batch's HTML page: ``add`` each input as it finishes; the page is rewritten each time.

    ``command`` is the command line as the user typed it (shown so a result can be reproduced);
    ``embed`` puts the images inside the page as ``data:`` URIs (one file to mail around, but
    large for big images) instead of beside it in ``<page stem>_files/``.
    """

    def __init__(self, path: Path, *, command: str, title: str = "dip report", embed: bool = False) -> None:
        self.path = Path(path)
        self.command = command
        self.title = title
        self.embed = embed
        self.files_dir = self.path.with_name(self.path.stem + "_files")
        self._rows: list[str] = []
        self._sections: list[str] = []
        self._statuses: list[str] = []

    def add(self, entry: Entry) -> None:
        """Render one input (writing its image files first), then rewrite the page."""
        index = len(self._sections) + 1
        try:
            pictures = self._write_pictures(index, entry)
        except OSError:  # a full disk: no empty folder of pictures stays behind
            with suppress(OSError):
                self.files_dir.rmdir()  # only if it is empty
            raise
        self._rows.append(_summary_row(index, entry))
        self._sections.append(_section(index, entry, pictures))
        self._statuses.append(str(entry.record.get("status", "")))
        self.write()

    def write(self) -> None:
        """Write the page as it stands (valid with no input yet), atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path, self._page().encode("utf-8"))

    def _write_pictures(self, index: int, entry: Entry) -> dict[str, _Picture]:
        """Encode an input's pictures as PNG and write them (or keep them as data URIs)."""
        pictures: dict[str, _Picture] = {}
        slug = _slug(entry.record.get("input", "input"))
        for kind, (label, pixels, alpha) in _pictures(entry).items():
            png = _png_bytes(pixels, alpha)
            if self.embed:
                url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            else:
                name = f"{index:03d}-{slug}-{kind}.png"
                self.files_dir.mkdir(parents=True, exist_ok=True)
                _atomic_write(self.files_dir / name, png)
                url = quote(f"{self.files_dir.name}/{name}")
            pictures[kind] = _Picture(label, url, pixels.shape[1], pixels.shape[0], alpha is not None,
                                      linked=not self.embed)
        return pictures

    def _page(self) -> str:
        counts: dict[str, int] = {}
        for status in self._statuses:
            counts[status] = counts.get(status, 0) + 1
        n = len(self._sections)
        meta = " · ".join([f"{n} input{'' if n == 1 else 's'}", *(f"{c} {_e(s)}" for s, c in counts.items()),
                           f"updated {time.strftime('%Y-%m-%d %H:%M:%S')}"])
        if self._rows:
            head = "".join(f"<th scope='col' tabindex='0' aria-sort='none'>{_e(c)}</th>"
                           for c in SUMMARY_COLUMNS)
            summary = (f"<table class='summary' id='summary'><thead><tr>{head}</tr></thead>"
                       f"<tbody>{''.join(self._rows)}</tbody></table>")
        else:
            summary = "<p class='empty'>No input has finished yet; this page is rewritten as each does.</p>"
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="dipcli">
<title>{_e(self.title)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>{_e(self.title)}</h1>
<p class="meta">{meta}</p>
<p class="label">command line</p>
<pre class="cmd"><code>{_e(self.command)}</code></pre>
</header>
<main>
<section class="card"><h2>Summary</h2>
<p class="hint">Click a column header to sort; click an input to jump to it.</p>
<div class="scroll">{summary}</div></section>
{''.join(self._sections)}
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""


# ---- pictures -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Picture:
    label: str
    url: str  # relative URL of the PNG, or a data: URI
    width: int
    height: int
    has_alpha: bool
    linked: bool  # a click opens the file full size (not for data: URIs)


def _pictures(entry: Entry) -> dict[str, tuple[str, np.ndarray, np.ndarray | None]]:
    """The pictures an input has: kind → (label, float (H, W, C) pixels, display alpha or None)."""
    out: dict[str, tuple[str, np.ndarray, np.ndarray | None]] = {}
    task = entry.record.get("task")
    observed, output, reference = (_as_image(a) for a in (entry.observed, entry.output, entry.reference))
    alpha = None if entry.alpha is None else np.asarray(entry.alpha, dtype=np.float32)
    if observed is not None:
        label = {"inpaint": "input (masked)", "superres": "input (low-res)"}.get(str(task), "input")
        out["observed"] = (label, observed, _fit_alpha(alpha, observed))
    if output is not None:
        out["output"] = ("output", output, _fit_alpha(alpha, output))
    if reference is not None:
        out["reference"] = ("reference (clean)", reference, _fit_alpha(alpha, reference))
    if task in DENOISING and observed is not None and output is not None and observed.shape == output.shape:
        out["removed"] = ("removed part", removed_part(observed, output)[0], None)
    if entry.mask is not None:
        known = np.asarray(entry.mask, dtype=bool)
        out["mask"] = ("mask (white = known)", known[:, :, None].astype(np.float32), None)
    return out


def _as_image(pixels: np.ndarray | None) -> np.ndarray | None:
    """(H, W, 1 or 3) float32; a stray alpha channel is dropped (alpha comes separately)."""
    if pixels is None:
        return None
    a = np.asarray(pixels, dtype=np.float32)
    if a.ndim == 2:
        return a[:, :, None]
    return a[:, :, :1] if a.shape[2] == 2 else a[:, :, :3]


def _fit_alpha(alpha: np.ndarray | None, image: np.ndarray) -> np.ndarray | None:
    """The input's alpha at an image's size: as is, or nearest-neighbour scaled (super-resolution)."""
    if alpha is not None and alpha.ndim == 3 and alpha.shape[2] == 1:
        alpha = alpha[:, :, 0]
    if alpha is None or alpha.ndim != 2:
        return None
    h, w = image.shape[:2]
    if alpha.shape == (h, w):
        return alpha
    rows = np.arange(h) * alpha.shape[0] // h
    cols = np.arange(w) * alpha.shape[1] // w
    return alpha[rows][:, cols]


def removed_part(observed: np.ndarray, output: np.ndarray) -> tuple[np.ndarray, float]:
    """observed − output as a picture, 0.5 + k·difference clipped to [0, 1], and the k used.

    k = 0.5 / (3σ), σ the difference's robust spread (1.4826 × its median absolute deviation,
    which edges barely move): ±3σ fills the grey range, so noise shows as even grain at any σ,
    and whatever structure stands out of it is image detail that the fit removed.
    """
    d = np.nan_to_num(np.asarray(observed, dtype=np.float64) - np.asarray(output, dtype=np.float64))
    sigma = 1.4826 * float(np.median(np.abs(d - np.median(d))))
    if sigma < 1e-6:  # nothing removed from most pixels: scale by the largest difference instead
        sigma = max(float(np.abs(d).max()) / 3, 1e-6)
    k = 0.5 / (3 * sigma)
    return np.clip(0.5 + k * d, 0, 1).astype(np.float32), k


def _png_bytes(pixels: np.ndarray, alpha: np.ndarray | None) -> bytes:
    """8-bit PNG bytes for display: grey or RGB, with the input's alpha when it has one."""
    u8 = (np.clip(np.nan_to_num(np.asarray(pixels, dtype=np.float32)), 0, 1) * 255 + 0.5).astype(np.uint8)
    if alpha is not None:
        a8 = (np.clip(np.nan_to_num(alpha), 0, 1) * 255 + 0.5).astype(np.uint8)
        u8 = np.concatenate([u8, a8[:, :, None]], axis=2)
    elif u8.shape[2] == 1:
        u8 = u8[:, :, 0]
    return iio.imwrite("<bytes>", u8, extension=".png")


def _slug(path: object) -> str:
    """A file-name-safe form of an input's stem (the index prefix keeps names unique)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(path)).stem).strip("._")[:60] or "input"


def _atomic_write(path: Path, data: bytes) -> None:
    """All of the file or none of it (:func:`dipcli.io.atomic_write`), even if the batch is killed."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)


# ---- summary table ------------------------------------------------------------------------------

SUMMARY_COLUMNS = ("#", "input", "status", "task", "size", "σ", "iterations (run / kept)",
                   "stopped by / error", "seconds", "PSNR (dB)", "SSIM")


def _summary_row(index: int, entry: Entry) -> str:
    """One row; each cell carries the value it sorts by (numbers as numbers) in data-v."""
    r = entry.record
    status = str(r.get("status", ""))
    size, pixels = _size_text(entry)
    iters, kept = r.get("iterations"), r.get("best_iteration")
    iter_text = "" if iters is None else f"{iters}" + ("" if kept is None else f" / {kept}")
    if status == "failed":
        why = _one_line(r.get("error", "failed"))
        note = f"<span class='err'>{_e(why)}</span>"
    else:
        why = _one_line(r.get("stop_reason") or r.get("reason") or r.get("error") or "")
        note = _e(why)
    name = _name(r)
    cells = [
        (str(index), index),
        (f"<a href='#entry-{index}' title='{_e(r.get('input', ''))}'>{_e(name)}</a>", name.lower()),
        (f"<span class='badge {_status_class(status)}'>{_e(status)}</span>", status),
        (_e(r.get("task", "")), r.get("task", "")),
        (_e(size), pixels),
        (_e(_num(r.get("sigma"), "g")), r.get("sigma")),
        (_e(iter_text), iters),
        (note, why),
        (_e(_num(r.get("seconds"), ".1f")), r.get("seconds")),
        (_e(_num(r.get("psnr"), ".2f")), r.get("psnr")),
        (_e(_num(r.get("ssim"), ".4f")), r.get("ssim")),
    ]
    tds = "".join(f"<td data-v='{_e(_sort_key(key))}'>{text}</td>" for text, key in cells)
    return f"<tr class='{_status_class(status)}'>{tds}</tr>"


def _size_text(entry: Entry) -> tuple[str, int | None]:
    """'W×H' of the output (the input's, when there is no output); 'w×h → W×H' when they differ."""
    sizes = [(int(np.shape(a)[1]), int(np.shape(a)[0]))
             for a in (entry.observed, entry.output) if a is not None]
    if not sizes:
        return "", None
    (w0, h0), (w, h) = sizes[0], sizes[-1]
    text = f"{w}×{h}" if (w0, h0) == (w, h) else f"{w0}×{h0} → {w}×{h}"
    return text, w * h


def _sort_key(value: object) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return str(value)


# ---- one input's section ------------------------------------------------------------------------

def _section(index: int, entry: Entry, pictures: dict[str, _Picture]) -> str:
    """An input's card: slider | pictures side by side, curves | settings, then the full record."""
    r = entry.record
    status = str(r.get("status", ""))
    paths = _e(r.get("input", "")) + (f" → {_e(r['output'])}" if r.get("output") else "")
    parts = [f"<section class='card entry' id='entry-{index}'>",
             f"<h2><span class='idx'>{index}</span> {_e(_name(r))} "
             f"<span class='badge {_status_class(status)}'>{_e(status)}</span></h2>",
             f"<p class='paths'>{paths}</p>"]
    if status == "failed":
        parts.append(f"<p class='error'>{_e(r.get('error', 'failed'))}</p>")
    elif status == "interrupted":
        parts.append("<p class='warn'>Interrupted: the output is the best result reached before the stop."
                     "</p>")
    side = _strip(index, pictures) + _captions(entry, pictures)
    parts.append(_row(_compare(index, pictures), side))
    parts.append(_row(_curves_block(entry), _settings(r)))
    record = _e(json.dumps(r, indent=1, default=str, ensure_ascii=False))
    parts.append(f"<details><summary>full record (JSON)</summary><pre class='json'>{record}</pre></details>")
    parts.append("</section>")
    return "\n".join(parts)


def _row(main: str, side: str) -> str:
    """Two columns that wrap onto two lines when the first is wide (a zoomed slider, say)."""
    if not (main and side):
        return main or side
    return f"<div class='row'><div class='main'>{main}</div><div class='side'>{side}</div></div>"


def _compare(index: int, pictures: dict[str, _Picture]) -> str:
    """The before/after slider: two stacked layers, the top one clipped at the slider's position.

    Both layers fill one stage of (width × zoom) CSS pixels, scaled nearest-neighbour, so they
    stay aligned pixel for pixel at any zoom (a low-res super-resolution input is shown at the
    output's size). The script copies the layers' images from the thumbnails beside it, so an
    embedded page carries each picture once.
    """
    if len(pictures) < 2 or "output" not in pictures:
        return ""
    out = pictures["output"]
    left = "observed" if "observed" in pictures else next(k for k in pictures if k != "output")
    zoom = max([z for z in ZOOMS if out.width * z <= 560] or [1])

    def options(selected: str) -> str:
        return "".join(f"<option value='{_e(k)}'{' selected' if k == selected else ''}>{_e(p.label)}</option>"
                       for k, p in pictures.items())

    pressed = {z: " class='on' aria-pressed='true'" if z == zoom else " aria-pressed='false'" for z in ZOOMS}
    zooms = "".join(f"<button type='button' data-zoom='{z}'{pressed[z]}>{z}×</button>" for z in ZOOMS)
    return f"""<div class="cmp" data-entry="{index}" style="--w:{out.width};--h:{out.height};--z:{zoom}">
<div class="controls">
<label>left <select class="pick-left" aria-label="left layer">{options(left)}</select></label>
<label>right <select class="pick-right" aria-label="right layer">{options("output")}</select></label>
<span class="zoom" role="group" aria-label="zoom">{zooms}</span>
</div>
<div class="viewport"><div class="stage">
<div class="layer base"><img class="img-right" alt="right layer" data-kind="output"></div>
<div class="layer top"><img class="img-left" alt="left layer" data-kind="{_e(left)}"></div>
<div class="divider"></div>
</div></div>
<input type="range" class="reveal" min="0" max="100" step="0.5" value="50"
 aria-label="slide to reveal the left layer over the right one">
</div>"""


def _strip(index: int, pictures: dict[str, _Picture]) -> str:
    """Every picture side by side, as a thumbnail THUMB_PX wide (less when tall).

    The thumbnails are an overview (the slider is for looking closely): a picture enlarged two
    times or more is drawn with sharp pixels, one enlarged less or shrunk is drawn smoothly.
    """
    figures = []
    for kind, p in pictures.items():
        scale = min(THUMB_PX / max(p.width, 1), 1.5 * THUMB_PX / max(p.height, 1))
        width, height = max(1, round(p.width * scale)), max(1, round(p.height * scale))
        classes = " ".join(c for c, on in (("pix", scale >= 2), ("alpha", p.has_alpha)) if on)
        img = (f"<img id='e{index}-{_e(kind)}' src='{_e(p.url)}' width='{width}' height='{height}'"
               f" class='{classes}' alt='{_e(p.label)}' title='{p.width}×{p.height}'>")
        if p.linked:
            img = f"<a href='{_e(p.url)}'>{img}</a>"
        figures.append(f"<figure>{img}<figcaption>{_e(p.label)} · {p.width}×{p.height}</figcaption></figure>")
    return f"<div class='strip'>{''.join(figures)}</div>" if figures else ""


def _captions(entry: Entry, pictures: dict[str, _Picture]) -> str:
    notes = []
    if "removed" in pictures:
        observed, output = _as_image(entry.observed), _as_image(entry.output)
        assert observed is not None and output is not None
        k = removed_part(observed, output)[1]
        sigma = entry.record.get("sigma")
        given = f", given σ = {_num(sigma, 'g')}" if sigma is not None else ""
        notes.append(
            f"<b>Removed part</b> = input − output, shown as 0.5 + k·difference, k = {k:.3g}: ±3σ of it "
            f"fills the grey range (robust σ ≈ {0.5 / (3 * k) * 255:.1f}/255{_e(given)}). Even, "
            "structureless grain is noise; edges or texture visible in it are image detail that the fit "
            "removed.")
    if "mask" in pictures:
        frac = entry.record.get("missing_fraction")
        missing = f" ({float(frac):.1%} missing)" if _finite(frac) else ""
        notes.append(f"<b>Mask</b>: white pixels were known, black ones were filled in by the fit{missing}.")
    if any(p.has_alpha for p in pictures.values()):
        notes.append("The checkerboard shows through where the input is transparent.")
    if "output" in pictures and len(pictures) > 1:
        notes.append("Drag the slider to reveal the left picture over the right one; both stay pixel-aligned "
                     "at every zoom.")
    return "".join(f"<p class='caption'>{n}</p>" for n in notes)


SETTINGS = (  # record key, label
    ("task", "task"), ("arch", "net"), ("width", "width"), ("scales", "scales"),
    ("upsample", "upsample"), ("params", "parameters"), ("sigma", "σ"), ("factor", "factor"),
    ("missing_fraction", "missing"), ("tile", "tile"), ("tiles", "tiles"), ("precision", "precision"),
    ("device", "device"), ("seed", "seed"), ("stop_rule", "stop rule"), ("stop_reason", "stopped by"),
    ("iterations", "iterations run"), ("best_iteration", "iteration kept"), ("stage1_end", "stage 1 ends"),
    ("seconds", "seconds"), ("psnr", "PSNR (dB)"), ("ssim", "SSIM"),
)


def _settings(record: dict) -> str:
    """The settings that shaped this result, compactly (the full record is below, in JSON)."""
    rows = []
    for key, label in SETTINGS:
        value = record.get(key)
        if value is None or value == "":
            continue
        text = _num(value, ".4g") if isinstance(value, float) else str(value)
        if key == "width" and record.get("width_auto"):
            text += " (auto)"
        if key == "missing_fraction" and _finite(value):
            text = f"{value:.1%}"
        rows.append(f"<tr><th scope='row'>{_e(label)}</th><td>{_e(text)}</td></tr>")
    return f"<h3>Settings used</h3><table class='settings'>{''.join(rows)}</table>" if rows else ""


# ---- curves (inline SVG) ------------------------------------------------------------------------

def _curves_block(entry: Entry) -> str:
    r = entry.record
    svg = curves_svg(entry.history, kept=_int(r.get("best_iteration")), last=_int(r.get("iterations")),
                     stage1_end=_int(r.get("stage1_end")))
    return f"<div class='curves'><h3>Curves</h3>{svg}</div>" if svg else ""


def curves_svg(history: Sequence[dict], *, kept: int | None = None, last: int | None = None,
               stage1_end: int | None = None, width: int = 680, height: int = 260) -> str:
    """Loss (log scale, left axis) and PSNR of the raw and averaged output (right axis) against
    iteration, as inline SVG plus an HTML legend; '' when there is nothing to draw.

    The kept iteration (the stop rule's best) and the last one run are marked, and two-stage's
    stage 1 is shaded: where a fit stopped, and whether that was early or late, is what one
    looks for here.
    """
    pts = [h for h in history if _finite(h.get("iteration"))]
    if not pts:
        return ""
    its = [float(h["iteration"]) for h in pts]
    xmax = max([*its, float(last or 0), float(kept or 0), float(stage1_end or 0), 1.0]) * 1.02
    ml, mr, mt, mb = 62, 54, 22, 38
    pw, ph = width - ml - mr, height - mt - mb
    bottom = mt + ph

    def sx(i: float) -> float:
        return ml + pw * i / xmax

    def sy(lo: float, hi: float) -> Callable[[float], float]:
        return lambda v: mt + ph * (1 - (v - lo) / (hi - lo))

    el = [f"<rect class='plot' x='{ml}' y='{mt}' width='{pw}' height='{ph}'/>"]
    if stage1_end:
        el.append(f"<rect class='stage1' x='{ml}' y='{mt}' width='{sx(stage1_end) - ml:.1f}' height='{ph}'/>"
                  f"<text class='tag' x='{ml + 4}' y='{mt + 12}'>stage 1</text>")
    for t in _nice_ticks(0, xmax, 6):
        x = f"{sx(t):.1f}"
        el.append(f"<line class='grid' x1='{x}' y1='{mt}' x2='{x}' y2='{bottom}'/>"
                  f"<text class='tick' x='{x}' y='{bottom + 14}' text-anchor='middle'>{t:g}</text>")
    el.append(f"<text class='axis' x='{ml + pw / 2}' y='{height - 4}' text-anchor='middle'>iteration</text>")

    losses = [h.get("loss") for h in pts]
    log = any(_finite(v) and v > 0 for v in losses)
    def loss_y(v: object) -> float | None:
        if not _finite(v):
            return None
        return (math.log10(v) if v > 0 else None) if log else float(v)  # type: ignore[operator, arg-type]

    ys = [loss_y(v) for v in losses]
    if any(y is not None for y in ys):
        known = [y for y in ys if y is not None]
        lo, hi, ticks = _log_axis(known) if log else _lin_axis(known)
        sl = sy(lo, hi)
        for t, label in ticks:
            ty = f"{sl(t):.1f}"
            el.append(f"<line class='grid' x1='{ml}' y1='{ty}' x2='{ml + pw}' y2='{ty}'/>"
                      f"<text class='tick loss' x='{ml - 6}' y='{sl(t) + 4:.1f}' text-anchor='end'>"
                      f"{label}</text>")
        line = [(sx(i), None if y is None else sl(y)) for i, y in zip(its, ys, strict=True)]
        el.append(_path(line, "loss"))
        el.append(f"<text class='axis loss' transform='translate(13 {mt + ph / 2}) rotate(-90)' "
                  f"text-anchor='middle'>data loss{' (log)' if log else ''}</text>")

    psnr = [(h.get("psnr_raw"), h.get("psnr_ema")) for h in pts]
    pvals = [v for pair in psnr for v in pair if _finite(v)]
    if pvals:
        lo, hi, ticks = _lin_axis(pvals)
        sp = sy(lo, hi)
        for t, label in ticks:
            el.append(f"<text class='tick psnr' x='{ml + pw + 6}' y='{sp(t) + 4:.1f}'>{label}</text>")
        for j, cls in ((0, "psnr raw"), (1, "psnr ema")):
            line = [(sx(i), sp(p[j]) if _finite(p[j]) else None) for i, p in zip(its, psnr, strict=True)]
            el.append(_path(line, cls))
        el.append(f"<text class='axis psnr' transform='translate({width - 8} {mt + ph / 2}) rotate(90)' "
                  f"text-anchor='middle'>PSNR (dB)</text>")

    for it, cls in ((last, "last"), (kept, "kept")):
        if it is None:
            continue
        x = sx(it)
        text = f"kept = last {it}" if cls == "kept" and it == last else f"{cls} {it}"
        end = x > ml + pw * 0.75
        ty = mt - 6 if cls == "kept" else bottom - 6
        el.append(f"<line class='mark {cls}' x1='{x:.1f}' y1='{mt}' x2='{x:.1f}' y2='{bottom}'/>"
                  f"<text class='tag {cls}' x='{x - 4 if end else x + 4:.1f}' y='{ty}' "
                  f"text-anchor='{'end' if end else 'start'}'>{text}</text>")

    legend = [("loss", "data loss (raw output)")]
    if pvals:
        legend += [("raw", "PSNR, raw output"), ("ema", "PSNR, averaged output")]
    if kept is not None:
        legend.append(("kept", "kept iteration"))
    if last is not None and last != kept:
        legend.append(("last", "last iteration"))
    if stage1_end:
        legend.append(("stage1", "stage 1"))
    keys = "".join(f"<span><i class='sw {c}'></i>{_e(t)}</span>" for c, t in legend)
    return (f"<svg class='chart' viewBox='0 0 {width} {height}' width='{width}' height='{height}' role='img' "
            f"aria-label='loss and PSNR against iteration' xmlns='http://www.w3.org/2000/svg'>{''.join(el)}</svg>"
            f"<div class='legend'>{keys}</div>")


def _path(points: list[tuple[float, float | None]], cls: str) -> str:
    """A polyline that breaks where a value is missing (PSNR before the first check, say)."""
    d: list[str] = []
    pen = False
    for x, y in points:
        if y is None:
            pen = False
            continue
        d.append(f"{'L' if pen else 'M'}{x:.1f} {y:.1f}")
        pen = True
    return f"<path class='{cls}' d='{' '.join(d)}'/>" if d else ""


def _nice_ticks(lo: float, hi: float, n: int) -> list[float]:
    """About n round-numbered ticks (steps of 1, 2 or 5 × 10^k) within [lo, hi], at least 3."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    steps = [m * mag for m in (0.2, 0.5, 1, 2, 5, 10)]
    i = min(range(2, len(steps)), key=lambda j: abs(math.log(steps[j] / raw)))  # the nearest to raw
    while True:
        step = steps[i]
        first = math.ceil(lo / step - 1e-9) * step
        ticks = [round(first + k * step, 12) for k in range(int(math.floor((hi - first) / step + 1e-9)) + 1)]
        if len(ticks) >= 3 or i == 0:
            return ticks
        i -= 1


def _lin_axis(values: list[float]) -> tuple[float, float, list[tuple[float, str]]]:
    """A padded linear range and its ticks."""
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.06 or max(abs(hi) * 0.05, 0.5)
    lo, hi = lo - pad, hi + pad
    return lo, hi, [(t, f"{t:g}") for t in _nice_ticks(lo, hi, 5)]


def _log_axis(logs: list[float]) -> tuple[float, float, list[tuple[float, str]]]:
    """A padded range of log10 values, ticked at decades, else at 1-2-5, else at 1…9 × 10^k."""
    lo, hi = min(logs), max(logs)
    pad = max((hi - lo) * 0.06, 0.1)
    lo, hi = lo - pad, hi + pad
    ticks: list[float] = []
    for mults in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [math.log10(m) + k for k in range(math.floor(lo), math.ceil(hi) + 1) for m in mults
                 if lo <= math.log10(m) + k <= hi]
        if len(ticks) >= 3:
            break
    ticks = ticks[::max(1, math.ceil(len(ticks) / 7))]
    return lo, hi, [(t, f"{10 ** t:.3g}") for t in ticks]


# ---- small helpers ------------------------------------------------------------------------------

def _e(value: object) -> str:
    """Escape anything for HTML text or an attribute (single or double quoted)."""
    return html.escape(str(value), quote=True)


def _name(record: dict) -> str:
    text = str(record.get("input", ""))
    return Path(text).name or text


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _num(value: object, fmt: str) -> str:
    if value is None:
        return ""
    try:
        return format(float(value), fmt)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)


def _int(value: object) -> int | None:
    try:
        return None if value is None else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _status_class(status: str) -> str:
    return status if status in ("ok", "failed", "skipped", "interrupted") else "other"


CSS = """
:root{--fg:#1d2330;--muted:#5b6473;--line:#dde1e8;--bg:#f4f5f8;--card:#fff;--accent:#2f6fdb;
--loss:#2f6fdb;--psnr:#e07b1a;--kept:#1f9d55;--last:#6b7280;--stage:#8b5cf6}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header,main{max-width:1180px;margin:0 auto;padding:0 20px}
header{padding-top:18px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:0 0 8px}
h3{font-size:14px;margin:14px 0 6px;color:var(--muted)}
.meta,.hint,.paths,.label{color:var(--muted);margin:2px 0}
.label{font-size:12px;text-transform:uppercase;letter-spacing:.04em;margin-top:10px}
pre{background:#1e2430;color:#e8ecf3;padding:8px 12px;border-radius:6px;overflow:auto;
font:12.5px/1.4 ui-monospace,"DejaVu Sans Mono",monospace;white-space:pre-wrap;word-break:break-all}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px;margin:16px 0;
box-shadow:0 1px 2px rgba(0,0,0,.04)}
.scroll{overflow-x:auto}
table.summary{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
.summary th,.summary td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:left;
white-space:nowrap}
.summary td:nth-child(8){white-space:normal;min-width:12em}
.summary th{background:#eef1f6;cursor:pointer;user-select:none;font-weight:600;position:relative}
.summary th:hover{background:#e3e8f1}
.summary th[aria-sort=ascending]::after{content:" ▲";font-size:10px}
.summary th[aria-sort=descending]::after{content:" ▼";font-size:10px}
.summary tbody tr:hover{background:#f6f8fc}
.summary tr.failed{background:#fff5f5}
.summary a{color:var(--accent);text-decoration:none}
.err,.error{color:#b42318}
.error{background:#fff5f5;border:1px solid #f5c2c0;border-radius:6px;padding:8px 10px;white-space:pre-wrap}
.warn{background:#fffbeb;border:1px solid #f3d58a;border-radius:6px;padding:8px 10px}
.badge{display:inline-block;padding:1px 8px;border-radius:99px;font-size:12px;font-weight:600;
background:#e5e7eb;color:#374151;vertical-align:middle}
.badge.ok{background:#dcfce7;color:#166534}.badge.failed{background:#fee2e2;color:#991b1b}
.badge.interrupted{background:#fef3c7;color:#92400e}.badge.skipped{background:#e0e7ff;color:#3730a3}
.idx{display:inline-block;min-width:26px;padding:0 6px;margin-right:4px;border-radius:6px;background:#1e2430;
color:#fff;text-align:center;font-size:14px}
.cmp{margin:10px 0 4px}
.controls{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;margin-bottom:6px;color:var(--muted)}
.controls select{font:inherit;padding:2px 4px}
.zoom button{font:inherit;padding:1px 8px;margin-left:2px;border:1px solid var(--line);background:#fff;
border-radius:5px;cursor:pointer}
.zoom button.on{background:var(--accent);border-color:var(--accent);color:#fff}
.viewport{overflow:auto;max-width:100%;max-height:75vh;border:1px solid var(--line);border-radius:6px;
background:#e9ecf1;display:inline-block;vertical-align:top}
.stage{position:relative;width:calc(var(--w) * var(--z) * 1px);height:calc(var(--h) * var(--z) * 1px)}
.layer{position:absolute;inset:0}
.layer img{display:block;width:100%;height:100%;image-rendering:pixelated}
.layer.top{clip-path:inset(0 50% 0 0)}
.layer,.alpha{background:repeating-conic-gradient(#d5d8de 0 25%,#fff 0 50%) 0 0/16px 16px}
.divider{position:absolute;top:0;bottom:0;left:50%;width:2px;margin-left:-1px;background:#fff;
box-shadow:0 0 0 1px rgba(0,0,0,.45);pointer-events:none}
.reveal{display:block;width:min(100%,calc(var(--w) * var(--z) * 1px + 2px));margin:6px 0 0}
.strip{display:flex;flex-wrap:wrap;gap:12px;margin:34px 0 4px}
.curves{width:680px;max-width:100%}
figure{margin:0}
figure img{display:block;border:1px solid var(--line);border-radius:4px;max-width:100%;height:auto}
img.pix{image-rendering:pixelated}
figcaption{font-size:12px;color:var(--muted);margin-top:3px}
.caption{font-size:13px;color:var(--muted);max-width:72em;margin:6px 0}
.curves svg{max-width:100%;height:auto;display:block}
.chart .plot{fill:#fff;stroke:var(--line)}
.chart .grid{stroke:#eef0f4}
.chart .tick{font-size:11px;fill:var(--muted)}
.chart .axis{font-size:12px;fill:var(--fg)}
.chart .tick.loss,.chart .axis.loss{fill:var(--loss)}
.chart .tick.psnr,.chart .axis.psnr{fill:var(--psnr)}
.chart path{fill:none;stroke-linejoin:round}
.chart path.loss{stroke:var(--loss);stroke-width:1.5}
.chart path.raw{stroke:var(--psnr);stroke-width:1;opacity:.45}
.chart path.ema{stroke:var(--psnr);stroke-width:1.8}
.chart .stage1{fill:var(--stage);opacity:.1}
.chart .mark{stroke-width:1.3}
.chart .mark.kept{stroke:var(--kept);stroke-dasharray:5 3}
.chart .mark.last{stroke:var(--last);stroke-dasharray:2 3}
.chart .tag{font-size:11px;fill:var(--muted)}
.chart .tag.kept{fill:var(--kept)}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:var(--muted);margin:2px 0 0 64px}
.sw{display:inline-block;width:18px;height:0;border-top:2px solid;vertical-align:middle;margin-right:5px}
.sw.loss{border-color:var(--loss)}.sw.raw{border-color:var(--psnr);opacity:.45}.sw.ema{border-color:var(--psnr)}
.sw.kept{border-top:2px dashed var(--kept)}.sw.last{border-top:2px dotted var(--last)}
.sw.stage1{height:10px;border:0;background:var(--stage);opacity:.25}
.row{display:flex;flex-wrap:wrap;gap:8px 28px;align-items:flex-start;margin-top:6px}
.row>.main{flex:0 1 auto;max-width:100%;min-width:0}
.row>.side{flex:1 1 300px;min-width:0}
table.settings{border-collapse:collapse;font-size:13px}
.settings th{text-align:left;font-weight:500;color:var(--muted);padding:2px 16px 2px 0}
.settings td{padding:2px 0;font-variant-numeric:tabular-nums}
details{margin-top:10px}
summary{cursor:pointer;color:var(--muted)}
.empty{color:var(--muted)}
"""

SCRIPT = r"""
(function () {
  "use strict";
  function key(td) {
    var v = td.getAttribute("data-v");
    if (v === null || v === "") return null;
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  document.querySelectorAll("table.summary").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      function sort() {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          if (x === null || y === null) return (x === null) - (y === null);  /* blanks last */
          if (typeof x !== typeof y) { x = String(x); y = String(y); }
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  });
  document.querySelectorAll(".cmp").forEach(function (cmp) {
    var entry = cmp.getAttribute("data-entry");
    var top = cmp.querySelector(".layer.top"), divider = cmp.querySelector(".divider");
    var range = cmp.querySelector(".reveal");
    function show(img, kind) {
      var src = document.getElementById("e" + entry + "-" + kind);
      if (src) { img.src = src.src; img.setAttribute("data-kind", kind); }
    }
    var left = cmp.querySelector(".img-left"), right = cmp.querySelector(".img-right");
    var pickLeft = cmp.querySelector(".pick-left"), pickRight = cmp.querySelector(".pick-right");
    show(left, pickLeft.value);
    show(right, pickRight.value);
    pickLeft.addEventListener("change", function () { show(left, pickLeft.value); });
    pickRight.addEventListener("change", function () { show(right, pickRight.value); });
    function reveal() {
      var v = Math.max(0, Math.min(100, Number(range.value)));
      top.style.clipPath = "inset(0 " + (100 - v) + "% 0 0)";
      divider.style.left = v + "%";
    }
    range.addEventListener("input", reveal);
    reveal();
    cmp.querySelectorAll("button[data-zoom]").forEach(function (b) {
      b.addEventListener("click", function () {
        cmp.style.setProperty("--z", b.getAttribute("data-zoom"));
        cmp.querySelectorAll("button[data-zoom]").forEach(function (o) {
          o.classList.toggle("on", o === b);
          o.setAttribute("aria-pressed", String(o === b));
        });
      });
    });
  });
})();
"""
