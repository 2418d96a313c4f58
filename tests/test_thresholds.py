"""Thresholds chosen on validation images hold on clean images the calibration never saw."""
from pathlib import Path

import numpy as np
import pytest
import torch

import fixtures
from ssae import scoring as S
from ssae.calibration import calibrate_model, held_out_maps, thresholds
from ssae.config import override, profile
from ssae.data import load_images, load_split
from ssae.errors import SsaeError
from ssae.references import BlurReference


def _maps(n, seed=0, shape=(16, 16)):
    rng = np.random.default_rng(seed)
    return [rng.gamma(2.0, 1.0, shape).astype(np.float32) for _ in range(n)]


def test_a_map_standardised_by_its_own_statistics_cannot_exceed_sqrt_n_minus_1():
    """Why the thresholds hold images out: in-sample, z <= sqrt(n - 1) whatever the pixel."""
    clean = _maps(10)
    own = S.finish_maps([torch.from_numpy(m)[None] for m in clean], 0, 1, S.ValidationMaps.of(clean), 0,
                        standardize=True)
    assert max(float(m.max()) for m in own) <= np.sqrt(9) + 1e-4
    held, method = held_out_maps(clean, 0, True)
    assert method == "leave-one-out" and max(float(m.max()) for m in held) > np.sqrt(9) + 0.5
    # unweighted maps do not depend on the other images
    same, method = held_out_maps(clean, 0, False)
    assert all(np.array_equal(a, b) for a, b in zip(same, clean)) and "unweighted" in method


def test_held_out_thresholds_pass_about_99_in_100_unseen_clean_maps():
    clean, unseen = _maps(12, seed=1), _maps(400, seed=2)
    cal = {"t": 0, "standardize": True, "two_sided": False, "reduce": "max"}
    th = thresholds(clean, cal, 0.999)
    stats = S.ValidationMaps.of(clean)
    maps = S.finish_maps([torch.from_numpy(m)[None] for m in unseen], 0, 1, stats, 0, standardize=True)
    scores = np.array([m.max() for m in maps])
    assert th["threshold_method"] == "leave-one-out" and "prediction bound" in th["image_threshold_method"]
    assert (scores > th["image_threshold"]).mean() <= 0.05
    # the threshold of the same images' own maps flags most unseen images
    own = S.finish_maps([torch.from_numpy(m)[None] for m in clean], 0, 1, stats, 0, standardize=True)
    assert (scores > np.quantile([m.max() for m in own], 0.99)).mean() > 0.5
    assert np.mean([(m > th["threshold"]).mean() for m in maps]) < 0.01


def test_score_threshold_extrapolates_beyond_a_few_scores():
    scores = [1.0, 1.2, 0.9, 1.1, 1.05, 0.95, 1.15, 1.0, 0.98, 1.02]
    thr, how = S.score_threshold(scores)
    assert thr > max(scores) and "log-normal" in how
    thr, how = S.score_threshold([s - 1.0 for s in scores])  # scores below 0: normal on the scores
    assert thr > max(scores) - 1.0 and how.startswith("normal")
    assert S.score_threshold([3.0]) == (3.0, "the one validation score")
    with pytest.raises(SsaeError):
        S.score_threshold([])


def test_calibration_records_thresholds_that_hold_on_unseen_training_images(tmp_path):
    """A calibration on 12 validation images; 48 clean images it never saw stay below its image
    threshold (with thresholds from the validation images' own standardised maps, max z <=
    sqrt(11) and nearly all of them are flagged)."""
    data = fixtures.make_mvtec(tmp_path, n_train=60, size=(32, 32))
    cfg = override(profile("smoke"), data={"val_fraction": 0.2, "max_train": None},
                   score={"standardize": True, "reduce": "max"}, calibration={"search": False})
    split = load_split(str(data), cfg.data)
    cfg.model.in_channels = split.channels
    ref = BlurReference(1.0)
    cal, stats = calibrate_model(ref, cfg, split)
    assert cal["n_val_images"] == 12 and cal["threshold_method"] == "leave-one-out"
    assert cal["image_threshold"] > np.sqrt(11)
    images = load_images(split.train, cfg.data.image_size, split.channels, progress=False)
    maps = S.calibrated_maps(S.diff_maps(ref, images, cal["diff"], "cpu"), cal, stats)
    scores = np.array([float(S.image_score(torch.from_numpy(m)[None], "max")) for m in maps])
    assert len(scores) == 48 and (scores > cal["image_threshold"]).mean() <= 0.05
    assert np.median([(m > cal["threshold"]).mean() for m in maps]) < 0.01


def test_the_book_states_the_measured_false_alarms(tmp_path):
    """own_images.md's promise is generated from the kept measurement, not written by hand."""
    import json

    from ssae_book.models import thresholds_text

    rows = [{"model": "a/ssae", "good_above": 0.02, "train_above": 0.01, "mask_area_predicted": 0.03,
             "mask_area_true": 0.02, "defective_above": 0.3},
            {"model": "b/plain", "good_above": 0.25, "train_above": 0.04, "mask_area_predicted": 0.5,
             "mask_area_true": 0.02, "defective_above": 0.5}]
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"date": "2031-01-02T00:00:00", "rows": rows}))
    text = thresholds_text(path)
    assert "at most 4.0 % of a model's training images (b/plain)" in text
    assert "between 2.0 % and 25.0 %" in text and "1 of the 2 models" in text and "2031-01-02" in text
    assert "more on b/plain (e.g. 50.00 % against 2.00 %)" in text
    assert "between 30.0 % and 50.0 % of a model's defective test images (median 40.0 %)" in text
    assert "not been measured" in thresholds_text(tmp_path / "missing.json")
    assert "{{ threshold_check }}" in (Path(__file__).resolve().parents[1] / "book" / "own_images.md").read_text()


def test_false_alarms_from_one_photograph_are_named(tmp_path):
    """When most flagged good images are tiles of one photograph, the reference page and the
    chapter say which and what the other photographs' tiles give; a spread of alarms says nothing."""
    import json
    import sys

    from ssae_book.models import Reference, concentrated_alarms, threshold_check

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from thresholds import source

    assert source("test/good/0012_000_02_x1536.png") == "0012_000_02" and source("a/b/017.png") == "017"
    row = {"model": "f/ssae", "n_good_test": 65, "n_good_sources": 5, "good_above": 15 / 65,
           "good_flagged_sources": {"0012": [12, 13], "0004": [1, 13], "0014": [1, 13], "0020": [1, 13]}}
    text = concentrated_alarms(row)
    assert "12 of the 15 flagged good test images" in text and "`0012`: 12 of its 13 tiles" in text
    assert "flags 5.8 %" in text  # 3 of the other 52 tiles
    assert "gallery's last row below, `good/0012_x2048.png`" in concentrated_alarms(row, "good/0012_x2048.png")
    assert "gallery" not in concentrated_alarms(row, "good/0004_x0768.png")  # not a tile of that photograph
    row["good_flagged_sources"] = {"a": [2, 13], "b": [2, 13]}
    assert concentrated_alarms(row) == ""
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"date": "2031-01-02", "hardware": "CPU: test", "rows": [
        {**row, "model": "f/ssae", "good_above": 0.1, "train_above": 0.0, "defective_above": 0.5,
         "n_train": 20, "n_defective": 4, "mask_area_true": None}]}))
    ref = Reference("f", tmp_path, {"ssae": tmp_path, "plain": tmp_path})
    text = threshold_check(ref, path)
    assert "the method flags 10.0 % of the 65 good test images and 0.0 % of the 20 training images" in text
    assert "plain AE's thresholds were not measured" in text and "2031-01-02" in text


def test_the_benchmark_measures_named_models_and_merges_their_rows_into_earlier_results(tmp_path):
    """``--only`` refuses a name that is not a reference folder (one line, exit 2); ``--merge``
    replaces the rows of the models measured now and keeps (and leaves unstamped) the others."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    p = subprocess.run([sys.executable, "benchmarks/thresholds.py", "--models", str(tmp_path), "--only", "nope"],
                       capture_output=True, text=True, cwd=root)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [
        f"error: --only: no reference model folder nope in {tmp_path}"]

    sys.path.insert(0, str(root / "benchmarks"))
    from thresholds import merged

    doc = {"command": "old", "rows": [{"model": "a/ssae", "good_above": 0.5}, {"model": "b/ssae", "good_above": 0.1}]}
    out = merged(doc, [{"model": "a/ssae", "good_above": 0.0}, {"model": "a/plain", "good_above": 0.2}], "new", "d")
    assert [r["model"] for r in out["rows"]] == ["a/plain", "a/ssae", "b/ssae"]
    rows = {r["model"]: r for r in out["rows"]}
    assert rows["a/ssae"] == {"model": "a/ssae", "good_above": 0.0, "command": "new", "date": "d"}
    assert rows["b/ssae"] == {"model": "b/ssae", "good_above": 0.1} and out["command"] == "old"
