"""The Python API: one function per task, numpy (or a path) in, a :class:`Result` out.

    >>> from dipcli import denoise
    >>> result = denoise(noisy, sigma=25)          # noisy: (H, W) or (H, W, C), uint8/uint16/float
    >>> restored = result.image                    # same dtype and layout as ``noisy``

Each function specifies its task once (:func:`dipcli.api.spec.make_spec`, with the defaults and
presets of :mod:`dipcli.api.presets`), plans its input (:mod:`dipcli.api.plan`) and runs the plan
(:mod:`dipcli.api.execute`), as the command line (:mod:`dipcli.cli.app`) and the batch runners
(:mod:`dipcli.batch`) do. σ is given on the 0–255 scale, as users know it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dipcli.api.arguments import check_arguments
from dipcli.api.execute import record, run_plan
from dipcli.api.inputs import ImageLike, TaskInput, as_array, as_image
from dipcli.api.plan import make_plan
from dipcli.api.presets import TWO_STAGE_DEFAULTS
from dipcli.api.spec import Options, make_spec, sigma_from_255, tile_count
from dipcli.errors import Fail
from dipcli.optim import Event, FitResult


@dataclass
class Result:
    """What a task function returns.

    ``image``: the restored image in the input's dtype and layout (a path's image as uint8,
    uint16 or, from a float TIFF, float32; ``(H, W)`` for grey and ``(H, W, C)`` with alpha
    carried through); ``fit``: the raw fit (its ``history`` holds the curves: loss and, with a
    reference, PSNR of the raw and averaged output at every check); ``settings``: everything the
    fit used and measured, as the command line's ``--json`` prints it; ``notes``: what the
    command line would have told; ``interrupted``: True only on the result a KeyboardInterrupt
    carries (see :func:`interrupted`).
    """

    image: np.ndarray
    iterations: int
    best_iteration: int
    stop_reason: str
    seconds: float
    psnr: float | None
    ssim: float | None
    history: list[dict]
    settings: dict
    notes: list[str]
    interrupted: bool
    fit: FitResult


class _Callback:
    """A fit subscriber that hands each event to a plain function."""

    def __init__(self, function: Callable[[Event], None]) -> None:
        self.function = function

    def on_event(self, event: Event) -> None:
        self.function(event)


_SHARED = ("iters", "arch", "width", "scales", "upsample", "stop", "precision", "lr", "seed", "device",
           "raw", "preset", "fits")


def _options(given: dict) -> Options:
    """The shared options out of a task function's arguments (``locals()``)."""
    return Options(**{k: given[k] for k in _SHARED if k in given}, tile=tile_count(given.get("tile", "auto")))


def _run(task: str, image: ImageLike, clean: ImageLike | None, mask: ImageLike | None, options: Options,
         progress: Callable[[Event], None] | None, **params) -> Result:
    spec = make_spec(task, options, has_clean=clean is not None, has_mask=mask is not None, **params)
    picture, layout = as_image(image, "image")
    src = TaskInput(picture, clean=None if clean is None else as_image(clean, "clean reference")[0],
                    mask=None if mask is None else as_image(mask, "mask")[0])
    planned = make_plan(spec, src)
    result = run_plan(planned, [_Callback(progress)] if progress else ())
    f = result.fit
    out = Result(as_array(result.image, layout), f.iterations, f.best_iteration, f.stop_reason, f.seconds,
                 result.psnr, result.ssim, f.history, {"task": task, **record(planned, result)},
                 planned.notes, f.interrupted, f)
    if f.interrupted:
        raise interrupted(out)
    return out


def interrupted(result: Result) -> KeyboardInterrupt:
    """The Ctrl-C that the fit caught to keep its best so far, to raise again with that result.

    A library must not swallow Ctrl-C: a loop over images stops, and so does the script, as for
    any KeyboardInterrupt. A plain one, not a subclass: Python ends a script on exactly that type
    by SIGINT, which tells a calling shell loop to stop too. ``result`` on it holds the best
    result so far (a :class:`Result` with ``interrupted=True``).
    """
    stop = KeyboardInterrupt("interrupted; the best result so far is in its .result")
    stop.result = result
    return stop


_COMMON_DOC = """
    iters : int, optional
        Iteration budget, the upper bound for every stop rule (default: the task's).
    arch, width, scales, upsample : optional
        The generator (``dip nets`` lists them); ``width="auto"`` picks it from the texture.
    stop : {"auto", "wmv", "discrepancy", "fixed"}, optional
        When to stop (default auto); the result is the averaged output at the detected best
        iteration. A preset that runs a fixed budget refuses it: name a net (``arch``) with it.
    precision : {"auto", "fp32", "bf16"}
    lr : float
        Adam's learning rate.
    seed : int
        Seed of every random draw, 0 to 2**32 - 1; CPU runs repeat bit for bit.
    device : {"auto", "cpu", "cuda", "mps"}
    tile : "auto", 0 or int
        Fit overlapping tiles of at most this many pixels and blend them (0: never).
    raw : bool
        Return the last raw output instead of the running average.
    progress : callable, optional
        Called with a :class:`dipcli.optim.loop.Event` at every check (every 10 iterations).

    Returns
    -------
    Result
        ``result.image`` in the input's dtype and layout, with iterations, stop, PSNR/SSIM
        (given a reference), seconds, curves and the settings used.

    Raises
    ------
    dipcli.Fail
        With a one-line message: a bad option or input (``code`` 2), or a failed fit (1).
    KeyboardInterrupt
        Ctrl-C during the fit, raised again once the fit has kept its best result so far, which
        the exception's ``result`` attribute holds (``getattr(exc, "result", None)``).
"""


def denoise(image: ImageLike, sigma: float | None = None, *, noise: str = "auto",
            wiener: bool = True,
            clean: ImageLike | None = None, add_noise: bool = False, preset: str | None = None,
            fits: int | None = None, iters: int | None = None, arch: str | None = None,
            width: int | str | None = None, scales: int | None = None, upsample: str | None = None,
            stop: str | None = None, precision: str = "auto", lr: float = 0.01, seed: int = 0,
            device: str = "auto", tile: str | int = "auto", raw: bool = False,
            progress: Callable[[Event], None] | None = None) -> Result:
    """Remove noise with a Deep Image Prior [1]_: white Gaussian noise, or a photo's.

    Parameters
    ----------
    image : array or path
        ``(H, W)`` or ``(H, W, C)`` (C = 1–4, the last of 2 or 4 being alpha), uint8, uint16 or
        float in [0, 1]; or an image file.
    sigma : float, optional
        White-noise standard deviation on the 0–255 scale; estimated from the image when omitted.
        With ``noise="camera"``: the RMS σ of the photo's noise model read from the image (its
        shape kept); lower keeps texture the readout took for noise.
    noise : {"auto", "gaussian", "camera"}
        The noise model. ``gaussian``: white Gaussian noise of ``sigma`` (or of σ estimated).
        ``camera``: a photo's noise, read from the image (:mod:`dipcli.physics.camera`): its σ at
        each brightness per channel and its spatial and colour correlation, which the recorrupted
        fit then draws its noise from; ``sigma`` sets its RMS level. ``auto``: ``gaussian`` when ``sigma``
        is given; otherwise ``camera`` when the model read from the image has an RMS σ of at least
        one grey level and its noise is correlated (the white-noise estimate, which sees only the
        finest scale, under 0.75 × that RMS σ) or signal-dependent (σ at the brightest level
        measured at least twice σ at the darkest plus one grey level), else ``gaussian``
        (:func:`dipcli.physics.noise_models.camera_like` gives the measurements behind the rule).
        ``result.settings`` says what was used: ``noise_model``, ``noise_sigma_range`` (σ dark and
        bright, 0–255), ``noise_correlation_px`` and ``noise`` (the same in words).
    wiener : bool
        Filter the noisy image again with the fit as the pilot of an empirical Wiener filter (8×8
        DCT patches in an opponent colour space, the noise model's variance per coefficient:
        :func:`dipcli.physics.wiener.wiener_stage`, BM3D's second step): where the noise is faint
        the fit stops short of the image and the detail comes back; where it kept noise, that
        goes. False: the fit alone.
    clean : array or path, optional
        The clean image, to score against (PSNR/SSIM); it never steers the fit.
    add_noise : bool
        Experiment: ``image`` is clean; add seeded N(0, σ²) noise, restore, score against it.
    preset : str, optional
        How to denoise (:data:`dipcli.api.presets.PRESETS`: ``fast``, ``balanced``, ``best``); default on
        a CPU :data:`dipcli.api.presets.CPU_PRESET`, unless ``arch`` names one net.
    fits : int, optional
        Average this many fits (1 to :data:`dipcli.api.arguments.MAX_FITS`) of the preset, from seeds
        ``seed``, ``seed`` + 1, … (default: the preset's own: ``best`` two, more where σ caps
        each fit's budget; :func:`dipcli.api.presets.members`).
    """
    check_arguments(locals())
    return _run("denoise", image, clean, None, _options(locals()), progress, sigma=sigma, noise=noise,
                add_noise=add_noise, wiener=wiener)


def two_stage(image: ImageLike, sigma: float | None = None, *, clean: ImageLike | None = None,
              add_noise: bool = False, tv_weight: float = TWO_STAGE_DEFAULTS["tv_weight"],
              stage1_frac: float = TWO_STAGE_DEFAULTS["stage1_frac"],
              schedule: str = TWO_STAGE_DEFAULTS["schedule"], tv: str = TWO_STAGE_DEFAULTS["tv"],
              stage1: str = TWO_STAGE_DEFAULTS["stage1"], iters: int | None = None, arch: str | None = None,
              width: int | str | None = None, scales: int | None = None, upsample: str | None = None,
              stop: str | None = None, precision: str = "auto", lr: float = 0.01, seed: int = 0,
              device: str = "auto", tile: str | int = "auto", raw: bool = False,
              progress: Callable[[Event], None] | None = None) -> Result:
    """Denoise in two stages: DIP with an added total-variation term, then plain DIP [3]_.

    Parameters
    ----------
    image, sigma, clean, add_noise
        As for :func:`denoise`.
    tv_weight : float
        λ of the per-pixel TV term in stage 1 (0.79 is the report's 1e-6 on a summed 512²×3 TV).
    stage1_frac : float
        Fraction of the iterations in stage 1.
    schedule : {"step", "linear", "cosine"}
        λ over stage 1.
    tv : {"anisotropic", "isotropic"}
    stage1 : {"tv", "prefilter"}
        ``prefilter``: stage 1 fits a TV-denoised copy instead of the noisy image.
    """
    check_arguments(locals())
    return _run("two-stage", image, clean, None, _options(locals()), progress, sigma=sigma,
                add_noise=add_noise, tv_weight=tv_weight, stage1_frac=stage1_frac, schedule=schedule, tv=tv,
                stage1=stage1)


def inpaint(image: ImageLike, mask: ImageLike | None = None, *, mask_known: str = "auto",
            drop: float | None = None, composite: bool = True, clean: ImageLike | None = None,
            preset: str | None = None, fits: int | None = None, iters: int | None = None,
            arch: str | None = None,
            width: int | str | None = None, scales: int | None = None, upsample: str | None = None,
            stop: str | None = None, precision: str = "auto", lr: float = 0.01, seed: int = 0,
            device: str = "auto", tile: str | int = "auto", raw: bool = False,
            progress: Callable[[Event], None] | None = None) -> Result:
    """Fill missing pixels with a Deep Image Prior [1]_.

    Parameters
    ----------
    image : array or path
        The image with holes (their values are ignored).
    mask : array or path
        Same size as ``image``; a bool array is True where pixels are known, an image is
        binarised at mid-grey with its polarity given by ``mask_known``.
    mask_known : {"auto", "white", "black"}
        Which mask colour marks known pixels; ``auto``: the larger region.
    drop : float, optional
        Experiment instead of a mask: drop this fraction of pixels at random (seeded) and score
        the fill against ``image``.
    composite : bool
        Keep the known pixels exactly (False: the raw network output).
    preset : str, optional
        How to inpaint (:data:`dipcli.api.presets.INPAINT_PRESETS`: ``fast``, ``best``); default
        :data:`INPAINT_PRESET` unless ``arch`` names one net.
    fits : int, optional
        Average this many fits (1 to :data:`dipcli.api.arguments.MAX_FITS`) of the preset, from seeds
        ``seed``, ``seed`` + 1, … (default: the preset's own; ``best`` two).
    """
    check_arguments(locals())
    if isinstance(mask, np.ndarray) and mask.dtype == bool and mask_known == "auto":
        mask_known = "white"  # True = known, as documented
    return _run("inpaint", image, clean, mask, _options(locals()), progress, mask_known=mask_known, drop=drop,
                composite=composite)


def superres(image: ImageLike, factor: int = 4, *, kernel: str = "lanczos2", make_lr: bool = False,
             clean: ImageLike | None = None, iters: int | None = None, arch: str | None = None,
             width: int | str | None = None, scales: int | None = None, upsample: str | None = None,
             stop: str | None = None, precision: str = "auto", lr: float = 0.01, seed: int = 0,
             device: str = "auto", raw: bool = False,
             progress: Callable[[Event], None] | None = None) -> Result:
    """Upscale ``factor``× with a Deep Image Prior [1]_ and a fixed downsampler as forward model.

    Parameters
    ----------
    image : array or path
        The low-resolution image (with ``make_lr``: the high-resolution one to shrink first).
    factor : {2, 3, 4, 8}
    kernel : {"lanczos2", "bicubic", "box", "gauss"}
        The downsampler the low-resolution image came from (Lanczos-2: the DIP paper's).
    make_lr : bool
        Experiment: shrink ``image``, restore it, and score against it.
    clean : array or path, optional
        The high-resolution reference, ``factor`` times the size of ``image``.
    """
    check_arguments(locals())
    return _run("superres", image, clean, None, _options(locals()), progress, factor=factor, kernel=kernel,
                make_lr=make_lr)


for _task in (denoise, two_stage, inpaint, superres):
    if _task.__doc__:  # None under python -OO
        _task.__doc__ += _COMMON_DOC


def select_width(image: ImageLike, sigma: float | None = None):
    """Measure texture and pick the decoder width (Liu et al. [2]_): a :class:`dipcli.texture.Score`.

    Parameters
    ----------
    image : array or path
    sigma : float, optional
        Noise σ on the 0–255 scale (estimated when omitted), so that noise does not read as texture.
    """
    from dipcli.texture import complexity

    check_arguments(locals())
    sigma = sigma_from_255(sigma)
    picture, _ = as_image(image, "image")
    try:
        return complexity(picture.pixels, sigma)
    except ValueError as exc:
        raise Fail(str(exc)) from None
