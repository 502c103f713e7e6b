import pytest
import torch

from dipcli.nets import NetSpec, build_net, count_params


@pytest.mark.parametrize("arch", ["compact", "original"])
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
    # ~2.2 M parameters, as the DIP paper's denoising net has.
    assert 2.0e6 < count_params(build_net(spec, 3)) < 2.4e6


def test_compact_is_much_smaller_than_original():
    assert count_params(build_net(NetSpec("compact"), 3)) < count_params(
        build_net(NetSpec("original"), 3)) / 4


@pytest.mark.parametrize("bad", [dict(arch="unet"), dict(upsample="magic"), dict(width=0)])
def test_bad_specs_are_refused_with_the_valid_choices(bad):
    with pytest.raises(ValueError) as info:
        NetSpec(**bad).resolved()
    if "arch" in bad:
        assert "compact" in str(info.value)
