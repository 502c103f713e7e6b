import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import freqz

from dipcli.io import crop_to, pad_to_multiple
from dipcli.nets import (
    ARCHS,
    FILTERS,
    UPSAMPLERS,
    NetSpec,
    build_net,
    count_params,
    describe_archs,
    lowpass_taps,
    make_upsampler,
)
from dipcli.nets.upsample import stopband_edge
from dipcli.optim import FitConfig, fit
from dipcli.physics import Denoise

FIXED = [u for u in UPSAMPLERS if u != "transposed"]
LOWPASS = [f"lpf:{f}" for f in FILTERS]


def tiny(arch: str, **kw) -> NetSpec:
    """A cheap spec of ``arch``: narrow, and decoders with 3 scales (8× smaller code)."""
    scales = 3 if arch in ("deep-decoder", "convdecoder") else None
    return NetSpec(arch, width=8, scales=scales, **kw)


@pytest.mark.parametrize("arch", ["lean", "compact", "original"])
@pytest.mark.parametrize("upsample", ["nearest", "bilinear", "bicubic"])
def test_nets_keep_size_and_range(arch, upsample):
    spec = NetSpec(arch=arch, width=8, upsample=upsample)
    net = build_net(spec, out_channels=3)
    side = 2 * spec.multiple
    out = net(torch.rand(1, 32, side, side + spec.multiple))
    assert out.shape == (1, 3, side, side + spec.multiple)
    assert 0 <= out.min() and out.max() <= 1


def test_original_configuration_matches_the_dip_paper():
    spec = NetSpec("original").resolved()
    assert (spec.scales, spec.width, spec.skip, spec.input_depth, spec.upsample) == (
        5, 128, 4, 32, "bilinear")
    assert spec.skip_scales == 5  # a skip at every scale
    # ~2.2 M parameters, as the DIP paper's denoising net has.
    assert 2.0e6 < count_params(build_net(spec, 3)) < 2.4e6


def test_compact_is_much_smaller_than_original():
    assert count_params(build_net(NetSpec("compact"), 3)) < count_params(
        build_net(NetSpec("original"), 3)) / 4


def test_lean_is_compact_with_a_per_pixel_top_and_zero_padding():
    lean, compact = NetSpec("lean").resolved(), NetSpec("compact").resolved()
    assert (lean.padding, lean.top_kernel) == ("zeros", 1)
    assert (compact.padding, compact.top_kernel) == ("reflect", 3)
    net, reference = build_net(NetSpec("lean", width=8), 3), build_net(NetSpec("compact", width=8), 3)
    spatial = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
    assert spatial and all(m.padding_mode == "zeros" for m in spatial)
    # Only the layer right after the last upsampling changes (3×3 → 1×1); the deeper one does not.
    assert net.body.up[1][0].kernel_size == (1, 1)
    assert reference.body.up[1][0].kernel_size == net.body.deeper.up[1][0].kernel_size == (3, 3)
    assert count_params(net) == count_params(reference) - 8 * 8 * 8  # 9 - 1 taps per weight


def test_lean_changes_only_what_it_says_about_the_image_border():
    """Zero padding: a constant code gives a constant image inside but not at the border, where
    reflection keeps it constant everywhere."""
    code = torch.full((1, 32, 96, 96), 0.05)
    for arch, flat in (("compact", True), ("lean", False)):
        out = build_net(NetSpec(arch, width=8), 3, seed=0).eval()(code).detach()
        inside = out[..., 32:-32, 32:-32]  # beyond the reach of the border
        assert torch.allclose(inside, inside[..., :1, :1].expand_as(inside), atol=1e-5)
        assert torch.allclose(out, out[..., :1, :1].expand_as(out), atol=1e-5) == flat


def test_padding_and_top_kernel_are_checked():
    with pytest.raises(ValueError, match="padding"):
        NetSpec("compact", padding="circular").resolved()
    with pytest.raises(ValueError, match="top_kernel"):
        NetSpec("compact", top_kernel=5).resolved()
    with pytest.raises(ValueError, match="top_kernel"):
        NetSpec("deep-decoder", top_kernel=1).resolved()


def test_compact_takes_every_knob_of_its_family():
    deeper = build_net(NetSpec("compact", width=8, scales=3), 3, seed=1)
    assert deeper.scales == 3 and NetSpec("compact", width=8, scales=3).multiple == 8


def test_skip_scales_puts_skips_at_the_deepest_scales():
    one = build_net(NetSpec("compact", width=8, scales=3, skip_scales=1), 3)
    two = build_net(NetSpec("compact", width=8, scales=3, skip_scales=2), 3)
    assert one.body.skip is None and one.body.deeper.skip is None and one.body.deeper.deeper.skip
    assert two.body.skip is None and two.body.deeper.skip and two.body.deeper.deeper.skip
    assert count_params(two) > count_params(one)


@pytest.mark.parametrize("bad", [dict(arch="unet"), dict(upsample="magic"), dict(width=0),
                                 dict(arch="compact", scales=2, skip_scales=3),
                                 dict(arch="deep-decoder", skip=4)])
def test_bad_specs_are_refused_with_the_valid_choices(bad):
    with pytest.raises(ValueError) as info:
        NetSpec(**bad).resolved()
    if bad.get("arch") == "unet":
        assert all(a in str(info.value) for a in ARCHS)
    if "upsample" in bad:
        assert all(u in str(info.value) for u in UPSAMPLERS)


def test_unknown_upsampler_name_is_refused_by_the_factory():
    with pytest.raises(ValueError, match="lpf:sinc60"):
        make_upsampler("lpf:sinc40", 4)


@pytest.mark.parametrize("upsample", UPSAMPLERS)
@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_and_upsampler_fits_an_odd_sized_image(arch, upsample, smooth):
    clean = smooth(37, 41)
    spec = tiny(arch, upsample=upsample)
    padded, size = pad_to_multiple(clean, spec.multiple)
    net = build_net(spec, 3, seed=0)
    h, w = padded.shape[:2]
    assert net.input_shape(h, w) == spec.input_shape(h, w)
    with torch.no_grad():
        out = net(torch.rand(1, *net.input_shape(h, w)))
    assert out.shape == (1, 3, h, w) and 0 <= out.min() and out.max() <= 1

    cfg = FitConfig(iters=12, check_every=1, reg_noise=0.0)
    result = fit(Denoise(), net, padded, cfg, input_depth=spec.resolved().input_depth, crop=size)
    assert result.raw.shape == (37, 41, 3)
    assert crop_to(padded, size).shape == clean.shape
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]


def test_decoders_take_a_small_code():
    spec = NetSpec("deep-decoder", width=16, scales=4)
    assert spec.input_shape(64, 32) == (16, 4, 2)
    assert NetSpec("convdecoder").input_shape(256, 512) == (64, 8, 16)
    assert NetSpec("compact").input_shape(8, 12) == (32, 8, 12)
    with pytest.raises(ValueError, match="pad"):
        build_net(spec, 3).input_shape(65, 32)


def test_fit_needs_no_input_depth_when_the_net_declares_its_input(smooth):
    net = build_net(tiny("deep-decoder"), 1, seed=0)
    res = fit(Denoise(), net, smooth(16, 24, channels=1), FitConfig(iters=2))
    assert res.ema.shape == (16, 24, 1)
    with pytest.raises(ValueError, match="input_depth"):
        fit(Denoise(), net, smooth(16, 24, channels=1), FitConfig(iters=2), input_depth=32)


@pytest.mark.parametrize("upsample", LOWPASS)
def test_fixed_filters_are_buffers_that_get_no_gradient(upsample):
    net = build_net(tiny("compact", upsample=upsample), 3)
    nearest = build_net(tiny("compact", upsample="nearest"), 3)
    assert count_params(net) == count_params(nearest)
    names = [n for n, _ in net.named_parameters()]
    assert not any(n.endswith(("taps", "phases")) for n in names)
    filters = [b for n, b in net.named_buffers() if n.endswith(("taps", "phases"))]
    assert filters
    net(torch.rand(1, 32, 8, 8)).mean().backward()
    assert all(not b.requires_grad and b.grad is None for b in filters)


def test_transposed_upsampler_is_trainable():
    net = build_net(tiny("compact", upsample="transposed"), 3)
    assert count_params(net) > count_params(build_net(tiny("compact", upsample="nearest"), 3))
    up = net.body.deeper.upsample if net.body.deeper is not None else net.body.upsample
    assert isinstance(up, torch.nn.ConvTranspose2d)
    net(torch.rand(1, 32, 8, 8)).mean().backward()
    assert up.weight.grad is not None and up.weight.grad.abs().sum() > 0


def zero_insert_and_filter(name: str, x: torch.Tensor) -> torch.Tensor:
    """The textbook definition: zeros between samples, reflect padding, a separable filter."""
    taps = torch.tensor(lowpass_taps(name), dtype=x.dtype)
    n, c, h, w = x.shape
    up = torch.zeros(n, c, 2 * h, 2 * w, dtype=x.dtype)
    up[..., ::2, ::2] = x
    half = len(taps) // 2
    up = F.pad(up, (half, half - 1, half, half - 1), mode="reflect")
    up = F.conv2d(up, taps.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(up, taps.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)


@pytest.mark.parametrize("name", FILTERS)
def test_lowpass_upsampler_is_zero_insertion_then_filtering(name):
    x = torch.rand(2, 3, 30, 33, dtype=torch.float64)
    got = make_upsampler(f"lpf:{name}", 3).double()(x)
    torch.testing.assert_close(got, zero_insert_and_filter(name, x))
    channels_last = make_upsampler(f"lpf:{name}", 3).double()(x.contiguous(
        memory_format=torch.channels_last))
    torch.testing.assert_close(channels_last, got)


def test_box_filter_on_zero_inserted_signal_is_nearest_and_tri_is_bilinear():
    x = torch.rand(1, 2, 7, 9)
    assert torch.equal(make_upsampler("lpf:box", 2)(x), F.interpolate(x, scale_factor=2, mode="nearest"))
    tri = make_upsampler("lpf:tri", 2)(x)
    bilinear = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(tri[..., 1:-1, 1:-1], bilinear[..., 1:-1, 1:-1])  # borders differ


@pytest.mark.parametrize("db", [20, 60, 100])
def test_sinc_filters_reach_their_stop_band_attenuation(db):
    taps = lowpass_taps(f"sinc{db}")
    freq, response = freqz(taps / taps.sum(), worN=8192)
    gain = np.abs(response)
    stop = gain[freq / np.pi >= stopband_edge()]
    attenuation = -20 * np.log10(stop.max())
    assert abs(attenuation - db) < 4
    assert gain[0] == pytest.approx(1.0)


@pytest.mark.parametrize("upsample", FIXED)
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (9, 6)])
def test_a_constant_stays_constant_through_fixed_upsamplers(upsample, shape):
    x = torch.full((1, 2, *shape), 0.37)
    y = make_upsampler(upsample, 2)(x)
    assert y.shape == (1, 2, 2 * shape[0], 2 * shape[1])
    torch.testing.assert_close(y, torch.full_like(y, 0.37))


def test_describe_archs_lists_every_arch_with_cost():
    rows = describe_archs(16, "cpu", width=4, iters=1, warmup=1)
    assert [r["arch"] for r in rows] == list(ARCHS)
    for r in rows:
        assert r["params"] > 0 and r["sec_per_iter"] > 0 and r["width"] == 4
        assert r["side"] % r["multiple"] == 0 and r["side"] >= 16
