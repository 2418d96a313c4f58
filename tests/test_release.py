"""Packed model folders (ssae.release): float16 safetensors that evaluate and predict like a run."""
import json

import pytest
import torch

import ssae.training as T
from ssae.cli import main
from ssae.errors import SsaeError
from ssae.runs import WEIGHTS, load_weights, load_model
from ssae.release import pack


def test_pack_writes_a_small_folder_that_evaluates_like_a_run(smoke_run, tmp_path, capsys):
    data, run = smoke_run
    out = tmp_path / "models" / "smoke" / "ssae"
    res = pack(run, out, str(data), blur=True)
    assert not (out / T.CHECKPOINT).exists() and (out / WEIGHTS).is_file()
    assert not list(out.parent.glob("*.tmp")) and not list(out.parent.glob("*.old"))
    state = load_weights(out / WEIGHTS)
    assert all(v.dtype == torch.float32 for v in state.values())
    # the weights are the run's, rounded to float16
    full = torch.load(run / T.CHECKPOINT, weights_only=True)["model"]
    assert all(torch.equal(state[k], full[k].half().float()) for k in full)
    recorded = json.loads((out / "metrics.json").read_text())
    assert recorded["image_auroc"] == res["image_auroc"]
    assert json.loads((out / "blur.json").read_text())["model"].startswith("BlurReference")
    # the paper's image score (the sum of eq. (3)'s map at the calibrated n, k, unstandardised)
    # is recorded beside the calibrated one, for the model and for the blur reference
    for doc in (recorded, json.loads((out / "blur.json").read_text())):
        assert 0.0 <= doc["image_auroc_paper_sum"] <= 1.0
        assert doc["paper_sum_score"]["reduce"] == "sum" and doc["paper_sum_score"]["standardize"] is False
    assert recorded["paper_sum_score"]["n"] == recorded["score"]["n"]
    # beside the recorded calibration, eight others on other draws of the proxy
    assert [r["seed"] for r in recorded["calibration_draws"]] == list(range(1, 9))
    # ssae evaluate on the packed folder reproduces the recorded metrics
    assert main(["evaluate", str(out), "--data", str(data), "--json", str(tmp_path / "m.json")]) == 0
    again = json.loads((tmp_path / "m.json").read_text())
    for key in ("image_auroc", "pixel_auroc", "aupro"):
        assert again[key] == pytest.approx(recorded[key], abs=1e-6), key


def test_predict_takes_a_packed_model_with_model_flag(smoke_run, tmp_path):
    data, run = smoke_run
    out = tmp_path / "packed"
    pack(run, out, str(data))
    images = sorted((data / "test").rglob("*.png"))[:2]
    assert main(["predict", "--model", str(out), *map(str, images), "--out", str(tmp_path / "pred")]) == 0
    assert (tmp_path / "pred" / "scores.csv").is_file()
    assert len(list((tmp_path / "pred").glob("*_overlay.png"))) == 2


def test_pack_refuses_an_unfinished_run_and_leaves_the_old_folder(smoke_run, tmp_path, capsys):
    data, run = smoke_run
    out = tmp_path / "packed"
    pack(run, out, str(data))
    before = (out / WEIGHTS).read_bytes()
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text((run / "config.json").read_text())
    assert main(["pack", str(unfinished), "--out", str(out)]) == 2
    assert "has not finished training" in capsys.readouterr().err
    assert (out / WEIGHTS).read_bytes() == before


def test_damaged_weights_are_a_one_line_error(smoke_run, tmp_path):
    data, run = smoke_run
    out = tmp_path / "packed"
    pack(run, out, str(data))
    (out / WEIGHTS).write_bytes(b"not a safetensors file")
    with pytest.raises(SsaeError, match="cannot read weights"):
        load_model(out)


def test_calibration_draws_evaluate_like_the_recorded_calibration(smoke_run, tmp_path):
    from ssae.data import load_split
    from ssae.evaluation import calibration_draws

    data, run = smoke_run
    out = tmp_path / "ssae"
    res = pack(run, out, str(data), draws=0)
    assert "calibration_draws" not in res
    model, cfg = load_model(out, "cpu")
    split = load_split(str(data), cfg.data, seed=cfg.train.seed)
    (row,) = calibration_draws(model, cfg, split, seeds=[12345])  # the seed of the recorded calibration
    for key in ("image_auroc", "pixel_auroc", "aupro", "restoration_pixel_auroc"):
        assert row[key] == pytest.approx(res[key], abs=1e-6), key
    assert row["score"] == {k: res["score"][k] for k in row["score"]}


def test_a_model_replaced_by_another_run_is_kept_as_the_earlier_recipe(tmp_path):
    from ssae.release import EARLIER, keep_earlier

    old, new, newer = tmp_path / "old", tmp_path / "new", tmp_path / "newer"
    for d, steps in ((old, 100), (new, 200), (newer, 300)):
        d.mkdir()
        (d / "train_summary.json").write_text(f'{{"steps": {steps}}}')
        (d / "curve.jsonl").write_text(f'{{"step": {steps}, "image_auroc": 0.5}}\n')
        (d / "metrics.json").write_text("{}")
    same = tmp_path / "same"
    same.mkdir()
    (same / "train_summary.json").write_text('{"steps": 100}')
    keep_earlier(old, same)             # re-packed from the same run: nothing kept
    assert not (same / EARLIER).exists()
    keep_earlier(old, new)              # another run: the old curve and metrics are kept
    assert (new / EARLIER / "curve.jsonl").read_text() == (old / "curve.jsonl").read_text()
    assert (new / EARLIER / "metrics.json").is_file()
    keep_earlier(new, newer)            # replaced again: the first model stays the earlier one
    assert (newer / EARLIER / "curve.jsonl").read_text() == (old / "curve.jsonl").read_text()


def test_the_stored_samples_are_chosen_by_their_scores_by_hand():
    from ssae.samples import choose

    labels = [0, 0, 0, 1, 1, 1, 1]
    defects = ["good", "good", "good", "cut", "cut", "hole", "cut"]
    scores = [0.3, 0.9, 0.1, 0.5, 2.0, 0.7, 0.5]
    picks = choose(labels, defects, scores)
    assert picks == {1: ["good: worst"], 2: ["good: best"], 3: ["cut: worst"], 4: ["cut: best"],
                     5: ["hole: best", "hole: worst"]}  # tie at 0.5: the earlier image


def test_pack_stores_samples_and_samples_only_leaves_the_model_unchanged(smoke_run, tmp_path, capsys):
    import numpy as np

    from ssae import scoring as S
    from ssae.data import load_images, load_split, read_mask
    from ssae.runs import read_calibration, read_run_config
    from ssae.samples import BUDGET, SAMPLES, read_samples

    data, run = smoke_run
    out = tmp_path / "packed"
    pack(run, out, str(data), draws=0)
    samples, index = read_samples(out)
    cfg, _ = read_run_config(out)
    split = load_split(str(data), cfg.data, seed=cfg.train.seed)
    defects = {it.defect for it in split.test}
    # the best and the worst image of every defect type and of the good ones
    assert {c for s in samples for c in s.chosen} == {f"{d}: {w}" for d in defects for w in ("best", "worst")}
    assert sum(f.stat().st_size for f in (out / SAMPLES).iterdir()) <= BUDGET + 20_000
    # the stored maps are the model's calibrated maps, to a quantisation step
    lo, hi = index["map_range"]
    model, _ = load_model(out)
    cal, stats = read_calibration(out)
    names = [f"{it.defect}/{it.path.name}" for it in split.test]
    for s in samples:
        i = names.index(s.name)
        image = load_images([split.test[i].path], cfg.data.image_size, split.channels, progress=False)
        m = S.calibrated_maps(S.diff_maps(model, image, cal["diff"], "cpu"), cal, stats)[0]
        assert np.abs(np.clip(m, lo, hi) - s.anomaly_map).max() <= (hi - lo) / 255 + 1e-4
        assert s.score == pytest.approx(index["test_scores"]["score"][i])
        assert s.image.shape == image[0].shape and s.reconstruction.shape == image[0].shape
        if split.test[i].mask_path is not None:
            assert np.array_equal(s.mask, read_mask(split.test[i].mask_path, m.shape))
    assert index["test_scores"]["labels"] == [it.label for it in split.test]
    # samples added again to the packed folder: the same choice, the model's files untouched
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main(["pack", str(out), "--samples-only", "--data", str(data)]) == 0
    assert "weights, config and metrics unchanged" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert [s.name for s in read_samples(out)[0]] == [s.name for s in samples]
    assert not list(out.glob("samples.*"))


def test_samples_only_needs_a_calibrated_folder_and_pack_needs_out(tmp_path, capsys):
    assert main(["pack", str(tmp_path), "--samples-only"]) == 2
    assert "has no calibration.json" in capsys.readouterr().err
    assert main(["pack", str(tmp_path)]) == 2
    assert "needs --out" in capsys.readouterr().err
