"""Option values that are more than a number: parsed once, from the command line or from Python.

``--tile`` is ``auto``, ``0`` (never) or a size in pixels, and ``--group`` is ``auto`` or a count.
Each becomes a small frozen value here, so no later code re-reads a string or rewrites the
option in place.
"""

from __future__ import annotations

from dataclasses import dataclass

from dipcli.errors import Fail


@dataclass(frozen=True)
class Tile:
    """``--tile``: ``size`` None is auto (decided per image), 0 the whole image, N tiles of at most N px."""

    size: int | None = None

    @classmethod
    def parse(cls, value: str | int | Tile | None) -> Tile:
        if isinstance(value, Tile):
            return value
        if value is None or str(value) == "auto":
            return cls(None)
        text = str(value)
        if not text.isdigit():
            raise Fail(f"--tile {value!r}: give a tile side in pixels, 0 (never tile) or auto")
        return cls(int(text))

    @property
    def auto(self) -> bool:
        return self.size is None

    def __str__(self) -> str:
        return "auto" if self.size is None else str(self.size)


@dataclass(frozen=True)
class Group:
    """``--group``: ``size`` None is auto (a GPU fits an image's tiles together), else up to N at once."""

    size: int | None = None

    @classmethod
    def parse(cls, value: str | int | Group | None) -> Group:
        if isinstance(value, Group):
            return value
        if value is None or str(value) == "auto":
            return cls(None)
        text = str(value)
        if not text.isdigit() or int(text) < 1:
            raise Fail(f"--group {value!r}: give how many images to fit together (1 or more) or auto")
        return cls(int(text))

    @property
    def auto(self) -> bool:
        return self.size is None

    def __str__(self) -> str:
        return "auto" if self.size is None else str(self.size)
