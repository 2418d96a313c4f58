"""The page "Reading objective (1)": its tables and sentences come from the kept rows and from
gradients computed when the page is built."""
import torch

from ssae_book import startup as R


def _row(data, startup, seed, left, restoration):
    return {"data": data, "startup": startup, "seed": seed, "steps": 1500, "left_flat_at": left,
            "clean_over_variance": 1.0 if left is None else 0.2, "restoration_pixel_auroc": restoration,
            "restoration_gain": 0.5, "crop": 64, "hardware": "CPU: test", "date": "2026-01-01"}


def test_the_choice_is_counted_from_the_rows():
    rows = [_row("aitex-fabric01", "literal", 0, None, 0.3), _row("aitex-fabric01", "whole", 0, 400, 0.96),
            _row("aitex-fabric01", "whole", 1, 500, 0.70), _row("mvtec-bottle", "literal", 0, 400, 0.5),
            _row("mvtec-bottle", "whole", 0, 100, 0.5)]
    text = R.choice_text(rows)
    assert "as written: left the flat state in 1 of 2 runs and passed the restoration check (≥ 0.75) in 0 of 2" in text
    assert "left the flat state in 3 of 3 runs and passed the restoration check (≥ 0.75) in 1 of 3" in text
    assert "On MVTec AD bottle (copy) no run passed" in text and "On AITEX fabric01 no run" not in text
    table = R.escape_table(rows)
    assert table.rows[0][:2] == ["AITEX fabric01", "eq. (1) as written"] and table.rows[0][4] == "never"
    assert R.choice_text([]).startswith("No escape runs")


def test_the_kept_rows_cover_both_start_ups():
    rows = R.read_escape()
    assert {r["startup"] for r in rows} == {"literal", "whole"}
    assert all(r["hardware"] and r["date"] for r in rows)


def test_term_gradients_see_a_small_region_dominate():
    from ssae.model import SSAE

    torch.manual_seed(0)
    model = SSAE(in_channels=1, width=1 / 16)
    target = torch.rand(4, 1, 32, 32)
    mask = torch.zeros(4, 1, 32, 32)
    mask[:, :, 8:11, 8:11] = 1
    corrupted = target * (1 - mask) + torch.rand_like(target) * mask
    g = R.term_gradients(model, target, corrupted, mask, 0.5)
    assert g["ratio"] > 5 and abs(g["cosine"]) <= 1
    assert g["pixel_weight"] == (0.5 / 9) / (0.5 / (32 * 32 - 9))
