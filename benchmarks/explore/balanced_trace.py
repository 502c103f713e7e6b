"""Exploration: the PSNR of `balanced`'s averaged output along its fit, on crop_denoiser.py's crops.

    python benchmarks/explore/balanced_trace.py 32/0047 64/0010
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # explorations import the studies one folder up (common, quality)
from common import centre_crop  # noqa: E402
from crop_denoiser import image_files  # noqa: E402
from quality import noisy_copy, scores  # noqa: E402

from dipcli import (  # noqa: E402
    denoise,
    read_image,
)


def main() -> None:
    for name, path in image_files(sys.argv[1:]).items():
        clean = centre_crop(read_image(path).pixels, 256)
        noisy = noisy_copy(clean, name, 25)
        start = time.perf_counter()
        result = denoise(noisy, 25, clean=clean, preset="balanced", seed=0)
        curve = {h["iteration"]: round(h["psnr_ema"], 2) for h in result.history}
        seconds = round(time.perf_counter() - start, 1)
        print(name, "written", round(scores(result.image, clean)[0], 3), "s", seconds,
              {k: curve[k] for k in (250, 500, 1000, 1500, 2000) if k in curve}, flush=True)


if __name__ == "__main__":
    main()
