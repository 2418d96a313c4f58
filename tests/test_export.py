"""``ssae export``: a run as one ONNX graph whose maps are ssae's own (float32), for any batch size."""
import json
import shutil

import numpy as np
import onnxruntime
import pytest

import fixtures
from ssae.cli import main
from ssae.data import load_images
from ssae.scoring import calibrated_maps, diff_maps
from ssae.runs import read_calibration
from ssae.runs import load_model
from test_cli import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def export_run(tmp_path_factory):
    """A smoke run with four validation images (so that its stdmap is not zero) and its data."""
    root = tmp_path_factory.mktemp("export_run")
    data = fixtures.make_mvtec(root)
    run = root / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--profile", "smoke",
                 "--set", "data.val_fraction=0.5"]) == 0
    return data, run


def ssae_maps(run, images) -> np.ndarray:
    """The run's anomaly maps as ``ssae evaluate`` and ``ssae predict`` compute them."""
    model, _ = load_model(run)
    cal, stats = read_calibration(run)
    raw = diff_maps(model, images, cal["diff"], "cpu")
    return np.stack(calibrated_maps(raw, cal, stats))


def onnx_maps(path, images) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": np.stack([a.transpose(2, 0, 1) for a in images])})[0]


@pytest.mark.parametrize("scoring, tolerance", [
    ({}, 1e-4),                                               # the smoke calibration: l2, n 1, k 3
    ({"n": 2, "k": 5, "t": 2}, 1e-4),                         # eq. (14) with the run's avgmap
    ({"standardize": True, "two_sided": True}, 1e-4),         # standardised by avgmap and stdmap
    ({"diff": "lowpass", "n": 0, "k": 1}, 1e-4),
    # SSIM divides variances computed as blur(x^2) - blur(x)^2 (float32 cancellation) by
    # C2 = 9e-4: two float32 libraries agree to about 1e-4 of its range [0, 2]
    ({"diff": "ssim"}, 3e-4),
])
def test_the_onnx_graph_gives_ssae_s_maps(export_run, tmp_path, monkeypatch, scoring, tolerance):
    """ssae's default scoring (float32 whatever the machine) and the graph agree."""
    monkeypatch.delenv("SSAE_PRECISION", raising=False)  # training's switch: inference ignores it
    data, run = export_run
    run = shutil.copytree(run, tmp_path / "run")
    cal = json.loads((run / "calibration.json").read_text())
    (run / "calibration.json").write_text(json.dumps({**cal, **scoring}))
    out = tmp_path / "model.onnx"
    assert main(["export", str(run), "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "run"]  # no temporary file left
    images = load_images(sorted((data / "test").glob("*/*.png")), 64, 3, progress=False)
    want = ssae_maps(run, images)
    for batch in (images, images[:1]):  # any batch size
        got = onnx_maps(out, batch)
        assert got.shape == (len(batch), 64, 64)
        np.testing.assert_allclose(got, want[:len(batch)], rtol=0, atol=tolerance * max(1.0, np.abs(want).max()))


def test_a_packed_model_folder_exports_too(export_run, tmp_path, monkeypatch):
    import onnx

    monkeypatch.delenv("SSAE_PRECISION", raising=False)
    data, run = export_run
    packed, out = tmp_path / "packed", tmp_path / "packed.onnx"
    assert main(["pack", str(run), "--out", str(packed)]) == 0
    assert main(["export", str(packed), "--out", str(out)]) == 0
    images = load_images(sorted((data / "test" / "good").glob("*.png")), 64, 3, progress=False)
    np.testing.assert_allclose(onnx_maps(out, images), ssae_maps(packed, images), rtol=0, atol=1e-4)
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(out)).metadata_props}
    cal, _ = read_calibration(packed)
    assert meta["threshold"] == cal["threshold"] and meta["reduce"] == cal["reduce"] and meta["height"] == 64
    assert meta["threshold_method"] == cal["threshold_method"] and meta["precision"] == "fp32"


def test_the_graph_and_the_export_line_say_what_images_it_takes(export_run, tmp_path):
    import onnx

    _, run = export_run
    out = tmp_path / "m.onnx"
    rc, printed, _ = run_cli("export", run, "--out", out)
    assert rc == 0 and "takes 64 x 64 px images with 3 channels (RGB)" in printed
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(out)).metadata_props}
    assert (meta["channels"], meta["height"], meta["width"]) == (3, 64, 64)
    assert meta["input"].startswith("image: float32 B x 3 x 64 x 64 in [0, 1]")


def test_ssae_predict_scores_are_the_onnx_graph_s_by_default(export_run, tmp_path):
    """`ssae predict` (default precision) and the graph give the same image scores, and
    predict.json says which precision computed them."""
    import csv

    import torch
    from ssae.scoring import image_score

    data, run = export_run
    out = tmp_path / "m.onnx"
    assert main(["export", str(run), "--out", str(out)]) == 0
    paths = sorted((data / "test").glob("*/*.png"))
    assert main(["predict", str(run), *map(str, paths), "--out", str(tmp_path / "pred")]) == 0
    cal, _ = read_calibration(run)
    rows = list(csv.DictReader(open(tmp_path / "pred" / "scores.csv")))
    # predict reads each image at its own size and resizes it as evaluation does (64 px here)
    maps = onnx_maps(out, load_images(paths, 64, 3, progress=False))
    want = [float(image_score(torch.from_numpy(m)[None], cal["reduce"])) for m in maps]
    got = [float(r["score"]) for r in rows]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    meta = json.loads((tmp_path / "pred" / "predict.json").read_text())
    assert (meta["precision"], meta["engine"]) == ("fp32", "onnxruntime")


def test_export_of_an_unfinished_run_is_one_line(export_run, tmp_path):
    _, run = export_run
    run = shutil.copytree(run, tmp_path / "run")
    (run / "calibration.json").unlink()
    rc, _, err = run_cli("export", run, "--out", tmp_path / "m.onnx")
    assert_one_line_error(rc, err, "training did not finish")
    assert not (tmp_path / "m.onnx").exists()


def test_the_graph_leaves_the_caller_s_model_as_it_was(export_run):
    import torch

    from ssae.export import AnomalyMapGraph

    _, run = export_run
    model, _ = load_model(run)
    model = model.train().to(dtype=torch.bfloat16, memory_format=torch.channels_last)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cal, stats = read_calibration(run)
    graph = AnomalyMapGraph(model, cal, stats)
    assert not graph.model.training and next(graph.model.parameters()).dtype == torch.float32
    assert model.training and next(model.parameters()).dtype == torch.bfloat16
    assert all(torch.equal(before[k], v) and before[k].stride() == v.stride() for k, v in model.state_dict().items())
