"""Forward models: what was done to the image, and how to measure a candidate against it.

A problem knows nothing about networks or progress bars. It states what the fitting loop, the
job and the stop rules may ask of it in one explicit contract, :class:`Problem`: the loss
between the generator's output and the observation (required), how to make an observation from
a clean image (for experiments), and optional capabilities with defaults that mean "none":

* ``noise``: the noise model (:class:`GaussianNoise`), when the problem has one. Stop rules ask
  for it instead of a task's name: with a known σ the discrepancy principle applies.
* ``out_size``: the size the net must generate (larger than the observation for
  super-resolution).
* ``tileable`` and ``window``: a problem that acts pixel by pixel can be cut to a window of the
  image, which lets a tiled job fit each tile as a problem of its own; super-resolution cannot
  (its blur reaches across a window's border, and the low- and high-resolution windows would
  have to match).
* ``free_pixels``: the pixels no observation pins down (an inpainting hole), which a rule that
  watches the output watches.
* ``composite``: what to write, given the net's output (inpainting keeps the known pixels).
* ``psnr``: how results are scored: inpainting scores the composite it writes,
  super-resolution the Y channel as its literature does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dipcli.metrics import psnr
from dipcli.tensors import to_nchw


@dataclass(frozen=True)
class GaussianNoise:
    """Additive white Gaussian noise of standard deviation ``sigma`` (0–1 scale), clipped to [0, 1].

    ``estimated``: σ was read off the image rather than given, so it may be off (and real noise
    is rarely white): stop rules then keep a check that needs no noise model beside it.
    """

    sigma: float
    estimated: bool = False


class Problem:
    """The contract between a forward model and the code that fits it (see the module docstring).

    Subclasses implement :meth:`loss` and :meth:`observe`, and override the capabilities they
    have; the defaults describe a problem with no noise model, that cannot be tiled, generates
    the observation's size, pins down every pixel, writes the net's output as it is and is
    scored by plain PSNR.
    """

    name: ClassVar[str] = "problem"
    tileable: ClassVar[bool] = False

    @property
    def noise(self) -> GaussianNoise | None:
        return None

    def loss(self, output: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def observe(self, clean: np.ndarray, seed: int = 0) -> np.ndarray:
        raise NotImplementedError

    def out_size(self, observed_size: tuple[int, int]) -> tuple[int, int]:
        """The size the net must generate for an observation of ``observed_size``."""
        return tuple(observed_size)

    def window(self, rows: slice, cols: slice) -> Problem:
        """The problem on a window of the image (a tile); only for ``tileable`` problems."""
        raise ValueError(f"--tile works for problems that act pixel by pixel (denoising, inpainting), "
                         f"not {self.name}")

    def free_pixels(self, like: torch.Tensor) -> torch.Tensor | None:
        """A ``(1, 1, H, W)`` 0/1 tensor of the pixels no observation pins down; None: none."""
        return None

    def composite(self, output: np.ndarray, observed: np.ndarray) -> np.ndarray:
        """The image to write, given the net's output and the observation."""
        return output

    def known_mask(self) -> np.ndarray | None:
        """``(H, W)`` bool, True where the observation gives a pixel exactly; None: no such split."""
        return None

    def sure(self, data_loss: torch.Tensor, output: torch.Tensor, moved: torch.Tensor, probe: torch.Tensor,
             eps: float) -> torch.Tensor:
        """SURE of the MSE, for a problem whose noise model is Gaussian (see :meth:`Denoise.sure`)."""
        raise ValueError(f"SURE needs additive Gaussian noise of known σ; {self.name} has no such model")

    def recorrupted(self, observed: torch.Tensor, shake: torch.Tensor, shake_std: float) -> torch.Tensor:
        """The Recorrupted-to-Recorrupted target (see :meth:`Denoise.recorrupted`)."""
        raise ValueError(f"recorrupt needs additive Gaussian noise of known σ; {self.name} has no such model")

    def psnr(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """PSNR (dB) of a candidate against a clean reference, as this problem's literature scores it."""
        return psnr(x, ref)


@dataclass(frozen=True)
class Denoise(Problem):
    """Additive white Gaussian noise of standard deviation ``sigma`` (on the 0–1 scale).

    ``sigma_estimated``: σ was estimated from the image (see :class:`GaussianNoise`).
    """

    sigma: float | None = None
    sigma_estimated: bool = False
    name: ClassVar[str] = "denoise"
    tileable: ClassVar[bool] = True

    @property
    def noise(self) -> GaussianNoise | None:
        return None if self.sigma is None else GaussianNoise(self.sigma, self.sigma_estimated)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def loss(self, output: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        return torch.mean((self.forward(output) - observed) ** 2)

    def sure(self, data_loss: torch.Tensor, output: torch.Tensor, moved: torch.Tensor, probe: torch.Tensor,
             eps: float) -> torch.Tensor:
        """Stein's unbiased risk estimate of the per-pixel MSE of ``output`` = f(y) to the clean image.

        SURE = ‖y − f(y)‖²/N − σ² + 2σ² div f(y)/N, for y = x + N(0, σ²) (Stein 1981). The
        divergence is estimated by one Monte-Carlo probe b ~ N(0, 1): div f ≈ bᵀ(f(y + εb) − f(y))/ε
        (Ramani, Blu & Unser, IEEE TIP 2008), where ``moved`` is f(y + εb). Minimised as a loss it
        penalises a net that copies its input (whose divergence is N), which is what lets a fit on
        the noisy image itself run on without fitting the noise (Metzler et al., 2018).
        ``data_loss`` is the mean squared residual the loop already computed.
        """
        if self.sigma is None:
            raise ValueError("SURE needs the noise level: pass --sigma")
        divergence = torch.mean(probe * (moved - output)) / eps
        return data_loss - self.sigma**2 + 2 * self.sigma**2 * divergence

    def recorrupted(self, observed: torch.Tensor, shake: torch.Tensor, shake_std: float) -> torch.Tensor:
        """The target y − e/α² for the input y + e, where e = α·N(0, σ²) has std ``shake_std`` = ασ.

        Pang, Zheng, Quan & Ji, "Recorrupted-to-Recorrupted: Unsupervised Deep Learning for Image
        Denoising", CVPR 2021: y + αz and y − z/α (z ~ N(0, σ²)) have uncorrelated, hence for
        Gaussian noise independent, noise, so E‖f(y + αz) − (y − z/α)‖² = E‖f(y + αz) − x‖² + c.
        """
        if self.sigma is None:
            raise ValueError("recorrupt needs the noise level: pass --sigma")
        return observed - shake * (self.sigma / shake_std) ** 2

    def window(self, rows: slice, cols: slice) -> Denoise:
        """The problem on a window of the image (a tile): the same, since noise is per pixel."""
        return self

    def observe(self, clean: np.ndarray, seed: int) -> np.ndarray:
        """Add seeded N(0, σ²) noise and clip to [0, 1], as the DIP literature does."""
        if self.sigma is None:
            raise ValueError("a noise level is needed to simulate noise")
        rng = np.random.default_rng(seed)
        noisy = clean + rng.normal(0.0, self.sigma, size=clean.shape)
        return np.clip(noisy, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Inpainting


def bernoulli_mask(shape: tuple[int, int], drop: float, seed: int) -> np.ndarray:
    """A ``(H, W)`` bool mask (True = known) with each pixel missing with probability ``drop``.

    The DIP paper's "restoration" experiment (50 % of pixels dropped at random). Seeded, so a
    benchmark makes the same holes every run.
    """
    if not 0.0 <= drop < 1.0:
        raise ValueError(f"drop must be in [0, 1) (got {drop})")
    rng = np.random.default_rng(seed)
    return rng.random(tuple(shape)[:2]) >= drop


def _pad_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The mask at ``size``; rows/columns beyond it (the job layer's padding) count as missing."""
    h, w = mask.shape
    if (h, w) == tuple(size):
        return mask
    if h > size[0] or w > size[1]:
        raise ValueError(f"the mask is {w}×{h} but the image is {size[1]}×{size[0]}; "
                         "give a mask of the same size as the image")
    return np.pad(mask, ((0, size[0] - h), (0, size[1] - w)), constant_values=False)


@dataclass(eq=False)
class Inpaint(Problem):
    """Missing pixels: the net must match the observation on the known ones only.

    ``mask`` is ``(H, W)`` bool, True = known. The device copy of the mask is made on first use,
    on the output's device, and kept. Observations padded at the bottom/right (to the net's
    multiple) are fine: the padding counts as missing, so it constrains nothing.
    """

    mask: np.ndarray
    name: ClassVar[str] = "inpaint"
    tileable: ClassVar[bool] = True
    _device_masks: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        mask = np.asarray(self.mask)
        if mask.ndim != 2:
            raise ValueError(f"the mask must be (H, W) (got shape {mask.shape})")
        self.mask = mask.astype(bool, copy=False)
        if not self.mask.any():
            raise ValueError("the mask has no known pixel; nothing to fit")

    def mask_tensor(self, like: torch.Tensor) -> torch.Tensor:
        """The mask as a ``(1, 1, H, W)`` 0/1 tensor on ``like``'s device, dtype and size."""
        size = tuple(like.shape[-2:])
        key = (like.device, like.dtype, size)
        if key not in self._device_masks:
            m = torch.from_numpy(_pad_mask(self.mask, size))[None, None]
            self._device_masks[key] = m.to(device=like.device, dtype=like.dtype)
        return self._device_masks[key]

    def known_mask(self) -> np.ndarray:
        return self.mask

    def free_pixels(self, like: torch.Tensor) -> torch.Tensor | None:
        """The holes as a ``(1, 1, H, W)`` 0/1 tensor (None if there are none inside the image).

        The net's output there is constrained by nothing but its own structure, so that is
        where ES-WMV watches it settle and wander: over the whole image the known pixels, which
        settle early and stay, drown the signal (on the vase mask the rule never fired).
        """
        holes = 1 - self.mask_tensor(like)
        return holes if (~self.mask).any() else None

    def window(self, rows: slice, cols: slice) -> Inpaint:
        """The problem on a window of the image (a tile): that window's part of the mask."""
        part = self.mask[rows, cols]
        if not part.any():
            raise ValueError(f"the tile at row {rows.start}, column {cols.start} lies wholly in a hole, "
                             "with no known pixel to fit; use a larger --tile")
        return Inpaint(part)

    def loss(self, output: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """Mean squared error over the known pixels (all channels); holes do not count."""
        m = self.mask_tensor(output)
        known = m.sum() * output.shape[1]
        return torch.sum(m * (output - observed) ** 2) / known

    def observe(self, clean: np.ndarray, seed: int = 0) -> np.ndarray:
        """Set the missing pixels to 0 (the loss ignores them; 0 makes the holes visible).

        ``seed`` is unused (the mask is fixed); it is accepted to match the other problems.
        """
        m = _pad_mask(self.mask, clean.shape[:2])
        return np.where(m[:, :, None], clean, 0.0).astype(np.float32)

    def composite(self, output: np.ndarray, observed: np.ndarray) -> np.ndarray:
        """Known pixels exactly as observed, holes from the network: what to write out."""
        if output.shape != observed.shape:
            raise ValueError(f"output {output.shape} and observation {observed.shape} differ in shape")
        m = _pad_mask(self.mask, output.shape[:2])
        return np.where(m[:, :, None], observed, output).astype(np.float32)

    def psnr(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """PSNR of the composite, i.e. of the image that will be written.

        The known pixels are taken from ``ref``: for inpainting they are the observed pixels,
        kept exactly, so only the holes (and the net's fill of them) count against the score.
        """
        m = self.mask_tensor(x).bool()
        return psnr(torch.where(m, ref, x.clamp(0, 1)), ref)


# --------------------------------------------------------------------------------------------
# Super-resolution

SR_FACTORS = (2, 3, 4, 8)
SR_KERNELS = ("lanczos2", "bicubic", "box", "gauss")


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel (a = −0.5: MATLAB ``imresize``, PIL)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def downsampling_kernel(factor: int, kernel: str = "lanczos2") -> np.ndarray:
    """The 1-D anti-aliasing kernel for ×``factor`` decimation (float64, sums to 1).

    Taps sit at the high-resolution pixel centres around the centre of each ``factor``-wide
    block (half-pixel offsets for even factors, whole ones for odd), as in the DIP paper's
    Lanczos-2 downsampler (kernel width 4F+1, support 2 low-resolution pixels). The 2-D kernel
    is the outer product of this one with itself.
    """
    if factor not in SR_FACTORS:
        raise ValueError(f"super-resolution factor must be one of {', '.join(map(str, SR_FACTORS))} "
                         f"(got {factor})")
    if kernel not in SR_KERNELS:
        raise ValueError(f"unknown downsampling kernel {kernel!r}; choose one of: {', '.join(SR_KERNELS)}")
    taps = 4 * factor + (factor % 2)  # even factor: 4F half-pixel taps; odd: 4F+1 whole-pixel taps
    x = (np.arange(taps) - (taps - 1) / 2) / factor  # tap positions in low-resolution pixels
    if kernel == "lanczos2":
        k = np.sinc(x) * np.sinc(x / 2) * (np.abs(x) < 2)
    elif kernel == "bicubic":
        k = _cubic(x)  # MATLAB's antialiased imresize: the cubic stretched by the factor
    elif kernel == "box":
        k = (np.abs(x) < 0.5).astype(np.float64)  # the mean of each F×F block
    else:
        sigma = (factor - 1) / 2 / factor  # skimage's anti-aliasing σ = (F−1)/2 HR pixels
        k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


class Downsampler(nn.Module):
    """Blur with a fixed kernel, then keep every ``factor``-th pixel: the SR forward operator.

    The kernel is a buffer, not a parameter: it moves with ``.to(device)`` but is never trained.
    Reflect padding keeps the borders unbiased; an ``(H, W)`` input gives ``(H // F, W // F)``.
    """

    def __init__(self, factor: int, kernel: str = "lanczos2") -> None:
        super().__init__()
        k = torch.from_numpy(downsampling_kernel(factor, kernel)).float()
        self.register_buffer("weight", torch.outer(k, k)[None, None])
        self.factor = factor
        self.pad = (k.numel() - factor) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.device != x.device:
            self.to(x.device)
        c, (h, w) = x.shape[1], x.shape[-2:]
        p = self.pad
        x = F.pad(x, (p, p, p, p), mode="reflect" if p < min(h, w) else "replicate")
        weight = self.weight.to(x.dtype).expand(c, 1, -1, -1)
        return F.conv2d(x, weight, stride=self.factor, groups=c)


@dataclass(eq=False)
class SuperRes(Problem):
    """×``factor`` super-resolution: the output is F× the observation in each direction.

    The net's output, downsampled by a fixed anti-aliasing kernel (Lanczos-2 by default, as in
    the DIP paper), must match the low-resolution observation.
    """

    factor: int
    kernel: str = "lanczos2"
    name: ClassVar[str] = "superres"
    downsampler: Downsampler = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.downsampler = Downsampler(self.factor, self.kernel)  # validates factor and kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsampler(x)

    def out_size(self, observed_size: tuple[int, int]) -> tuple[int, int]:
        """The size the net must generate for an observation of ``observed_size``."""
        return observed_size[0] * self.factor, observed_size[1] * self.factor

    def loss(self, output: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        low = self.downsampler(output)
        if low.shape[-2:] != observed.shape[-2:]:
            raise ValueError(f"output {tuple(output.shape[-2:])} downsampled ×{self.factor} is "
                             f"{tuple(low.shape[-2:])}, observation is {tuple(observed.shape[-2:])}; "
                             "generate out_size = observed size × factor")
        return torch.mean((low - observed) ** 2)

    def crop_hr(self, clean: np.ndarray) -> np.ndarray:
        """Crop the bottom/right so both sides divide by the factor (what :meth:`observe` sees)."""
        h, w = clean.shape[:2]
        return clean[: h - h % self.factor, : w - w % self.factor]

    def observe(self, clean: np.ndarray, seed: int = 0) -> np.ndarray:
        """Downsample a clean high-resolution image, clipped to [0, 1] like a saved image.

        Sides that do not divide by the factor are cropped first (:meth:`crop_hr`): score the
        result against ``crop_hr(clean)``. ``seed`` is unused (no noise is added).
        """
        hr = self.crop_hr(np.asarray(clean, dtype=np.float32))
        t = to_nchw(hr)
        with torch.no_grad():
            low = self.downsampler(t.to(self.downsampler.weight.device)).cpu()
        return np.clip(low[0].permute(1, 2, 0).numpy(), 0.0, 1.0).astype(np.float32)

    def psnr(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """The SR literature's PSNR: Y channel (BT.601), a ``factor``-pixel border left out."""
        return psnr_y(x, ref, border=self.factor)


def _nchw(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Accept ``(1, C, H, W)`` tensors or ``(H, W, C)`` numpy arrays (as the benchmarks hold them)."""
    return to_nchw(x) if isinstance(x, np.ndarray) else x


def _crop_border(x: torch.Tensor, border: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if border <= 0 or min(h, w) <= 2 * border:  # too small to crop: measure the whole image
        return x
    return x[..., border: h - border, border: w - border]


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """Luma of ITU-R BT.601 on [0, 1]: ``skimage.color.rgb2ycbcr(x)[..., 0] / 255`` (16/255–235/255).

    Greyscale (one channel) is returned as it is, which is what SR papers score for grey images.
    """
    if x.shape[1] == 1:
        return x
    coeffs = torch.tensor([65.481, 128.553, 24.966], dtype=x.dtype, device=x.device) / 255.0
    return (x * coeffs.view(1, 3, 1, 1)).sum(dim=1, keepdim=True) + 16.0 / 255.0


def psnr_y(x: torch.Tensor | np.ndarray, ref: torch.Tensor | np.ndarray, border: int = 0) -> torch.Tensor:
    """PSNR (dB, peak 1) of the Y channel with ``border`` pixels cut from each side; 0-d tensor."""
    x = _nchw(x)
    ref = _nchw(ref).to(x.device)
    y = _crop_border(rgb_to_y(x.clamp(0, 1)), border)
    return psnr(y, _crop_border(rgb_to_y(ref), border))


def psnr_rgb(x: torch.Tensor | np.ndarray, ref: torch.Tensor | np.ndarray, border: int = 0) -> torch.Tensor:
    """PSNR (dB, peak 1) over all channels with ``border`` pixels cut from each side; 0-d tensor."""
    x = _nchw(x)
    ref = _nchw(ref).to(x.device)
    return psnr(_crop_border(x, border), _crop_border(ref, border))


def bicubic_upscale(lr: np.ndarray, factor: int) -> np.ndarray:
    """The bicubic baseline: ``(h, w, C)`` → ``(h·F, w·F, C)``, clipped to [0, 1].

    Keys' cubic with a = −0.5 (MATLAB ``imresize``, PIL — the DIP paper's bicubic baseline).
    In torch that kernel is the ``antialias=True`` path; when enlarging it adds no smoothing.
    """
    h, w = lr.shape[:2]
    t = _nchw(lr)
    up = F.interpolate(t, size=(h * factor, w * factor), mode="bicubic", align_corners=False,
                       antialias=True)
    return np.clip(up[0].permute(1, 2, 0).numpy(), 0.0, 1.0).astype(np.float32)
