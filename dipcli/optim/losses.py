"""What a fit minimises: the data loss of a problem, recorrupted or not, and a scheduled regulariser.

The data loss is the mean squared error between the forward model's output and the observation,
over the pixels observed (:meth:`dipcli.physics.Problem.known`). The recorrupted loss (Pang,
Zheng, Quan & Ji, "Recorrupted-to-Recorrupted: Unsupervised Deep Learning for Image Denoising",
CVPR 2021) fits the output for the input moved by noise ``e`` to the observation moved the other
way: for Gaussian noise ``n`` of any covariance Σ and ``e = α·n'`` with ``n'`` a fresh draw of
the same noise, ``y + e`` and ``y − e/α²`` carry independent noise (their covariance is
Σ − α²Σ/α² = 0), so the expected error to the second is the error to the clean image plus a
constant, and the fit cannot copy its input's noise. White noise of σ is one such Σ; a photo's,
whose level follows the brightness and which is spatially and colour correlated
(:class:`dipcli.physics.noise_models.CameraNoise`), is another: :class:`dipcli.optim.parts.Input` draws
``e`` from the problem's noise model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dipcli.optim.config import FitConfig
from dipcli.physics import Problem


def data_loss(problem: Problem, output: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Mean squared error of ``problem.forward(output)`` to ``observed``, over the observed pixels
    (all channels); pixels the observation does not give (an inpainting's holes) do not count."""
    known = problem.known(output)
    predicted = problem.forward(output)
    if predicted.shape[-2:] != observed.shape[-2:]:
        raise ValueError(f"the forward model turns a {tuple(output.shape[-2:])} output into "
                         f"{tuple(predicted.shape[-2:])}, the observation is {tuple(observed.shape[-2:])}; "
                         "generate the problem's out_size")
    if known is None:
        return torch.mean((predicted - observed) ** 2)
    return torch.sum(known * (predicted - observed) ** 2) / (known.sum() * output.shape[1])


def recorrupted(observed: torch.Tensor, shake: torch.Tensor, shake_std: float, sigma: float) -> torch.Tensor:
    """The target ``y − e/α²`` for the input ``y + e``; ``e = α·n`` with ``n`` a draw of the noise,
    whose level is ``sigma``, so that α = ``shake_std`` / σ (``shake_std`` = ασ, the jitter)."""
    return observed - shake * (sigma / shake_std) ** 2


@dataclass
class Objective:
    """One member's loss at a step: ``data_weight(it) · fidelity + λ(it) · regulariser``.

    The fidelity is the data loss, or with ``config.recorrupt`` the data loss to the recorrupted
    target (which needs the problem's noise model and a jitter of the input).
    """

    problem: Problem
    config: FitConfig

    def __post_init__(self) -> None:
        c = self.config
        if c.recorrupt and (c.input != "observation" or c.reg_noise <= 0):
            raise ValueError("fit: recorrupt needs the observation as the input and a jitter (reg_noise > 0)")
        if c.recorrupt and (self.problem.noise is None):
            raise ValueError("recorrupt needs the noise level: pass --sigma")

    def __call__(self, output: torch.Tensor, observed: torch.Tensor, shake: torch.Tensor | None,
                 it: int) -> tuple[torch.Tensor, torch.Tensor, float | None]:
        """The term to minimise, the plain data loss (what is reported and checked) and λ now."""
        c = self.config
        plain = data_loss(self.problem, output, observed)
        lam = c.reg_weight(it) if c.regulariser is not None else None
        fidelity = plain
        if c.recorrupt:
            target = recorrupted(observed, shake, c.reg_noise, self.problem.noise.sigma)
            fidelity = data_loss(self.problem, output, target)
        term = fidelity if c.data_weight is None else c.data_weight(it) * fidelity
        if lam:
            term = term + lam * c.regulariser(output, observed)
        return term, plain, lam
