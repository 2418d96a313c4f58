"""The book's pages for kept reference models (ssae_book.models), on a packed smoke model."""
import json
import shutil

import pytest

from ssae.cli import main
from ssae_book import models as R


@pytest.fixture(scope="module")
def models_dir(smoke_run, tmp_path_factory):
    data, run = smoke_run
    root = tmp_path_factory.mktemp("models")
    assert main(["pack", str(run), "--out", str(root / "smoke-a" / "ssae"), "--blur"]) == 0
    # a second data set whose data is not on this machine
    shutil.copytree(root / "smoke-a", root / "smoke-b")
    for d in (root / "smoke-b" / "ssae",):
        doc = json.loads((d / "config.json").read_text())
        doc["meta"]["data"] = str(root / "no-such-data")
        (d / "config.json").write_text(json.dumps(doc))
    return root


def test_find_lists_each_data_set_with_its_models(models_dir):
    refs = R.find(models_dir)
    assert [r.name for r in refs] == ["smoke-a", "smoke-b"]
    assert list(refs[0].models) == ["ssae"] and refs[0].data_path() is not None
    assert refs[1].data_path() is None
    assert R.find(models_dir / "missing") == []


def test_tables_figures_and_verdict_come_from_the_recorded_numbers(models_dir):
    ref = R.find(models_dir)[0]
    rec = R.recorded(ref.models["ssae"])
    table = R.summary_table([ref])
    assert table.rows[0][7] == f"{rec['image_auroc']:.3f}"
    assert table.rows[0][6] == f"{rec['restoration_gain']:.2f}"  # the share of its corruptions undone
    assert table.rows[-1][1].startswith("blur reference")
    text = R.verdict(ref)
    assert f"image AUROC {rec['image_auroc']:.3f}" in text and "restoration check" in text
    fig = R.curve_figure(ref, R.curve_label(ref))
    assert len(fig.axes) == 4
    assert "within 20 minutes of training" not in text  # the smoke run is shorter than a short run


def test_the_verdict_says_what_the_hours_added_to_the_first_twenty_minutes(models_dir, tmp_path):
    ref = R.find(models_dir)[0]
    d = tmp_path / "ssae"
    shutil.copytree(ref.models["ssae"], d)
    rows = [{"step": s, "train_seconds": s / 10, "image_auroc": a, "pixel_auroc": 0.9, "aupro": 0.5}
            for s, a in ((4000, 0.70), (12000, 0.75), (24000, 0.90))]
    (d / "curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = R.verdict(R.Reference(ref.name, ref.folder, {"ssae": d}, ref.data))
    assert "within 20 minutes of training (step 12,000, 20 min)" in text and "image AUROC 0.750" in text
    assert "(step 24,000) these moved +0.150, +0.000, +0.000" in text
    assert "not on this machine" in R.data_note(R.find(models_dir)[1])


def test_the_gallery_shows_the_best_and_worst_image_of_each_defect_type(models_dir):
    ref = R.find(models_dir)[0]
    fig = R.gallery(ref)
    titles = [ax.get_title() for ax in fig.axes]
    assert any("best" in t for t in titles) and any("worst" in t for t in titles)
    assert len(fig.axes) % 5 == 0


def test_without_its_data_the_gallery_is_drawn_from_the_stored_samples(models_dir, tmp_path):
    ref = R.find(models_dir)[1]
    assert ref.data_path() is None
    fig = R.gallery(ref)
    assert fig is not None and "stored samples" in fig._suptitle.get_text()
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("good\nworst") for t in titles)
    assert any("best" in t for t in titles if not t.startswith("good")) and len(fig.axes) % 5 == 0
    # the stored test scores draw the ROC curve of the kept model
    scores = R.stored_image_scores(ref)
    assert list(scores) == [R.KINDS["ssae"]] and len(scores[R.KINDS["ssae"]][0]) == len(scores[R.KINDS["ssae"]][1])
    assert len(R.roc_figure(ref, scores).axes) == 1
    # a model without samples draws nothing
    bare = tmp_path / "ssae"
    shutil.copytree(ref.models["ssae"], bare, ignore=shutil.ignore_patterns("samples"))
    assert R.gallery(R.Reference(ref.name, ref.folder, {"ssae": bare}, ref.data)) is None


def test_false_positive_rate_at_recall_by_hand():
    labels = [0, 0, 0, 0, 1, 1]
    scores = [0.1, 0.2, 0.3, 0.9, 0.5, 0.95]
    assert R.fpr_at_recall(labels, scores, 0.5) == 0.0    # 0.95 alone: no false alarm
    assert R.fpr_at_recall(labels, scores, 1.0) == 0.25   # down to 0.5: the good image at 0.9 is flagged


def test_roc_curves_of_the_kept_models_and_the_blur(models_dir):
    ref = R.find(models_dir)[0]
    scores = R.image_scores(ref)
    assert set(scores) == {"the method (objective 1)", "blur reference"}
    fig = R.roc_figure(ref, scores)
    assert len(fig.axes[0].get_legend().get_texts()) == 2


def test_the_corruption_explorer_is_self_contained():
    import re

    import numpy as np

    from ssae.config import CorruptionConfig
    from ssae_book import plots

    html, still = plots.corruption_explorer(np.random.default_rng(0).random((48, 48, 1), dtype=np.float32),
                                            CorruptionConfig(), sizes=(0.1, 0.3))
    assert "<script" in html and "input" in html               # a player with a slider
    assert not re.search(r"(https?:)?//[\w.-]+\.(com|org|net)", html)  # nothing loaded from the network
    assert "<i class=\"fa" not in html                                    # no icon font either
    assert len(still.axes) == 2 * 3                            # the static fallback: every frame


def test_figure_10_colours_hits_false_alarms_and_misses_over_the_image():
    import numpy as np
    from ssae_book.plots import evaluation_map

    image = np.full((2, 2, 1), 0.5)
    pred = np.array([[True, True], [False, False]])
    truth = np.array([[True, False], [True, False]])
    over = evaluation_map(pred, truth, image)
    assert np.allclose(over[1, 1], 0.5)  # true negative: the image itself
    hit, alarm, miss = over[0, 0], over[0, 1], over[1, 0]
    assert hit.argmax() == 1 and alarm.argmax() == 2 and miss.argmax() == 0  # green, blue, red
    assert np.allclose(evaluation_map(pred, truth)[1, 1], 0)  # without an image: on black


def test_a_data_set_without_masks_gets_its_page_with_image_metrics_only(tmp_path):
    """The bottle copy has image labels only: its page shows image AUROC, no pixel metric, and
    the gallery has no mask column instead of calling every marked pixel a false alarm."""
    import fixtures

    data = fixtures.make_mvtec(tmp_path, masks=False)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--profile", "smoke",
                 "--set", "train.curve=(2,)"]) == 0
    root = tmp_path / "models"
    assert main(["pack", str(run), "--out", str(root / "mvtec-nomask" / "ssae"), "--blur", "--draws", "2"]) == 0
    (ref,) = R.find(root)
    text = R.verdict(ref)
    assert "image AUROC" in text and "pixel AUROC" not in text and "n/a" not in text
    assert "pixel AUROC" not in R.draws_text(ref.models["ssae"])
    R.summary_table([ref]), R.draws_table(ref)
    assert [ax.get_title() for ax in R.curve_figure(ref).axes] == ["image AUROC", "restoration check"]
    fig = R.gallery(ref)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) % 4 == 0 and titles[1:4] == ["reconstruction", "anomaly map", "binary mask"]
    assert not any("ground truth" in t or "miss" in t for t in titles)


def test_the_overview_counts_where_the_method_is_ahead(models_dir, tmp_path):
    root = tmp_path / "models"
    shutil.copytree(models_dir / "smoke-a", root / "aitex-x")
    shutil.copytree(root / "aitex-x" / "ssae", root / "aitex-x" / "plain")

    def set_metrics(kind, image, pixel, images_over_draws):
        path = root / "aitex-x" / kind / "metrics.json"
        doc = json.loads(path.read_text())
        doc.update(image_auroc=image, pixel_auroc=pixel, aupro=0.5,
                   calibration_draws=[{"seed": i, "image_auroc": v, "pixel_auroc": pixel, "aupro": 0.5,
                                       "score": {"reduce": "max"}} for i, v in enumerate(images_over_draws)])
        path.write_text(json.dumps(doc))

    set_metrics("ssae", 0.92, 0.96, [0.70, 0.91])
    set_metrics("plain", 0.80, 0.97, [0.75, 0.85])
    text = R.overview(R.find(root))
    assert "ahead of the plain autoencoder on image AUROC in 1 of 1, pixel AUROC in 0 of 1, AUPRO in 0 of 1" in text
    assert "On 1 of 1, the image AUROC ranges" in text  # 0.70-0.92 and 0.75-0.85 overlap
    assert "image AUROC ≥ 0.90 on 1 of 1, pixel AUROC ≥ 0.95 on 1 of 1" in text
    set_metrics("plain", 0.60, 0.97, [0.55, 0.65])
    assert "On 0 of 1" in R.overview(R.find(root))
    for kind, err in (("ssae", 0.006), ("plain", 0.002)):
        path = root / "aitex-x" / kind / "metrics.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {"normal_error": err}))
    assert "err 3.0 times as much as the plain autoencoder's" in R.verdict(R.find(root)[0])


def test_a_copy_of_an_mvtec_category_is_set_beside_the_papers_own_numbers(models_dir, tmp_path):
    from ssae_book.tables import paper_value

    shutil.copytree(models_dir / "smoke-a", tmp_path / "mvtec-bottle")
    (ref,) = R.find(tmp_path)
    rec = R.recorded(ref.models["ssae"])
    text = R.verdict(ref)
    paper = paper_value(3, "bottle").text
    assert f"image AUROC {paper} % (Table 3) against {100 * rec['image_auroc']:.1f} % here" in text
    assert "for scale only" not in R.verdict(R.find(models_dir)[0])  # a data set the paper has no row for


def test_the_bf16_check_is_told_from_its_file(tmp_path):
    doc = json.loads(R.PRECISION.read_text())
    tables, text = R.precision_check(R.PRECISION)
    assert [len(t.rows) for t in tables] == [len(doc["speed"]), len(doc["quality"]) + 2]
    assert f"{doc['paired']['aupro']['mean_diff']:+.3f} on the AUPRO" in text
    doc["paired"]["aupro"]["within"] = False
    (tmp_path / "p.json").write_text(json.dumps(doc))
    assert "on the AUPRO the difference exceeds" in R.precision_check(tmp_path / "p.json")[1]
    del doc["quality"]
    (tmp_path / "p.json").write_text(json.dumps(doc))
    assert len(R.precision_check(tmp_path / "p.json")[0]) == 1
    assert R.precision_check(tmp_path / "none.json") == ([], "The bf16 check has not been run here (`none.json` is missing).")


def test_the_intro_verdict_box_says_what_was_and_was_not_reproduced(models_dir, tmp_path):
    refs = R.find(models_dir)[:1]
    rec = R.recorded(refs[0].models["ssae"])
    box = R.verdict_box(refs)
    assert box.startswith("::::{admonition}") and box.rstrip().endswith("::::")
    assert "**Reproduced:**" in box and "**Not reproduced:**" in box
    assert "0 of 15 categories measured" in box and "MVTec AD textures are not on the machine" in box
    assert "no paper-profile run (512 px" in box
    # one sentence per data set with the restoration check, and the table with both image scores
    check = "passed" if rec["restoration_pixel_auroc"] >= 0.75 else "**not** passed"
    assert f"**{refs[0].title}**" in box and f"restoration check {check}" in box
    assert "ahead of the blur reference" in box or "behind the blur reference" in box
    assert "image AUROC, calibrated (ours) | image AUROC, paper's sum |" in box
    assert (f"| {rec['image_auroc']:.3f} | {rec['image_auroc_paper_sum']:.3f} |") in box
    # measured MVTec AD textures with masks and a paper-profile GPU result change the reasons
    results = [{"data_spec": f"/x/{c}", "dataset": c, "pixel_auroc": 0.9, "image_auroc": 0.9, "status": "ok",
                "profile": "paper", "device": "cuda"} for c in ("carpet", "grid", "leather", "tile", "wood")]
    box = R.verdict_box(refs, results)
    assert "5 of 15 categories measured" in box
    assert "textures are not" not in box and "no paper-profile run" not in box


def test_the_verdict_compares_on_every_metric_it_has():
    m = {"pixel_auroc": 0.9, "aupro": 0.5, "image_auroc": 0.8, "image_auroc_paper_sum": 0.7}
    assert R.standing(m, {k: v - 0.1 for k, v in m.items()}, "X") == "ahead of X on every metric"
    assert R.standing(m, {k: v + 0.1 for k, v in m.items()}, "X") == "behind X on every metric"
    o = dict(m, aupro=0.6)
    assert R.standing(m, o, "X") == "behind X on every metric"  # a tie is not ahead
    o = {"pixel_auroc": 0.8, "aupro": 0.6, "image_auroc": None}
    assert R.standing(m, o, "X") == "ahead of X on pixel AUROC, behind it on AUPRO"


def test_every_headline_image_auroc_has_the_papers_sum_beside_it():
    """Each kept model's metrics record the image AUROC with the paper's image score, and every
    table and sentence that shows a kept model's calibrated image AUROC shows it beside it."""
    refs = R.find()
    if not refs:
        pytest.skip("no reference model is kept in models/")
    box, readme = R.verdict_box(refs), R.glance_markdown(refs)
    for ref in refs:
        summary = R.summary_table([ref])
        verdict = R.verdict(ref)
        for name, m in [*((k, R.recorded(d)) for k, d in ref.models.items()), ("blur", R.blur(ref))]:
            if m is None:
                continue
            assert m.get("image_auroc_paper_sum") is not None, f"{ref.name}/{name}: no image_auroc_paper_sum"
            cal, paper = f"{m['image_auroc']:.3f}", f"{m['image_auroc_paper_sum']:.3f}"
            for text in (box, readme):
                rows = [ln for ln in text.splitlines() if f"| {cal}" in ln and (ref.title in ln or
                        R.short_title(ref) in ln or ln.startswith("|  |"))]
                # the paper's sum stands right after the calibrated value (a row of another model
                # may hold the same three digits in another column)
                assert any(f"| {cal} | {paper} |" in ln for ln in rows), (ref.name, name, rows)
            row = summary.rows_where(**{"image AUROC, calibrated (ours)": cal})
            assert row and row[0]["image AUROC, paper's sum"] == paper, (ref.name, name)
            if name == "ssae":
                head = verdict.splitlines()[0]
                assert f"image AUROC {cal} calibrated (ours) ({paper} with the paper's sum)" in head, head
    assert "calibrated (ours)" in box and "paper's sum" in box


def test_figures_2_and_3_come_from_a_kept_model_and_say_how_long_it_trained(models_dir, tmp_path):
    from ssae_book import book, plots

    ex = book.kept_model_example(models_dir)
    steps = json.loads((R.find(models_dir)[0].models["ssae"] / "train_summary.json").read_text())["steps"]
    assert f"trained {steps:,} steps" in ex["label"] and "stored test samples" in ex["label"]
    assert ex["anomap"].shape == ex["diff"].shape == ex["truth"].shape
    assert ex["rows"] and ex["rows"][-1]["name"] == "test: good"
    assert len(plots.pipeline(ex["image"], ex["reconstruction"], ex["diff"], ex["anomap"], ex["threshold"],
                              ex["label"], truth=ex["truth"]).axes) == 5
    assert book.kept_model_example(tmp_path) is None
    (tmp_path / "train_summary.json").write_text(json.dumps({"steps": 34, "seconds": 12}))
    assert "barely trained" in book.training_amount(tmp_path)
    assert book.training_amount(tmp_path / "none").startswith("untrained")
