import json
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import plan_denoise
from typer.testing import CliRunner

from dipcli.cli.app import app

runner = CliRunner()
FAST = ["--iters", "20", "--width", "8", "--quiet"]


@pytest.fixture
def noisy_png(tmp_path, smooth):
    clean = (smooth(24, 40) * 255).round().astype(np.uint8)
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    iio.imwrite(tmp_path / "clean.png", clean)
    iio.imwrite(tmp_path / "noisy.png", noisy)
    return tmp_path / "noisy.png"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_denoise_writes_default_output_beside_input(noisy_png):
    res = invoke("denoise", noisy_png, "--sigma", 25, *FAST)
    assert res.exit_code == 0, res.output
    out = noisy_png.with_name("noisy_denoised.png")
    data = iio.imread(out)
    assert data.shape == (24, 40, 3) and data.dtype == np.uint8


def test_json_output_parses_and_reports_psnr(noisy_png):
    res = invoke("denoise", noisy_png, "--sigma", 25, "--clean",
                 noisy_png.with_name("clean.png"), "--json", *FAST)
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout)
    assert record["iterations"] == 20 and record["arch"] == "compact" and record["preset"] == "fast"
    assert record["psnr"] > 10 and 0 < record["ssim"] <= 1 and record["params"] > 0


def test_add_noise_mode_scores_against_input(tmp_path, noisy_png):
    clean = noisy_png.with_name("clean.png")
    res = invoke("denoise", clean, "--sigma", 25, "--add-noise", "--json", *FAST)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["psnr"] is not None


def test_refuses_to_overwrite_without_force(noisy_png):
    out = noisy_png.with_name("out.png")
    out.write_bytes(b"keep me")
    res = invoke("denoise", noisy_png, "--sigma", 25, "-o", out, *FAST)
    assert res.exit_code == 2 and "--force" in res.output
    assert out.read_bytes() == b"keep me"
    res = invoke("denoise", noisy_png, "--sigma", 25, "-o", out, "--force", *FAST)
    assert res.exit_code == 0 and iio.imread(out).shape == (24, 40, 3)


def test_never_overwrites_its_input(noisy_png):
    before = noisy_png.read_bytes()
    res = invoke("denoise", noisy_png, "--sigma", 25, "-o", noisy_png, "--force", *FAST)
    assert res.exit_code == 2 and noisy_png.read_bytes() == before


@pytest.mark.parametrize("args, code, words", [
    (["missing.png", "--sigma", "25"], 2, "no such file"),
    (["{noisy}", "--sigma", "0"], 2, "impossible"),
    (["{noisy}", "--sigma", "300"], 2, "impossible"),
    (["{noisy}", "--sigma", "25", "--arch", "unet"], 2, "compact"),
    (["{bad}", "--sigma", "25"], 1, "cannot read"),
    (["{tiny}", "--sigma", "25"], 2, "at least"),
    (["{noisy}", "--sigma", "25", "--clean", "{tiny}"], 2, "same image"),
    (["{noisy}", "--sigma", "25", "--fits", "0"], 2, "--fits"),
    (["{noisy}", "--sigma", "25", "--fits", "2", "--arch", "compact"], 2, "--arch names one net"),
])
def test_bad_input_gives_one_line_error_and_no_output(tmp_path, noisy_png, args, code, words):
    (tmp_path / "bad.png").write_bytes(b"garbage")
    iio.imwrite(tmp_path / "tiny.png", np.zeros((4, 4), np.uint8))
    names = {"noisy": noisy_png, "bad": tmp_path / "bad.png", "tiny": tmp_path / "tiny.png"}
    args = [a.format(**names) if a.startswith("{") else a for a in args]
    args = [str(tmp_path / a) if a == "missing.png" else a for a in args]
    before = set(tmp_path.iterdir())
    res = invoke("denoise", *args, *FAST)
    assert res.exit_code == code, res.output
    assert words in res.output
    assert "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert set(tmp_path.iterdir()) == before


def test_sigma_is_estimated_when_omitted(noisy_png):
    res = invoke("denoise", noisy_png, "--json", *FAST)
    assert res.exit_code == 0, res.output
    assert 10 < json.loads(res.stdout)["sigma"] < 40


def test_snapshots_are_written(noisy_png, tmp_path):
    res = invoke("denoise", noisy_png, "--sigma", 25, "--save-every", 10,
                 "--snapshots", tmp_path / "snaps", *FAST)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == [
        "iter_000010.png", "iter_000020.png"]


def test_grey_16bit_keeps_its_format(tmp_path, smooth):
    data = (smooth(33, 29, channels=1)[:, :, 0] * 65535).astype(np.uint16)
    iio.imwrite(tmp_path / "g.png", data)
    res = invoke("denoise", tmp_path / "g.png", "--sigma", 10, *FAST)
    assert res.exit_code == 0, res.output
    out = iio.imread(tmp_path / "g_denoised.png")
    assert out.shape == (33, 29) and out.dtype == np.uint16


def test_version():
    res = invoke("--version")
    assert res.exit_code == 0 and res.stdout.startswith("dip ")


def test_nets_lists_every_architecture_with_cost():
    res = invoke("nets", "--size", 16, "--json", "--device", "cpu")
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert {r["arch"] for r in rows} == {"lean", "compact", "original", "deep-decoder",
                                       "convdecoder"}
    assert all(r["params"] > 0 and r["sec_per_iter"] > 0 for r in rows)


@pytest.mark.parametrize("arch", ["deep-decoder", "convdecoder", "lean"])
def test_denoise_runs_every_architecture(noisy_png, arch):
    res = invoke("denoise", noisy_png, "--sigma", 25, "--arch", arch, "--upsample", "lpf:tri",
                 "--json", "-o", noisy_png.with_name(f"{arch}.png"), "--iters", "10", "--width", "8")
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)
    assert rec["arch"] == arch and rec["upsample"] == "lpf:tri"
    assert iio.imread(noisy_png.with_name(f"{arch}.png")).shape == (24, 40, 3)


def test_unknown_upsampler_lists_the_valid_ones(noisy_png):
    res = invoke("denoise", noisy_png, "--sigma", 25, "--upsample", "magic", *FAST)
    assert res.exit_code == 2 and "lpf:sinc60" in res.output


def test_select_width_handles_grey_rgba_and_folders(tmp_path, smooth):
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    iio.imwrite(folder / "grey.png", (smooth(48, 48, channels=1)[:, :, 0] * 255).astype(np.uint8))
    rgba = np.concatenate([(smooth(48, 40) * 255).astype(np.uint8),
                           np.full((48, 40, 1), 200, np.uint8)], axis=2)
    iio.imwrite(folder / "rgba.png", rgba)
    iio.imwrite(folder / "busy.png", rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    res = invoke("select-width", folder, "--sigma", 10, "--json")
    assert res.exit_code == 0, res.output
    rows = {Path(r["input"]).name: r for r in map(json.loads, res.stdout.splitlines())}
    assert set(rows) == {"grey.png", "rgba.png", "busy.png"}
    assert all(r["width"] in (32, 64, 128) and {"textured", "sigma"} <= r.keys() for r in rows.values())
    assert rows["busy.png"]["textured"] > rows["grey.png"]["textured"]


def test_select_width_reports_a_bad_file_and_exits_1(tmp_path, noisy_png):
    (tmp_path / "bad.png").write_bytes(b"junk")
    res = invoke("select-width", noisy_png, tmp_path / "bad.png", "--json")
    assert res.exit_code == 1
    good, bad = map(json.loads, res.stdout.strip().splitlines())  # a record for the failure too
    assert "width" in good and bad["status"] == "failed" and "cannot read" in bad["error"]


def test_width_auto_picks_and_reports_a_width(noisy_png):
    res = invoke("denoise", noisy_png, "--sigma", 25, "--width", "auto", "--iters", "10", "--json")
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)
    assert rec["width_auto"] and rec["width"] in (32, 64, 128) and 0 <= rec["textured"] <= 1


def test_bad_width_is_refused(noisy_png):
    res = invoke("denoise", noisy_png, "--sigma", 25, "--width", "wide", "--iters", "10")
    assert res.exit_code == 2 and "auto" in res.output


def test_denoise_defaults_the_fast_preset_on_a_cpu_and_compact_auto_width_on_a_gpu(monkeypatch):
    """On a CPU: the `fast` preset, the compact net fed the noisy image with a recorrupted loss
    (jitter σ, a warm average, its whole budget); a net named with --arch keeps the paper's
    jitter and the stop rule. On CUDA: the compact net at --width auto. Either way, 256² tiles."""
    from dipcli.api.plan import fit_config
    from dipcli.api.presets import CPU_PRESET, PRESETS
    from dipcli.api.spec import Options, make_spec
    from dipcli.physics import Denoise

    spec = make_spec("denoise", Options(device="cpu"), sigma=25)
    (fit,) = spec.fits
    config = fit_config(spec, fit, fit.net, Denoise(25 / 255), jitter=1 / 30)
    assert spec.preset == CPU_PRESET == "fast" and fit.recipe == PRESETS["fast"].recipes[0]
    assert fit.net.arch == "compact" and spec.tile_target == 256 and fit.iters == fit.recipe.iters
    assert config.input == "observation" and config.recorrupt and config.stop.name == "fixed"
    assert config.reg_noise == pytest.approx(25 / 255) and config.ema_warmup == 9
    plain_spec = make_spec("denoise", Options(device="cpu", arch="compact"), sigma=25)
    plain = fit_config(plain_spec, plain_spec.fits[0], plain_spec.net, Denoise(25 / 255), jitter=1 / 30)
    assert plain.reg_noise == pytest.approx(1 / 30) and plain.ema_warmup == 0 and not plain.recorrupt
    assert plain_spec.tile_target == 256 and plain_spec.preset is None
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    gpu = make_spec("denoise", Options(device="auto"))
    assert gpu.net.arch == "compact" and gpu.width_auto


def test_cpu_default_is_one_preset_for_an_image_fitted_whole_or_in_tiles():
    """The CPU default is `fast` whether --tile auto cuts the image (400²) or not (256²): the first
    tile gets its whole budget, the tiles after it the recipe's shorter warm budget from its
    weights. Naming the preset or the budget keeps what was named. Planning only."""
    from dipcli.api.presets import PRESETS, R2R

    def plan(side: int, **options):
        return plan_denoise(side, 25, **options)

    tiled, whole = plan(400), plan(256)
    fast = PRESETS["fast"].recipes[0]
    assert tiled.tile and tiled.config.iters == fast.iters and tiled.warm.iters == fast.tile_iters
    assert not whole.tile and whole.config.iters == fast.iters < R2R.iters
    assert tiled.extra["preset"] == whole.extra["preset"] == "fast"
    assert tiled.config.recorrupt and tiled.config.reg_noise == pytest.approx(25 / 255)
    assert plan(400, preset="balanced").config.iters == PRESETS["balanced"].recipes[0].iters
    assert plan(400, iters=50).config.iters == 50 and plan(400, iters=50).warm is None
    # At σ = 50 `balanced` fits a second seed (presets.members), whole or tiled; `fast` one.
    assert len(plan_denoise(256, 50, preset="balanced").ensemble) == 1
    assert plan_denoise(400, 50).ensemble == plan_denoise(256, 50).ensemble == []


def test_capped_presets_spend_the_time_the_cap_frees_on_more_seeds():
    """Where σ caps each fit's budget, `best` (and `balanced`) fit more seeds while their budgets
    add up to the preset's ``fill_iters``: `best` two fits of 2,000 at σ ≤ 25, five of 1,000 at
    σ = 50; `balanced` one, and two at σ = 50; `fast` one (of 800 up to σ = 50). Each added fit is
    the last recipe from the next seed; --iters keeps the preset's own fits. Planning only."""
    from dipcli.api.presets import PRESETS, budget, members

    best, balanced, fast = PRESETS["best"], PRESETS["balanced"], PRESETS["fast"]
    s15, s25, s35, s50 = 15 / 255, 25 / 255, 35 / 255, 50 / 255
    assert members(best, s15) == members(best, s25) == best.recipes
    four = members(best, s50)
    assert [r.seed_offset for r in four] == [0, 1, 2, 3, 4] and all(budget(r, s50) == 1000 for r in four)
    assert four[2:] == tuple(replace(best.recipes[-1], seed_offset=k) for k in (2, 3, 4))
    assert sum(budget(r, s35) for r in members(best, s35)) <= best.fill_iters
    assert len(members(balanced, s25)) == 1 and len(members(balanced, s50)) == 2
    assert members(fast, s50) == fast.recipes

    def fits(sigma: float, **options) -> list[tuple[int, int]]:
        main = plan_denoise(64, sigma, **options)
        return [(p.config.seed, p.config.iters) for p in (main, *main.ensemble)]

    assert fits(50, preset="best") == [(0, 1000), (1, 1000), (2, 1000), (3, 1000), (4, 1000)]
    assert fits(25, preset="best", seed=7) == [(7, 2000), (8, 2000)]
    assert fits(50, preset="best", iters=30) == [(0, 30), (1, 30)]
    assert fits(50, preset="fast") == [(0, 800)]
    # --fits names the count: from the preset's recipes, then its last from the next seeds.
    assert fits(25, preset="best", fits=3) == [(0, 2000), (1, 2000), (2, 2000)]
    assert fits(50, preset="best", fits=1) == [(0, 1000)]
    assert fits(50, preset="fast", fits=2, iters=30) == [(0, 30), (1, 30)]


@pytest.mark.parametrize("options, words", [
    (dict(preset="best", fits=0), "from 1 to 16"),
    (dict(arch="compact", fits=2), "--arch names one net"),
    (dict(device="cuda", fits=2), "--preset best"),  # the GPU default is one net, no preset
])
def test_fits_is_refused_where_there_is_no_preset_to_repeat(options, words, monkeypatch):
    from dipcli.api.spec import Options, make_spec
    from dipcli.errors import Fail

    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    with pytest.raises(Fail, match=words):
        make_spec("denoise", Options(**options))
    with pytest.raises(Fail, match="--fits is for denoise and inpaint"):
        make_spec("superres", Options(fits=2))


def test_preset_budget_is_capped_above_sigma_25_where_the_fit_peaks():
    """A recorrupted fit overfits sooner at higher σ: `best`'s 2,000 iterations fall to 1,000 at
    σ = 50 (where its fits peaked), never above the recipe's own (`fast`'s 800 stay 800 to past
    σ = 50); σ ≤ 25 and a net named without a preset keep their budget, and --iters wins."""
    from dipcli.api.presets import PRESETS, budget

    best, fast = PRESETS["best"].recipes[0], PRESETS["fast"].recipes[0]
    assert budget(best, 15 / 255) == budget(best, 25 / 255) == 2000 and budget(best, 50 / 255) == 1000
    assert 1000 < budget(best, 35 / 255) < 2000 and budget(best, 75 / 255) < 1000
    assert budget(fast, 25 / 255) == budget(fast, 50 / 255) == 800 and budget(fast, 75 / 255) < 800
    assert budget(replace(best, recorrupt=False), 50 / 255) == 2000

    def iters(sigma: float, **options) -> int:
        return plan_denoise(64, sigma, **options).config.iters

    assert iters(50, preset="best") == 1000 and iters(25, preset="best") == 2000
    assert iters(50, preset="best", iters=1500) == 1500
    assert iters(75, preset="best") < 1000 and iters(75, arch="compact") == 1200  # no preset: no cap
