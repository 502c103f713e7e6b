"""Exploration (issue 31): what the compact net's reflection padding costs per iteration.

    python benchmarks/explore/padding_speed.py --repeats 3

``dipcli.nets.skip.conv`` pads by reflection (borders not pulled towards zero), a copy of every
activation in the forward pass and another in the backward. This times `dip denoise`'s fit (the
default net, bf16, 150 iterations on a 256² random image, the stage held back) with each 3×3
convolution's padding done three ways, interleaved ``--repeats`` times: torch's reflection
(``ref``, as shipped), the same reflection built from slices and ``torch.cat`` (``cat``: equal to
the bit, checked), and zero padding inside the convolution (``zeros``: a different net, for the
bound). Prints seconds per iteration; nothing is written.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import dipcli

ORIGINAL = nn.Conv2d._conv_forward


def reflect_by_cat(x: torch.Tensor, p: int) -> torch.Tensor:
    """``F.pad(x, (p,) * 4, mode="reflect")`` from slices (torch has no negative steps: flips)."""
    x = torch.cat([x[:, :, 1:p + 1].flip(2), x, x[:, :, -p - 1:-1].flip(2)], dim=2)
    return torch.cat([x[:, :, :, 1:p + 1].flip(3), x, x[:, :, :, -p - 1:-1].flip(3)], dim=3)


def padded_by(mode: str):
    """A ``Conv2d._conv_forward`` whose reflection padding is done the ``mode`` way."""
    def conv_forward(self, x, weight, bias):
        if mode == "ref" or self.padding_mode != "reflect" or self.padding[0] == 0:
            return ORIGINAL(self, x, weight, bias)
        if mode == "cat":
            x, padding = reflect_by_cat(x, self.padding[0]), 0
        else:
            padding = self.padding
        return F.conv2d(x, weight, bias, self.stride, padding, self.dilation, self.groups)
    return conv_forward


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iters", type=int, default=150)
    a = ap.parse_args()
    x = torch.randn(1, 4, 12, 12)
    assert torch.equal(reflect_by_cat(x, 1), F.pad(x, (1,) * 4, mode="reflect"))
    image = np.random.default_rng(0).random((256, 256, 3)).astype(np.float32)
    seconds: dict[str, list[float]] = {"ref": [], "cat": [], "zeros": []}
    for _ in range(a.repeats):
        for mode in seconds:
            nn.Conv2d._conv_forward = padded_by(mode)
            result = dipcli.denoise(image, 25, iters=a.iters, stop="fixed", wiener=False)
            seconds[mode].append(result.settings["seconds"] / a.iters)
    nn.Conv2d._conv_forward = ORIGINAL
    for mode, s in seconds.items():
        print(f"{mode}: {1000 * statistics.median(s):.1f} ms per iteration "
              f"(runs: {', '.join(f'{1000 * v:.1f}' for v in s)})")


if __name__ == "__main__":
    main()
