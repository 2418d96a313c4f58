"""The generated look-alikes' kept models: a build of the same settings shows and evaluates them
instead of training; any other setting (budget, seed, profile, category) trains as before."""
from ssae.release import pack
from ssae_book import book


def test_a_kept_lookalike_model_is_shown_instead_of_trained(tmp_path):
    run = tmp_path / "run"
    trained = book.train_category("embedded:carpet", "smoke", run)
    folder = tmp_path / "kept"
    pack(run, folder / "embedded-carpet" / "ssae", "embedded:carpet", draws=0)

    kept = book.kept_lookalike("embedded:carpet", "smoke", None, 0, folder)
    assert kept == folder / "embedded-carpet" / "ssae"
    assert book.kept_lookalike("embedded:carpet", "smoke", 3.0, 0, folder) is None   # another budget
    assert book.kept_lookalike("embedded:carpet", "smoke", None, 1, folder) is None  # another seed
    assert book.kept_lookalike("embedded:carpet", "cpu", None, 0, folder) is None    # another profile
    assert book.kept_lookalike("embedded:wood", "smoke", None, 0, folder) is None    # none kept
    assert book.kept_lookalike(str(tmp_path), "smoke", None, 0, folder) is None      # not a look-alike

    shown = book.train_category("embedded:carpet", "smoke", tmp_path / "shown", kept=kept)
    assert shown["result"]["steps"] == trained["result"]["steps"]
    assert shown["history"] == trained["history"]
    assert "kept look-alike model" in str(book.training_table(shown).rows)
    res = book.evaluate_category(tmp_path / "shown", "embedded:carpet")
    assert res["status"] == "ok" and 0 <= res["image_auroc"] <= 1


def test_a_kept_comparison_model_is_shown_only_for_its_own_objective(tmp_path):
    run = tmp_path / "run"
    book.train_category("embedded:carpet", "smoke", run, objective=4)
    folder = tmp_path / "kept"
    pack(run, folder / "embedded-carpet" / "objective4", "embedded:carpet", draws=0)
    kept = book.kept_lookalike("embedded:carpet", "smoke", None, 0, folder, "objective4", objective=4)
    assert kept == folder / "embedded-carpet" / "objective4"
    assert book.kept_lookalike("embedded:carpet", "smoke", None, 0, folder, "objective4") is None  # objective (1)
    assert book.kept_lookalike("embedded:carpet", "smoke", None, 0, folder, "cutout",
                               objective=1, corruption="cutout") is None                      # none kept


def test_committed_models_stay_within_their_40_mb_budget():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    files = [p for d in ("models", "book/lookalikes") for p in (repo / d).rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    assert total <= 40 * 2 ** 20, f"models/ and book/lookalikes/ hold {total / 2 ** 20:.1f} MiB, at most 40"
