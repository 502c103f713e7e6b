"""Make the bundled sample images from scikit-image's public-domain data (rerun to recreate).

astronaut_clean.png   256×256 crop of skimage.data.astronaut() (NASA, public domain)
astronaut_noisy.png   the same with N(0, 25²) noise added (seed 0), clipped to 0–255
camera_noisy.png      128×128 greyscale crop of skimage.data.camera() with σ = 25 noise (seed 1)
"""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
from skimage import data

HERE = Path(__file__).parent


def noisy(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = clean.astype(np.float64) + rng.normal(0, sigma, clean.shape)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


if __name__ == "__main__":
    astro = data.astronaut()[0:256, 128:384]
    iio.imwrite(HERE / "astronaut_clean.png", astro)
    iio.imwrite(HERE / "astronaut_noisy.png", noisy(astro, 25, 0))
    camera = data.camera()[64:192, 192:320]
    iio.imwrite(HERE / "camera_clean.png", camera)
    iio.imwrite(HERE / "camera_noisy.png", noisy(camera, 25, 1))
