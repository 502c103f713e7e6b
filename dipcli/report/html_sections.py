"""The HTML of the report's parts: the summary table's rows and one input's section (the
before/after slider, the thumbnails, captions, curves and settings). Every value from a record or
a path is escaped here: a file name is user data, not markup."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dipcli.report.chart import curves_svg, finite, noise_svg

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


@dataclass(frozen=True)
class Picture:
    label: str
    url: str  # relative URL of the PNG, or a data: URI
    width: int
    height: int
    has_alpha: bool
    linked: bool  # a click opens the file full size (not for data: URIs)


def as_image(pixels: np.ndarray | None) -> np.ndarray | None:
    """(H, W, 1 or 3) float32; a stray alpha channel is dropped (alpha comes separately)."""
    if pixels is None:
        return None
    a = np.asarray(pixels, dtype=np.float32)
    if a.ndim == 2:
        return a[:, :, None]
    return a[:, :, :1] if a.shape[2] == 2 else a[:, :, :3]


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


# ---- summary table ------------------------------------------------------------------------------

SUMMARY_COLUMNS = ("#", "input", "status", "task", "size", "σ", "iterations (run / kept)",
                   "stopped by / error", "seconds", "PSNR (dB)", "SSIM")


def summary_row(index: int, entry: Entry) -> str:
    """One row; each cell carries the value it sorts by (numbers as numbers) in data-v."""
    r = entry.record
    status = str(r.get("status", ""))
    size, pixels = _size_text(entry)
    iters, kept = r.get("iterations"), r.get("best_iteration")
    iter_text = "" if iters is None else f"{iters}" + ("" if kept is None else f" / {kept}")
    if status == "failed":
        why = _one_line(r.get("error", "failed"))
        note = f"<span class='err'>{escape(why)}</span>"
    else:
        why = _one_line(r.get("stop_reason") or r.get("reason") or r.get("error") or "")
        note = escape(why)
    name = _name(r)
    cells = [
        (str(index), index),
        (f"<a href='#entry-{index}' title='{escape(r.get('input', ''))}'>{escape(name)}</a>", name.lower()),
        (f"<span class='badge {_status_class(status)}'>{escape(status)}</span>", status),
        (escape(r.get("task", "")), r.get("task", "")),
        (escape(size), pixels),
        (escape(_num(r.get("sigma"), "g")), r.get("sigma")),
        (escape(iter_text), iters),
        (note, why),
        (escape(_num(r.get("seconds"), ".1f")), r.get("seconds")),
        (escape(_num(r.get("psnr"), ".2f")), r.get("psnr")),
        (escape(_num(r.get("ssim"), ".4f")), r.get("ssim")),
    ]
    tds = "".join(f"<td data-v='{escape(_sort_key(key))}'>{text}</td>" for text, key in cells)
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

def section(index: int, entry: Entry, pictures: dict[str, Picture]) -> str:
    """An input's card: slider | pictures side by side, curves | settings, then the full record."""
    r = entry.record
    status = str(r.get("status", ""))
    paths = escape(r.get("input", "")) + (f" → {escape(r['output'])}" if r.get("output") else "")
    parts = [f"<section class='card entry' id='entry-{index}'>",
             f"<h2><span class='idx'>{index}</span> {escape(_name(r))} "
             f"<span class='badge {_status_class(status)}'>{escape(status)}</span></h2>",
             f"<p class='paths'>{paths}</p>"]
    if status == "failed":
        parts.append(f"<p class='error'>{escape(r.get('error', 'failed'))}</p>")
    elif status == "interrupted":
        parts.append("<p class='warn'>Interrupted: the output is the best result reached before the stop."
                     "</p>")
    side = _strip(index, pictures) + _captions(entry, pictures)
    parts.append(_row(_compare(index, pictures), side))
    parts.append(_row(_curves_block(entry), _settings(r)))
    if isinstance(r.get("noise_curve"), dict) and (chart := noise_svg(r["noise_curve"])):
        parts.append(f"<div class='curves'><h3>Noise read from the image</h3>{chart}</div>")
    record = escape(json.dumps(r, indent=1, default=str, ensure_ascii=False))
    parts.append(f"<details><summary>full record (JSON)</summary><pre class='json'>{record}</pre></details>")
    parts.append("</section>")
    return "\n".join(parts)


def _row(main: str, side: str) -> str:
    """Two columns that wrap onto two lines when the first is wide (a zoomed slider, say)."""
    if not (main and side):
        return main or side
    return f"<div class='row'><div class='main'>{main}</div><div class='side'>{side}</div></div>"


def _compare(index: int, pictures: dict[str, Picture]) -> str:
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
        return "".join(f"<option value='{escape(k)}'{' selected' if k == selected else ''}>"
                       f"{escape(p.label)}</option>"
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
<div class="layer top"><img class="img-left" alt="left layer" data-kind="{escape(left)}"></div>
<div class="divider"></div>
</div></div>
<input type="range" class="reveal" min="0" max="100" step="0.5" value="50"
 aria-label="slide to reveal the left layer over the right one">
</div>"""


def _strip(index: int, pictures: dict[str, Picture]) -> str:
    """Every picture side by side, as a thumbnail THUMB_PX wide (less when tall).

    The thumbnails are an overview (the slider is for looking closely): a picture enlarged two
    times or more is drawn with sharp pixels, one enlarged less or shrunk is drawn smoothly.
    """
    figures = []
    for kind, p in pictures.items():
        scale = min(THUMB_PX / max(p.width, 1), 1.5 * THUMB_PX / max(p.height, 1))
        width, height = max(1, round(p.width * scale)), max(1, round(p.height * scale))
        classes = " ".join(c for c, on in (("pix", scale >= 2), ("alpha", p.has_alpha)) if on)
        img = (f"<img id='e{index}-{escape(kind)}' src='{escape(p.url)}' width='{width}' height='{height}'"
               f" class='{classes}' alt='{escape(p.label)}' title='{p.width}×{p.height}'>")
        if p.linked:
            img = f"<a href='{escape(p.url)}'>{img}</a>"
        caption = f"{escape(p.label)} · {p.width}×{p.height}"
        figures.append(f"<figure>{img}<figcaption>{caption}</figcaption></figure>")
    return f"<div class='strip'>{''.join(figures)}</div>" if figures else ""


def _captions(entry: Entry, pictures: dict[str, Picture]) -> str:
    notes = []
    if "removed" in pictures:
        observed, output = as_image(entry.observed), as_image(entry.output)
        assert observed is not None and output is not None
        k = removed_part(observed, output)[1]
        sigma = entry.record.get("sigma")
        given = f", given σ = {_num(sigma, 'g')}" if sigma is not None else ""
        notes.append(
            f"<b>Removed part</b> = input − output, shown as 0.5 + k·difference, k = {k:.3g}: ±3σ of it "
            f"fills the grey range (robust σ ≈ {0.5 / (3 * k) * 255:.1f}/255{escape(given)}). Even, "
            "structureless grain is noise; edges or texture visible in it are image detail that the fit "
            "removed.")
    if "mask" in pictures:
        frac = entry.record.get("missing_fraction")
        missing = f" ({float(frac):.1%} missing)" if finite(frac) else ""
        notes.append(f"<b>Mask</b>: white pixels were known, black ones were filled in by the fit{missing}.")
    if any(p.has_alpha for p in pictures.values()):
        notes.append("The checkerboard shows through where the input is transparent.")
    if "output" in pictures and len(pictures) > 1:
        notes.append("Drag the slider to reveal the left picture over the right one; both stay pixel-aligned "
                     "at every zoom.")
    return "".join(f"<p class='caption'>{n}</p>" for n in notes)


SETTINGS = (  # record key, label
    ("task", "task"), ("arch", "net"), ("width", "width"), ("scales", "scales"),
    ("upsample", "upsample"), ("params", "parameters"), ("sigma", "σ"), ("noise", "noise"),
    ("factor", "factor"),
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
        if key == "missing_fraction" and finite(value):
            text = f"{value:.1%}"
        rows.append(f"<tr><th scope='row'>{escape(label)}</th><td>{escape(text)}</td></tr>")
    return f"<h3>Settings used</h3><table class='settings'>{''.join(rows)}</table>" if rows else ""


# ---- curves (inline SVG) ------------------------------------------------------------------------

def _curves_block(entry: Entry) -> str:
    r = entry.record
    svg = curves_svg(entry.history, kept=_int(r.get("best_iteration")), last=_int(r.get("iterations")),
                     stage1_end=_int(r.get("stage1_end")))
    return f"<div class='curves'><h3>Curves</h3>{svg}</div>" if svg else ""


# ---- small helpers ------------------------------------------------------------------------------

def escape(value: object) -> str:
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


def _status_class(status: str) -> str:
    return status if status in ("ok", "failed", "skipped", "interrupted") else "other"
