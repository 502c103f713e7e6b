"""Tiling: the plan covers the image, the blend is a partition of unity, and `--tile` end to end."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from dipcli.cli import app
from dipcli.problems import Inpaint, SuperRes
from dipcli.tiling import blend, blend_weights, default_overlap, plan_tiles, window_slices

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
    assert not hasattr(SuperRes(2), "window")


@pytest.fixture
def noisy_png(tmp_path, smooth):
    img = (np.clip(smooth(48, 40) + np.random.default_rng(1).normal(0, 0.1, (48, 40, 3)), 0, 1) * 255)
    path = tmp_path / "noisy.png"
    iio.imwrite(path, img.round().astype(np.uint8))
    return path


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
