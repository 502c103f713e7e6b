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
import re
import time
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote

import imageio.v3 as iio
import numpy as np

from dipcli.io import atomic_write
from dipcli.report.chart import curves_svg
from dipcli.report.html_sections import (
    SUMMARY_COLUMNS,
    Entry,
    Picture,
    as_image,
    escape,
    removed_part,
    section,
    summary_row,
)
from dipcli.report.html_style import CSS, SCRIPT

__all__ = ["Entry", "HtmlReport", "curves_svg", "removed_part"]

DENOISING = ("denoise", "two-stage")  # tasks whose removed part (observed − output) means something


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
        self._rows.append(summary_row(index, entry))
        self._sections.append(section(index, entry, pictures))
        self._statuses.append(str(entry.record.get("status", "")))
        self.write()

    def write(self) -> None:
        """Write the page as it stands (valid with no input yet), atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path, self._page().encode("utf-8"))

    def _write_pictures(self, index: int, entry: Entry) -> dict[str, Picture]:
        """Encode an input's pictures as PNG and write them (or keep them as data URIs)."""
        pictures: dict[str, Picture] = {}
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
            pictures[kind] = Picture(label, url, pixels.shape[1], pixels.shape[0], alpha is not None,
                                      linked=not self.embed)
        return pictures

    def _page(self) -> str:
        counts: dict[str, int] = {}
        for status in self._statuses:
            counts[status] = counts.get(status, 0) + 1
        n = len(self._sections)
        meta = " · ".join([f"{n} input{'' if n == 1 else 's'}",
                           *(f"{c} {escape(s)}" for s, c in counts.items()),
                           f"updated {time.strftime('%Y-%m-%d %H:%M:%S')}"])
        if self._rows:
            head = "".join(f"<th scope='col' tabindex='0' aria-sort='none'>{escape(c)}</th>"
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
<title>{escape(self.title)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>{escape(self.title)}</h1>
<p class="meta">{meta}</p>
<p class="label">command line</p>
<pre class="cmd"><code>{escape(self.command)}</code></pre>
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

def _pictures(entry: Entry) -> dict[str, tuple[str, np.ndarray, np.ndarray | None]]:
    """The pictures an input has: kind → (label, float (H, W, C) pixels, display alpha or None)."""
    out: dict[str, tuple[str, np.ndarray, np.ndarray | None]] = {}
    task = entry.record.get("task")
    observed, output, reference = (as_image(a) for a in (entry.observed, entry.output, entry.reference))
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
