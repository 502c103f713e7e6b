import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dipcli.nets import NetSpec, build_net
from dipcli.optim import Check, FitConfig, FixedStop, fit
from dipcli.optim.stopping import (
    AnyStop,
    DiscrepancyStop,
    WMVStop,
    clipped_noise_variance,
    make_stop,
)
from dipcli.physics import Denoise, GaussianNoise, Inpaint, SuperRes

BASE = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def check(it, total=2000, loss=0.01, ema_loss=0.01, raw=None, ema=None):
    raw = BASE if raw is None else raw
    return Check(it, total, loss, ema_loss, raw, BASE.clone() if ema is None else ema)


def wmv_checks(total=2000, every=10, best_centre=495):
    """Raw outputs drift by a cubic whose slope is zero at ``best_centre``: the variance over a
    window is lowest for the window centred there, i.e. the one ending at best_centre + 45."""
    for it in range(every, total + 1, every):
        yield check(it, total, raw=BASE + ((it - best_centre) / 100.0) ** 3)


def run_rule(rule, checks):
    """Feed checks until the rule stops; return (flagged iterations, stop iteration or None)."""
    flagged = []
    for c in checks:
        if rule.observe(c):
            flagged.append(c.iteration)
        if rule.should_stop():
            return flagged, c.iteration
    return flagged, None


def test_wmv_picks_the_minimum_variance_window_and_waits_its_patience():
    rule = WMVStop()
    flagged, stopped = run_rule(rule, wmv_checks(total=2000))
    assert rule.best_iteration == 540 and flagged[-1] == 540
    assert rule.patience_for(2000) == 400  # 0.2 × 2000 beats the floor of 300
    assert stopped == 540 + 400
    assert "WMV best @ 540" in rule.describe() and "400/400" in rule.describe()


def test_wmv_declares_no_best_before_the_window_is_full():
    rule = WMVStop(window=100)
    # The variance falls all the time, so every full window is a new best.
    flags = {c.iteration: rule.observe(c) for c in
             (check(it, raw=BASE * (1 + 10.0 / it**2)) for it in range(10, 200, 10))}
    assert not any(flags[it] for it in range(10, 110, 10))  # 100: the first full window is the peak
    assert all(flags[it] for it in range(110, 200, 10))
    assert rule.samples == 10  # the subsampled window: 100 iterations / a check every 10


def test_wmv_ignores_the_low_variance_of_the_first_iterations():
    # The output barely moves at first, then learns fast (high variance), then settles (lowest
    # at 600) and drifts again: the early quiet must not win.
    def drift(it):
        if it <= 150:
            return 0.2 * it / 100
        if it <= 300:
            return 0.3 + 3 * (it - 150) / 100
        return 4.8 + ((it - 600) / 100) ** 3
    rule = WMVStop(window=100)
    flagged, stopped = run_rule(rule, (check(it, raw=BASE + drift(it)) for it in range(10, 2001, 10)))
    assert flagged and min(flagged) > 300 and rule.best_iteration == 640
    assert stopped == 640 + 400


def test_wmv_start_ignores_stage_one():
    rule = WMVStop(window=100, start=1000)
    flagged, stopped = run_rule(rule, wmv_checks(total=3000, best_centre=1495))
    assert "idle until iteration 1000" not in rule.describe()
    assert min(flagged) >= 1100 and rule.best_iteration == 1540 and stopped == 1540 + 600
    auto = make_stop("auto", GaussianNoise(25 / 255, estimated=True), 1200, start=400)
    assert auto.rules[1].start == 400


def test_wmv_window_is_subsampled_by_the_check_spacing():
    rule = WMVStop(window=100)
    for it in range(20, 400, 20):
        rule.observe(check(it, raw=BASE + it))
    assert rule.samples == 5
    sparse = WMVStop(window=100)
    for it in range(250, 2000, 250):  # checks further apart than the window: keep two
        sparse.observe(check(it, raw=BASE + it))
    assert sparse.samples == 2


def test_wmv_patience_floor_and_explicit_value():
    assert WMVStop().patience_for(1000) == 300  # the floor
    assert WMVStop().patience_for(5000) == 1000  # the paper's 1,000 of 5,000
    assert WMVStop(patience=50).patience_for(5000) == 50
    assert "filling window" in WMVStop().describe()


def test_wmv_never_stops_before_a_best_exists():
    rule = WMVStop(window=100)
    for it in range(10, 100, 10):
        rule.observe(check(it))
        assert not rule.should_stop()


def test_wmv_keeps_copies_of_the_raw_outputs():
    rule = WMVStop(window=30)
    raw = BASE.clone()
    for it in (10, 20, 30):
        raw += 1.0  # the caller reuses its buffer in place
        rule.observe(check(it, raw=raw))
    assert rule.score == pytest.approx(2.0 / 3.0, rel=1e-5)  # variance of {1, 2, 3}


def falling_residual(sigma, cross=605, total=2000, every=10, ema=None):
    """An averaged-output loss that falls linearly through σ² at iteration ``cross`` (between
    two checks, so that rounding cannot move the crossing)."""
    ema = torch.full((1, 3, 8, 8), 0.5) if ema is None else ema
    for it in range(every, total + 1, every):
        yield check(it, total, ema_loss=sigma**2 * (1 + (cross - it) / 1000), ema=ema)


def test_discrepancy_fires_where_the_residual_reaches_the_noise_variance():
    sigma = 0.05  # mid-grey image, tiny σ: clipping is negligible and the target is σ²
    rule = DiscrepancyStop(sigma)
    flagged, stopped = run_rule(rule, falling_residual(sigma))
    assert flagged == [610] and stopped == 610
    assert rule.noise_floor == pytest.approx(sigma**2, rel=1e-6)
    assert "610" in rule.describe()


def test_discrepancy_waits_for_its_guard_and_honours_the_tolerance():
    sigma = 0.05
    guarded = DiscrepancyStop(sigma, min_iters=800)
    assert run_rule(guarded, falling_residual(sigma)) == ([800], 800)
    loose = DiscrepancyStop(sigma, tolerance=1.1)
    assert run_rule(loose, falling_residual(sigma))[1] == 510
    never = DiscrepancyStop(sigma)
    assert run_rule(never, falling_residual(sigma, cross=5000)) == ([], None)
    assert "residual/noise" in never.describe()


def test_discrepancy_target_accounts_for_clipping():
    sigma = 0.2
    dark = torch.full((1, 1, 4, 4), 0.02)
    # Residual 0.9 σ² is below σ² but above the clipped noise variance of a near-black image.
    rule = DiscrepancyStop(sigma, min_iters=0)
    assert not rule.observe(check(100, ema_loss=0.9 * sigma**2, ema=dark))
    assert rule.noise_floor < 0.6 * sigma**2
    plain = DiscrepancyStop(sigma, min_iters=0, clipped=False)
    assert plain.observe(check(100, ema_loss=0.9 * sigma**2, ema=dark))


@pytest.mark.parametrize("x", [0.0, 0.03, 0.3, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("sigma", [25 / 255, 50 / 255])
def test_clipped_noise_variance_matches_simulation(x, sigma):
    rng = np.random.default_rng(0)
    y = np.clip(x + rng.normal(0, sigma, 400_000), 0, 1)
    got = clipped_noise_variance(torch.full((1, 1, 1, 1), float(y.mean())), sigma)
    assert got == pytest.approx(y.var(), rel=0.02, abs=1e-5)
    assert got <= sigma**2 * 1.0001


def test_discrepancy_needs_a_noise_level():
    with pytest.raises(ValueError):
        DiscrepancyStop(0.0)


def test_fixed_never_stops():
    rule = FixedStop()
    assert run_rule(rule, wmv_checks(total=3000)) == ([], None)
    assert rule.describe() == "fixed budget"


def test_any_stop_discrepancy_first_keeps_its_output():
    sigma = 0.05
    rule = AnyStop([DiscrepancyStop(sigma), WMVStop()])
    checks = (check(it, 2000, ema_loss=sigma**2 * (1 + (605 - it) / 1000),
                    raw=BASE + ((it - 495) / 100.0) ** 3, ema=torch.full((1, 3, 8, 8), 0.5))
              for it in range(10, 2001, 10))
    flagged, stopped = run_rule(rule, checks)
    assert stopped == 610 and flagged[-1] == 610  # WMV's 540 was flagged first, then replaced
    assert 540 in flagged
    assert rule.name == "discrepancy"
    assert "WMV" in rule.describe() and "noise level" in rule.describe()


def test_any_stop_wmv_first_keeps_the_wmv_best():
    sigma = 0.05
    rule = AnyStop([DiscrepancyStop(sigma), WMVStop()], label="auto")
    assert rule.name == "auto"
    checks = (check(it, 2000, ema_loss=sigma**2 * 2, raw=BASE + ((it - 495) / 100.0) ** 3,
                    ema=torch.full((1, 3, 8, 8), 0.5))
              for it in range(10, 2001, 10))
    flagged, stopped = run_rule(rule, checks)
    assert stopped == 940 and flagged[-1] == 540
    assert rule.name == "wmv"


def test_any_stop_same_check_goes_to_the_first_listed_rule():
    sigma = 0.05

    def checks():
        for it in range(10, 2001, 10):  # WMV's patience runs out at 940, the residual crosses then
            yield check(it, 2000, ema_loss=sigma**2 * (1 + (935 - it) / 1000),
                        raw=BASE + ((it - 495) / 100.0) ** 3, ema=torch.full((1, 3, 8, 8), 0.5))

    first = AnyStop([WMVStop(), DiscrepancyStop(sigma)])
    flagged, stopped = run_rule(first, checks())
    assert stopped == 940 and flagged[-1] == 540 and first.name == "wmv"
    second = AnyStop([DiscrepancyStop(sigma), WMVStop()])
    flagged, stopped = run_rule(second, checks())
    assert stopped == 940 and flagged[-1] == 940 and second.name == "discrepancy"


def test_make_stop_asks_the_problems_noise_model():
    given, estimated = GaussianNoise(25 / 255), GaussianNoise(25 / 255, estimated=True)
    assert isinstance(make_stop("auto", given, 1500), DiscrepancyStop)  # σ given
    auto = make_stop("auto", estimated, 1500)
    assert isinstance(auto, AnyStop) and auto.name == "auto"
    assert [type(r) for r in auto.rules] == [DiscrepancyStop, WMVStop]
    assert auto.rules[1].patience_for(1500) == 300
    assert isinstance(make_stop("auto", None, 1500), WMVStop)  # no noise model: inpaint, superres
    for problem in (Inpaint(np.eye(8, dtype=bool) | True), SuperRes(2)):
        assert isinstance(make_stop("auto", problem.noise, 1500), WMVStop)
    assert isinstance(make_stop("auto", Denoise(0.1).noise, 1500), DiscrepancyStop)
    assert isinstance(make_stop("auto", Denoise(0.1, sigma_estimated=True).noise, 1500), AnyStop)
    assert isinstance(make_stop("wmv", GaussianNoise(0.1), 1500), WMVStop)
    assert make_stop("wmv", None, 6000).patience_for(6000) == 1200
    disc = make_stop("discrepancy", GaussianNoise(0.1), 1500)
    assert isinstance(disc, DiscrepancyStop) and disc.sigma == 0.1
    assert isinstance(make_stop("fixed", GaussianNoise(0.1), 1500), FixedStop)


def test_make_stop_errors_are_one_line():
    with pytest.raises(ValueError, match="needs the noise level") as exc:
        make_stop("discrepancy", None, 1500)
    assert "\n" not in str(exc.value)
    with pytest.raises(ValueError, match="auto, wmv, discrepancy, fixed"):
        make_stop("patience", GaussianNoise(0.1), 1500)
    with pytest.raises(ValueError, match="0–1 scale"):
        make_stop("auto", GaussianNoise(25.0), 1500)
    with pytest.raises(ValueError, match="positive"):
        make_stop("discrepancy", GaussianNoise(0.0), 1500)


class Recorder:
    """Keeps a copy of the averaged output at every event (the loop updates it in place)."""

    def __init__(self):
        self.ema = {}

    def on_event(self, e):
        self.ema[e.iteration] = e.ema.clone()


def as_written(t):
    return t[0].clamp(0, 1).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("make_rule", [
    lambda: WMVStop(window=20, patience=30),  # keeps an earlier check's output
    lambda: AnyStop([DiscrepancyStop(0.3, min_iters=40), WMVStop(window=20, patience=1000)]),
], ids=["wmv", "any-discrepancy"])
def test_fit_stops_early_and_returns_the_rules_candidate(smooth, make_rule):
    clean = smooth(16, 16)
    problem = Denoise(0.1)
    noisy = problem.observe(clean, seed=1)
    rule, rec, budget = make_rule(), Recorder(), 400
    spec = NetSpec("compact", width=8).resolved()
    res = fit(problem, build_net(spec, 3, seed=0), noisy, FitConfig(iters=budget, check_every=5, stop=rule),
              input_depth=spec.input_depth, subscribers=[rec])
    assert res.iterations < budget
    assert res.stop_reason == rule.name and res.stop_reason != "budget"
    assert res.best_iteration <= res.iterations
    np.testing.assert_array_equal(res.ema, as_written(rec.ema[res.best_iteration]))


def test_a_fit_that_runs_out_of_budget_keeps_its_last_average(smooth):
    clean = smooth(16, 16)
    problem = Denoise(0.1)
    noisy = problem.observe(clean, seed=1)
    rule, rec = WMVStop(window=20, patience=10_000), Recorder()  # flags candidates, never fires
    spec = NetSpec("compact", width=8).resolved()
    res = fit(problem, build_net(spec, 3, seed=0), noisy, FitConfig(iters=200, check_every=5, stop=rule),
              input_depth=spec.input_depth, subscribers=[rec])
    assert res.stop_reason == "budget" and rule.best_iteration is not None and rule.best_iteration < 200
    assert res.best_iteration == 200
    np.testing.assert_array_equal(res.ema, as_written(rec.ema[200]))


def test_benchmark_shadow_sees_every_rule_without_stopping_the_fit(smooth):
    """The stopping benchmark runs the whole budget once and asks each rule where it would stop."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))  # as scripts run
    from stopping import Peak, Shadow

    clean = smooth(16, 16)
    problem = Denoise(0.1)
    noisy = problem.observe(clean, seed=1)
    rules = {"wmv": WMVStop(window=20, patience=30), "discrepancy": DiscrepancyStop(0.1, min_iters=40)}
    shadow, peak = Shadow(rules, 0.1), Peak()
    spec = NetSpec("compact", width=8).resolved()
    res = fit(problem, build_net(spec, 3, seed=0), noisy, FitConfig(iters=300, check_every=5, stop=shadow),
              input_depth=spec.input_depth, reference=clean, subscribers=[peak])
    assert res.iterations == 300 and res.stop_reason == "budget"
    wmv = shadow.verdicts["wmv"]
    assert wmv.stop_iteration < 300 and wmv.kept_iteration == rules["wmv"].best_iteration
    assert wmv.kept.shape == (1, 3, 16, 16)
    assert set(shadow.ema_loss) == set(shadow.noise_floor) == {h["iteration"] for h in res.history}
    assert peak.iteration in shadow.ema_loss and peak.ema is not None


def test_wmv_watches_only_the_free_pixels_when_the_check_names_them():
    """Inpainting: the known pixels sit still while the hole wanders; WMV's score is the hole's."""
    rule = WMVStop(window=20, patience=1000, arm=1.0)
    free = torch.zeros(1, 1, 4, 4)
    free[..., :2, :] = 1  # the top half is the hole
    gen = torch.Generator().manual_seed(0)
    for it in range(10, 110, 10):
        raw = torch.zeros(1, 3, 4, 4)
        raw[..., :2, :] = torch.rand(1, 3, 2, 4, generator=gen)  # the hole changes each check
        rule.observe(Check(it, 1000, 0.0, 0.0, raw, raw, free))
    whole = WMVStop(window=20, patience=1000, arm=1.0)
    gen = torch.Generator().manual_seed(0)
    for it in range(10, 110, 10):
        raw = torch.zeros(1, 3, 4, 4)
        raw[..., :2, :] = torch.rand(1, 3, 2, 4, generator=gen)
        whole.observe(Check(it, 1000, 0.0, 0.0, raw, raw))
    assert rule.score == pytest.approx(2 * whole.score)  # the still half no longer dilutes it
