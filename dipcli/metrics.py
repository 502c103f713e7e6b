"""Quality metrics computed on the device, so the fitting loop need not copy images to the host."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """PSNR in dB for images in [0, 1]; a 0-d tensor (call ``.item()`` only when displaying)."""
    mse = torch.mean((x.clamp(0, 1) - ref) ** 2)
    return -10.0 * torch.log10(mse.clamp_min(1e-12))


def _gaussian_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    g = torch.arange(size, dtype=torch.float32, device=device) - size // 2
    g = torch.exp(-(g**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004: Gaussian window 11/1.5, K1=0.01, K2=0.03) over channels.

    Same constants as ``skimage.metrics.structural_similarity(gaussian_weights=True,
    use_sample_covariance=False, data_range=1)``, which the tests compare against.
    """
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
