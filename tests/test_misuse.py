"""Reliability: what a new user who misuses ssae gets. Each case answers with one line
(``ssae: error: ...``, exit status 2) or a one-line warning or note, and leaves earlier results
usable. The cases, one test each:

1. two trainings into one run folder: the second is refused, naming the holder (``RUN/lock``);
   a lock left by a killed training is taken over with a note;
2. a finished run trained again keeps its ``done``, scoring and summary until it has something
   new to write: a bad image, or Ctrl-C, leaves it evaluable; a run that its time budget
   stopped takes no further step;
3. defect masks saved as 0/1 are read; masks that mark nothing get a warning saying why the
   pixel metrics are missing;
4. a learning rate that makes training diverge stops it with one line naming the step and the
   learning rate, and keeps the last good checkpoint;
5. settings out of range (negative learning rate, image size 0 or 4, batch size 0,
   checkpoint_every 0, --steps 0 or -5) are refused before anything is written;
6. training images of mixed grey and colour are refused, naming both files;
7. small ones: ``--json`` naming a folder, a corrupt checkpoint, an unknown data layout,
   non-square images given to ``predict``;
8. folders never clobbered: ``train --out`` takes a new path, an empty folder or a run folder
   of the same settings and refuses any other folder or a file; ``predict --out`` does not
   write over earlier predictions without ``--overwrite``.
"""
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import fixtures
import ssae.pipeline as P
import ssae.training as T
from ssae.cli import main
from ssae.errors import SsaeError
from test_cli import assert_one_line_error, copy_run, run_cli

FINISHED = ("done", "calibration.json", "avgmap.npy", "stdmap.npy", "train_summary.json", "checkpoint.pt",
            "config.json")


def snapshot(run) -> dict:
    """The bytes of the files that make a run finished and scored."""
    return {name: (run / name).read_bytes() for name in FINISHED}


def one_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, text
    return lines[0]


# ----------------------------------------------------------------------------- 1. one folder, one training

def test_two_trainings_into_one_folder_second_gets_one_line_naming_the_holder(tmp_path):
    from ssae.runlock import lock_run

    data = fixtures.make_mvtec(tmp_path)
    run = tmp_path / "r"
    run.mkdir()
    with lock_run(run):  # this process trains into it
        rc, _, err = run_cli("train", "--data", data, "--out", run, "--profile", "smoke")
        assert_one_line_error(rc, err, f"process {os.getpid()} on {socket.gethostname()}", run / "lock")
        assert sorted(p.name for p in run.iterdir()) == ["lock"]  # the second wrote nothing
    assert not (run / "lock").exists()


def test_a_lock_left_by_a_killed_training_is_taken_over_with_a_note(tmp_path):
    data = fixtures.make_mvtec(tmp_path)
    run = tmp_path / "r"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from ssae.runlock import lock_run\n"
                               f"with lock_run({str(run)!r}):\n    print('locked', flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        rc, _, err = run_cli("train", "--data", data, "--out", run, "--profile", "smoke")
        assert rc == 2 and f"process {holder.pid} on" in err
    finally:
        holder.kill()  # kill -9: the lock file stays, naming a process that is gone
        holder.wait()
    assert (run / "lock").is_file()
    rc, _, err = run_cli("train", "--data", data, "--out", run, "--profile", "smoke")
    assert rc == 0, err
    notes = [ln for ln in err.splitlines() if ln.startswith("ssae: note:")]
    assert len(notes) == 1 and "took over" in notes[0] and f"process {holder.pid} on" in notes[0]
    assert (run / "done").is_file() and not (run / "lock").exists()


# ----------------------------------------------------------------------------- 2. a finished run trained again

def test_training_a_finished_run_again_keeps_it_usable_when_a_bad_image_appears(smoke_run, tmp_path):
    data, run = smoke_run
    data, run = shutil.copytree(data, tmp_path / "data"), copy_run(run, tmp_path)
    before = snapshot(run)
    bad = data / "train" / "good" / "zzz.png"
    shutil.copy(sorted((data / "train" / "good").glob("*.png"))[0], bad)
    fixtures.truncate_file(bad)
    rc, _, err = run_cli("train", "--data", data, "--out", run, "--profile", "smoke", "--steps", "8")
    assert_one_line_error(rc, err, bad)
    assert snapshot(run) == before
    bad.unlink()
    assert main(["evaluate", str(run), "--data", str(data)]) == 0


def test_training_a_finished_run_again_keeps_it_usable_after_ctrl_c(smoke_run, tmp_path, monkeypatch):
    data, run = smoke_run
    run = copy_run(run, tmp_path)
    before = snapshot(run)

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(T, "objective_loss", ctrl_c)  # at the first new step
    assert main(["train", "--data", str(data), "--out", str(run), "--profile", "smoke", "--steps", "8"]) == 130
    assert snapshot(run) == before and not (run / "lock").exists()
    assert main(["evaluate", str(run), "--data", str(data)]) == 0


def test_a_run_stopped_by_its_time_budget_takes_no_step_when_trained_again(tmp_path):
    data = fixtures.make_mvtec(tmp_path)
    run = tmp_path / "r"
    args = ["train", "--data", str(data), "--out", str(run), "--profile", "smoke", "--steps", "100",
            "--minutes", "0.0001"]
    assert main(args) == 0
    checkpoint = (run / "checkpoint.pt").read_bytes()
    assert json.loads((run / "train_summary.json").read_text())["stopped_by"] == "time"
    assert main(args) == 0
    assert (run / "checkpoint.pt").read_bytes() == checkpoint and (run / "done").is_file()


# ----------------------------------------------------------------------------- 3. masks

def test_masks_saved_as_0_and_1_are_read_as_defects(smoke_run, tmp_path):
    _, run = smoke_run
    data = fixtures.make_mvtec(tmp_path)
    for mask in (data / "ground_truth").glob("*/*_mask.png"):
        Image.fromarray((np.asarray(Image.open(mask)) > 0).astype(np.uint8)).save(mask)  # 0/1
    out = tmp_path / "m.json"
    assert main(["evaluate", str(run), "--data", str(data), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["pixel_auroc"] is not None and res["aupro"] is not None and res["empty_defect_masks"] == []


def test_defect_masks_that_mark_nothing_get_a_one_line_warning(smoke_run, tmp_path):
    _, run = smoke_run
    data = fixtures.make_mvtec(tmp_path)
    masks = sorted((data / "ground_truth").glob("*/*_mask.png"))
    for mask in masks:
        Image.fromarray(np.zeros((40, 48), np.uint8)).save(mask)
    rc, out, err = run_cli("evaluate", run, "--data", data)
    assert rc == 0, err
    assert "pixel AUROC n/a" in out and "the defect masks mark no pixel" in out
    warning = [ln for ln in err.splitlines() if "mask" in ln]
    assert len(warning) == 1 and warning[0].startswith("ssae: warning:")
    assert f"{len(masks)} of {len(masks)} defect masks mark no defect pixel" in warning[0] and ">= 128" in warning[0]


# ----------------------------------------------------------------------------- 4. divergence

def test_a_diverging_learning_rate_stops_with_one_line_naming_the_step_and_the_rate(tmp_path):
    data = fixtures.make_mvtec(tmp_path)
    run = tmp_path / "r"
    rc, _, err = run_cli("train", "--data", data, "--out", run, "--profile", "smoke", "--set", "train.lr=1e6")
    assert_one_line_error(rc, err, "diverged at step 0", "learning rate 1e+06", "weight norm")
    assert not (run / "done").exists() and not (run / "calibration.json").exists()


def test_a_diverging_run_keeps_its_last_good_checkpoint(tmp_path):
    """The learning rate warms up from 0: step 0 changes nothing and is checkpointed; step 1,
    at lr 5e5, diverges."""
    data = fixtures.make_mvtec(tmp_path)
    run = tmp_path / "r"
    rc, _, err = run_cli("train", "--data", data, "--out", run, "--profile", "smoke", "--set", "train.lr=1e6",
                         "--set", "train.lr_warmup=0.5", "--set", "train.checkpoint_every=1")
    assert_one_line_error(rc, err, "diverged at step 1", "learning rate 5e+05",
                          f"the last good checkpoint {run / 'checkpoint.pt'} is kept")
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values())
    assert not (run / "done").exists()


# ----------------------------------------------------------------------------- 5. settings out of range

@pytest.mark.parametrize("flags, needle", [
    (["--set", "train.lr=-0.001"], "train.lr"),
    (["--set", "data.image_size=0"], "data.image_size"),
    (["--set", "data.image_size=4"], "data.image_size"),
    (["--image-size", "4"], "data.image_size"),
    (["--set", "train.batch_size=0"], "train.batch_size"),
    (["--set", "train.batch_size=-3"], "train.batch_size"),
    (["--set", "train.checkpoint_every=0"], "train.checkpoint_every"),
    (["--steps", "0"], "train.steps"),
    (["--steps", "-5"], "train.steps"),
])
def test_settings_out_of_range_are_one_line_before_anything_is_written(tmp_path, capsys, flags, needle):
    data = fixtures.make_mvtec(tmp_path)
    run = tmp_path / "r"
    assert main(["train", "--data", str(data), "--out", str(run), "--profile", "smoke", *flags]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"ssae: error: setting {needle} must be ") and "got" in line
    assert not run.exists()


def test_the_library_checks_the_settings_too(mvtec_dir, tmp_path):
    from ssae.config import override, profile
    from ssae.data import load_split

    cfg = override(profile("smoke"), train={"log_every": 0})
    with pytest.raises(SsaeError, match="setting train.log_every must be"):
        P.train(cfg, load_split(str(mvtec_dir), cfg.data), tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- 6. mixed channels

def test_mixed_grey_and_colour_training_images_are_one_line_naming_both(tmp_path):
    data = fixtures.make_mvtec(tmp_path)
    first, odd = sorted((data / "train" / "good").glob("*.png"))[:4:3]
    Image.open(odd).convert("L").save(odd)
    rc, _, err = run_cli("train", "--data", data, "--out", tmp_path / "r", "--profile", "smoke")
    assert_one_line_error(rc, err, f"{odd} is grey but {first} is colour", "convert")
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- 7. small ones

def test_json_naming_a_folder_names_it_and_leaves_no_temporary_file(smoke_run, tmp_path):
    data, run = smoke_run
    folder = tmp_path / "metrics"
    folder.mkdir()
    rc, _, err = run_cli("evaluate", run, "--data", data, "--json", folder)
    assert_one_line_error(rc, err, f"cannot write {folder}: ")
    assert ".tmp" not in err and sorted(p.name for p in tmp_path.iterdir()) == ["metrics"]


def test_a_corrupt_checkpoint_says_what_to_do(smoke_run, tmp_path):
    data, run = smoke_run
    run = copy_run(run, tmp_path)
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    rc, _, err = run_cli("evaluate", run, "--data", data)
    assert_one_line_error(rc, err, run / "checkpoint.pt", "delete it", "another --out folder")


@pytest.mark.parametrize("present, missing", [
    ([], "no train/good and no test folder"),
    (["train/good"], "no test folder"),
    (["test"], "no train/good folder"),
])
def test_an_unknown_data_layout_says_what_is_missing(tmp_path, present, missing):
    data = fixtures.make_unknown(tmp_path)
    for folder in present:
        (data / folder).mkdir(parents=True)
    rc, _, err = run_cli("train", "--data", data, "--out", tmp_path / "r", "--profile", "smoke")
    assert_one_line_error(rc, err, data, missing, "MT_Free")


def test_predict_says_when_it_stretches_a_non_square_image(smoke_run, tmp_path):
    data, run = smoke_run
    image = sorted((data / "test" / "good").glob("*.png"))[0]  # 48 x 40, the run's images are 64 x 64
    rc, _, err = run_cli("predict", run, image, "--out", tmp_path / "p")
    assert rc == 0, err
    note = one_line(err)
    assert note.startswith("ssae: note: 1 of 1 images are not square") and "48 x 40" in note and "64 x 64" in note



# ----------------------------------------------------------------------------- 8. folders never clobbered

def test_train_refuses_a_folder_that_is_not_a_run_and_leaves_it_alone(tmp_path):
    data = fixtures.make_mvtec(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"mine")
    rc, _, err = run_cli("train", "--data", data, "--out", photos, "--profile", "smoke", "--steps", "2")
    assert_one_line_error(rc, err, photos, "holiday.jpg", "not an ssae run folder")
    assert sorted(p.name for p in photos.iterdir()) == ["holiday.jpg"]
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    rc, _, err = run_cli("train", "--data", data, "--out", afile, "--profile", "smoke", "--steps", "2")
    assert_one_line_error(rc, err, afile, "is a file")
    assert afile.read_text() == "mine"


def test_train_takes_an_empty_folder_and_resumes_a_run_of_the_same_settings_only(tmp_path):
    data = fixtures.make_mvtec(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["train", "--data", str(data), "--out", str(empty), "--profile", "smoke"]
    assert main([*args, "--steps", "2"]) == 0 and (empty / "done").is_file()
    assert main([*args, "--steps", "3"]) == 0  # the same settings, more steps: resumed
    assert json.loads((empty / "train_summary.json").read_text())["steps"] == 3
    rc, _, err = run_cli(*args, "--steps", "4", "--seed", "9")
    assert_one_line_error(rc, err, empty, "other settings")


def test_predict_does_not_write_over_earlier_predictions(smoke_run, tmp_path):
    data, run = smoke_run
    image = sorted((data / "test" / "good").glob("*.png"))[0]
    out = tmp_path / "p"
    assert main(["predict", str(run), str(image), "--out", str(out)]) == 0
    before = (out / "scores.csv").read_bytes()
    rc, _, err = run_cli("predict", run, image, "--out", out)
    assert_one_line_error(rc, err, out / "scores.csv", "--overwrite")
    assert (out / "scores.csv").read_bytes() == before
    rc, _, err = run_cli("predict", run, image, "--out", out, "--overwrite")
    assert rc == 0, err


# ----------------------------------------------------------------------------- 9. messages that say it plainly

def test_a_model_that_makes_the_regions_worse_is_not_said_to_undo_a_negative_share():
    from ssae.calibration import restoration_warning

    text = restoration_warning({"restoration_pixel_auroc": 0.5, "restoration_gain": -42.14})
    assert "-4214%" not in text and "undoes none" in text and "43.1 times as far off" in text
    assert "undoes 42%" in restoration_warning({"restoration_pixel_auroc": 0.5, "restoration_gain": 0.42})


def test_an_unsafe_checkpoint_is_refused_with_our_own_line(tmp_path):
    from ssae.runs import read_checkpoint

    torch.save({"model": {}, "payload": fixtures.Unsafe()}, tmp_path / "checkpoint.pt")
    with pytest.raises(SsaeError) as e:
        read_checkpoint(tmp_path)
    text = str(e.value)
    assert "\n" not in text and "weights_only" not in text and "trust" not in text
    assert "objects other than tensors" in text and str(tmp_path / "checkpoint.pt") in text


def test_a_1x1_training_image_is_refused_naming_it(tmp_path):
    data = fixtures.make_mvtec(tmp_path)
    tiny = data / "train" / "good" / "tiny.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tiny)
    rc, _, err = run_cli("train", "--data", data, "--out", tmp_path / "r", "--profile", "smoke", "--steps", "1")
    assert_one_line_error(rc, err, tiny, "1 x 1 px")
    assert not (tmp_path / "r").exists()
