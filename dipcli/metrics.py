"""How a result is scored against a clean reference: one PSNR and SSIM, on the device.

The fitting loop scores at every check without copying images to the host; the final score of a
written image goes through the same function (numpy arrays are accepted as ``(H, W, C)``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dipcli.tensors import to_nchw


def _nchw(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    return to_nchw(x) if isinstance(x, np.ndarray) else x


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """Luma of ITU-R BT.601 on [0, 1]: ``skimage.color.rgb2ycbcr(x)[..., 0] / 255`` (16/255–235/255).

    Greyscale (one channel) is returned as it is, which is what SR papers score for grey images.
    """
    if x.shape[1] == 1:
        return x
    coeffs = torch.tensor([65.481, 128.553, 24.966], dtype=x.dtype, device=x.device) / 255.0
    return (x * coeffs.view(1, 3, 1, 1)).sum(dim=1, keepdim=True) + 16.0 / 255.0


def _crop_border(x: torch.Tensor, border: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if border <= 0 or min(h, w) <= 2 * border:  # too small to crop: measure the whole image
        return x
    return x[..., border: h - border, border: w - border]


def psnr(x: torch.Tensor | np.ndarray, ref: torch.Tensor | np.ndarray, *, luma: bool = False,
         border: int = 0) -> torch.Tensor:
    """PSNR in dB (peak 1) of ``x`` against ``ref``, images in [0, 1]; a 0-d tensor.

    ``luma``: of the Y channel (BT.601), as super-resolution papers score; ``border``: that many
    pixels left out at each side. Tensors are ``(N, C, H, W)``, arrays ``(H, W, C)``.
    """
    x, ref = _nchw(x), _nchw(ref)
    ref = ref.to(x.device)
    x = x.clamp(0, 1)
    if luma:
        x, ref = rgb_to_y(x), rgb_to_y(ref)
    x, ref = _crop_border(x, border), _crop_border(ref, border)
    mse = torch.mean((x - ref) ** 2)
    return -10.0 * torch.log10(mse.clamp_min(1e-12))


def _gaussian_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    g = torch.arange(size, dtype=torch.float32, device=device) - size // 2
    g = torch.exp(-(g**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x: torch.Tensor | np.ndarray, ref: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004: Gaussian window 11/1.5, K1=0.01, K2=0.03) over channels.

    Same constants as ``skimage.metrics.structural_similarity(gaussian_weights=True,
    use_sample_covariance=False, data_range=1)``, which the tests compare against.
    """
    x, ref = _nchw(x), _nchw(ref)
    ref = ref.to(x.device)
    x = x.clamp(0, 1).float()
    c = x.shape[1]
    g = _gaussian_window(device=x.device)

    def blur(t: torch.Tensor) -> torch.Tensor:
        t = F.conv2d(t, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        return F.conv2d(t, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)

    mx, my = blur(x), blur(ref)
    sxx = blur(x * x) - mx * mx
    syy = blur(ref * ref) - my * my
    sxy = blur(x * ref) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.mean()
