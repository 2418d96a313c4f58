"""The GPU benchmark and the GPU job's pieces, on the CPU: benchmarks/gpu.py --quick, FLOP counting,
the PatchCore-style scorer, the compact data copy and one paper_run stage (smoke profile).

The GPU numbers themselves are measured by scripts/gpu_paper_run.sh on a GPU machine; nothing
here needs one.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


gpu = _load("ssae_bench_gpu", ROOT / "benchmarks" / "gpu.py")
wide_resnet = sys.modules["wide_resnet"]  # imported by gpu.py from benchmarks/


def _positive(d: dict, *keys):
    for k in keys:
        assert isinstance(d[k], (int, float)) and d[k] > 0, (k, d[k])


def test_quick_benchmark_reports_every_field(tmp_path, capsys):
    out = tmp_path / "bench.json"
    threads = torch.get_num_threads()
    try:
        gpu.main(["--quick", "--device", "cpu", "--json", str(out)])
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    for text in ("training:", "inference:", "PatchCore-style", "pixel throughput", "command: python benchmarks/gpu.py --quick"):
        assert text in printed
    res = json.loads(out.read_text())
    meta = res["meta"]
    for key in ("date", "device_name", "torch", "command", "peak_source", "precision"):
        assert meta[key]
    assert meta["device"] == "cpu" and meta["quick"] is True
    assert res["errors"] == {}
    assert set(res["training"]) == {"ssae", "syncfree"}
    for tr in res["training"].values():
        _positive(tr, "images_per_s", "ms_per_step", "flops_per_step", "flops_per_image",
                  "tflops_achieved", "peak_memory_bytes")
        assert tr["flops_per_step"] == pytest.approx(tr["flops_per_image"] * tr["batch"])
        assert len(tr["ms_per_step_windows"]) == 2
    assert set(res["inference"]) == {"32", "64"}
    for inf in res["inference"].values():
        _positive(inf, "images_per_s", "megapixels_per_s", "ms_per_batch", "flops_per_image", "peak_memory_bytes")
        assert inf["megapixels_per_s"] == pytest.approx(inf["images_per_s"] * inf["size"] ** 2 / 1e6)
    assert res["patchcore"]["bank"] == [256, 1536]
    for size in ("32", "64"):
        _positive(res["patchcore"][size], "images_per_s", "megapixels_per_s", "flops_per_image", "peak_memory_bytes")
        assert res["pixel_ratio"][size] > 0
    assert res["targets"]["applies"] is False
    assert res["targets"]["train_images_per_s"]["met"] is None


def test_flops_scale_with_pixels_and_batch():
    small = gpu.ssae_flops(3, 1 / 16, 32, 1, train=True)
    assert small > 0
    assert gpu.ssae_flops(3, 1 / 16, 64, 1, train=True) / small == pytest.approx(4.0, rel=0.02)
    assert gpu.ssae_flops(3, 1 / 16, 32, 3, train=True) == pytest.approx(3 * small, rel=1e-6)
    fwd = gpu.ssae_flops(3, 1 / 16, 32, 1, train=False)
    assert 2.5 * fwd < small < 3.5 * fwd            # backward costs about twice the forward
    # Table 1 at 512 x 512: about 0.3 TFLOP per image forward (counted by hand: 304 GFLOP)
    assert 2.9e11 < gpu.ssae_flops(3, 1.0, 512, 1, train=False) < 3.2e11


def test_peak_lookup():
    assert gpu.peak_for("NVIDIA H200", None)[0] == pytest.approx(989.4)
    assert gpu.peak_for("NVIDIA H100 PCIe", None)[0] == pytest.approx(756.0)
    assert gpu.peak_for("CPU x86_64", None)[0] is None
    assert gpu.peak_for("anything", 123.0) == (123.0, "--peak-tflops")


def test_dihedral_augment_draws_all_eight_symmetries():
    x = torch.arange(9.0).view(1, 1, 3, 3).repeat(200, 2, 1, 1)
    gen = torch.Generator().manual_seed(0)
    y = gpu.dihedral_augment(x, gen)
    assert y.shape == x.shape
    assert torch.equal(y[:, 0], y[:, 1])                       # one transform per image
    assert torch.equal(y.flatten(1).sort(dim=1).values, x.flatten(1).sort(dim=1).values)
    assert len({tuple(img[0].flatten().tolist()) for img in y}) == 8


def test_wide_resnet_features_match_torchvision_layout():
    with torch.device("meta"):
        net = wide_resnet.WideResNet50x2Features()
        f2, f3 = net(torch.empty(2, 3, 64, 96))
    # torchvision's wide_resnet50_2 has 68,883,240 parameters; without layer4 and fc 24,862,528
    assert wide_resnet.parameter_count(net) == 24_862_528
    assert tuple(f2.shape) == (2, 512, 8, 12) and tuple(f3.shape) == (2, 1024, 4, 6)
    _, source = wide_resnet.build(prefer_torchvision=False)
    assert "plain-torch" in source


class _StubBackbone(torch.nn.Module):
    """layer2/layer3-shaped features that are a fixed function of the image."""

    def forward(self, x):
        f2 = F.avg_pool2d(x.mean(1, keepdim=True), 8).repeat(1, 512, 1, 1)
        f3 = F.avg_pool2d(x.mean(1, keepdim=True), 16).repeat(1, 1024, 1, 1)
        return f2, f3


def test_patchcore_scorer_is_a_nearest_neighbour_distance():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    x[1] = 0.5 + 0.5 * x[1]                                    # brighter: features far from image 0's
    backbone = _StubBackbone()
    with torch.no_grad():
        f2, f3 = backbone(x)
        f3 = F.interpolate(f3, size=f2.shape[-2:], mode="bilinear", align_corners=False)
        feats = F.avg_pool2d(torch.cat([f2, f3], 1), 3, stride=1, padding=1)
    bank = feats[0].permute(1, 2, 0).reshape(-1, 1536)         # memory bank = image 0's patches
    score = gpu.patchcore_scorer(backbone, bank, 32, cuda=False, nn_precision="fp32")
    image_scores, pixel = score(x)
    assert pixel.shape == (2, 1, 32, 32) and image_scores.shape == (2,)
    # brute force in float64: every patch's distance to its nearest bank row
    patches = feats.permute(0, 2, 3, 1).reshape(2, -1, 1536).double()
    nearest = (patches[:, :, None, :] - bank.double()[None, None]).norm(dim=-1).amin(dim=2)
    assert float(nearest[0].max()) == 0.0
    s0, s1 = float(image_scores[0]), float(image_scores[1])
    assert s0 < 0.05 * s1                       # image 0's patches are all in the bank
    assert float(nearest[1].min()) - 1e-3 <= s1 <= float(nearest[1].max()) + 1e-3   # bilinear map of them


def test_compact_copy_is_read_like_the_source(mtd_dir, tmp_path):
    from ssae.config import DataConfig
    from ssae.data import load_split

    cd = _load("ssae_compact_data", ROOT / "scripts" / "compact_data.py")
    out = tmp_path / "copy"
    rec = cd.compact(str(mtd_dir), out, size=40, fmt="jpg", quality=90, progress=False)
    assert rec["n_train"] == 6 and rec["n_masks"] == 4 and rec["bytes"] > 0
    assert (out / "COMPACT.json").is_file()
    cfg = DataConfig(image_size=40)
    src, copy = load_split(str(mtd_dir), cfg, seed=3), load_split(str(out), cfg, seed=3)
    assert [p.stem for p in copy.train] == [p.stem for p in src.train]
    assert [p.stem for p in copy.val] == [p.stem for p in src.val]      # same validation images
    assert copy.channels == 1 and copy.has_masks
    assert sorted((t.defect, t.label, t.path.stem) for t in copy.test) == \
        sorted((t.defect, t.label, t.path.stem) for t in src.test)
    # a second run replaces its own earlier copy, but never a folder it did not write
    cd.compact(str(mtd_dir), out, size=40, fmt="jpg", progress=False)
    (tmp_path / "other").mkdir()
    with pytest.raises(Exception, match="not a compact copy"):
        cd.compact(str(mtd_dir), tmp_path / "other", size=40, progress=False)


def test_compact_native_png_copies_bytes(mvtec_nomask_dir, tmp_path):
    cd = _load("ssae_compact_data", ROOT / "scripts" / "compact_data.py")
    out = tmp_path / "copy"
    rec = cd.compact(str(mvtec_nomask_dir), out, size=None, fmt="png", progress=False)
    assert not rec["has_masks"] and not (out / "ground_truth").exists()
    for src in (mvtec_nomask_dir / "train" / "good").iterdir():
        assert (out / "train" / "good" / src.name).read_bytes() == src.read_bytes()
    with pytest.raises(Exception, match="over --max-mib"):
        cd.compact(str(mvtec_nomask_dir), out, size=None, max_mib=1e-6, progress=False)


def test_paper_run_stage_writes_labelled_results(mvtec_dir, tmp_path):
    pr = _load("ssae_paper_run", ROOT / "benchmarks" / "paper_run.py")
    results = tmp_path / "results"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)              # tiny tensors: one thread is fastest on a busy machine
    try:
        rc = pr.main(["--name", "widget", "--data", str(mvtec_dir), "--profile", "smoke", "--device", "cpu",
                      "--minutes", "1", "--steps", "2", "--runs", str(tmp_path / "runs"), "--results", str(results)])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    doc = json.loads((results / "widget.json").read_text())
    assert 0 <= doc["image_auroc"] <= 1 and doc["pixel_auroc"] is not None
    run = doc["gpu_run"]
    for key in ("hardware", "date", "train_command", "evaluate_command", "train_wall_seconds", "torch"):
        assert run[key] not in (None, ""), key
    assert run["train_command"].startswith("python3 -m ssae.cli train --data")
    assert run["train_summary"]["steps"] == 2
    figs = np.load(results / "widget.figures.npz")
    n = doc["n_test_images"]
    assert figs["scores"].shape == (n,) and figs["labels"].shape == (n,)
    assert "example_image_0" in figs.files and "example_map_0" in figs.files and "example_mask_0" in figs.files
    assert figs["history_step"][-1] == 2


def test_gpu_job_script_parses():
    script = ROOT / "scripts" / "gpu_paper_run.sh"
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
