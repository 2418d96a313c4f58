"""The analysis scripts of the findings chapter run on fixtures: benchmarks/untrained_maps.py,
benchmarks/reconstructions.py, benchmarks/learning_curve.py, benchmarks/noise_floor.py,
benchmarks/recalibrate.py, benchmarks/scoring_levers.py, benchmarks/paired_draws.py,
benchmarks/ensemble.py, benchmarks/uneven_annotations.py and benchmarks/orientation.py
(their real-data numbers are in book/findings.md)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import fixtures

ROOT = Path(__file__).resolve().parents[1]


def _run(*args):
    p = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_untrained_maps_prints_every_map_with_its_pixel_auroc_per_defect_type(tmp_path):
    out = _run("benchmarks/untrained_maps.py", "--data", fixtures.make_mtd(tmp_path), "--size", "32", "--within")
    out, within = out.split("median within-image AUROC")
    head = next(ln for ln in out.splitlines() if ln.startswith("map"))
    types = head.split("per type:")[1].split()
    assert types == sorted(fixtures.MTD_CLASSES)
    rows = [ln for ln in out.splitlines() if "box" in ln and not ln.startswith("map")]
    assert len(rows) == 10
    for ln in rows:  # pixel AUROC, image max, image mean | one pixel AUROC per type: fractions
        pooled, per_type = ln.rsplit(" | ", 1)
        assert all(0.0 <= float(v) <= 1.0 for v in pooled.split()[-3:])
        assert len(per_type.split()) == len(types) and all(0.0 <= float(v) <= 1.0 for v in per_type.split())
    # the fixture's defects are dark boxes: a bright-dark cue sees them
    assert max(float(ln.rsplit(" | ", 1)[0].split()[-3]) for ln in rows) > 0.8


def test_reconstructions_figure_is_labelled_and_written(smoke_run, tmp_path):
    data, run = smoke_run
    png = tmp_path / "fig" / "r.png"
    out = _run("benchmarks/reconstructions.py", run, "--data", data, "--out", png, "--n", "2")
    assert png.is_file() and png.stat().st_size > 1000 and "wrote" in out
    assert not list(png.parent.glob("*.tmp.png"))


def test_learning_curve_resumes_one_run_and_writes_a_row_per_budget(tmp_path):
    data = fixtures.make_mvtec(tmp_path)
    rows = tmp_path / "curve.jsonl"
    out = _run("benchmarks/learning_curve.py", "--data", f"w={data}", "--minutes", "0.01,0.03", "--profile",
               "smoke", "--steps", "400", "--threads", "1", "--out", tmp_path / "runs", "--json", rows)
    got = [json.loads(ln) for ln in rows.read_text().splitlines()]
    assert [r["minutes"] for r in got] == [0.01, 0.03]
    assert 0 < got[0]["steps"] < got[1]["steps"] < 400  # the second budget resumed the first run
    assert all(0.0 <= r["image_auroc"] <= 1.0 and 0.0 <= r["restoration_pixel_auroc"] <= 1.0 for r in got)
    assert out.count("\n   0.0") == 2  # one table row per budget
    assert (tmp_path / "runs" / "w" / "done").is_file()


def test_learning_curve_rejects_decreasing_budgets(tmp_path):
    p = subprocess.run([sys.executable, "benchmarks/learning_curve.py", "--data", str(tmp_path), "--minutes", "3,1"],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "must increase" in p.stderr and "Traceback" not in p.stderr


def test_noise_floor_compares_each_anomaly_with_the_models_own_error(smoke_run):
    data, run = smoke_run
    out = _run("benchmarks/noise_floor.py", run, "--data", data, "--threads", "1")
    rows = {ln[:32].strip(): ln[32:].split() for ln in out.splitlines()[3:] if ln.strip()}
    assert set(rows) == {"clean validation images", "corruption: elastic", "corruption: swap",
                         "corruption: occlusion", "corruption: cutout", "test defects: hole", "test defects: scratch"}
    assert rows["clean validation images"][-1] == "1.00"  # the floor against itself
    # the fixture's defects are bright squares (grey 250): a large change, far above the floor
    change, inside, outside, ratio = map(float, rows["test defects: hole"])
    assert change > 0.1 and ratio == pytest.approx(inside / outside, abs=0.01)


def test_recalibrate_compares_scoring_variants_without_touching_the_run(smoke_run, tmp_path):
    data, run = smoke_run
    before = (run / "calibration.json").read_text()
    rows = tmp_path / "recal.jsonl"
    out = _run("benchmarks/recalibrate.py", run, "--data", data, "--json", rows, "--label", "toy:ssae:s0_x",
               "--set", "score.standardize=False", "--set", "score.standardize=True;score.n=0")
    got = [json.loads(ln) for ln in rows.read_text().splitlines()]
    assert [r["score"]["standardize"] for r in got] == [False, True] and got[1]["score"]["n"] == 0
    assert [(r["name"], r["method"], r["tag"]) for r in got] == [("toy", "ssae", "s0_x")] * 2  # paired_draws.py can pair them
    assert 0.0 <= got[0]["image_auroc_contrast"] <= 1.0 and "contr" in out
    assert all(0.0 <= r["image_auroc"] <= 1.0 for r in got)
    steps = json.loads((run / "train_summary.json").read_text())["steps"]
    assert [r["train_steps"] for r in got] == [steps, steps] and steps > 0  # paired_draws.py shows them
    assert " std " in out.splitlines()[-1] and " std " not in out.splitlines()[-2]
    assert (run / "calibration.json").read_text() == before  # the run folder is unchanged
    p = subprocess.run([sys.executable, "benchmarks/recalibrate.py", str(run), "--data", str(data),
                        "--set", "score.nosuch=1"], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "benchmarks/recalibrate.py", str(run), "--data", str(data),
                        "--label", "ssae:s0"], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode != 0 and "NAME:METHOD:TAG" in p.stderr and "Traceback" not in p.stderr


def test_scoring_levers_prints_one_row_per_weighting_including_two_sided_maps(smoke_run):
    data, run = smoke_run
    out = _run("benchmarks/scoring_levers.py", run, "--data", data, "--nk", "1,3", "--t", "0,1", "--per-type")
    rows = [ln.split() for ln in out.splitlines() if ln.startswith(("l2 ", "ssim "))]
    assert [(r[0], r[3]) for r in rows] == [(d, w) for d in ("l2", "ssim") for w in ("t=0", "t=1", "std", "|std|")]
    for r in rows:  # image AUROC (sum, max, contrast), pixel AUROC, AUPRO: fractions; then one per type
        assert all(0.0 <= float(v) <= 1.0 for v in r[4:9])
        types = dict(v.split("=") for v in r if "=" in v and not v.startswith("t="))
        assert set(types) == {"hole", "scratch"} and all(0.0 <= float(v) <= 1.0 for v in types.values())


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


def _draw_rows(path, pairs, blur=None, extra=()):
    """JSON lines as cpu.py --json writes them: one per (draw, method) on data set 'g'."""
    rows = []
    for i, (a, b) in enumerate(pairs):
        for method, v in (("ssae", a), ("plain", b)):
            rows.append({"name": "g", "method": method, "tag": f"s{i}", "image_auroc": v, "pixel_auroc": v * v,
                         "aupro": v / 3, "train_steps": 100 + i, "profile": "cpu", "image_size": 64,
                         "train_seconds": 60.0, "hardware": "test",
                         "per_defect": {"bent": v, "glue": 1 - v}, "per_defect_pixel": {"bent": v, "glue": None}})
    if blur is not None:
        rows.append({"name": "g", "method": "blur", "tag": "s0", "image_auroc": blur, "pixel_auroc": blur,
                     "aupro": blur})
    rows += list(extra)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_paired_draws_pairs_by_tag_and_reports_the_paired_tests(tmp_path):
    """benchmarks/paired_draws.py: the statistics are scipy's paired t-test and Wilcoxon test
    over the draws both methods have; other data sets and unpaired rows are left out."""
    from scipy import stats
    a, b = [0.9, 0.8, 0.85, 0.7, 0.95], [0.8, 0.82, 0.75, 0.6, 0.9]
    other = {"name": "other", "method": "ssae", "tag": "s0", "image_auroc": 0.0, "pixel_auroc": 0.0, "aupro": 0.0}
    lone = {"name": "g", "method": "ssae", "tag": "s9", "image_auroc": 0.0, "pixel_auroc": 0.0, "aupro": 0.0}
    rows = _draw_rows(tmp_path / "r.jsonl", list(zip(a, b)), blur=0.5, extra=[other, lone])
    png = tmp_path / "fig" / "draws.png"
    out = _run("benchmarks/paired_draws.py", rows, "--data", "g", "--json", tmp_path / "s.jsonl", "--plot", png)
    assert png.is_file() and png.stat().st_size > 1000 and not list(png.parent.glob("*.tmp.png"))
    s = json.loads((tmp_path / "s.jsonl").read_text())
    assert s["tags"] == ["s0", "s1", "s2", "s3", "s4"] and "1 unpaired rows left out" in out
    img = s["metrics"]["image_auroc"]
    assert img["p_ttest"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert img["p_wilcoxon"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert img["wins"] == 4 and img["diff"] == pytest.approx(sum(a) / 5 - sum(b) / 5)
    assert img["ci95"][0] < img["diff"] < img["ci95"][1]
    ps = sorted((s["metrics"][m]["p_ttest"], m) for m in ("image_auroc", "pixel_auroc", "aupro"))
    holm, running = {}, 0.0
    for rank, (pv, m) in enumerate(ps):  # Holm by hand: k-th smallest times (3 - k), kept monotone
        running = max(running, min(1.0, (3 - rank) * pv))
        holm[m] = running
    assert all(s["metrics"][m]["p_ttest_holm"] == pytest.approx(v) for m, v in holm.items())
    assert img["reference"]["value"] == 0.5 and img["reference"]["draws_above"] == {"ssae": 5, "plain": 5}
    bent, glue = s["per_defect"]["bent"], s["per_defect"]["glue"]
    assert bent["per_defect"]["wins"] == 4 and glue["per_defect"]["wins"] == 1
    assert glue["per_defect"]["mean_a"] == pytest.approx(1 - sum(a) / 5)
    assert "per_defect_pixel" not in glue  # a type without pixel AUROC in some row: shown as '-'


def test_paired_draws_refuses_ambiguous_or_too_few_draws(tmp_path):
    dup = {"name": "g", "method": "plain", "tag": "s0", "image_auroc": 0.1, "pixel_auroc": 0.1, "aupro": 0.1}
    for rows, msg in ((_draw_rows(tmp_path / "a.jsonl", [(0.9, 0.8), (0.7, 0.6)], extra=[dup]), "a second row"),
                      (_draw_rows(tmp_path / "b.jsonl", [(0.9, 0.8)]), "1 paired draw(s)")):
        p = subprocess.run([sys.executable, "benchmarks/paired_draws.py", str(rows), "--data", "g"],
                           capture_output=True, text=True, cwd=ROOT)
        assert p.returncode == 1 and msg in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_paired_draws_pairs_a_variant_with_its_default(tmp_path):
    """--variant V: rows tagged sN_V are read as method ssae_V in draw sN and paired with
    the default rows of the same draw."""
    rows = _draw_rows(tmp_path / "r.jsonl", [(0.6, 0.8), (0.7, 0.8), (0.9, 0.8)])
    variant = [{"name": "g", "method": "ssae", "tag": f"s{i}_wu", "image_auroc": v, "pixel_auroc": v,
                "aupro": v, "hardware": "test"} for i, v in enumerate([0.8, 0.9, 0.85])]
    with rows.open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in variant))
    _run("benchmarks/paired_draws.py", rows, "--data", "g", "--variant", "wu", "--methods", "ssae_wu,ssae",
         "--json", tmp_path / "s.jsonl")
    s = json.loads((tmp_path / "s.jsonl").read_text())
    img = s["metrics"]["image_auroc"]
    assert s["methods"] == ["ssae_wu", "ssae"] and s["tags"] == ["s0", "s1", "s2"]
    assert img["wins"] == 2 and img["diff"] == pytest.approx((0.2 + 0.2 - 0.05) / 3)


def test_paired_draws_retry_replaces_only_draws_that_failed_the_restoration_check(tmp_path):
    """--retry R: a row tagged sN_R replaces its method's row of draw sN only when that row's
    restoration check is below 0.75; a retry of a draw that passed is left out."""
    rows = _draw_rows(tmp_path / "r.jsonl", [(0.6, 0.8), (0.7, 0.8), (0.9, 0.8)])
    lines = [json.loads(ln) for ln in rows.read_text().splitlines()]
    for r in lines:
        r["restoration_pixel_auroc"] = 0.5 if (r["method"], r["tag"]) == ("ssae", "s0") else 0.9
    retries = [{**lines[2 * i], "tag": f"s{i}_i100", "image_auroc": v, "pixel_auroc": v, "aupro": v,
                "restoration_pixel_auroc": 0.95} for i, v in ((0, 0.95), (1, 0.1))]
    rows.write_text("".join(json.dumps(r) + "\n" for r in lines + retries))
    out = _run("benchmarks/paired_draws.py", rows, "--data", "g", "--retry", "i100", "--json", tmp_path / "s.jsonl")
    s = json.loads((tmp_path / "s.jsonl").read_text())
    assert s["retried"] == {"ssae": ["s0"], "plain": []} and "ssae retried (i100)" in out
    img = s["metrics"]["image_auroc"]
    assert img["mean_a"] == pytest.approx((0.95 + 0.7 + 0.9) / 3)  # s1's retry (0.1) is not used
    # without --retry the retry rows are unknown variants: they stay out of the pairs
    _run("benchmarks/paired_draws.py", rows, "--data", "g", "--json", tmp_path / "t.jsonl")
    t = json.loads((tmp_path / "t.jsonl").read_text())
    assert t["metrics"]["image_auroc"]["mean_a"] == pytest.approx((0.6 + 0.7 + 0.9) / 3)


def test_ensemble_script_prints_members_and_their_maximum(smoke_run, tmp_path):
    data, run = smoke_run
    rows = tmp_path / "ens.jsonl"
    out = _run("benchmarks/ensemble.py", run, run, "--data", data, "--size", "48", "--json", rows)
    got = json.loads(rows.read_text())
    assert got["metric_size"] == 48 and len(got["members"]) == 2
    assert "metrics at 48 px" in out and "ensemble (pixel-wise max)" in out
    p = subprocess.run([sys.executable, "benchmarks/ensemble.py", str(tmp_path / "nosuch"), "--data", str(data)],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode != 0 and "Traceback" not in p.stderr and "ensemble:" in p.stderr


def _benchmark(name):
    """Import benchmarks/<name>.py as a module (they import each other by bare name)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


def test_step_is_the_inner_boundary_of_a_band_and_not_the_image_border():
    import numpy as np
    U = _benchmark("uneven_annotations")
    band = np.zeros((10, 8), bool)
    band[:4] = True  # a band along the top border, the full width
    step, interior = U.step_and_interior(band, 1)
    assert step[3].all() and step[4].all() and not step[[0, 1, 2, 5, 6, 7, 8, 9]].any()
    assert (interior == (band & ~step)).all() and interior[:3].all()
    g = U.mask_geometry(band)
    assert g["touches_top_bottom"] and g["touches_left_right"] and g["regions"] == 1
    assert g["width_span"] == 1.0 and g["height_span"] == 0.4 and g["share"] == 0.4
    # a map that lights up only the step finds the step, not the interior
    amap = step.astype(float)
    r = U.region_aurocs(band, step, interior, amap)
    assert r["step"] == 1.0 and r["interior"] == 0.5 and 0.5 < r["annotated"] < 1.0
    with pytest.raises(ValueError, match="ring"):
        U.step_and_interior(band, 0)


def test_uneven_annotations_prints_geometry_and_region_aurocs(tmp_path):
    from ssae.cli import main as ssae_main

    data = fixtures.make_mtd(tmp_path)
    run = tmp_path / "run"
    assert ssae_main(["train", "--data", str(data), "--out", str(run), "--profile", "smoke", "--steps", "2"]) == 0
    png = tmp_path / "u.png"
    out = _run("benchmarks/uneven_annotations.py", "--data", data, "--size", "32", "--ring", "1",
               "--run", run, "--figure", png)
    geometry = [ln for ln in out.splitlines() if ln.split()[:1] in (["Blowhole"], ["Uneven"])]
    assert len(geometry) == 2
    rows = [ln for ln in out.splitlines() if " | " in ln and not ln.startswith("map")]
    assert len(rows) == 13  # ten local cues, two across the tile and the run's maps
    assert rows[-1].startswith("run run (")
    for ln in rows:  # within: annotated, step, interior | against good tiles: step, interior
        within, pooled = ln.rsplit(" | ", 1)
        values = [float(v) for v in within.split()[-3:] + pooled.split()]
        assert len(values) == 5 and all(0.0 <= v <= 1.0 for v in values)
    # the fixture's defects are dark boxes: some cue finds the annotated region within its tile
    assert max(float(ln.rsplit(" | ", 1)[0].split()[-3]) for ln in rows) > 0.8
    assert png.is_file() and png.stat().st_size > 1000
    p = subprocess.run([sys.executable, "benchmarks/uneven_annotations.py", "--data", str(data), "--defect", "Nope"],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 1 and "Nope" in p.stderr and "Blowhole" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "benchmarks/uneven_annotations.py", "--data", str(tmp_path / "none")],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "none" in p.stderr


def test_orientation_tells_streaks_that_run_one_way_from_a_texture_without_direction(tmp_path):
    import numpy as np
    O = _benchmark("orientation")
    rng = np.random.default_rng(0)
    streaks = np.repeat(rng.random((1, 40)), 30, axis=0) + 0.05 * rng.random((30, 40))  # top to bottom
    assert O.gradient_ratio(streaks) > 3 and O.gradient_ratio(streaks.T) < 1 / 3
    assert 0.8 < O.gradient_ratio(rng.random((40, 40))) < 1.25
    assert "rot90=false" in O.verdict(np.array([1.4, 2.0])) and "rot90=false" in O.verdict(np.array([0.5, 0.7]))
    assert "no common direction" in O.verdict(np.array([0.9, 1.3]))
    out = _run("benchmarks/orientation.py", "--data", fixtures.make_mtd(tmp_path))
    assert "train split" in out and "median" in out and len(out.splitlines()) == 3
    p = subprocess.run([sys.executable, "benchmarks/orientation.py", "--data", str(tmp_path / "none")],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 1 and p.stderr.startswith("orientation: ") and p.stderr.count("\n") == 1
