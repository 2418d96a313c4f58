"""The settings' provenance (paper or ours, as field metadata) and the profiles' values."""
import dataclasses
import json
from pathlib import Path

import pytest

from ssae import config
from ssae.config import SECTIONS, Config, profile, provenance

PROFILES = Path(__file__).parent / "profiles"


def test_every_setting_declares_its_source_and_a_note():
    rows = provenance(Config)
    assert len(rows) == sum(len(dataclasses.fields(k)) for k in SECTIONS.values())
    for row in rows:
        assert row.source in ("paper", "ours"), row
        assert row.note.strip(), row
    by_name = {r.setting: r for r in rows}
    assert by_name["train.lr"].source == "paper" and by_name["train.lr"].value == 1e-4
    assert by_name["train.steps"].source == "ours"
    assert by_name["calibration.search"].source == "paper" and by_name["calibration.search"].value is False


def test_provenance_of_an_instance_gives_its_values():
    rows = {r.setting: r for r in provenance(profile("cpu"))}
    assert rows["train.lr"].value == 1e-3 and rows["train.lr"].source == "paper"
    assert [r.setting for r in provenance(config.TrainConfig)][0] == "train.objective"


def test_a_field_without_a_source_is_an_error_naming_it():
    @dataclasses.dataclass
    class Section:
        good: int = config.ours(1, "a note")
        bare: int = 2

    with pytest.raises(ValueError, match="Section.bare"):
        provenance(Section)
    with pytest.raises(ValueError, match="provenance needs"):
        provenance(3)


@pytest.mark.parametrize("name", ["cpu", "smoke"])
def test_cpu_and_smoke_profiles_keep_their_values(name):
    """The cpu and smoke profiles train and score as they did when their settings were recorded
    in tests/profiles/ (the reference models and the tests depend on them)."""
    recorded = json.loads((PROFILES / f"{name}.json").read_text())
    now = json.loads(json.dumps(profile(name).to_dict()))
    assert now == recorded


def test_paper_profile_is_section_4_1_as_written():
    cfg = profile("paper")
    assert cfg.train.amp is False and cfg.calibration.search is False
    assert cfg.train.objective == 1 and cfg.train.lam == 0.5 and cfg.train.startup == "literal"
    assert cfg.train.lr == 1e-4 and cfg.train.lr_schedule == "constant"
    assert cfg.data.image_size == 512 and cfg.model.f == 3 and cfg.model.width == 1.0
    s = cfg.score
    assert (s.diff, s.reduce, s.t, s.standardize, s.tiled) == ("l2", "sum", 0, False, False)
    assert cfg.to_dict() == Config().to_dict()   # the fields' defaults are the paper's recipe


def test_paper_fast_departs_from_paper_only_in_precision_and_search():
    paper, fast = profile("paper").to_dict(), profile("paper-fast").to_dict()
    diff = {(s, k) for s in SECTIONS for k in paper[s] if paper[s][k] != fast[s][k]}
    assert diff == {("train", "amp"), ("calibration", "search")}
    sources = {r.setting: r.source for r in provenance(Config)}
    assert sources["train.amp"] == "paper" and sources["calibration.search"] == "paper"
