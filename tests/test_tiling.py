"""Tiling: the plan covers the image, the blend is a partition of unity, and `--tile` end to end."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

import dipcli.engine.run
from dipcli.cli.app import app
from dipcli.engine.memory import USABLE, fit_bytes, footprint
from dipcli.engine.tiles import blend, blend_weights, default_overlap, plan_tiles, tile_for, window_slices
from dipcli.nets import NetSpec
from dipcli.physics import Inpaint, SuperRes

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


SIZES = [(16, 16), (37, 53), (48, 40), (100, 33), (64, 64), (200, 150), (33, 33)]


def cut(image: np.ndarray, windows) -> list[np.ndarray]:
    return [image[window_slices(w)] for w in windows]


@pytest.mark.parametrize("h, w", SIZES)
@pytest.mark.parametrize("tile, overlap", [(32, None), (32, 8), (48, 12), (64, None)])
def test_plan_covers_every_pixel_with_tiles_no_larger_than_asked(h, w, tile, overlap):
    windows = plan_tiles(h, w, tile, overlap)
    covered = np.zeros((h, w), int)
    for top, left, th, tw in windows:
        assert 0 <= top and 0 <= left and top + th <= h and left + tw <= w
        # no tile larger than asked, none smaller than the image allows
        assert (th, tw) == (min(h, tile), min(w, tile))
        covered[top:top + th, left:left + tw] += 1
    assert covered.min() >= 1


@pytest.mark.parametrize("h, w", SIZES)
def test_neighbours_overlap_at_least_as_asked_and_the_last_is_flush(h, w):
    tile, overlap = 32, 10
    windows = plan_tiles(h, w, tile, overlap)
    for axis, n in ((0, h), (1, w)):
        starts = sorted({win[axis] for win in windows})
        size = windows[0][2 + axis]
        assert starts[0] == 0 and starts[-1] + size == n
        for a, b in zip(starts, starts[1:], strict=False):
            assert a + size - b >= overlap


def test_a_small_image_is_one_tile_and_the_default_overlap():
    assert plan_tiles(20, 30, 32) == [(0, 0, 20, 30)]
    assert default_overlap(32) == 8 and default_overlap(512) == 64


@pytest.mark.parametrize("h, w", SIZES)
def test_blend_of_constant_tiles_is_that_constant_everywhere(h, w):
    windows = plan_tiles(h, w, 32)
    tiles = [np.full((th, tw, 3), 0.3712, np.float32) for _, _, th, tw in windows]
    out = blend(tiles, windows, (h, w, 3))
    np.testing.assert_allclose(out, 0.3712, rtol=0, atol=1e-6)


@pytest.mark.parametrize("h, w", SIZES)
def test_blend_of_tiles_cut_from_an_image_is_that_image(h, w):
    image = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    windows = plan_tiles(h, w, 32)
    np.testing.assert_allclose(blend(cut(image, windows), windows, image.shape), image, atol=1e-6)


def test_weights_are_smooth_and_one_away_from_the_overlaps():
    windows = plan_tiles(32, 56, 32, 8)  # two tiles side by side, 8 px apart in overlap
    assert len(windows) == 2
    left = blend_weights(windows[0], windows)
    assert left.shape == (32, 32)
    assert np.all(left[:, :24] == 1) and np.all(np.diff(left[0, 24:]) < 0) and left.min() > 0
    right = blend_weights(windows[1], windows)
    np.testing.assert_allclose(left[:, 24:] + right[:, :8], 1.0)  # a cross-fade: sums to 1


def test_blend_hides_the_seam_between_disagreeing_tiles():
    """Tiles off by a small constant each: the blend steps by at most a fraction of it per pixel."""
    windows = plan_tiles(32, 56, 32, 8)
    tiles = [np.full((32, 32, 1), 0.5 + 0.1 * k, np.float32) for k in range(2)]
    row = blend(tiles, windows, (32, 56, 1))[0, :, 0]
    assert np.abs(np.diff(row)).max() < 0.1 / 3


def test_inpaint_cuts_its_mask_and_superres_cannot_be_cut():
    mask = np.ones((40, 40), bool)
    mask[:20, :20] = False
    part = Inpaint(mask).window(slice(0, 32), slice(8, 40))
    np.testing.assert_array_equal(part.mask, mask[:32, 8:40])
    with pytest.raises(ValueError, match="--tile"):
        Inpaint(mask).window(slice(0, 16), slice(0, 16))
    assert not SuperRes(2).tileable
    with pytest.raises(ValueError, match="pixel by pixel"):
        SuperRes(2).window(slice(0, 16), slice(0, 16))


def noisy_file(path, smooth, h: int, w: int):
    """A smooth image with noise (σ ≈ 25), written as an 8-bit PNG."""
    img = (np.clip(smooth(h, w) + np.random.default_rng(1).normal(0, 0.1, (h, w, 3)), 0, 1) * 255)
    iio.imwrite(path, img.round().astype(np.uint8))
    return path


@pytest.fixture
def noisy_png(tmp_path, smooth):
    return noisy_file(tmp_path / "noisy.png", smooth, 48, 40)


def test_tiled_denoise_writes_the_input_size_and_reports_tiles(noisy_png):
    res = invoke("denoise", noisy_png, "--sigma", 25, "--tile", 32, "--iters", 10, "--width", 8,
                 "--json", "--device", "cpu")
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout)
    assert record["tiles"] == 4 and record["tile"] == 32  # 2 × 2 tiles of 32 over 48 × 40
    out, src = iio.imread(record["output"]), iio.imread(noisy_png)
    assert out.shape == src.shape and out.dtype == src.dtype


def test_tiled_progress_names_each_tile(noisy_png):
    res = invoke("two-stage", noisy_png, "--sigma", 25, "--tile", 32, "--iters", 10, "--width", 8,
                 "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "tile 1/4" in res.output and "tile 4/4" in res.output


def test_tile_with_superres_is_a_usage_error(noisy_png):
    res = invoke("superres", noisy_png, "--tile", 64, "--iters", 10)
    assert res.exit_code == 2 and "--tile" in res.output
    assert len(res.output.strip().splitlines()) == 1


@pytest.mark.parametrize("tile", [16, 31])
def test_too_small_a_tile_is_refused(noisy_png, tile):
    res = invoke("denoise", noisy_png, "--sigma", 25, "--tile", tile, "--iters", 10)
    assert res.exit_code == 2 and "--tile" in res.output and "at least" in res.output


# ---- memory estimate and --tile auto -------------------------------------------------------------

def test_memory_estimate_grows_with_pixels_and_with_the_net():
    compact, original = NetSpec("compact").resolved(), NetSpec("original").resolved()
    small, big = fit_bytes(compact, 256, 256, 3, "fp32"), fit_bytes(compact, 512, 512, 3, "fp32")
    fixed = fit_bytes(compact, 1, 1, 3, "fp32")
    assert 3.5 < (big - fixed) / (small - fixed) < 4.5
    assert fit_bytes(original, 256, 256, 3, "fp32") > 1.5 * small
    # bf16 autocast keeps half-size copies of what convolutions see: less than float32
    assert fit_bytes(compact, 256, 256, 3, "bf16") < small


def test_largest_tile_fits_its_budget_and_refuses_what_cannot():
    spec = NetSpec("compact", width=16).resolved()
    budget = fit_bytes(spec, 200, 200, 3, "fp32")
    cost = footprint(spec, 3, "fp32")
    tile = cost.largest_tile(budget, start=1000)
    assert tile % 32 == 0 and 160 <= tile <= 200
    assert fit_bytes(spec, tile, tile, 3, "fp32") <= budget
    assert cost.largest_tile(budget, start=100) == 96  # never past the image
    assert cost.largest_tile(1000, start=1000) is None


@pytest.fixture
def big_png(tmp_path, smooth):
    return noisy_file(tmp_path / "big.png", smooth, 96, 80)


def test_tile_auto_fits_whole_when_memory_allows(big_png):
    res = invoke("denoise", big_png, "--sigma", 25, "--iters", 10, "--width", 8, "--json")
    assert res.exit_code == 0, res.output
    assert "tiles" not in json.loads(res.stdout)


def test_tile_auto_tiles_when_the_image_would_not_fit(big_png, monkeypatch):
    spec = NetSpec("lean", width=8).resolved()  # denoise's default net on a CPU
    # room for a 64×64 fit (in float32, which needs more than bf16) but not for 96×80
    monkeypatch.setattr(dipcli.engine.run, "available_bytes",
                        lambda device: fit_bytes(spec, 64, 64, 3, "fp32") / USABLE)
    res = invoke("denoise", big_png, "--sigma", 25, "--iters", 10, "--width", 8, "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "fitting tiles of at most" in res.output
    out = iio.imread(big_png.with_name("big_denoised.png"))
    assert out.shape == (96, 80, 3)


def test_tile_auto_refuses_superres_that_would_not_fit(big_png, monkeypatch):
    monkeypatch.setattr(dipcli.engine.run, "available_bytes", lambda device: 2**20)
    res = invoke("superres", big_png, "--factor", 2, "--iters", 10, "--width", 8)
    assert res.exit_code == 1 and "needs about" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not big_png.with_name("big_x2.png").exists()


def test_tile_must_be_a_number_or_auto(noisy_png):
    res = invoke("denoise", noisy_png, "--sigma", 25, "--tile", "big")
    assert res.exit_code == 2 and "--tile" in res.output


@pytest.mark.parametrize("h, w, tiles", [(512, 512, 4), (768, 512, 6), (256, 256, 1), (383, 383, 1),
                                         (384, 384, 4), (1000, 37, 4), (4096, 4096, 256)])
def test_tile_for_cuts_each_side_into_about_side_over_target_tiles(h, w, tiles):
    tile = tile_for(h, w, 256)
    windows = plan_tiles(h, w, tile)
    assert len(windows) == tiles
    # tiles hold ¾ to 1½ targets of new pixels, and the overlap costs little
    assert sum(th * tw for _, _, th, tw in windows) <= 1.3 * h * w


@pytest.fixture
def wide_png(tmp_path, smooth):
    return noisy_file(tmp_path / "wide.png", smooth, 96, 400)


def test_tile_auto_cuts_a_large_image_into_pieces_the_default_net_was_tuned_on(wide_png):
    res = invoke("denoise", wide_png, "--sigma", 25, "--iters", 5, "--width", 8, "--json")
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout)
    assert record["tiles"] == 2  # 400 px ≈ 1.6 × 256: two tiles across, one down
    assert iio.imread(record["output"]).shape == (96, 400, 3)


@pytest.mark.parametrize("opts", [["--tile", "0"], ["--arch", "original"], ["--scales", "3"]])
def test_tile_auto_fits_whole_with_tile_0_or_another_net(wide_png, opts):
    res = invoke("denoise", wide_png, "--sigma", 25, "--iters", 2, "--width", 8, "--json", *opts)
    assert res.exit_code == 0, res.output
    assert "tiles" not in json.loads(res.stdout)


def test_tile_auto_fits_whole_when_a_plot_of_the_one_fit_is_asked_for(wide_png, tmp_path):
    res = invoke("denoise", wide_png, "--sigma", 25, "--iters", 10, "--width", 8, "--json",
                 "--plot", tmp_path / "curves.csv")
    assert res.exit_code == 0, res.output
    assert "tiles" not in json.loads(res.stdout) and (tmp_path / "curves.csv").exists()


class _Steps:
    """Records each tile's fit as (iterations of the budget, loss at the first check)."""

    def __init__(self) -> None:
        self.fits: list[tuple[int, float]] = []

    def on_event(self, event) -> None:
        if event.iteration == 10:
            self.fits.append((event.total, event.loss))


def test_warm_tiles_start_from_the_first_tiles_weights_and_run_their_own_budget(smooth):
    from dataclasses import replace

    from dipcli.io import Image
    from dipcli.optim import FitConfig
    from dipcli.physics import Denoise

    clean = smooth(64, 64)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
    config = FitConfig(iters=80, seed=0, reg_noise=0.1, input="observation", recorrupt=True, precision="fp32")
    spec = NetSpec("compact", width=8, input_depth=3)
    runs = {}
    for name, warm in (("cold", None), ("warm", replace(config, iters=20))):
        steps = _Steps()
        job = dipcli.engine.run.Job(Denoise(0.1), Image(noisy, np.dtype(np.uint8), False, None), spec, config,
                             "cpu", subscribers=[steps], tile=40, warm=warm)
        result = dipcli.engine.run.run_job(job)
        assert result.tiles == 4 and result.image.pixels.shape == noisy.shape
        runs[name] = steps.fits
    cold, warm = runs["cold"], runs["warm"]
    assert [total for total, _ in cold] == [80] * 4
    assert [total for total, _ in warm] == [80, 20, 20, 20]  # the first tile alone, at the full budget
    assert warm[0] == cold[0]  # the first tile is fitted exactly as without a warm start
    # The later tiles start where the first one ended: far below a fresh start at the first check.
    assert all(w < 0.6 * c for (_, w), (_, c) in zip(warm[1:], cold[1:], strict=True))
