"""The noise models a problem can carry: white Gaussian noise of one σ, and a photo's noise read
from the image (:mod:`dipcli.physics.camera` does the reading), with the rule by which ``--noise
auto`` takes the latter.

Each model gives what the fit asks of it: ``sigma`` (one level, for the rules that take one),
``sample``/``sampler`` (draws, for the recorrupted loss) and ``readout`` (what the record says of
the noise, in words that are true of it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from dipcli.physics import noise_blocks as nb
from dipcli.physics.camera import WHITE_WIDTH, Correlation, NoiseCurve, read_noise, sample_noise
from dipcli.physics.noise import _noise_sample, finest_scale_sigma


@dataclass(frozen=True)
class GaussianNoise:
    """Additive white Gaussian noise of standard deviation ``sigma`` (0–1 scale), clipped to [0, 1].

    ``estimated``: σ was read off the image rather than given, so it may be off (and real noise
    is rarely white): stop rules then keep a check that needs no noise model beside it.
    """

    sigma: float
    estimated: bool = False
    name: ClassVar[str] = "gaussian"
    white: ClassVar[bool] = True  # every pixel's noise independent, of one σ

    def sample(self, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A draw of the noise for an observation shaped like ``like``: σ·N(0, 1) per pixel."""
        return self.sigma * torch.randn(like.shape, device=like.device, generator=generator)

    def sampler(self, like: torch.Tensor,
                generator: torch.Generator | None = None) -> Callable[[], torch.Tensor]:
        """:meth:`sample` for ``like`` as a function of nothing (see :meth:`CameraNoise.sampler`)."""
        return lambda: self.sample(like, generator)

    @property
    def budget_level(self) -> tuple[float, bool]:
        """The level a preset's budget is chosen by (:func:`dipcli.api.presets.budget`): σ, white."""
        return self.sigma, False

    def variance(self, brightness: np.ndarray) -> np.ndarray:
        """The noise variance at each pixel of an image of ``brightness``: σ² everywhere."""
        return np.full(np.shape(brightness), self.sigma**2, dtype=np.float32)

    def readout(self) -> dict:
        """What the record says of the noise (0–255 scale): this model, its level, no correlation."""
        level = round(self.sigma * 255, 2)
        how = "estimated, assumed white" if self.estimated else "given"
        return {"noise_model": self.name, "noise_sigma_range": [level, level], "noise_correlation_px": None,
                "noise": f"noise σ {level:.3g}, white Gaussian ({how})"}


@dataclass(frozen=True, eq=False)
class CameraNoise:
    """A photo's noise: a level that depends on the brightness, spatially and colour correlated.

    Read from the image by :func:`dipcli.physics.noise_models.read_camera_noise`: ``curve`` gives the
    variance at each brightness per channel (σ²(x) = a·x + b), ``correlation`` the kernel per
    decorrelated colour component and their mixing into channels (white noise through each kernel,
    mixed, has the noise's correlation with unit variance). ``sigma`` is one level for what takes
    one (a stop rule, a preset's budget): the RMS of σ over the image it was read from. Always
    ``estimated``.
    """

    curve: NoiseCurve
    correlation: Correlation
    sigma: float
    estimated: bool = True
    name: ClassVar[str] = "camera"
    white: ClassVar[bool] = False

    def sample(self, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A draw of the noise for the observation ``like`` ``(N, C, H, W)``: white noise per colour
        component convolved with its kernel (from a margin, so that the statistics hold up to the
        border), mixed into channels, scaled per pixel by σ at the observation's brightness (an
        unbiased guess of σ² at the clean brightness, the variance being affine in it)."""
        return self.sampler(like, generator)()

    def sampler(self, like: torch.Tensor,
                generator: torch.Generator | None = None) -> Callable[[], torch.Tensor]:
        """:meth:`sample` for ``like`` as a function of nothing, what depends on ``like`` alone (the
        kernels on its device, σ at each of its pixels) worked out once: a fit draws at every step."""
        kernels = torch.as_tensor(self.correlation.kernels, dtype=torch.float32, device=like.device)[:, None]
        mixing = torch.as_tensor(self.correlation.mixing, dtype=torch.float32, device=like.device)
        a, b = (torch.as_tensor(v, dtype=torch.float32, device=like.device)[None, :, None, None]
                for v in (self.curve.a, self.curve.b))
        scale = (a * like.detach().float() + b).clamp_min(0).sqrt().contiguous()  # the layout of the draws
        k, side = kernels.shape[0], kernels.shape[-1]
        n, _, h, w = like.shape

        def draw() -> torch.Tensor:
            white = torch.randn((n, k, h + side - 1, w + side - 1), device=like.device, generator=generator)
            unit = torch.einsum("ck,nkhw->nchw", mixing, F.conv2d(white, kernels, groups=k))
            return (unit * scale).contiguous(memory_format=torch.channels_last)

        return draw

    @property
    def budget_level(self) -> tuple[float, bool]:
        """The level a preset's budget is chosen by (:func:`dipcli.api.presets.budget`), and whether
        the noise is correlated: σ × the correlation width (σ where it reads as white). Noise that
        moves together over w px is, at the low frequencies a DIP fits first, as strong as white
        noise of σ·w (its power spectrum near zero is σ²·w², :attr:`Correlation.widths`), so the net
        starts fitting it as early as it would that white noise (benchmarks/results/camera/budget.md)."""
        width = self.correlation.width if self.correlation.measured else 1.0
        correlated = width >= WHITE_WIDTH
        return (self.sigma * width if correlated else self.sigma), correlated

    def at_level(self, sigma: float) -> CameraNoise:
        """This model with its RMS σ set to ``sigma`` (``--noise camera --sigma``): the curve's shape
        and the correlation as read, every σ scaled by one factor. Where texture passes for noise the
        readout reads too much of it, and the fit then smooths the texture away; a level the user
        knows (or tries lower) keeps it (benchmarks/results/camera/README.md, "The level given")."""
        if not sigma > 0:
            raise ValueError(f"sigma must be a positive noise level, got {sigma:g}")
        if self.sigma > 0:
            return replace(self, curve=self.curve.scaled(sigma / self.sigma), sigma=sigma)
        flat = NoiseCurve((0.0,) * self.curve.channels, (sigma**2,) * self.curve.channels, measured=False)
        return replace(self, curve=flat, sigma=sigma)

    def variance(self, brightness: np.ndarray) -> np.ndarray:
        """The noise variance at each pixel of an image ``(H, W, C)`` of ``brightness``: the curve's."""
        return np.broadcast_to(self.curve.variance(brightness), np.shape(brightness)).astype(np.float32)

    def readout(self) -> dict:
        """What the record says of the noise (0–255 scale): σ at the darkest and brightest level
        measured, the correlation width, the same in words, and the curve between (for a chart)."""
        dark, bright = (round(v * 255, 2) for v in self.curve.sigma_range())
        width = round(self.correlation.width, 2) if self.correlation.measured else None
        levels = np.linspace(*self.curve.span(), 9)
        return {"noise_model": self.name, "noise_sigma_range": [dark, bright], "noise_correlation_px": width,
                "noise": self.curve.summary(self.correlation),
                "noise_curve": {"brightness": levels.round(3).tolist(),  # σ per channel at each (0–255)
                                "sigma": (self.curve.sigma(levels[:, None]).T * 255).round(2).tolist()}}


# ---- the model of a photo's noise, and when --noise auto takes it ----------------------------------

CORRELATED = 0.75  # a white-noise σ under this share of the per-pixel σ: the noise is correlated
DEPENDENT = (2.0, 1 / 255)  # σ bright ≥ 2 × σ dark + 1 grey level: the noise depends on the signal
VISIBLE = 1 / 255  # an RMS σ under this (one grey level) is no noise worth a model


def read_camera_noise(pixels: np.ndarray) -> CameraNoise:
    """The noise model of a photo, read once (tiles share it): its curve, its correlation, and
    their RMS σ over the image, that level cross-checked (:func:`level_checked`). A large image
    is read from a mosaic of tiles spread over it (at most 1024² pixels, as
    :func:`dipcli.physics.noise.estimate_noise` reads one)."""
    sample = _noise_sample(nb.as_pixels(pixels))
    curve, correlation = read_noise(sample)
    return level_checked(CameraNoise(curve, correlation, float(np.sqrt(np.mean(curve.variance(sample))))),
                         sample)


def level_checked(model: CameraNoise, pixels: np.ndarray, draws: int = 3) -> CameraNoise:
    """``model`` (read from ``pixels``) at the geometric mean of its RMS σ and a second reading.

    The block readout (:func:`dipcli.physics.camera.read_noise`) takes texture for noise, so it
    reads over; the finest wavelet scale (:func:`dipcli.physics.noise.finest_scale_sigma`, without
    :func:`~dipcli.physics.noise.estimate_noise`'s floor, which takes out rounding the share must
    keep) sees texture far less, but only the share of
    correlated noise that changes from pixel to pixel, so divided by that share it reads under.
    The share is the model's own: the finest scale's σ of ``draws`` seeded draws of the model (at
    ``pixels``' brightness, on flat grey) over their RMS σ. The two err in opposite directions;
    their geometric mean brings the RMS σ read / true on the simulated camera from 1.17 / 1.09 /
    1.06 to 1.07 / 0.98 / 0.96 (acceptance crops, three levels) and 1.41 / 1.18 / 1.13 to 1.32 /
    1.10 / 1.01 (held out), and the default's PSNR up by 0.02–0.28 dB and 0.16–0.30 dB on them
    (benchmarks/explore/level_crosscheck.py, readout_trial.py ``geo``; results/camera/README.md).
    Left as read where the curve was not measured or either reading is zero.
    """
    if not model.curve.measured or model.sigma <= 0:
        return model
    rng = np.random.default_rng(0)
    noise = model.correlation if model.correlation.measured else None
    shares = []
    for _ in range(draws):
        draw = sample_noise(pixels.shape, model.curve, noise, pixels, rng)
        rms = float(np.sqrt(np.mean(draw.var(axis=(0, 1)))))
        shares.append(finest_scale_sigma(0.5 + draw - draw.mean()) / rms)
    second = finest_scale_sigma(pixels) / float(np.mean(shares))
    return model.at_level(float(np.sqrt(model.sigma * second))) if second > 0 else model


def camera_like(model: CameraNoise, white_sigma: float) -> bool:
    """Whether ``--noise auto`` takes the camera model ``model`` rather than white Gaussian noise
    of ``white_sigma`` (:func:`dipcli.physics.noise.estimate_noise`, the finest wavelet scale's).

    It does when the curve was measured, its RMS σ is at least :data:`VISIBLE` (one grey level),
    and the noise is either

    * **correlated**: the white-noise σ is under :data:`CORRELATED` (0.75) × the curve's RMS σ.
      The finest scale sees only the part of the noise that changes from pixel to pixel, so
      demosaicked, denoised and compressed noise reads far below its per-pixel level there. On
      256² crops of Set9 with white noise of σ 5, 15, 25 and 50 the ratio is 0.67–1.07 (0.88 and
      up from σ 15); through the simulated camera of benchmarks/camera.py (Brooks et al.'s,
      three levels) 0.21–0.38; the real ISO series at ISO 6400–51200 0.40–0.71
      (benchmarks/explore/auto_rule.py, results/camera/auto_rule.md, the model as
      :func:`read_camera_noise` gives it, its level checked; with the readout before 2026-12-07,
      which read texture as more noise, the line was 0.7 and ISO 25,600 read 0.66).
      The correlation width itself decides nothing: texture reads as 1.1–2.6 px of correlation
      on those crops with white noise of σ 5; or
    * **signal-dependent**: σ at the brightest level measured is at least twice σ at the darkest
      plus one grey level (:data:`DEPENDENT`): shot noise (σ² = a·x + b with b small) gives a
      ratio of 2–4 over the levels a photo spans, while texture only in the bright (or dark) parts
      of an image with faint white noise rarely doubles it.

    Otherwise white Gaussian noise of ``white_sigma``, as before the camera model. Known limit:
    the curve reads texture as noise where the noise is faint, so a nearly clean textured image
    (8 of those 9 crops without noise) and some with faint white noise (σ 5: 3 of the 9) take
    the camera model; ``--noise gaussian`` (or ``--sigma``) keeps them white.
    """
    if not model.curve.measured or model.sigma < VISIBLE:
        return False
    dark, bright = model.curve.sigma_range()
    factor, step = DEPENDENT
    return white_sigma < CORRELATED * model.sigma or bright >= factor * dark + step
