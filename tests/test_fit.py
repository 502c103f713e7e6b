import numpy as np
import pytest
import torch

from dipcli.nets import NetSpec, build_net
from dipcli.optim import FitConfig, fit, resolve_device
from dipcli.physics import Denoise
from dipcli.tensors import jitter


def run(smooth, iters=60, seed=0, **kw):
    clean = smooth(32, 32)
    problem = Denoise(25 / 255)
    noisy = problem.observe(clean, seed=1)
    spec = NetSpec("compact", width=16).resolved()
    net = build_net(spec, 3, seed=seed)
    cfg = FitConfig(iters=iters, seed=seed, lr=0.02, **kw)
    return clean, noisy, fit(problem, net, noisy, cfg, input_depth=spec.input_depth,
                             reference=clean)


def psnr(a, b):
    return -10 * np.log10(np.mean((a - b) ** 2))


def test_short_fit_lowers_loss_and_beats_the_noisy_input(smooth):
    clean, noisy, result = run(smooth, iters=200)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert psnr(result.ema, clean) > psnr(noisy, clean) + 2.0
    assert result.ema.shape == clean.shape and result.ema.dtype == np.float32
    assert result.iterations == 200 and result.stop_reason == "budget"


def test_same_seed_repeats_bit_for_bit_and_other_seed_differs(smooth):
    _, _, a = run(smooth, iters=20, seed=3)
    _, _, b = run(smooth, iters=20, seed=3)
    _, _, c = run(smooth, iters=20, seed=4)
    np.testing.assert_array_equal(a.ema, b.ema)
    assert not np.array_equal(a.ema, c.ema)


def test_events_carry_live_metrics_every_check(smooth):
    seen = []

    class Sub:
        def on_event(self, e):
            seen.append((e.iteration, e.psnr_ema, e.best_iteration))

    clean = smooth(16, 24)
    spec = NetSpec("compact", width=8).resolved()
    fit(Denoise(0.1), build_net(spec, 3), clean, FitConfig(iters=30, check_every=10),
        input_depth=32, reference=clean, subscribers=[Sub()])
    assert [s[0] for s in seen] == [10, 20, 30]
    assert all(s[1] is not None for s in seen)


def test_regulariser_hook_is_applied_with_its_schedule(smooth):
    calls = []

    def reg(out, observed):
        calls.append(1)
        return out.mean()

    clean = smooth(16, 16)
    cfg = FitConfig(iters=20, regulariser=reg, reg_weight=lambda it: 1.0 if it <= 5 else 0.0)
    fit(Denoise(0.1), build_net(NetSpec(width=8), 3), clean, cfg, input_depth=32)
    assert len(calls) == 5


def test_divergence_backtracks_to_good_weights(smooth):
    clean = smooth(16, 16)
    # A huge learning rate makes Adam blow up; backtracking must keep the result finite.
    cfg = FitConfig(iters=60, lr=5.0, check_every=5, backtrack_ratio=1.5)
    res = fit(Denoise(0.1), build_net(NetSpec(width=8), 3), clean, cfg, input_depth=32)
    assert np.isfinite(res.ema).all()


def test_ctrl_c_returns_the_result_so_far(smooth):
    class Interrupt:
        def on_event(self, e):
            if e.iteration == 20:
                raise KeyboardInterrupt

    clean = smooth(16, 16)
    res = fit(Denoise(0.1), build_net(NetSpec(width=8), 3), clean, FitConfig(iters=100),
              input_depth=32, subscribers=[Interrupt()])
    assert res.interrupted and res.iterations == 20 and res.ema.shape == clean.shape


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError):
        resolve_device("tpu")


def test_bf16_and_fp32_agree_within_half_a_db(smooth):
    """bfloat16 autocast trades mantissa bits for speed; the restored image must not suffer."""
    clean, noisy, fp32 = run(smooth, iters=150)
    _, _, bf16 = run(smooth, iters=150, precision="bf16")
    assert bf16.precision == "bf16" and fp32.precision == "fp32"
    assert abs(psnr(bf16.ema, clean) - psnr(fp32.ema, clean)) < 0.5


def test_auto_precision_resolves_to_a_known_one():
    from dipcli.optim import resolve_precision

    assert resolve_precision("auto", resolve_device("cpu")) in ("fp32", "bf16")
    with pytest.raises(ValueError):
        resolve_precision("fp8", resolve_device("cpu"))


def test_ema_warmup_lets_the_average_follow_the_early_climb(smooth):
    """The warm-up changes the average only (the raw outputs are the same fit), and early on
    the warmed-up average is the better image: it no longer drags the first outputs along."""
    clean = smooth(32, 32)
    noisy = Denoise(0.1).observe(clean, 0)
    spec = NetSpec("compact", width=8).resolved()
    runs = {}
    for warm in (0.0, 9.0):
        config = FitConfig(iters=40, ema_warmup=warm)
        runs[warm] = fit(Denoise(0.1), build_net(spec, 3, seed=0), noisy, config, reference=clean)
    assert np.array_equal(runs[0.0].raw, runs[9.0].raw)
    early = [{h["iteration"]: h["psnr_ema"] for h in runs[w].history}[40] for w in (0.0, 9.0)]
    assert early[1] > early[0] + 1


def test_jitter_is_a_channels_last_standard_normal_draw():
    z = torch.zeros(1, 8, 32, 32).contiguous(memory_format=torch.channels_last)
    torch.manual_seed(0)
    noise = jitter(z)
    assert noise.shape == z.shape and noise.is_contiguous(memory_format=torch.channels_last)
    assert abs(noise.mean().item()) < 0.05 and abs(noise.std().item() - 1) < 0.05


def observation_fit(smooth, iters=300, **kw):
    """A net fed the noisy image itself (the `best` preset's loop), input jitter of σ."""
    clean = smooth(32, 32)
    problem = Denoise(25 / 255)
    noisy = problem.observe(clean, seed=1)
    spec = NetSpec("compact", width=16, input_depth=3).resolved()
    cfg = FitConfig(iters=iters, lr=0.01, input="observation", reg_noise=25 / 255, **kw)
    return clean, noisy, fit(problem, build_net(spec, 3, seed=0), noisy, cfg, reference=clean)


def test_recorrupted_fit_on_the_observation_denoises(smooth):
    """Recorrupted-to-Recorrupted as the loss: one pass of the net per step, and it denoises."""
    clean, noisy, result = observation_fit(smooth, recorrupt=True)
    assert psnr(result.ema, clean) > psnr(noisy, clean) + 3
    with pytest.raises(ValueError, match="recorrupt needs the observation"):
        run(smooth, iters=5, recorrupt=True)  # a random code as input: nothing to recorrupt
