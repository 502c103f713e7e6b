"""What was done to the image: forward models and noise models (deepinv's "physics").

:class:`Problem` is the contract (:mod:`dipcli.physics.base`); :class:`Denoise`,
:class:`Inpaint` and :class:`SuperRes` are the problems the tasks solve; :mod:`~dipcli.physics.noise`
estimates σ from an image, :mod:`~dipcli.physics.camera` a photo's noise model (its level by
brightness and its correlation), :mod:`~dipcli.physics.masks` reads inpainting masks.
"""

from dipcli.physics.base import Problem
from dipcli.physics.denoise import Denoise
from dipcli.physics.inpaint import Inpaint, bernoulli_mask
from dipcli.physics.masks import POLARITIES, load_mask
from dipcli.physics.noise_models import CameraNoise, GaussianNoise
from dipcli.physics.superres import (
           SR_FACTORS,
           SR_KERNELS,
           Downsampler,
           SuperRes,
           bicubic_upscale,
           downsampling_kernel,
)

__all__ = ["POLARITIES", "SR_FACTORS", "SR_KERNELS", "CameraNoise", "Denoise", "Downsampler", "GaussianNoise",
           "Inpaint", "Problem", "SuperRes", "bernoulli_mask", "bicubic_upscale", "downsampling_kernel",
           "load_mask"]
