"""Evaluation glue: eq. (14) weighting is applied, calibration uses validation data only."""
import dataclasses

import numpy as np
import pytest
import torch

from ssae.config import override, profile
from ssae.data import read_image, read_mask
from ssae.data import load_split
from ssae.errors import SsaeError
from ssae.scoring import REDUCTIONS, ValidationMaps, finish_maps
from ssae.calibration import calibrate_model
from ssae.evaluation import evaluate_model
from ssae.references import BlurReference


def test_avgmap_weighting_is_applied():
    raw = [torch.ones(1, 4, 4)]
    avg = np.zeros((4, 4), np.float32)
    avg[0, 0] = 1.0  # a spot that is always anomalous on validation data
    stats = ValidationMaps(avg, np.ones((4, 4), np.float32))
    plain = finish_maps(raw, 0, 1, stats, 0)[0]
    weighted = finish_maps(raw, 0, 1, stats, 1)[0]
    assert plain.shape == weighted.shape == (4, 4)
    assert weighted[0, 0] == 0.0 and weighted[3, 3] == plain[3, 3] == 1.0
    standardized = finish_maps(raw, 0, 1, stats, 0, standardize=True)[0]
    assert standardized[0, 0] == 0.0 and standardized[3, 3] == 1.0  # (1 - avg) / 1
    with pytest.raises(SsaeError):
        finish_maps(raw, 0, 1, stats, 1, standardize=True)


def test_two_sided_maps_find_a_region_the_model_reconstructs_better_than_usual():
    """A defect smoother than the texture: the model errs *less* there than on any normal image.
    One-sided standardised maps rank it lowest; two-sided ones (|z|) rank it highest."""
    from ssae import metrics as M
    rng = np.random.default_rng(0)
    val = [torch.from_numpy(1.0 + 0.1 * rng.standard_normal((1, 16, 16)).astype(np.float32)) for _ in range(20)]
    stats = ValidationMaps.of(finish_maps(val, 1, 3, None, 0))
    test = torch.from_numpy(1.0 + 0.1 * rng.standard_normal((1, 16, 16)).astype(np.float32))
    test[:, 4:10, 4:10] = 0.2  # the model reproduces the smooth region almost exactly
    mask = np.zeros((16, 16), bool)
    mask[4:10, 4:10] = True
    one = finish_maps([test], 1, 3, stats, 0, standardize=True)[0]
    two = finish_maps([test], 1, 3, stats, 0, standardize=True, two_sided=True)[0]
    assert np.allclose(two, np.abs(one))
    assert M.pixel_auroc([mask], [one]) < 0.2 and M.pixel_auroc([mask], [two]) > 0.8


def test_two_sided_setting_is_stored_only_with_standardised_maps(mvtec_dir):
    cfg = override(profile("smoke"), score={"standardize": True, "two_sided": True}, calibration={"search": False})
    split = load_split(str(mvtec_dir), cfg.data)
    cfg.model.in_channels = split.channels
    cal, stats = calibrate_model(BlurReference(2.0), cfg, split)
    assert cal["two_sided"] is True
    res = evaluate_model(BlurReference(2.0), cfg, split, cal, stats, progress=False)
    assert res["score"]["two_sided"] is True and 0.0 <= res["image_auroc"] <= 1.0
    plain = override(cfg, score={"standardize": False})  # |z| needs z: nothing two-sided to store
    assert calibrate_model(BlurReference(2.0), plain, split)[0]["two_sided"] is False


def test_standardized_maps_are_chosen_and_stored(mvtec_dir, tmp_path):
    """With both candidates the calibration records its choice; the stored stats reproduce it."""
    cfg = override(profile("smoke"), calibration={"search": True, "standardize": (False, True)})
    split = load_split(str(mvtec_dir), cfg.data)
    cfg.model.in_channels = split.channels
    cal, stats = calibrate_model(BlurReference(2.0), cfg, split)
    assert {s["standardize"] for s in cal["selection"]} == {False, True}
    assert all(s["t"] == 0 for s in cal["selection"] if s["standardize"])
    assert isinstance(cal["standardize"], bool)
    assert stats.avg.shape == stats.std.shape == (64, 64) and (stats.std >= 0).all()
    forced = override(cfg, score={"standardize": True}, calibration={"search": False, "standardize": ()})
    cal2, stats2 = calibrate_model(BlurReference(2.0), forced, split)
    assert cal2["standardize"] is True and cal2["selection"] == []
    res = evaluate_model(BlurReference(2.0), forced, split, cal2, stats2, progress=False)
    assert res["score"]["standardize"] is True and 0.0 <= res["image_auroc"] <= 1.0
    with pytest.raises(SsaeError):
        calibrate_model(BlurReference(2.0), override(forced, score={"t": 1}), split)


def test_calibration_and_evaluation_of_a_reference(mvtec_dir):
    cfg = override(profile("smoke"), score={"t": 1}, calibration={"search": True})
    split = load_split(str(mvtec_dir), cfg.data)
    cfg.model.in_channels = split.channels
    cal, stats = calibrate_model(BlurReference(2.0), cfg, split)
    assert stats.avg.shape == (64, 64)  # H x W at the profile's image size
    assert (cal["n"], cal["k"]) in [(s["n"], s["k"]) for s in cal["selection"]]
    assert cal["reduce"] in REDUCTIONS and cal["threshold"] > 0
    # every reduction, the contrast included, is a candidate scored on the validation proxy
    assert all(0.0 <= s[f"image_auroc_{r}"] <= 1.0 for s in cal["selection"] for r in REDUCTIONS)
    assert "contrast" in REDUCTIONS
    res = evaluate_model(BlurReference(2.0), cfg, split, cal, stats, progress=False)
    for key in ("image_auroc", "pixel_auroc", "aupro"):
        assert 0.0 <= res[key] <= 1.0
    # the fixture's defects are bright squares: a blur reference finds them
    assert res["pixel_auroc"] > 0.6
    # per defect type: pixel AUROC and the share of defect pixels, counted here from the masks
    assert set(res["per_defect_pixel"]) == set(res["per_defect"]) == {"scratch", "hole"}
    assert all(0.0 <= v <= 1.0 for v in res["per_defect_pixel"].values())
    counts = {d: sum(int(read_mask(m, (64, 64)).sum()) for m in (mvtec_dir / "ground_truth" / d).glob("*.png"))
              for d in ("scratch", "hole")}
    for d, share in res["defect_pixel_share"].items():
        assert share == pytest.approx(counts[d] / sum(counts.values()), abs=0.02)


def test_plain_autoencoder_is_calibrated_on_the_papers_corruption(mvtec_dir):
    cfg = override(profile("smoke"), calibration={"search": True}, corruption={"method": "none"})
    split = load_split(str(mvtec_dir), cfg.data)
    cfg.model.in_channels = split.channels
    cal, _ = calibrate_model(BlurReference(2.0), cfg, split)
    assert cal["selection"] and all(s["pixel_auroc"] == s["pixel_auroc"] for s in cal["selection"])


class _Constant(torch.nn.Module):
    """A "reconstruction" that ignores its input: the fixture's mean grey."""

    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full_like(x, self.value)


def test_restoration_check_tells_a_restoring_model_from_one_that_copies(mvtec_dir):
    from ssae.calibration import RESTORATION_MIN, restoration_warning

    cfg = override(profile("smoke"), corruption={"method": "cutout"}, calibration={"search": False})
    split = load_split(str(mvtec_dir), cfg.data)
    cfg.model.in_channels = split.channels
    # the identity copies its input, corruption included: Diff is 0 everywhere, chance level
    copies, _ = calibrate_model(torch.nn.Identity(), cfg, split)
    assert copies["restoration_pixel_auroc"] < RESTORATION_MIN
    assert "pixel AUROC 0.50" in restoration_warning(copies)
    # a constant near the images' grey "restores" cut-outs (zeros) perfectly in this sense
    val = np.stack([read_image(p, 64, split.channels) for p in split.val])
    restores, _ = calibrate_model(_Constant(float(val.mean())), cfg, split)
    assert restores["restoration_pixel_auroc"] > 0.9
    assert restoration_warning(restores) is None


def test_proxy_corruption_replaces_the_training_corruption_in_the_calibration(mvtec_dir):
    from ssae.calibration import proxy_corruption

    cfg = override(profile("smoke"), corruption={"method": "elastic", "elastic_alpha": 0.2}, calibration={"search": False})
    assert proxy_corruption(cfg) == cfg.corruption  # default: as in training
    plain = override(cfg, corruption={"method": "none"})
    assert proxy_corruption(plain).method == "elastic"  # a plain autoencoder: the paper's corruption
    # ... with the sizes, shape and brightness it was given
    sizes = {"patch_min": 0.2, "patch_max": 0.7, "brightness": 0.25, "shape_sigma": 0.3}
    plain_sized = override(cfg, corruption={"method": "none", **sizes})
    assert proxy_corruption(plain_sized) == dataclasses.replace(plain_sized.corruption, method="elastic")
    assert proxy_corruption(plain) == dataclasses.replace(cfg.corruption, method="elastic")
    # held-out corruptions are a fixed task: the same proxy whatever each model trained on
    both = {"proxy": ("cutout", "swap", "occlusion")}
    method = override(cfg, corruption={"method": "swap", **sizes}, calibration=both)
    fixed = proxy_corruption(method)
    assert fixed == proxy_corruption(override(plain_sized, calibration=both)) == proxy_corruption(override(plain, calibration=both))
    assert (fixed.patch_min, fixed.patch_max, fixed.brightness) == (0.05, 0.35, 0.1)  # the defaults
    assert method.corruption.patch_max == 0.7  # training keeps its own
    # the proxy's patch sizes are set on their own, with or without held-out corruptions
    own = proxy_corruption(override(method, calibration={"proxy_patch_min": 0.2, "proxy_patch_max": 0.7}))
    assert (own.patch_min, own.patch_max, own.method) == (0.2, 0.7, "cutout")
    assert proxy_corruption(override(plain_sized, calibration={"proxy_patch_max": 0.9})).patch_min == 0.2
    cpu = profile("cpu")
    assert proxy_corruption(override(cpu, corruption={"method": "swap", **sizes})) == proxy_corruption(cpu)
    with pytest.raises(SsaeError, match="proxy_patch"):
        proxy_corruption(override(method, calibration={"proxy_patch_min": 0.8}))
    held_out = override(cfg, calibration={"proxy": ("cutout", "swap")})
    pc = proxy_corruption(held_out)
    assert (pc.method, pc.alternate, pc.brightness) == ("cutout", ("swap",), 0.1)
    assert pc.patch_max == cfg.corruption.patch_max
    one = override(cfg, calibration={"proxy": "cutout"})  # `--set calibration.proxy=cutout`
    assert one.calibration.proxy == ("cutout",) and proxy_corruption(one).method == "cutout"
    split = load_split(str(mvtec_dir), cfg.data)
    cfg.model.in_channels = held_out.model.in_channels = split.channels
    val = np.stack([read_image(p, 64, split.channels) for p in split.val])
    constant = _Constant(float(val.mean()))
    # a constant "restores" cut-outs, not elastic deformations: the proxy decides what the
    # selection sees, while the restoration check stays on the training corruption
    choose = {"search": True}
    cal, _ = calibrate_model(constant, override(held_out, calibration={**choose, "proxy": ("cutout",)}), split)
    cal_el, _ = calibrate_model(constant, override(cfg, calibration=choose), split)
    assert cal["proxy_corruption"] == ["cutout"] and cal_el["proxy_corruption"] == ["elastic"]
    assert min(r["pixel_auroc"] for r in cal["selection"]) > 0.9
    assert max(r["pixel_auroc"] for r in cal_el["selection"]) < 0.9
    assert cal["restoration_pixel_auroc"] < 0.9
    assert cal["restoration_pixel_auroc"] == pytest.approx(
        next(r["pixel_auroc"] for r in cal_el["selection"]
             if (r["n"], r["k"], r["standardize"]) == (cal["n"], cal["k"], cal["standardize"])))
    with pytest.raises(SsaeError, match="unknown corruption method 'blur'"):
        calibrate_model(constant, override(cfg, calibration={"proxy": ("blur",)}), split)


def test_selection_weights_each_validation_map_with_the_others_avgmap():
    from ssae.calibration import _separation

    # every clean validation map has the same structural hot spot (an edge, say); each corrupted
    # copy has it too, plus the corruption elsewhere
    clean, bad, masks = [], [], []
    for i in range(4):
        c = np.full((8, 8), 0.1, np.float32)
        c[0, 0] = 5.0
        b = c.copy()
        b[4 + i % 2, 4] = 3.0
        m = np.zeros((8, 8), bool)
        m[4 + i % 2, 4] = True
        clean.append(c), bad.append(b), masks.append(m)
    _, unweighted = _separation(clean, bad, masks, 0, seed=0)
    _, weighted = _separation(clean, bad, masks, 1, seed=0)
    # by the max, the hot spot hides the corruption; eq. (14) with the others' avgmap removes it
    assert unweighted["max"] == 0.5 and weighted["max"] == 1.0


def test_selection_compares_diffs_and_exponents(mvtec_dir):
    cfg = override(profile("smoke"), calibration={"search": True, "diff": ("l2", "ssim"),
                                                   "t": (0, 1)})
    split = load_split(str(mvtec_dir), cfg.data)
    cfg.model.in_channels = split.channels
    cal, _ = calibrate_model(BlurReference(2.0), cfg, split)
    rows = {(s["diff"], s["t"]) for s in cal["selection"]}
    assert rows == {("l2", 0), ("l2", 1), ("ssim", 0), ("ssim", 1)}
    assert (cal["diff"], cal["t"]) in rows


def test_metric_size_scores_pixels_at_a_stated_size(mvtec_dir):
    from ssae.evaluation import at_metric_size

    m = np.arange(16, dtype=np.float32).reshape(4, 4)
    assert np.array_equal(at_metric_size([m], 4)[0], m) and at_metric_size([m], None)[0] is m
    assert at_metric_size([m], 8)[0].shape == (8, 8)
    with pytest.raises(SsaeError, match="metric_size"):
        at_metric_size([m], 0)
    cfg = override(profile("smoke"), score={"n": 0, "k": 1}, calibration={"search": False})
    split = load_split(str(mvtec_dir), cfg.data)
    cfg.model.in_channels = split.channels
    cal, stats = calibrate_model(BlurReference(2.0), cfg, split)
    own = evaluate_model(BlurReference(2.0), cfg, split, cal, stats, progress=False)
    big = evaluate_model(BlurReference(2.0), override(cfg, score={"metric_size": 96}), split, cal, stats,
                         progress=False)
    assert own["metric_size"] is None and "evaluated image size" in own["metrics_note"]
    assert big["metric_size"] == 96 and "96 x 96" in big["metrics_note"]
    # image scores do not depend on the metric size; the pixel metrics count other pixels
    assert big["image_auroc"] == own["image_auroc"]
    assert big["pixel_auroc"] != own["pixel_auroc"] and 0.6 < big["pixel_auroc"] <= 1.0


def test_ensemble_of_runs_is_the_pixelwise_max_on_shared_pixels(smoke_run, tmp_path):
    from ssae.cli import main
    from ssae.evaluation import evaluate_ensemble

    data, run = smoke_run
    small = tmp_path / "small"
    assert main(["train", "--data", str(data), "--out", str(small), "--profile", "smoke",
                 "--set", "data.image_size=32", "--set", "train.crop_end=32"]) == 0
    alone = evaluate_ensemble([run], str(data), 48, progress=False)
    same = evaluate_ensemble([run, run], str(data), 48, progress=False)
    for key in ("image_auroc", "pixel_auroc", "aupro"):  # max(a, a) = a
        assert same[key] == alone[key] == alone["members"][0][key]
    both = evaluate_ensemble([run, small], str(data), 48, progress=False)
    assert [m["image_size"] for m in both["members"]] == [64, 32] and both["metric_size"] == 48
    assert all(0.0 <= both[k] <= 1.0 for k in ("image_auroc", "pixel_auroc", "aupro"))
    capped = tmp_path / "capped"  # a run whose config keeps fewer test images
    assert main(["train", "--data", str(data), "--out", str(capped), "--profile", "smoke",
                 "--set", "data.max_test=4"]) == 0
    with pytest.raises(SsaeError, match="other test images"):
        evaluate_ensemble([run, capped], str(data), 48, progress=False)


def test_selection_compares_the_given_smoothings(mvtec_dir):
    cfg = override(profile("smoke"), calibration={"search": True, "nk": ((0, 1), (1, 3), (2, 5))})
    split = load_split(str(mvtec_dir), cfg.data)
    cfg.model.in_channels = split.channels
    cal, _ = calibrate_model(BlurReference(2.0), cfg, split)
    assert {(s["n"], s["k"]) for s in cal["selection"]} == {(0, 1), (1, 3), (2, 5)}
    assert (cal["n"], cal["k"]) in {(0, 1), (1, 3), (2, 5)}
    for bad in (((1, 0),), ((-1, 3),), ((1, 3, 5),)):
        with pytest.raises(SsaeError, match="calibration.nk"):
            calibrate_model(BlurReference(2.0), override(cfg, calibration={"nk": bad}), split)
    cfg.calibration.nk = (1, 3)  # set directly, not through override: one pair unpacked
    with pytest.raises(SsaeError, match="calibration.nk"):
        calibrate_model(BlurReference(2.0), cfg, split)


def test_restoration_gain_is_the_share_of_the_corruption_undone():
    from ssae.calibration import restoration_gain

    rng = np.random.default_rng(0)
    clean = [rng.random((16, 16, 1), dtype=np.float32)]
    corrupted = [clean[0].copy()]
    corrupted[0][4:8, 4:8] = 0.0
    masks = [np.zeros((16, 16), bool)]
    masks[0][4:8, 4:8] = True

    class Restores(torch.nn.Module):  # gives back the original, whatever its input
        def forward(self, x):
            return torch.from_numpy(clean[0].transpose(2, 0, 1).copy())[None].expand_as(x).to(x.dtype)

    assert restoration_gain(Restores(), clean, corrupted, masks) == pytest.approx(1.0)
    assert restoration_gain(torch.nn.Identity(), clean, corrupted, masks) == pytest.approx(0.0, abs=1e-6)
    assert restoration_gain(_Constant(1.0), clean, corrupted, masks) < 0  # farther from the original
    from ssae.calibration import restoration_errors
    errs = restoration_errors(torch.nn.Identity(), clean, corrupted, masks)
    assert errs["normal_error"] == 0.0  # a copy is exact on clean images
    assert errs["restoration_error"] == pytest.approx(float(np.square(clean[0][4:8, 4:8]).mean()))
    assert restoration_errors(Restores(), clean, corrupted, masks)["restoration_error"] == 0.0


def test_the_verdict_says_what_the_check_and_the_gain_measure():
    from ssae_book.models import restoration_text

    assert "find the corruptions" in restoration_text({"restoration_pixel_auroc": 0.8})
    learned = restoration_text({"restoration_pixel_auroc": 0.44, "restoration_gain": 0.4})
    assert "not** single out" in learned and "undoes 40%" in learned and "learned the task" in learned
    assert "does not undo" in restoration_text({"restoration_pixel_auroc": 0.6, "restoration_gain": -0.1})
    errs = restoration_text({"restoration_pixel_auroc": 0.5, "restoration_gain": 0.4, "restoration_error": 0.0025,
                             "normal_error": 0.002})
    assert "0.0025 left inside the corrupted regions, 0.002 on clean images, 1.2 times as much" in errs


def test_more_proxy_draws_add_copies_and_keep_the_first_draw(mvtec_dir):
    import numpy as np

    from ssae.calibration import _corrupted, calibrate_model
    from ssae.runs import build_model

    cfg = override(profile("smoke"), corruption={"method": "cutout"})
    split = load_split(str(mvtec_dir), cfg.data)
    images = [np.random.default_rng(i).random((32, 32, 3), dtype=np.float32) for i in range(3)]
    one, m1 = _corrupted(images, cfg.corruption, seed=5)
    three, m3 = _corrupted(images, cfg.corruption, seed=5, draws=3)
    assert len(three) == len(m3) == 9
    assert all(np.array_equal(a, b) for a, b in zip(one, three[:3]))
    assert not np.array_equal(three[0], three[3])  # each copy drawn anew
    model = build_model(cfg).eval()
    doc, _ = calibrate_model(model, override(cfg, calibration={"proxy_draws": 3}), split)
    assert doc["proxy_draws"] == 3 and 0 <= doc["restoration_pixel_auroc"] <= 1
