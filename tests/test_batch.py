"""Many inputs in one call: folders, globs, naming, pairing, reports, pictures, --jobs, Ctrl-C."""

import csv
import io
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from dipcli.batch import Source, expand_inputs, glob_base
from dipcli.cli.app import app
from dipcli.engine import run as job
from dipcli.report.progress import RichDisplay

runner = CliRunner()
FAST = ["--iters", "10", "--width", "8", "--sigma", "25"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def noisy(smooth, h=24, w=28, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clean = smooth(h, w, seed=seed) * 255
    return np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def folder(tmp_path, smooth):
    """imgs/ with two good images and one corrupt file."""
    d = tmp_path / "imgs"
    d.mkdir()
    iio.imwrite(d / "a.png", noisy(smooth, seed=1))
    iio.imwrite(d / "b.png", noisy(smooth, 20, 30, seed=2))
    (d / "c.png").write_bytes(b"not an image")
    return d


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_bad_file_is_reported_and_the_batch_goes_on(folder, tmp_path):
    report = tmp_path / "results.csv"
    res = invoke("denoise", folder, *FAST, "--report", report)
    assert res.exit_code == 1, res.output
    assert sorted(p.name for p in folder.glob("*_denoised.png")) == ["a_denoised.png", "b_denoised.png"]
    table = rows(report)
    assert [Path(r["input"]).name for r in table] == ["a.png", "b.png", "c.png"]
    assert [r["status"] for r in table] == ["ok", "ok", "failed"]
    assert "cannot read" in table[2]["error"] and table[0]["error"] == ""
    assert table[0]["iterations"] == "10" and table[0]["sigma"] == "25.0"
    # one error line for the bad file, and a summary table at the end
    assert res.stderr.count("dip: error:") == 1 and "c.png: cannot read" in res.stderr
    assert "dip batch" in res.stderr and "failed" in res.stderr
    assert res.stdout == ""  # nothing but results goes to stdout, and none were asked for


def test_json_lines_one_per_input_failures_included(folder):
    res = invoke("denoise", folder, *FAST, "--json", "--quiet")
    assert res.exit_code == 1
    records = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(records) == 3
    by_name = {Path(r["input"]).name: r for r in records}
    assert by_name["a.png"]["status"] == "ok" and by_name["a.png"]["iterations"] == 10
    assert by_name["c.png"]["status"] == "failed" and "cannot read" in by_name["c.png"]["error"]
    assert res.stderr.count("dip: error:") == 1 and "dip batch" not in res.stderr  # --quiet


def test_json_report_is_a_list_of_the_records(folder, tmp_path):
    res = invoke("denoise", folder / "a.png", folder / "c.png", *FAST, "-q", "--report", tmp_path / "r.json")
    assert res.exit_code == 1
    records = json.loads((tmp_path / "r.json").read_text())
    assert [r["status"] for r in records] == ["ok", "failed"]
    assert records[0]["psnr"] is None and records[0]["params"] > 0


def test_existing_outputs_refuse_the_batch_unless_skipped_or_forced(folder, tmp_path):
    (folder / "c.png").unlink()
    iio.imwrite(folder / "a_denoised.png", np.zeros((24, 28, 3), np.uint8))
    before = (folder / "a_denoised.png").read_bytes()
    res = invoke("denoise", folder, *FAST, "-q")
    assert res.exit_code == 2 and "--skip-existing" in res.output
    assert not (folder / "b_denoised.png").exists()  # refused before any work
    res = invoke("denoise", folder, *FAST, "--skip-existing", "--json")
    assert res.exit_code == 0, res.output
    status = {Path(r["input"]).name: r["status"] for r in map(json.loads, res.stdout.splitlines())}
    assert status == {"a.png": "skipped", "b.png": "ok"}  # a_denoised.png is an output, not an input
    assert (folder / "a_denoised.png").read_bytes() == before
    res = invoke("denoise", folder, *FAST, "--force", "-q")
    assert res.exit_code == 0 and (folder / "a_denoised.png").read_bytes() != before


def test_name_template_and_output_dir_mirror_subfolders(tmp_path, smooth):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    iio.imwrite(tmp_path / "in" / "x.png", noisy(smooth))
    iio.imwrite(tmp_path / "in" / "sub" / "y.png", noisy(smooth, seed=3))
    out = tmp_path / "out"
    res = invoke("denoise", tmp_path / "in", "--recursive", "--output-dir", out,
                 "--name", "{stem}-{task}.tif", *FAST, "-q")
    assert res.exit_code == 0, res.output
    assert iio.imread(out / "x-denoised.tif").shape == (24, 28, 3)
    assert iio.imread(out / "sub" / "y-denoised.tif").shape == (24, 28, 3)
    res = invoke("denoise", tmp_path / "in", "--name", "{stem}_{colour}.png", *FAST)
    assert res.exit_code == 2 and "unknown field {colour}" in res.output


def test_mask_pattern_pairs_each_image_with_its_mask(tmp_path, smooth):
    for n, stem in enumerate(("p", "q", "r")):
        iio.imwrite(tmp_path / f"{stem}.png", (smooth(24, 24, seed=n) * 255).astype(np.uint8))
        if stem != "r":  # r has no mask
            mask = np.full((24, 24), 255, np.uint8)
            mask[8:14, 6 + 2 * n:16] = 0
            iio.imwrite(tmp_path / f"{stem}_mask.png", mask)
    res = invoke("inpaint", tmp_path, "--mask-pattern", "{stem}_mask.png", "--arch", "compact",
                 "--iters", "10", "--width", "8", "--json")
    assert res.exit_code == 1, res.output
    records = {Path(r["input"]).name: r for r in map(json.loads, res.stdout.splitlines())}
    assert set(records) == {"p.png", "q.png", "r.png"}  # the masks are not inputs
    assert records["p.png"]["mask"].endswith("p_mask.png") and records["q.png"]["status"] == "ok"
    assert records["p.png"]["missing_fraction"] != records["q.png"]["missing_fraction"]
    assert records["r.png"]["status"] == "failed" and "r_mask.png: no such file" in records["r.png"]["error"]
    out, src = iio.imread(tmp_path / "q_inpainted.png"), iio.imread(tmp_path / "q.png")
    known = iio.imread(tmp_path / "q_mask.png") > 127
    np.testing.assert_array_equal(out[known], src[known])


def test_clean_dir_pairs_references_by_name(folder, tmp_path, smooth):
    (folder / "c.png").unlink()
    refs = tmp_path / "clean"
    refs.mkdir()
    iio.imwrite(refs / "a.png", (smooth(24, 28, seed=1) * 255).astype(np.uint8))
    res = invoke("denoise", folder, *FAST, "--clean-dir", refs, "--json", "-q")
    assert res.exit_code == 1  # b.png has no reference
    records = {Path(r["input"]).name: r for r in map(json.loads, res.stdout.splitlines())}
    assert records["a.png"]["psnr"] > 10
    assert records["b.png"]["status"] == "failed" and "no such file" in records["b.png"]["error"]


def test_a_quoted_glob_is_expanded(folder):
    res = invoke("denoise", str(folder / "[ab].png"), *FAST, "-q")
    assert res.exit_code == 0, res.output
    assert (folder / "a_denoised.png").exists() and (folder / "b_denoised.png").exists()
    res = invoke("denoise", str(folder / "*.jpg"), *FAST, "-q")
    assert res.exit_code == 2 and "no image matches" in res.output


def test_output_option_is_for_one_input_only(folder, tmp_path):
    res = invoke("denoise", folder / "a.png", folder / "b.png", "-o", tmp_path / "x.png", *FAST)
    assert res.exit_code == 2 and "--output-dir" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = invoke("denoise", folder / "a.png", folder / "b.png", "--clean", folder / "a.png", *FAST)
    assert res.exit_code == 2 and "--clean-dir" in res.output


@pytest.mark.needs("matplotlib")
def test_plot_and_gif_are_written_per_input(folder, tmp_path):
    (folder / "c.png").unlink()
    pics = tmp_path / "pics"
    res = invoke("two-stage", folder, *FAST, "-q", "--plot", pics / "{stem}_curves.png",
                 "--gif", pics / "{stem}.gif", "--save-every", "5")
    assert res.exit_code == 0, res.output
    for stem in ("a", "b"):
        assert iio.imread(pics / f"{stem}_curves.png").ndim == 3
        frames = iio.imread(pics / f"{stem}.gif", index=None)
        assert frames.shape[0] >= 1 and frames.shape[1:3] == iio.imread(folder / f"{stem}.png").shape[:2]
    res = invoke("denoise", folder, *FAST, "--plot", "curves.png", "--force")
    assert res.exit_code == 2 and "{stem}" in res.output  # one file for every input: refused


def test_gif_needs_save_every_and_missing_matplotlib_is_one_line(folder, monkeypatch):
    res = invoke("denoise", folder / "a.png", *FAST, "--gif", "p.gif")
    assert res.exit_code == 2 and "--save-every" in res.output
    monkeypatch.setattr("dipcli.batch.checks.have_matplotlib", lambda: False)
    res = invoke("denoise", folder / "a.png", *FAST, "--plot", "c.png")
    assert res.exit_code == 2 and "pip install 'dipcli[plot]'" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_plot_csv_writes_the_curve_numbers_without_matplotlib(folder, tmp_path, monkeypatch):
    monkeypatch.setattr("dipcli.batch.checks.have_matplotlib", lambda: False)
    out = tmp_path / "curves.csv"
    clean = folder / "a.png"
    res = invoke("denoise", clean, *FAST, "--add-noise", "--plot", out, "-o", tmp_path / "d.png")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    its = [int(r["iteration"]) for r in rows]
    assert its == sorted(its) and its[-1] == 10 and float(rows[-1]["psnr_ema"]) > 0
    assert all(float(r["elapsed"]) >= 0 for r in rows)


def test_parallel_jobs_give_the_same_images_as_sequential(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # workers: 1 thread each, as conftest gives this process
    (folder / "c.png").unlink()
    iio.imwrite(folder / "d.png", np.asarray(iio.imread(folder / "a.png"))[::-1])
    one, two = tmp_path / "one", tmp_path / "two"
    res1 = invoke("denoise", folder, *FAST, "--output-dir", one, "--jobs", "1", "--json")
    res2 = invoke("denoise", folder, *FAST, "--output-dir", two, "--jobs", "2", "--json")
    assert res1.exit_code == 0 and res2.exit_code == 0, res2.output
    names = sorted(p.name for p in one.iterdir())
    assert names == ["a_denoised.png", "b_denoised.png", "d_denoised.png"]
    assert names == sorted(p.name for p in two.iterdir())
    for name in names:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    assert len(res2.stdout.splitlines()) == 3


def test_ctrl_c_keeps_the_image_so_far_writes_the_report_and_exits_130(folder, tmp_path, monkeypatch):
    real_fit = job.fit_group

    class CtrlC:
        def on_event(self, e):
            raise KeyboardInterrupt

    def interrupted_fit(members, *args, **kw):
        for m in members:
            m.subscribers = [*m.subscribers, CtrlC()]
        return real_fit(members, *args, **kw)

    monkeypatch.setattr(job, "fit_group", interrupted_fit)
    report = tmp_path / "r.csv"
    res = invoke("denoise", folder, *FAST, "-q", "--report", report)
    assert res.exit_code == 130
    assert (folder / "a_denoised.png").exists() and not (folder / "b_denoised.png").exists()
    assert [(Path(r["input"]).name, r["status"]) for r in rows(report)] == [("a.png", "interrupted")]


def test_single_input_keeps_its_old_behaviour(folder, tmp_path):
    res = invoke("denoise", folder / "c.png", *FAST, "-q", "--json", "--report", tmp_path / "r.csv")
    assert res.exit_code == 1 and res.stdout == "" and "cannot read" in res.output
    assert rows(tmp_path / "r.csv")[0]["status"] == "failed"
    res = invoke("denoise", folder / "a.png", *FAST, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["status"] == "ok"
    assert "dip batch" not in res.stderr


def test_expand_inputs_and_glob_base(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    for name in ("d/1.png", "d/2.JPG", "d/notes.txt", "d/.hidden.png", "d/e/3.tif"):
        (tmp_path / name).write_bytes(b"x")
    flat, batch = expand_inputs([tmp_path / "d"])
    assert batch and [s.path.name for s in flat] == ["1.png", "2.JPG"]
    deep, _ = expand_inputs([tmp_path / "d", tmp_path / "d" / "1.png"], recursive=True)
    assert [s.path.name for s in deep] == ["1.png", "2.JPG", "3.tif"]  # each file once
    one, batch = expand_inputs([tmp_path / "d" / "1.png"])
    assert not batch and one == [Source(tmp_path / "d" / "1.png")]
    assert glob_base("imgs/**/x*.png") == Path("imgs") and glob_base("*.png") == Path(".")


def test_rich_display_shows_an_overall_bar_above_the_image_bars():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    with RichDisplay(console, count=2, batch=True) as display:
        display.begin(0, "a.png", "dip denoise a.png: 24×28", 10)
        display.update(0, 5, 10, 1.0, "loss 0.01")
        display.end(0)
        display.advance(failed=True)
    text = buf.getvalue()
    assert "dip denoise a.png" in text and "batch" in text and "1 failed" in text


def test_group_fits_same_size_images_together_like_alone(folder, tmp_path):
    """--group: the three 24×28 images go as one batched fit, the odd size on its own; each
    result matches its fit alone up to float rounding (fp32, a short run)."""
    (folder / "c.png").unlink()
    iio.imwrite(folder / "d.png", np.full((24, 28, 3), 90, np.uint8))
    iio.imwrite(folder / "e.png", np.asarray(iio.imread(folder / "a.png"))[::-1])
    fast = [*FAST, "--precision", "fp32", "--json", "--stop", "fixed"]
    alone, grouped = tmp_path / "alone", tmp_path / "grouped"
    res1 = invoke("denoise", folder, *fast, "--output-dir", alone)
    res2 = invoke("denoise", folder, *fast, "--output-dir", grouped, "--group", "4")
    assert res1.exit_code == 0 and res2.exit_code == 0, res2.output
    recs = {Path(r["input"]).name: r for r in map(json.loads, res2.stdout.splitlines())}
    assert {k: r["group"] for k, r in recs.items()} == {"a.png": 3, "b.png": 1, "d.png": 3, "e.png": 3}
    for name in ("a", "b", "d", "e"):
        x = np.asarray(iio.imread(alone / f"{name}_denoised.png"), float)
        y = np.asarray(iio.imread(grouped / f"{name}_denoised.png"), float)
        assert x.shape == y.shape and np.abs(x - y).mean() < 0.5, name  # grey levels


def test_group_leaves_an_ensemble_whole(folder, tmp_path):
    """--group with a preset of two fits (inpainting's default): each input still gets both fits,
    fitted on its own, as without --group."""
    (folder / "c.png").unlink()
    args = ["--drop", "0.3", "--iters", "10", "--width", "8", "--stop", "fixed", "--json"]
    res = invoke("inpaint", folder, *args, "--group", "2", "--output-dir", tmp_path / "out")
    assert res.exit_code == 0, res.output
    recs = [json.loads(line) for line in res.stdout.splitlines()]
    assert recs and all(r["preset"] == "best" and r["fits"] == 2 and r["iterations"] == 20 for r in recs)
    assert all(r.get("group", 1) == 1 for r in recs)


def test_group_members_stop_on_their_own(tmp_path, smooth):
    """Each member of a group has its own stop rule: a flat image that the net explains at once
    stops long before a noisy one, and is not held to the other's iterations."""
    d = tmp_path / "in"
    d.mkdir()
    iio.imwrite(d / "flat.png", np.full((24, 28, 3), 128, np.uint8))
    iio.imwrite(d / "busy.png", noisy(smooth, seed=4))
    # The compact net: the lean one fits this small noisy image, too, by the first check allowed.
    res = invoke("denoise", d, "--iters", "400", "--arch", "compact", "--width", "8", "--sigma", "25",
                 "--json", "--group", "2", "--output-dir", tmp_path / "out")
    assert res.exit_code == 0, res.output
    recs = {Path(r["input"]).name: r for r in map(json.loads, res.stdout.splitlines())}
    assert recs["flat.png"]["group"] == 2 and recs["flat.png"]["stop_reason"] == "discrepancy"
    assert recs["flat.png"]["iterations"] < recs["busy.png"]["iterations"]


def test_group_and_jobs_do_not_go_together(folder):
    res = invoke("denoise", folder, *FAST, "--group", "2", "--jobs", "2")
    assert res.exit_code == 2 and "choose one" in res.output


@pytest.mark.parametrize("bad", ["0", "-2", "many"])
def test_a_bad_group_is_a_usage_error(folder, bad):
    res = invoke("denoise", folder / "a.png", *FAST, "--group", bad)
    assert res.exit_code == 2 and "--group" in res.output


def test_tiles_of_one_image_can_go_as_a_group(tmp_path, smooth):
    """--group with tiles: all six tiles in one batched fit, blended like tiles fitted one by one."""
    src = tmp_path / "big.png"
    iio.imwrite(src, noisy(smooth, 96, 80, seed=5))
    base = [src, "--iters", "20", "--width", "8", "--sigma", "25", "--tile", "48", "--precision", "fp32",
            "--json", "--stop", "fixed"]
    one = invoke("denoise", *base, "--group", "1", "-o", tmp_path / "one.png")
    six = invoke("denoise", *base, "--group", "8", "-o", tmp_path / "six.png")
    assert one.exit_code == 0 and six.exit_code == 0, six.output
    assert json.loads(six.stdout)["tiles"] == json.loads(one.stdout)["tiles"] > 1
    x = np.asarray(iio.imread(tmp_path / "one.png"), float)
    y = np.asarray(iio.imread(tmp_path / "six.png"), float)
    assert x.shape == y.shape == (96, 80, 3) and np.abs(x - y).mean() < 0.5
