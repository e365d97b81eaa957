"""The instrument library of supplementary section 7, loaded with ``manage.py load_instruments``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from surveys.library import HEADLINE_GROUPS, ISSUES
from surveys.models import Instrument, Question

pytestmark = pytest.mark.django_db


def load() -> str:
    out = StringIO()
    call_command("load_instruments", stdout=out)
    return out.getvalue()


def test_load_instruments_creates_the_three_wave_instruments_with_every_section_7_question() -> None:
    Instrument.objects.all().delete()  # migrate loaded them already (surveys/0004_load_instrument_library)
    output = load()

    assert "prc-baseline: created" in output
    baseline = Instrument.objects.get(slug="prc-baseline")
    keys = list(baseline.questions.values_list("key", flat=True))
    assert keys[:3] == ["party_id", "party_strong", "party_leaner"]
    expected = {"browser_mobile", "gender", "age", "education", "ideology", "income", "ethnicity", "socmed_use",
                "desktop_share", "wellbeing", "ft_out", "ft_in", "kalmoe_mason_3", "kalmoe_mason_1", "meta_spv_1",
                "meta_spv_2", "meta_wev_past", "empathy", "gss_trust", "sd_out", "sd_in", "headlines"}  # fmt: skip
    expected |= {f"{p}_{x}" for p in ("learned", "bftw", "meaningful", "negative") for x in ("facebook", "x", "reddit")}
    assert expected <= set(keys)
    assert keys[-9:] == [f"issue_{issue}" for issue in ISSUES]  # asked last, so they cannot prime the outcomes
    assert len(keys) == 3 + 9 + 24 + 1 + 9
    midline = Instrument.objects.get(slug="prc-midline")
    assert "party_id" not in set(midline.questions.values_list("key", flat=True))


def test_questions_keep_the_papers_wording_and_scales() -> None:
    load()
    wellbeing = Question.objects.get(instrument__slug="prc-baseline", key="wellbeing")
    assert wellbeing.text == "Over the past 2 weeks, how often have you felt the following?"
    assert [o["label"] for o in wellbeing.options] == [
        "All of the time", "Most of the time", "More than half the time", "Some of the time", "At no time"
    ]  # fmt: skip
    assert wellbeing.items[0]["text"] == "I have felt cheerful and in good spirits."
    ft_out = Question.objects.get(instrument__slug="prc-baseline", key="ft_out")
    assert (ft_out.kind, ft_out.min_value, ft_out.max_value, ft_out.min_label) == ("thermometer", 0, 100, "Cold")
    sd_out = Question.objects.get(instrument__slug="prc-baseline", key="sd_out")
    assert [o["value"] for o in sd_out.options] == [1, 2, 3, 4, 5, 6, 7]
    trust = Question.objects.get(instrument__slug="prc-baseline", key="gss_trust")
    assert (trust.min_label, trust.max_label) == ("Most people can be trusted", "You can't be too careful")
    slider = Question.objects.get(instrument__slug="prc-baseline", key="browser_mobile")
    assert slider.allow_not_applicable
    assert [i["text"] for i in slider.items] == ["Facebook", "X (Twitter)", "Reddit"]


def test_headline_grid_carries_a_key_of_which_headlines_are_true() -> None:
    load()
    endline = Question.objects.get(instrument__slug="prc-endline", key="headlines")
    assert endline.kind == "headlines"
    assert [item["true"] for item in endline.items] == [True, False, True, False, True]
    assert endline.items[1]["text"] == "Luigi Mangione Pleads Guilty to State Murder and Terror Charges"
    assert [o["value"] for o in endline.options] == ["true", "false", "unsure"]
    assert len(HEADLINE_GROUPS) == 11
    assert all(len(group) == 5 for group in HEADLINE_GROUPS.values())


def test_rerunning_load_instruments_updates_in_place_without_duplicates() -> None:
    load()
    Question.objects.filter(key="gender").update(text="edited by hand")
    count = Question.objects.count()

    output = load()

    assert "prc-baseline: updated" in output
    assert Question.objects.count() == count
    assert Question.objects.get(instrument__slug="prc-baseline", key="gender").text == "Are you:"
