"""The benchmark scripts behind the book's result rows run on fixtures: benchmarks/cpu.py (train and
evaluate the method and its references), benchmarks/recalibrate.py (redo a trained run's
calibration with other scoring settings) and benchmarks/precision.py (bf16 against float32);
their real-data rows are in benchmarks/results/. benchmarks/reference_runs.sh is checked with a
stand-in interpreter (it starts hours of training)."""
import json
import subprocess
import sys
from pathlib import Path

import fixtures
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args):
    p = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_recalibrate_compares_scoring_variants_without_touching_the_run(smoke_run, tmp_path):
    data, run = smoke_run
    before = (run / "calibration.json").read_text()
    rows = tmp_path / "recal.jsonl"
    out = _run("benchmarks/recalibrate.py", run, "--data", data, "--json", rows, "--label", "toy:ssae:s0_x",
               "--set", "score.standardize=False", "--set", "score.standardize=True;score.n=0")
    got = [json.loads(ln) for ln in rows.read_text().splitlines()]
    assert [r["score"]["standardize"] for r in got] == [False, True] and got[1]["score"]["n"] == 0
    assert [(r["name"], r["method"], r["tag"]) for r in got] == [("toy", "ssae", "s0_x")] * 2  # pairable with cpu.py rows by tag
    assert 0.0 <= got[0]["image_auroc_contrast"] <= 1.0 and "contr" in out
    assert all(0.0 <= r["image_auroc"] <= 1.0 for r in got)
    steps = json.loads((run / "train_summary.json").read_text())["steps"]
    assert [r["train_steps"] for r in got] == [steps, steps] and steps > 0
    assert " std " in out.splitlines()[-1] and " std " not in out.splitlines()[-2]
    assert (run / "calibration.json").read_text() == before  # the run folder is unchanged
    p = subprocess.run([sys.executable, "benchmarks/recalibrate.py", str(run), "--data", str(data),
                        "--set", "score.nosuch=1"], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "benchmarks/recalibrate.py", str(run), "--data", str(data),
                        "--label", "ssae:s0"], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode != 0 and "NAME:METHOD:TAG" in p.stderr and "Traceback" not in p.stderr


def test_cpu_benchmark_steps_alone_lift_the_time_budget(tmp_path):
    """benchmarks/cpu.py: a step count alone trains exactly that many steps (no 20-minute cut),
    and prints one row per method with the run's settings (a settings file, then --set)."""
    data = fixtures.make_mvtec(tmp_path)
    rows = tmp_path / "rows.jsonl"
    settings = tmp_path / "lever.txt"
    settings.write_text("train.lr_schedule=cosine\ntrain.lam=0.25  # overridden by --set\n")
    out = _run("benchmarks/cpu.py", "--data", f"fx={data}", "--methods", "ssae", "blur", "--profile", "smoke",
               "--steps", "3", "--threads", "1", "--out", tmp_path / "runs", "--json", rows,
               "--settings", settings, "--set", "train.lam=0.125")
    got = {r["method"]: r for r in map(json.loads, rows.read_text().splitlines())}
    assert set(got) == {"ssae", "blur"} and got["ssae"]["train_steps"] == 3
    assert got["ssae"]["settings"] == [f"file:{settings}", "train.lam=0.125"]
    cfg = json.loads((tmp_path / "runs" / "fx-ssae" / "config.json").read_text())["config"]
    assert cfg["train"]["max_minutes"] is None and cfg["train"]["lr_schedule"] == "cosine"
    assert cfg["train"]["lam"] == 0.125
    assert "no time limit, 3 steps" in out and out.count("\nfx ") == 2


def test_cpu_benchmark_exits_non_zero_when_a_method_fails(tmp_path):
    """A method that fails (here: no data at the path) is reported and the exit status is 1."""
    p = subprocess.run([sys.executable, "benchmarks/cpu.py", "--data", f"fx={tmp_path / 'missing'}", "--methods",
                        "blur", "--profile", "smoke", "--steps", "1", "--threads", "1", "--out", str(tmp_path / "runs")],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 1 and "failed: fx/blur" in p.stderr, (p.returncode, p.stderr)


def test_precision_pairs_float32_and_bf16_models_over_calibrations(tmp_path):
    data = fixtures.make_mvtec(tmp_path)
    doc = tmp_path / "precision.json"
    out = _run("benchmarks/precision.py", "--sides", "32", "--repeats", "1", "--quality", "--data", data,
               "--steps", "2", "--seeds", "0,1", "--crop", "32", "--draws", "2", "--out", tmp_path / "runs",
               "--json", doc)
    got = json.loads(doc.read_text())
    assert [(r["model"], r["seed"], r["draws"]) for r in got["quality"]] == [
        ("fp32", 0, 2), ("bf16", 0, 2), ("fp32", 1, 2), ("bf16", 1, 2)]
    assert all(0 <= r["image_auroc"] <= 1 and 0 <= r["image_auroc_recorded"] <= 1 for r in got["quality"])
    assert set(got["paired"]) == {"restoration_pixel_auroc", "image_auroc", "pixel_auroc", "aupro"}
    assert "mean over 2 calibrations" in out and ("within the noise" in out or "differs from fp32" in out)
    assert (tmp_path / "runs" / "widget-bf16-seed1-2-crop32").is_dir()  # the runs go where --out says


def test_reference_runs_starts_the_models_asked_for(tmp_path):
    """benchmarks/reference_runs.sh hands `ssae train` one thread, the time budget and the extra
    settings; MODELS=ssae starts the method alone; an unknown model is refused before anything
    is made. A stand-in interpreter records the calls instead of training."""
    import os
    import shutil
    import time

    calls = tmp_path / "calls"
    fake = tmp_path / "py"
    fake.write_text(f'#!/bin/sh\necho "$OMP_NUM_THREADS $*" >> {calls}\n')
    fake.chmod(0o755)
    name = f"test-dry-{os.getpid()}"
    env = {**os.environ, "PY": str(fake)}
    try:
        p = subprocess.run(["bash", "benchmarks/reference_runs.sh", name, "DATA", "7", "--settings", "mtd-64px"],
                           capture_output=True, text=True, cwd=ROOT, env={**env, "MODELS": "ssae"})
        assert p.returncode == 0, p.stderr
        for _ in range(100):  # the script leaves its trainings in the background
            if calls.exists() and calls.read_text().count("\n") >= 1:
                break
            time.sleep(0.05)
        time.sleep(0.5)  # time for a second training to show itself, were one started
        (line,) = calls.read_text().splitlines()
        assert line.startswith("1 -m ssae.cli train --data DATA --out runs/ref/" + name + "/ssae")
        assert "--minutes 7" in line and "--settings mtd-64px" in line and "--corruption none" not in line
        p = subprocess.run(["bash", "benchmarks/reference_runs.sh", name + "-x", "DATA"],
                           capture_output=True, text=True, cwd=ROOT, env={**env, "MODELS": "ssae blur"})
        assert p.returncode == 2 and "MODELS" in p.stderr and not (ROOT / "runs" / "ref" / (name + "-x")).exists()
    finally:
        shutil.rmtree(ROOT / "runs" / "ref" / name, ignore_errors=True)


def test_throughput_prints_the_network_against_the_peak_and_the_loop_against_the_network(tmp_path):
    out = tmp_path / "throughput.json"
    text = _run("benchmarks/throughput.py", "--sides", "64", "--loop-sides", "64", "--repeat", "1", "--steps", "12", "--rounds", "2",
                "--thread-seconds", "0", "--heap-sides", "64", "--data", "embedded:carpet", "--json", out)
    res = json.loads(out.read_text())
    assert set(res["peak"]) == {"matmul_fp32", "conv_fp32", "matmul_bf16", "conv_bf16"}
    assert all(v > 0 for v in res["peak"].values())
    net = {r["precision"]: r for r in res["network"]}
    assert set(net) == {"fp32", "bf16"} and net["fp32"]["gflop_per_step"] == net["bf16"]["gflop_per_step"] > 0
    assert [(r["side"], r["precision"]) for r in res["loop"]] == [(64, "fp32"), (64, "bf16")]
    assert all(r["steps_per_s"] > 0 and r["steps"] == 12 and r["network_steps_per_s"] > 0 for r in res["loop"])
    assert [len(r["shares"]) for r in res["loop"]] == [1, 2]  # bf16 in rounds, the kept one among them
    assert all(r["steps_per_s"] / r["network_steps_per_s"] in r["shares"] for r in res["loop"])
    assert "loop/network bf16 64 px" in text and "of conv peak" in text
    (pr,) = res["step_profile"]
    assert pr["side"] == 64 and pr["steps"] == 12 and {"corruption", "adam", "crops", "norms"} <= set(pr["ms"])
    assert sum(pr["ms"].values()) == pytest.approx(pr["ms_per_step"]) and 0 < pr["outside_network_share"] < 1
    assert "one bf16 training step at 64 px" in text
    (il,) = res["interleaved"]  # the training step against the bare network, alternating in one process
    assert il["side"] == 64 and len(il["loop_ms_rounds"]) == il["rounds"] == 4
    assert il["share"] == pytest.approx(il["network_ms"] / il["loop_ms"]) and "interleaved steps" in text
    (heap,) = res["heap"]  # glibc's default heap against freed memory kept, in processes of their own
    assert heap["side"] == 64 and heap["default_ms_per_step"] > 0 and heap["kept_ms_per_step"] > 0
    assert heap["kept_faults_per_step"] < heap["default_faults_per_step"] and "page faults per step" in text


def test_throughput_report_sets_the_compiled_network_beside_eager():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import throughput

    res = {"hardware": "h", "date": "d", "data": "x", "peak": {"conv_fp32": 1.0, "conv_bf16": 1.0}, "network": [],
           "loop": [], "compiled": {"side": 64, "precision": "bf16", "eager_ms": 100.0, "compiled_ms": 125.0,
                                    "compile_s": 80.0}}
    assert ("torch.compile, bare network bf16 64 px: 125.0 ms per step against 100.0 eager (0.80x), "
            "after 80 s of compilation") in throughput.report(res)


def test_inference_benchmark_sets_the_library_beside_predict_and_onnxruntime(tmp_path):
    out = tmp_path / "inference.json"
    text = _run("benchmarks/inference.py", "--model", "book/lookalikes/embedded-carpet/ssae", "--images", "3",
                "--repeat", "1", "--json", out)
    res = json.loads(out.read_text())
    assert set(res["images_per_s"]) == {"library (Detector.score)", "onnxruntime (ssae export)",
                                        "library, torch engine", "ssae predict (files, overlays)"}
    assert res["library_engine"] == "onnxruntime" and "default engine here: onnxruntime" in text
    assert all(v > 0 for v in res["images_per_s"].values()) and res["predict_startup_s"] > 0
    assert "goal: library (default engine, onnxruntime) within 10 % of the fastest" in text and "of fastest" in text
