"""The curves of a fit as inline SVG: data loss (log scale, left axis) and the PSNR of the raw and
averaged output (right axis) against iteration, with the kept and last iterations marked; and a
photo's noise level against brightness, as the camera noise model read it (:func:`noise_svg`).

Hand-written SVG rather than a plotting library: the HTML report must open anywhere with nothing
installed beyond the core (matplotlib is the ``plot`` extra), and a few hundred bytes of SVG per
input keep a page of hundreds of inputs light.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class _Frame:
    """The plot area inside a ``width`` × ``height`` picture, and iteration 0..xmax across it."""

    width: int
    height: int
    xmax: float
    ml: int = 62
    mr: int = 54
    mt: int = 22
    mb: int = 38

    @property
    def pw(self) -> int:
        return self.width - self.ml - self.mr

    @property
    def ph(self) -> int:
        return self.height - self.mt - self.mb

    @property
    def bottom(self) -> int:
        return self.mt + self.ph

    def sx(self, i: float) -> float:
        return self.ml + self.pw * i / self.xmax

    def sy(self, lo: float, hi: float, v: float) -> float:
        return self.mt + self.ph * (1 - (v - lo) / (hi - lo))


def curves_svg(history: Sequence[dict], *, kept: int | None = None, last: int | None = None,
               stage1_end: int | None = None, width: int = 680, height: int = 260) -> str:
    """Loss (log scale, left axis) and PSNR of the raw and averaged output (right axis) against
    iteration, as inline SVG plus an HTML legend; '' when there is nothing to draw.

    The kept iteration (the stop rule's best) and the last one run are marked, and two-stage's
    stage 1 is shaded: where a fit stopped, and whether that was early or late, is what one
    looks for here.
    """
    pts = [h for h in history if finite(h.get("iteration"))]
    if not pts:
        return ""
    its = [float(h["iteration"]) for h in pts]
    xmax = max([*its, float(last or 0), float(kept or 0), float(stage1_end or 0), 1.0]) * 1.02
    f = _Frame(width, height, xmax)
    el = [*_x_axis(f, stage1_end), *_loss_layer(f, its, pts)]
    psnr_layer = _psnr_layer(f, its, pts)
    el += psnr_layer
    el += _marks(f, kept, last)
    keys = "".join(f"<span><i class='sw {c}'></i>{html.escape(t, quote=True)}</span>"
                   for c, t in _legend(bool(psnr_layer), kept, last, stage1_end))
    return (f"<svg class='chart' viewBox='0 0 {width} {height}' width='{width}' height='{height}' role='img' "
            f"aria-label='loss and PSNR against iteration' xmlns='http://www.w3.org/2000/svg'>{''.join(el)}</svg>"
            f"<div class='legend'>{keys}</div>")


def noise_svg(curve: dict, width: int = 340, height: int = 220) -> str:
    """σ (0–255) against brightness, one line per channel, from a record's ``noise_curve``
    (:meth:`dipcli.physics.noise_models.CameraNoise.readout`), as inline SVG plus a legend; ''
    if unreadable."""
    xs, per_channel = curve.get("brightness") or [], curve.get("sigma") or []
    values = [v for row in per_channel for v in row if finite(v)]
    if len(xs) < 2 or not values or any(len(row) != len(xs) for row in per_channel):
        return ""
    lo, hi = min(xs), max(xs)
    f = _Frame(width, height, 1.0, ml=44, mr=12)
    bottom, top = 0.0, max(values) * 1.15 or 1.0
    el = [f"<rect class='plot' x='{f.ml}' y='{f.mt}' width='{f.pw}' height='{f.ph}'/>"]
    for t in _nice_ticks(0, 1, 5):
        el.append(f"<text class='tick' x='{f.sx(t):.1f}' y='{f.bottom + 14}' text-anchor='middle'>{t:g}"
                  "</text>")
    for t in _nice_ticks(bottom, top, 4):
        y = f.sy(bottom, top, t)
        el.append(f"<line class='grid' x1='{f.ml}' y1='{y:.1f}' x2='{f.ml + f.pw}' y2='{y:.1f}'/>"
                  f"<text class='tick' x='{f.ml - 6}' y='{y + 4:.1f}' text-anchor='end'>{t:g}</text>")
    names = ("red", "green", "blue") if len(per_channel) == 3 else ("grey",) * len(per_channel)
    for k, row in enumerate(per_channel):
        line = [(f.sx(x), f.sy(bottom, top, v) if finite(v) else None) for x, v in zip(xs, row, strict=True)]
        el.append(_path(line, f"noise {names[k]}"))
    el.append(f"<text class='axis' x='{f.ml + f.pw / 2}' y='{height - 4}' text-anchor='middle'>brightness "
              f"(measured {lo:.2g}–{hi:.2g})</text>"
              f"<text class='axis' transform='translate(12 {f.mt + f.ph / 2}) rotate(-90)' "
              "text-anchor='middle'>noise σ (0–255)</text>")
    keys = "".join(f"<span><i class='sw noise {n}'></i>{n}</span>" for n in dict.fromkeys(names))
    return (f"<svg class='chart' viewBox='0 0 {width} {height}' width='{width}' height='{height}' role='img' "
            f"aria-label='noise level against brightness' xmlns='http://www.w3.org/2000/svg'>{''.join(el)}</svg>"
            f"<div class='legend'>{keys}</div>")


def finite(value: object) -> bool:
    """A real, finite number (not a bool, not None, not NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _x_axis(f: _Frame, stage1_end: int | None) -> list[str]:
    """The plot's frame, two-stage's stage 1 shaded, and the iteration axis with its grid."""
    ml, mt, pw, ph, bottom = f.ml, f.mt, f.pw, f.ph, f.bottom
    el = [f"<rect class='plot' x='{ml}' y='{mt}' width='{pw}' height='{ph}'/>"]
    if stage1_end:
        shade = f.sx(stage1_end) - ml
        el.append(f"<rect class='stage1' x='{ml}' y='{mt}' width='{shade:.1f}' height='{ph}'/>"
                  f"<text class='tag' x='{ml + 4}' y='{mt + 12}'>stage 1</text>")
    for t in _nice_ticks(0, f.xmax, 6):
        x = f"{f.sx(t):.1f}"
        el.append(f"<line class='grid' x1='{x}' y1='{mt}' x2='{x}' y2='{bottom}'/>"
                  f"<text class='tick' x='{x}' y='{bottom + 14}' text-anchor='middle'>{t:g}</text>")
    el.append(f"<text class='axis' x='{ml + pw / 2}' y='{f.height - 4}' "
              "text-anchor='middle'>iteration</text>")
    return el


def _loss_layer(f: _Frame, its: list[float], pts: list[dict]) -> list[str]:
    """The data loss against the left axis: log scale when any value is positive."""
    losses = [h.get("loss") for h in pts]
    log = any(finite(v) and v > 0 for v in losses)

    def loss_y(v: object) -> float | None:
        if not finite(v):
            return None
        return (math.log10(v) if v > 0 else None) if log else float(v)  # type: ignore[operator, arg-type]

    ys = [loss_y(v) for v in losses]
    known = [y for y in ys if y is not None]
    if not known:
        return []
    lo, hi, ticks = _log_axis(known) if log else _lin_axis(known)
    el = []
    for t, label in ticks:
        ty = f"{f.sy(lo, hi, t):.1f}"
        el.append(f"<line class='grid' x1='{f.ml}' y1='{ty}' x2='{f.ml + f.pw}' y2='{ty}'/>"
                  f"<text class='tick loss' x='{f.ml - 6}' y='{f.sy(lo, hi, t) + 4:.1f}' text-anchor='end'>"
                  f"{label}</text>")
    line = [(f.sx(i), None if y is None else f.sy(lo, hi, y)) for i, y in zip(its, ys, strict=True)]
    el.append(_path(line, "loss"))
    el.append(f"<text class='axis loss' transform='translate(13 {f.mt + f.ph / 2}) rotate(-90)' "
              f"text-anchor='middle'>data loss{' (log)' if log else ''}</text>")
    return el


def _psnr_layer(f: _Frame, its: list[float], pts: list[dict]) -> list[str]:
    """The PSNR of the raw and of the averaged output against the right axis; none without a reference."""
    psnr = [(h.get("psnr_raw"), h.get("psnr_ema")) for h in pts]
    pvals = [v for pair in psnr for v in pair if finite(v)]
    if not pvals:
        return []
    lo, hi, ticks = _lin_axis(pvals)
    el = [f"<text class='tick psnr' x='{f.ml + f.pw + 6}' y='{f.sy(lo, hi, t) + 4:.1f}'>{label}</text>"
          for t, label in ticks]
    for j, cls in ((0, "psnr raw"), (1, "psnr ema")):
        line = [(f.sx(i), f.sy(lo, hi, p[j]) if finite(p[j]) else None)
                for i, p in zip(its, psnr, strict=True)]
        el.append(_path(line, cls))
    el.append(f"<text class='axis psnr' transform='translate({f.width - 8} {f.mt + f.ph / 2}) rotate(90)' "
              f"text-anchor='middle'>PSNR (dB)</text>")
    return el


def _marks(f: _Frame, kept: int | None, last: int | None) -> list[str]:
    """Vertical lines at the last iteration run and at the kept one, labelled inside the plot."""
    el = []
    for it, cls in ((last, "last"), (kept, "kept")):
        if it is None:
            continue
        x = f.sx(it)
        text = f"kept = last {it}" if cls == "kept" and it == last else f"{cls} {it}"
        end = x > f.ml + f.pw * 0.75
        ty = f.mt - 6 if cls == "kept" else f.bottom - 6
        el.append(f"<line class='mark {cls}' x1='{x:.1f}' y1='{f.mt}' x2='{x:.1f}' y2='{f.bottom}'/>"
                  f"<text class='tag {cls}' x='{x - 4 if end else x + 4:.1f}' y='{ty}' "
                  f"text-anchor='{'end' if end else 'start'}'>{text}</text>")
    return el


def _legend(psnr: bool, kept: int | None, last: int | None, stage1_end: int | None) -> list[tuple[str, str]]:
    """(swatch class, text) for what the chart shows."""
    legend = [("loss", "data loss (raw output)")]
    if psnr:
        legend += [("raw", "PSNR, raw output"), ("ema", "PSNR, averaged output")]
    if kept is not None:
        legend.append(("kept", "kept iteration"))
    if last is not None and last != kept:
        legend.append(("last", "last iteration"))
    if stage1_end:
        legend.append(("stage1", "stage 1"))
    return legend


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
