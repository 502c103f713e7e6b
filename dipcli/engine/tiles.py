"""Images of any size: cut them into overlapping tiles, fit each, and blend the outputs back.

A DIP fit holds the whole image, its activations and their gradients on the device, so memory
grows with the image; a tile of fixed size keeps it bounded. Each tile is its own DIP problem,
so neighbouring tiles disagree slightly near their borders; a hard cut would show that as a
seam. Instead each tile's output is weighted by a smooth window that ramps up across the overlap
with its neighbour, and every pixel is divided by the summed weights, so the weights form a
partition of unity: where the tiles agree (a constant image, or tiles cut from one image) the
blend is exactly what they agree on, and where they differ it fades from one to the other.

Pure numpy: no torch, so the geometry is testable on its own (:mod:`dipcli.engine.run` does the fits).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Window = tuple[int, int, int, int]  # top, left, height, width

MIN_OVERLAP = 8


def smallest_tile(multiple: int) -> int:
    """The smallest tile a net with this size multiple takes: two of its deepest cells (else the
    tile is mostly padding), and at least 32 px."""
    return max(32, 2 * multiple)


def default_overlap(tile: int) -> int:
    """An eighth of the tile, at least 8 px: enough context at a tile's border for a smooth fade."""
    return max(MIN_OVERLAP, tile // 8)


def axis_starts(n: int, tile: int, overlap: int) -> list[int]:
    """Where tiles of ``tile`` px start along an axis of ``n`` px, neighbours ``≥ overlap`` apart.

    The fewest tiles that can cover the axis with that overlap, spread evenly: the first starts at
    0 and the last ends flush with the border, so no tile is smaller than ``tile`` (a small tile
    would be a smaller, worse-posed DIP problem) and no sliver of overlap is much larger than the
    rest. An axis no longer than a tile is one tile of its own length.
    """
    if not 0 <= overlap < tile:
        raise ValueError(f"the overlap ({overlap}) must be at least 0 and less than the tile ({tile})")
    if n <= tile:
        return [0]
    count = math.ceil((n - overlap) / (tile - overlap))
    step = (n - tile) / (count - 1)  # ≤ tile - overlap, by the choice of count
    return [round(i * step) for i in range(count)]


def plan_tiles(h: int, w: int, tile: int, overlap: int | None = None) -> list[Window]:
    """Windows ``(top, left, height, width)`` covering an ``h × w`` image, row by row.

    Each is at most ``tile`` px per side (smaller only where the image is), and neighbours
    overlap by at least ``overlap`` px (default :func:`default_overlap`).
    """
    overlap = default_overlap(tile) if overlap is None else overlap
    th, tw = min(h, tile), min(w, tile)
    return [(top, left, th, tw) for top in axis_starts(h, tile, overlap)
            for left in axis_starts(w, tile, overlap)]


def tile_for(h: int, w: int, target: int) -> int:
    """The tile side that cuts each side of an ``h × w`` image into about ``side / target`` tiles
    (rounded, at least one; with the default overlap), so that tiles hold between ¾ and 1½
    ``target`` px of new pixels per side. A fixed tile side would cut an image slightly larger
    than it into tiles of mostly overlap; this one grows the tiles a little instead.
    """
    def smallest(n: int) -> int:
        tiles = max(1, round(n / target))
        if tiles == 1:  # the whole side (however thin: a 3-px side has no room for an overlap)
            return n
        side = math.ceil(n / tiles)
        while len(axis_starts(n, side, default_overlap(side))) > tiles:
            side += 1
        return side

    return max(smallest(h), smallest(w))


def window_slices(window: Window) -> tuple[slice, slice]:
    """The rows and columns of a window, for indexing an ``(H, W, ...)`` array."""
    top, left, h, w = window
    return slice(top, top + h), slice(left, left + w)


def ramp(size: int, before: int, after: int) -> np.ndarray:
    """1-D weights over a tile's side: a raised-cosine rise over the first ``before`` px, 1, a
    fall over the last ``after`` px.

    The rise is sin² and the fall cos² of the same angle, so across an overlap that both tiles
    ramp over, the two weights add up to 1 and the fade is smooth (zero slope at both ends, no
    kink for the eye to catch). The half-pixel offset keeps every weight above 0, so every
    covered pixel has a positive total weight to divide by.
    """
    weights = np.ones(size)
    x = np.arange(size) + 0.5
    if before:
        rise = np.sin(0.5 * np.pi * np.minimum(x / before, 1.0)) ** 2
        weights *= rise
    if after:
        fall = np.sin(0.5 * np.pi * np.minimum(x[::-1] / after, 1.0)) ** 2
        weights *= fall
    return weights


def _overlaps(start: int, size: int, spans: set[tuple[int, int]]) -> tuple[int, int]:
    """How far the previous and the next tile along an axis reach into this one (0: a border)."""
    end = start + size
    before = max((e for s, e in spans if s < start < e), default=start) - start
    after = end - min((s for s, e in spans if start < s < end), default=end)
    return min(before, size), min(after, size)


def blend_weights(window: Window, windows: Sequence[Window]) -> np.ndarray:
    """The ``(height, width)`` weight of one tile of a plan: separable, ramping over each overlap.

    Sides on the image border do not ramp (nothing else covers those pixels), so the border keeps
    its full weight and corners need no special case.
    """
    top, left, h, w = window
    rows = _overlaps(top, h, {(t, t + th) for t, _, th, _ in windows})
    cols = _overlaps(left, w, {(lf, lf + tw) for _, lf, _, tw in windows})
    return np.outer(ramp(h, *rows), ramp(w, *cols))


class Blender:
    """Adds tiles in one at a time, so that a tiled fit keeps one tile's output, not all of them.

    ``result()`` divides the weighted sum by the summed weights: a partition of unity over every
    pixel the tiles cover.
    """

    def __init__(self, windows: Sequence[Window], shape: tuple[int, ...]) -> None:
        self.windows = list(windows)
        self.total = np.zeros(shape, np.float64)
        self.weight = np.zeros(shape[:2], np.float64)

    def add(self, tile: np.ndarray, window: Window) -> None:
        weight = blend_weights(window, self.windows)
        rows, cols = window_slices(window)
        if tile.ndim == 3:
            self.total[rows, cols] += weight[:, :, None] * tile
        else:
            self.total[rows, cols] += weight * tile
        self.weight[rows, cols] += weight

    def result(self) -> np.ndarray:
        if not (self.weight > 0).all():
            raise ValueError("the tiles do not cover the image")
        weight = self.weight[:, :, None] if self.total.ndim == 3 else self.weight
        return (self.total / weight).astype(np.float32)


def blend(tiles: Sequence[np.ndarray], windows: Sequence[Window], shape: tuple[int, ...]) -> np.ndarray:
    """One image of ``shape`` from per-tile outputs (``(height, width[, C])`` each) and their windows."""
    blender = Blender(windows, shape)
    for tile, window in zip(tiles, windows, strict=True):
        blender.add(tile, window)
    return blender.result()
