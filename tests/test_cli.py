"""The command line as users and checks call it: train, evaluate, predict, and bad input."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import fixtures
from ssae.cli import main


def run_cli(*args):
    """Run ``python -m ssae.cli`` in a subprocess: (exit code, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", "ssae.cli", *map(str, args)], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def test_evaluate_writes_the_promised_json(smoke_run, tmp_path):
    data, run = smoke_run
    out = tmp_path / "m.json"
    assert main(["evaluate", str(run), "--data", str(data), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    for key in ("image_auroc", "pixel_auroc", "aupro"):
        assert 0.0 <= res[key] <= 1.0, key
    assert res["n_test_images"] == 6 and res["image_size"] == 64
    assert res["profile"] == "smoke" and res["device"] == "cpu"
    assert 0.0 <= res["restoration_pixel_auroc"] <= 1.0
    assert res["corruption"] == "elastic" and res["corruption_shape"] == "blob"  # the run's X2, Sec. 3.2


def test_retries_name_the_run_even_when_it_has_no_restoration_check(tmp_path, monkeypatch, capsys):
    """An attempt without a calibration (restoration None) is listed as n/a, not a traceback."""
    import ssae.pipeline as P

    data = fixtures.make_mvtec(tmp_path)
    out = tmp_path / "r"
    attempt = {"run_dir": out, "init_seed": None, "restoration": None, "steps": 2, "seconds": 1.0,
               "stopped_by": "steps"}
    monkeypatch.setattr(P, "train_until_restored", lambda *a, **k: (out, [attempt]))
    assert main(["train", "--data", str(data), "--out", str(out), "--profile", "smoke", "--retries", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"use run directory {out} (restoration checks: r n/a)"


def test_corruption_and_engine_choices_on_the_command_line_are_the_library_s():
    """cli.py lists them itself, so that parsing the command line does not import torch."""
    from ssae.cli import CORRUPTIONS, ENGINES, make_parser
    from ssae.corruption import METHODS
    from ssae.detector import ENGINES as DETECTOR_ENGINES

    assert CORRUPTIONS == METHODS and ENGINES == DETECTOR_ENGINES
    for method in METHODS:
        assert make_parser().parse_args(["train", "--data", "d", "--out", "o", "--corruption", method]).corruption == method


def test_an_untrained_model_is_flagged_by_the_restoration_check(smoke_run, capsys):
    data, run = smoke_run  # four smoke steps: the model cannot restore anything yet
    cal = json.loads((run / "calibration.json").read_text())
    assert main(["evaluate", str(run), "--data", str(data)]) == 0
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
    assert cal["restoration_pixel_auroc"] < 0.75 and len(warnings) == 1
    assert warnings[0].startswith("ssae: warning:") and "train longer" in warnings[0]


def test_evaluate_without_masks_says_image_level_only(smoke_run, tmp_path, capsys):
    _, run = smoke_run
    data = fixtures.make_mvtec(tmp_path, masks=False)
    out = tmp_path / "m.json"
    assert main(["evaluate", str(run), "--data", str(data), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["pixel_auroc"] is None and res["aupro"] is None
    assert "image-level metrics only" in capsys.readouterr().out


def test_predict_writes_overlays_masks_and_scores(smoke_run, tmp_path):
    from PIL import Image

    data, run = smoke_run
    good, bad = sorted((data / "test" / "good").glob("*.png"))[0], sorted((data / "test" / "scratch").glob("*.png"))[0]
    assert good.stem == bad.stem  # two inputs with one name: neither output may overwrite the other
    wide = tmp_path / "wide.png"
    Image.open(bad).resize((96, 40)).save(wide)  # not the run's 64 x 64
    images = [good, bad, wide]
    assert main(["predict", str(run), *map(str, images), "--out", str(tmp_path / "p")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "p" / "scores.csv")))
    assert [r["image"] for r in rows] == list(map(str, images))
    assert len({r["overlay"] for r in rows}) == 3 and len({r["mask"] for r in rows}) == 3
    for r, img in zip(rows, images):
        size = Image.open(img).size
        assert Image.open(tmp_path / "p" / r["overlay"]).size == size  # the input's own size
        mask = np.asarray(Image.open(tmp_path / "p" / r["mask"]))
        assert mask.shape == size[::-1] and set(np.unique(mask)) <= {0, 255}


@pytest.mark.parametrize("flag, needle", [
    (["--set", "modle.width=0.5"], "modle"),
    (["--set", "train.steps=abc"], "train.steps"),
    (["--set", "model.width=wide"], "model.width"),
    (["--image-size", "big"], "--image-size"),
    (["--device", "gpu"], "--device"),
])
def test_bad_command_line_values_are_one_line(tmp_path, flag, needle):
    data = fixtures.make_mvtec(tmp_path)
    rc, _, err = run_cli("train", "--data", data, "--out", tmp_path / "r", "--profile", "smoke", *flag)
    assert_one_line_error(rc, err, needle)
    assert not (tmp_path / "r").exists()  # refused before anything is written


def test_cuda_without_a_gpu_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    data = fixtures.make_mvtec(tmp_path)
    rc, _, err = run_cli("train", "--data", data, "--out", tmp_path / "r", "--profile", "smoke", "--device", "cuda")
    assert_one_line_error(rc, err, "no CUDA device")


def test_a_calibration_from_before_two_sided_maps_still_evaluates(smoke_run, tmp_path):
    data, run = smoke_run
    copy = copy_run(run, tmp_path)
    cal = json.loads((copy / "calibration.json").read_text())
    del cal["two_sided"]
    (copy / "calibration.json").write_text(json.dumps(cal))
    outs = []
    for i, d in enumerate((run, copy)):
        out = tmp_path / f"metrics{i}.json"
        assert main(["evaluate", str(d), "--data", str(data), "--json", str(out)]) == 0
        outs.append(json.loads(out.read_text()))
    assert outs[1]["score"]["two_sided"] is False
    assert outs[0]["image_auroc"] == outs[1]["image_auroc"] and outs[0]["pixel_auroc"] == outs[1]["pixel_auroc"]


@pytest.mark.parametrize("damage", ["garbage", "old_keys", "json_to_folder"])
def test_damaged_calibration_or_output_is_one_line(smoke_run, tmp_path, damage):
    data, run = smoke_run
    copy = copy_run(run, tmp_path)
    args = ["evaluate", copy, "--data", data]
    if damage == "garbage":
        (copy / "calibration.json").write_text("{not json")
        needle = "calibration.json"
    elif damage == "old_keys":
        (copy / "calibration.json").write_text(json.dumps({"n": 1, "k": 3}))
        needle = "lacks reduce, diff, t, threshold"
    else:
        (tmp_path / "folder").mkdir()
        args += ["--json", tmp_path / "folder"]
        needle = "folder"
    rc, _, err = run_cli(*args)
    assert_one_line_error(rc, err, needle)


def copy_run(run, tmp_path):
    """A copy of the module's smoke_run run that a test may damage."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


def assert_one_line_error(rc, err, *needles):
    assert rc == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("ssae: error: ") and "Traceback" not in err
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])


@pytest.mark.parametrize("breaker", ["truncate", "remove_mask", "resize_mask", "empty_train", "unknown"])
def test_bad_input_is_one_line_naming_the_file(smoke_run, tmp_path, breaker):
    _, run = smoke_run
    data = fixtures.make_mvtec(tmp_path)
    if breaker == "truncate":
        bad = fixtures.truncate_file(sorted((data / "test" / "scratch").glob("*.png"))[0])
        rc, _, err = run_cli("evaluate", run, "--data", data)
    elif breaker == "remove_mask":
        bad = fixtures.remove_mask(data)
        rc, _, err = run_cli("evaluate", run, "--data", data)
    elif breaker == "resize_mask":
        bad = fixtures.resize_mask(data)
        rc, _, err = run_cli("evaluate", run, "--data", data)
    elif breaker == "empty_train":
        bad = fixtures.empty_train(data)
        rc, _, err = run_cli("train", "--data", data, "--out", tmp_path / "r", "--profile", "smoke")
    else:
        bad = fixtures.make_unknown(tmp_path / "unknown")
        rc, _, err = run_cli("train", "--data", bad, "--out", tmp_path / "r", "--profile", "smoke")
    assert_one_line_error(rc, err, bad.name)
    if breaker in ("empty_train", "unknown"):
        assert not (tmp_path / "r").exists()  # the data is checked before a run folder is made


def test_not_a_run_directory(tmp_path):
    rc, _, err = run_cli("evaluate", tmp_path, "--data", tmp_path)
    assert_one_line_error(rc, err, "not a run directory")


def test_bad_setting_is_one_line(tmp_path):
    rc, _, err = run_cli("train", "--data", tmp_path, "--out", tmp_path / "r", "--set", "model.depth=3")
    assert_one_line_error(rc, err, "model.depth")


def test_bad_smoothing_grid_fails_before_training(tmp_path):
    """calibration.nk is used only at calibration, after training; a bad pair must fail
    before the run folder is written, not 20 minutes later."""
    data = fixtures.make_mvtec(tmp_path)
    run = tmp_path / "r"
    rc, _, err = run_cli("train", "--data", data, "--out", run, "--profile", "smoke",
                         "--set", "calibration.nk=((1,0),)")
    assert_one_line_error(rc, err, "calibration.nk")
    assert not run.exists()


@pytest.mark.parametrize("bad", ["calibration.proxy_patch_min=0", "calibration.proxy_patch_max=0.01",
                                 "calibration.proxy_draws=0"])
def test_bad_proxy_settings_fail_before_training(tmp_path, bad):
    """The proxy's patch sizes and draws, too, are used only at calibration after training."""
    data = fixtures.make_mvtec(tmp_path)
    run = tmp_path / "r"
    rc, _, err = run_cli("train", "--data", data, "--out", run, "--profile", "smoke", "--set", bad)
    assert_one_line_error(rc, err, bad.split("=")[0].rsplit("_", 1)[0])
    assert not run.exists()


def test_nan_loss_is_one_line_and_leaves_no_finished_run(tmp_path):
    data = fixtures.make_mvtec(tmp_path)
    run = tmp_path / "r"
    rc, _, err = run_cli("train", "--data", data, "--out", run, "--profile", "smoke", "--set", "train.lr=1e30")
    assert_one_line_error(rc, err, "diverged", "lr")
    assert not (run / "done").exists() and not (run / "calibration.json").exists()


def test_run_directory_of_another_version_is_one_line(smoke_run, tmp_path):
    data, run = smoke_run
    copy = copy_run(run, tmp_path)
    doc = json.loads((copy / "config.json").read_text())
    doc["config"]["format_version"] = 99
    (copy / "config.json").write_text(json.dumps(doc))
    rc, _, err = run_cli("evaluate", copy, "--data", data)
    assert_one_line_error(rc, err, "incompatible run directory")


def test_retries_train_again_with_other_initial_weights_only_when_the_check_fails(tmp_path, monkeypatch, capsys):
    """ssae train --retries N: a model that fails the restoration check is
    trained again into OUT-retryK with train.init_seed = seed + 1000 k; one that passes is not."""
    import ssae.calibration as E
    from ssae.runs import read_run_config

    data = fixtures.make_mvtec(tmp_path)
    args = ["train", "--data", str(data), "--profile", "smoke", "--steps", "2", "--seed", "3", "--retries", "2"]
    monkeypatch.setattr(E, "RESTORATION_MIN", 0.0)             # every model passes: no retry
    assert main([*args, "--out", str(tmp_path / "ok")]) == 0
    out = capsys.readouterr().out
    assert not (tmp_path / "ok-retry1").exists()
    assert f"use run directory {tmp_path / 'ok'} (restoration checks: ok " in out  # the last line, always

    monkeypatch.setattr(E, "RESTORATION_MIN", 1.01)            # every model fails: two retries
    assert main([*args, "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    seeds = [read_run_config(tmp_path / name)[0].train.init_seed for name in ("r", "r-retry1", "r-retry2")]
    assert seeds == [None, 1003, 2003]
    assert all((tmp_path / name / "done").is_file() for name in ("r", "r-retry1", "r-retry2"))
    checks = {name: json.loads((tmp_path / name / "calibration.json").read_text())["restoration_pixel_auroc"]
              for name in ("r", "r-retry1", "r-retry2")}
    best = max(checks, key=checks.get)                         # none passes: the highest check is chosen
    assert f"use run directory {tmp_path / best} " in out and out.count("training again with") == 2
    # rerunning the command does not train the finished retries again
    stamp = (tmp_path / "r-retry2" / "checkpoint.pt").stat().st_mtime_ns
    assert main([*args, "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r-retry2" / "checkpoint.pt").stat().st_mtime_ns == stamp
    assert run_cli("train", "--data", data, "--out", tmp_path / "n", "--retries", "-1")[0] == 2


def test_a_settings_file_applies_before_set(tmp_path):
    """``--settings FILE``: its lines in order, comments skipped; the named flags and ``--set`` override them."""
    from ssae.cli import build_config, make_parser

    path = tmp_path / "mine.txt"
    path.write_text("# my data\n\nmodel.width=0.5\ntrain.lam=0.1\t# a comment\n"
                    "calibration.nk=((0,1),(1,3))\n")
    args = make_parser().parse_args(["train", "--data", "d", "--out", "o", "--settings", str(path),
                                     "--set", "train.lam=0.2"])
    cfg = build_config(args)
    assert cfg.model.width == 0.5 and cfg.train.lam == 0.2 and cfg.calibration.nk == ((0, 1), (1, 3))
    assert build_config(make_parser().parse_args(["train", "--data", "d", "--out", "o",
                                                  "--settings", str(path)])).train.lam == 0.1
    # a named flag wins over the file too: the plain autoencoder of a shipped setting
    plain = build_config(make_parser().parse_args(["train", "--data", "d", "--out", "o", "--settings", "mtd-64px",
                                                   "--corruption", "none", "--seed", "3"]))
    assert plain.corruption.method == "none" and plain.train.seed == 3 and plain.data.image_size == 64


def test_the_shipped_settings_files_give_valid_configs():
    """Each file in ssae/settings parses, names only known fields, and is found by its bare name."""
    from ssae.cli import SETTINGS_DIR, build_config, make_parser, read_settings
    from ssae.config import profile

    files = sorted(SETTINGS_DIR.glob("*.txt"))
    assert files, "no settings files shipped"
    for f in files:
        assert read_settings(f.stem) == read_settings(str(f)) and read_settings(f.stem)
        cfg = build_config(make_parser().parse_args(["train", "--data", "d", "--out", "o", "--settings", f.stem]))
        assert cfg.to_dict() != profile("cpu").to_dict()
    mtd = build_config(make_parser().parse_args(["train", "--data", "d", "--out", "o", "--settings", "mtd-64px"]))
    assert (mtd.data.image_size, mtd.train.crop_end, mtd.corruption.method, mtd.train.lam) == (64, 64, "swap", 0.05)


@pytest.mark.parametrize("content, needles", [
    (None, ["--settings", "no such file", "mtd-64px"]),
    ("train.lam=0.1\ntrain.lam 0.2\n", ["bad.txt:2", "SECTION.FIELD=VALUE"]),
    ("modle.width=0.5\n", ["modle"]),
])
def test_bad_settings_files_are_one_line(tmp_path, content, needles):
    data = fixtures.make_mvtec(tmp_path)
    path = tmp_path / "bad.txt"
    if content is not None:
        path.write_text(content)
    rc, _, err = run_cli("train", "--data", data, "--out", tmp_path / "r", "--profile", "smoke", "--settings", path)
    assert_one_line_error(rc, err, *needles)
    assert not (tmp_path / "r").exists()


def test_a_native_size_result_row_says_none(smoke_run):
    """Native size is None in a result row, as in the config (older files say "native", which
    the book still reads)."""
    from ssae import data as D, evaluation
    from ssae_book.tables import size_text

    data, run = smoke_run
    model, cfg, _, cal, stats = evaluation.load_run(run, str(data))
    cfg.data.image_size = None
    split = D.load_split(str(data), cfg.data, seed=cfg.train.seed)
    res = evaluation.evaluate_model(model, cfg, split, cal, stats, data_spec=str(data), progress=False)
    assert res["image_size"] is None and json.loads(json.dumps(res))["image_size"] is None
    assert size_text(res["image_size"]) == size_text("native") == "native size" and size_text(64) == "64 px"
