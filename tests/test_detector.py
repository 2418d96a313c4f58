"""The Python API in three lines: a kept model scores any images (no data set needed)."""
import csv
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ssae.detector as DET
from ssae import Detector
from ssae.cli import main
from ssae.errors import SsaeError

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "aitex-fabric01" / "ssae"
pytestmark = pytest.mark.skipif(not (MODEL / "config.json").is_file(), reason="the kept models are not here")


def texture(h=256, w=256, seed=0) -> np.ndarray:
    """A generated grey fabric-like image, uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w]
    img = 0.5 + 0.15 * np.sin(x / 2.0) * np.sin(y / 3.0) + 0.03 * rng.standard_normal((h, w))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.mark.parametrize("doc", ["README.md", "book/own_images.md"])
def test_the_documented_three_lines_run(doc, monkeypatch):
    block = next(b for b in re.findall(r"```python\n(.*?)```", (ROOT / doc).read_text(), re.S)
                 if "Detector.load" in b)
    assert len(block.strip().splitlines()) == 3
    monkeypatch.chdir(ROOT)
    scope = {"images": Image.fromarray(texture())}
    exec(block, scope)
    (r,) = scope["result"]
    assert isinstance(r, DET.Result) and r.anomaly_map.shape == r.mask.shape == (256, 256)
    assert r.mask.dtype == bool and isinstance(r.score, float) and isinstance(r.anomalous, bool)
    assert r.anomalous == (r.score > scope["det"].image_threshold)
    assert np.array_equal(r.mask, r.anomaly_map > scope["det"].threshold)


def test_paths_folders_pil_images_and_arrays_give_the_same_results(tmp_path):
    det = Detector.load(MODEL)
    a, b = texture(seed=1), texture(200, 300, seed=2)  # the second not square, not the model's size
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(a).save(folder / "a.png")
    Image.fromarray(b).save(folder / "b.png")
    by_folder = det.score(folder)
    by_path = det.score([folder / "a.png", str(folder / "b.png")])
    in_memory = det.score([Image.fromarray(a), b.astype(np.float32) / 255])
    assert [r.name for r in by_folder] == [str(folder / "a.png"), str(folder / "b.png")]
    assert [r.name for r in in_memory] == ["image 0", "image 1"]
    for rows in (by_path, in_memory):
        assert [r.score for r in rows] == pytest.approx([r.score for r in by_folder], rel=1e-5)
    assert by_folder[1].anomaly_map.shape == (200, 300)  # each map at its image's own size
    rgb = det.score(np.repeat(a[..., None], 3, axis=2))[0]  # colour input to a grey model
    assert rgb.score == pytest.approx(by_folder[0].score, rel=1e-4)
    with pytest.raises(SsaeError, match="in \\[0, 1\\]"):
        det.score(np.full((8, 8), 2.0))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SsaeError, match="no images in"):
        det.score(tmp_path / "empty")


def test_a_kept_model_is_found_by_name_and_a_missing_one_says_where_to_get_it(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # not the checkout: SSAE_MODELS names the models folder
    monkeypatch.setenv("SSAE_MODELS", str(MODEL.parents[1]))
    assert Detector.load("aitex-fabric01").folder.resolve() == MODEL.resolve()
    assert DET.resolve("aitex-fabric01/plain").resolve() == (MODEL.parent / "plain").resolve()
    assert DET.resolve("models/aitex-fabric01/ssae").resolve() == MODEL.resolve()
    with pytest.raises(SsaeError, match="reference models here: aitex-fabric01"):
        Detector.load("no-such-model")
    monkeypatch.setattr(DET, "models_dirs", lambda: [])  # an installed wheel: no models/
    with pytest.raises(SsaeError, match="source repository's models/ folder"):
        Detector.load("aitex-fabric01")


def test_ssae_predict_is_the_detector_s_results_as_files(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(texture(seed=i)).save(folder / f"{i}.png")
    assert main(["predict", "--model", "aitex-fabric01", str(folder), "--out", str(tmp_path / "p")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "p" / "scores.csv")))
    results = Detector.load("aitex-fabric01").score(folder)
    assert [r["image"] for r in rows] == [r.name for r in results]
    assert [float(r["score"]) for r in rows] == pytest.approx([r.score for r in results])
    mask = np.asarray(Image.open(tmp_path / "p" / rows[0]["mask"])) > 0
    assert np.array_equal(mask, results[0].mask)


def test_the_onnxruntime_engine_gives_the_torch_engine_s_results(tmp_path, monkeypatch):
    """engine="onnxruntime" scores with the graph of ssae export: the same maps within 1e-4 of
    the map's scale, the same verdicts and masks (away from the threshold), through the API and
    ssae predict; a bad engine, or bf16 with it, is one line; auto falls back to torch (with a
    warning) where the graph cannot be built."""
    pytest.importorskip("onnxruntime")
    images = [texture(seed=i) for i in range(3)] + [texture(200, 300, seed=3)]
    ours = Detector.load(MODEL, engine="torch").score(images)
    det = Detector.load(MODEL, engine="onnxruntime")
    theirs = det.score(images)
    # the default (auto) takes onnxruntime for float32 on the CPU, torch where it cannot run
    assert (Detector.load(MODEL).engine, Detector.load(MODEL, precision="bf16").engine) == ("onnxruntime", "torch")
    for a, b in zip(ours, theirs):
        scale = float(np.abs(a.anomaly_map).max())
        assert np.abs(a.anomaly_map - b.anomaly_map).max() <= 1e-4 * scale
        assert b.score == pytest.approx(a.score, rel=1e-4) and a.anomalous == b.anomalous
        near = np.abs(a.anomaly_map - det.threshold) <= 1e-4 * scale
        assert np.array_equal(a.mask[~near], b.mask[~near])
    import ssae.export

    def broken(*a, **k):
        raise RuntimeError("no graph today")
    monkeypatch.setattr(ssae.export, "session", broken)
    with pytest.warns(UserWarning, match="onnxruntime engine could not be built .no graph today.; scoring with torch"):
        assert Detector.load(MODEL).engine == "torch"   # auto falls back
    with pytest.raises(RuntimeError, match="no graph today"):
        Detector.load(MODEL, engine="onnxruntime")      # a chosen engine does not
    monkeypatch.undo()
    with pytest.raises(SsaeError, match="unknown engine 'tvm'; choose auto, torch or onnxruntime"):
        Detector.load(MODEL, engine="tvm")
    with pytest.raises(SsaeError, match="float32 on the CPU"):
        Detector.load(MODEL, precision="bf16", engine="onnxruntime")
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(images[0]).save(folder / "0.png")
    assert main(["predict", "--model", "aitex-fabric01", str(folder), "--out", str(tmp_path / "p"),
                 "--engine", "onnxruntime"]) == 0
    (row,) = csv.DictReader(open(tmp_path / "p" / "scores.csv"))
    assert float(row["score"]) == pytest.approx(ours[0].score, rel=1e-4)
