"""Running plans: a :class:`~dipcli.api.plan.Plan` in, the restored image and its record out.

A plan becomes an :class:`~dipcli.engine.run.Job` (whole, in tiles, one of an ensemble, or with
others of its size: ``--group``), its failures become one-line :class:`~dipcli.errors.Fail` s, and
what it used and gave becomes the record every output shares: a JSON line, a report row, the
Python API's ``Result.settings``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from dipcli.api.plan import Plan
from dipcli.engine.run import Job, JobResult, run_ensemble, run_group, run_job
from dipcli.errors import FAILURE, Fail
from dipcli.optim import resolve_device

# --group auto on a GPU: up to this many tiles of an image at once (fewer if memory says so):
# a 512² image's four tiles in 31 s instead of 45 s on an H100, the same PSNR (results/group).
GPU_TILE_GROUP = 16


def tile_group(plan: Plan) -> int:
    """How many tiles of one image to fit together: --group N, or for auto, a GPU's share."""
    group = plan.spec.options.group
    if not group.auto:
        return group.size
    try:
        return GPU_TILE_GROUP if resolve_device(plan.spec.options.device).type == "cuda" else 1
    except ValueError:  # an unusable --device fails where the fit starts, with its own message
        return 1


def make_job(plan: Plan, subscribers: Sequence = (), begin: Callable[[str], None] | None = None) -> Job:
    """The job of one plan; ``begin`` is called before each of its fits (the image, or each tile)."""
    o = plan.spec.options
    job = Job(plan.problem, plan.image, plan.net, plan.config, o.device, plan.reference, o.raw,
              plan.composite, list(subscribers), plan.tile, tile_group(plan), plan.warm)
    if begin is not None:
        job.begin = begin
    return job


@contextmanager
def fit_errors() -> Iterator[None]:
    """A fit's failures as :class:`Fail` s: bad settings exit 2, a failed computation 1."""
    try:
        yield
    except ValueError as exc:
        raise Fail(str(exc)) from None
    except (RuntimeError, MemoryError) as exc:
        raise Fail(f"fit failed: {str(exc).splitlines()[0]}", FAILURE) from None


def run_plan(plan: Plan, subscribers: Sequence = (), begin: Callable[[str], None] | None = None) -> JobResult:
    """Fit one plan (whole or in tiles; an ensemble fit by fit, averaged): the image to write, in
    the input's format, and its scores."""
    with fit_errors():
        if not plan.ensemble:
            return run_job(make_job(plan, subscribers, begin))
        members = [plan, *plan.ensemble]
        jobs = []
        for k, member in enumerate(members):
            say = None if begin is None else (lambda part, k=k: begin(f", fit {k + 1}/{len(members)}{part}"))
            jobs.append(make_job(member, subscribers, say))
        return run_ensemble(jobs)


def run_plans(plans: Sequence[Plan], subscribers: Sequence[Sequence] = (),
              begins: Sequence[Callable[[str], None] | None] = ()) -> list[JobResult]:
    """Fit whole images of one size together as one batched net (``--group``)."""
    subscribers = subscribers or [()] * len(plans)
    begins = begins or [None] * len(plans)
    with fit_errors():
        return run_group([make_job(p, subs, begin)
                          for p, subs, begin in zip(plans, subscribers, begins, strict=True)])


def record(plan: Plan, result: JobResult) -> dict:
    """What a fit used and gave, as the fields of its record (JSON line, report row, ``Result``)."""
    f, net = result.fit, plan.net
    fields = {
        **plan.extra, "arch": net.arch, "width": net.width, "scales": net.scales, "upsample": net.upsample,
        "params": result.params, "iterations": f.iterations, "best_iteration": f.best_iteration,
        "stop_rule": plan.config.stop.name if f.stop_reason == "budget" else f.stop_reason,
        "stop_reason": f.stop_reason, "seconds": round(f.seconds, 3), "final_loss": f.final_loss,
        "device": result.device, "precision": f.precision, "seed": plan.spec.options.seed,
        "psnr": result.psnr, "ssim": result.ssim, "backtracks": f.backtracks,
    }
    measured = [h for h in f.history if h.get("psnr_ema") is not None]
    if measured:  # the best averaged-output PSNR seen along the run (needs a reference)
        peak = max(measured, key=lambda h: h["psnr_ema"])
        fields.update(peak_psnr=peak["psnr_ema"], peak_iteration=peak["iteration"])
    if plan.scores is not None and plan.reference is not None:
        fields.update(plan.scores(result.image.pixels))
    if result.tiles is not None:
        fields.update(tile=plan.tile, tiles=result.tiles)
    return fields
