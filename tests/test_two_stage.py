import json
import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dipcli.cli.app import app
from dipcli.optim.regularisers import schedule, total_variation

runner = CliRunner()


def checkerboard(n=16):
    return torch.from_numpy((np.indices((n, n)).sum(0) % 2).astype(np.float32))[None, None]


@pytest.mark.parametrize("kind, top", [("anisotropic", 2.0), ("isotropic", math.sqrt(2))])
def test_tv_is_zero_on_constant_and_maximal_on_checkerboard(kind, top):
    assert total_variation(torch.full((1, 3, 16, 16), 0.3), kind).item() == 0.0
    board = total_variation(checkerboard(), kind).item()
    assert board == pytest.approx(top)
    rand = torch.rand(20, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert all(total_variation(r[None], kind).item() < board for r in rand)


def test_tv_is_a_per_pixel_mean_independent_of_size():
    small = total_variation(checkerboard(16)).item()
    big = total_variation(checkerboard(64)).item()
    assert small == pytest.approx(big)


def test_schedules_at_chosen_iterations():
    step = schedule("step", 0.5, total=300, fraction=1 / 3)
    assert (step(1), step(100), step(101), step(300)) == (0.5, 0.5, 0.0, 0.0)
    lin = schedule("linear", 1.0, total=300, fraction=1 / 3)
    assert lin(1) == 1.0 and lin(51) == pytest.approx(0.5) and lin(101) == 0.0
    cos = schedule("cosine", 1.0, total=300, fraction=1 / 3)
    assert cos(1) == 1.0 and cos(51) == pytest.approx(0.5) and cos(101) == 0.0
    assert cos(26) > lin(26)  # cosine holds λ longer at first


@pytest.mark.parametrize("kind, weight, frac", [("step", -1, 0.3), ("step", 1, 0), ("step", 1, 1.0),
                                                ("sawtooth", 1, 0.3)])
def test_bad_schedules_are_refused(kind, weight, frac):
    with pytest.raises(ValueError):
        schedule(kind, weight, 100, frac)


@pytest.fixture
def noisy(tmp_path, smooth):
    img = (smooth(24, 24) * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "n.png", img)
    return tmp_path / "n.png"


FAST = ["--iters", "20", "--width", "8", "--quiet", "--sigma", "25", "--seed", "3"]


def test_zero_tv_weight_is_plain_denoise_bit_for_bit(noisy, tmp_path):
    same = [*FAST, "--arch", "compact"]  # two-stage's net (denoise's default on a CPU is lean)
    # two-stage writes its fit alone (the report's method); denoise adds its Wiener stage unless told
    a = runner.invoke(app, ["denoise", str(noisy), "-o", str(tmp_path / "a.png"), "--no-wiener",
                            *same])
    b = runner.invoke(app, ["two-stage", str(noisy), "-o", str(tmp_path / "b.png"), "--tv-weight",
                            "0", *same])
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    np.testing.assert_array_equal(iio.imread(tmp_path / "a.png"), iio.imread(tmp_path / "b.png"))


def test_tv_stage_changes_the_result(noisy, tmp_path):
    a = runner.invoke(app, ["denoise", str(noisy), "-o", str(tmp_path / "a.png"), *FAST])
    b = runner.invoke(app, ["two-stage", str(noisy), "-o", str(tmp_path / "b.png"), *FAST])
    assert a.exit_code == 0 and b.exit_code == 0
    assert not np.array_equal(iio.imread(tmp_path / "a.png"), iio.imread(tmp_path / "b.png"))


def test_prefilter_variant_runs_and_differs_from_tv(noisy, tmp_path):
    a = runner.invoke(app, ["two-stage", str(noisy), "-o", str(tmp_path / "a.png"), *FAST])
    b = runner.invoke(app, ["two-stage", str(noisy), "-o", str(tmp_path / "b.png"), "--stage1",
                            "prefilter", "--json", *FAST])
    assert a.exit_code == 0 and b.exit_code == 0, b.output
    assert json.loads(b.stdout)["stage1"] == "prefilter"
    assert not np.array_equal(iio.imread(tmp_path / "a.png"), iio.imread(tmp_path / "b.png"))


def test_prefilter_target_is_the_tv_denoised_observation():
    from skimage.restoration import denoise_tv_chambolle

    from dipcli.optim.regularisers import PrefilterTarget

    y = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    target = denoise_tv_chambolle(y[0].permute(1, 2, 0).numpy(), weight=0.1, channel_axis=2)
    out = torch.from_numpy(target.transpose(2, 0, 1).copy())[None].float()
    assert PrefilterTarget(0.1)(out, y).item() < 1e-10


@pytest.mark.parametrize("args, words", [(["--tv-weight", "-1"], "negative"),
                                         (["--stage1", "magic"], "prefilter"),
                                         (["--stage1-frac", "1.5"], "between 0 and 1"),
                                         (["--stage1-frac", "0"], "between 0 and 1"),
                                         (["--schedule", "sawtooth"], "step, linear, cosine"),
                                         (["--tv", "l3"], "anisotropic")])
def test_two_stage_cli_errors(noisy, args, words):
    res = runner.invoke(app, ["two-stage", str(noisy), *FAST, *args])
    assert res.exit_code == 2 and words in res.output
    assert len(res.output.strip().splitlines()) == 1
