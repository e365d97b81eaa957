"""The pre-registration lock, its deviation log and unblinding: who may, what is recorded."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from participants import prereg, roles
from participants.models import AnalysisPlan, AuditEvent, PlanDeviation, Study, Unblinding
from tests.factories import StudyFactory, login, paper_arms

pytestmark = pytest.mark.django_db

PLAN = "S1 on daily active minutes; S3 on the polarization index; two-sided 5%."


def user_in(role: str, name: str) -> User:
    user = User.objects.create_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def pi() -> User:
    return user_in(roles.PI, "pi")


@pytest.fixture
def draft() -> Study:
    study = StudyFactory(status=Study.Status.DRAFT)
    paper_arms(study)
    return study


def test_document_hash_is_canonical_and_changes_with_any_setting() -> None:
    doc = prereg.document(PLAN, ["polarization"], {"arms": {"a": {"weight": 1}}, "randomization_seed_hash": "x"})
    reordered = dict(reversed(list(doc.items())))
    assert prereg.document_hash(doc) == prereg.document_hash(reordered)
    heavier = {**doc, "arms": {"a": {"weight": 2}}}
    assert prereg.document_hash(heavier) != prereg.document_hash(doc)


def test_differences_name_each_changed_leaf_with_both_values() -> None:
    before = {"arms": {"a": {"weight": 1, "name": "A"}}, "primary_outcomes": ["x"]}
    after = {"arms": {"a": {"weight": 2, "name": "A"}, "b": {"weight": 1}}, "primary_outcomes": ["x", "y"]}
    assert prereg.differences(before, after) == [
        ("arms.a.weight", 1, 2),
        ("arms.b", None, {"weight": 1}),
        ("primary_outcomes", ["x"], ["x", "y"]),
    ]


def test_pi_freezes_the_plan_with_arms_weights_and_seed_hash_and_it_is_audited(draft: Study, pi: User) -> None:
    plan = prereg.freeze_plan(study=draft, text=PLAN, primary_outcomes=["polarization", " "], by=pi)
    assert plan.frozen["primary_outcomes"] == ["polarization"]
    assert plan.frozen["randomization_seed_hash"] == draft.randomization_seed_hash
    control = {"name": "Control", "ranker_key": "control", "weight": 2, "is_control": True}
    assert plan.frozen["arms"]["control"] == control
    assert plan.frozen_hash == prereg.document_hash(plan.frozen)
    assert plan.study_status_at_freeze == Study.Status.DRAFT
    event = AuditEvent.objects.get(action="prereg.frozen")
    assert (event.actor_label, event.detail["hash"]) == ("pi", plan.frozen_hash)


def test_only_a_pi_may_freeze_and_only_once(draft: Study, pi: User) -> None:
    reader = user_in(roles.READER, "reader")
    with pytest.raises(prereg.PreregError, match="Only a PI"):
        prereg.freeze_plan(study=draft, text=PLAN, primary_outcomes=["polarization"], by=reader)
    with pytest.raises(prereg.PreregError, match="primary outcome"):
        prereg.freeze_plan(study=draft, text=PLAN, primary_outcomes=[], by=pi)
    prereg.freeze_plan(study=draft, text=PLAN, primary_outcomes=["polarization"], by=pi)
    with pytest.raises(prereg.PreregError, match="already frozen"):
        prereg.freeze_plan(study=draft, text="another plan", primary_outcomes=["trust"], by=pi)
    assert AnalysisPlan.objects.get(study=draft).frozen["analysis_plan"] == PLAN


def test_changing_an_arm_weight_after_the_freeze_is_logged_as_a_deviation(draft: Study, pi: User) -> None:
    plan = prereg.freeze_plan(study=draft, text=PLAN, primary_outcomes=["polarization"], by=pi)
    arm = draft.arms.get(slug="add_news")
    arm.allocation_weight = 3
    with roles.acting_as(pi):
        arm.save()
    deviation = PlanDeviation.objects.get(plan=plan)
    assert (deviation.setting, deviation.before, deviation.after) == ("arms.add_news.weight", 1, 3)
    assert deviation.actor_label == "pi"
    plan.refresh_from_db()
    assert plan.current["arms"]["add_news"]["weight"] == 3
    assert plan.frozen["arms"]["add_news"]["weight"] == 1  # the frozen version and its hash never change
    assert AuditEvent.objects.get(action="prereg.deviation").detail["settings"] == ["arms.add_news.weight"]
    arm.save()  # saving again with nothing new logs nothing
    assert PlanDeviation.objects.count() == 1


def test_a_new_seed_is_a_deviation_and_saves_before_the_freeze_are_not(draft: Study, pi: User) -> None:
    draft.randomization_seed = "seed-before-freeze"
    draft.save()
    plan = prereg.freeze_plan(study=draft, text=PLAN, primary_outcomes=["polarization"], by=pi)
    assert not PlanDeviation.objects.exists()
    draft.randomization_seed = "another seed"
    draft.save()
    deviation = PlanDeviation.objects.get(plan=plan)
    assert deviation.setting == "randomization_seed_hash"
    assert deviation.actor_label == "system"


def test_amending_the_outcomes_needs_a_pi_and_a_reason_and_is_logged(draft: Study, pi: User) -> None:
    prereg.freeze_plan(study=draft, text=PLAN, primary_outcomes=["polarization"], by=pi)
    with pytest.raises(prereg.PreregError, match="Say why"):
        prereg.amend_plan(study=draft, by=pi, reason=" ", primary_outcomes=["polarization", "trust"])
    with pytest.raises(prereg.PreregError, match="Only a PI"):
        prereg.amend_plan(study=draft, by=user_in(roles.OPS, "ops"), reason="x", primary_outcomes=["trust"])
    (row,) = prereg.amend_plan(study=draft, by=pi, reason="IRB asked", primary_outcomes=["polarization", "trust"])
    assert (row.setting, row.before, row.after, row.reason) == (
        "primary_outcomes",
        ["polarization"],
        ["polarization", "trust"],
        "IRB asked",
    )


def test_unblinding_needs_a_pi_and_a_reason_and_is_audited_once(draft: Study, pi: User) -> None:
    assert not prereg.is_unblinded(draft)
    with pytest.raises(prereg.PreregError, match="Only a PI"):
        prereg.unblind(study=draft, by=user_in(roles.READER, "reader"), reason="curious")
    with pytest.raises(prereg.PreregError, match="Say why"):
        prereg.unblind(study=draft, by=pi, reason="")
    prereg.unblind(study=draft, by=pi, reason="endline closed")
    prereg.unblind(study=draft, by=pi, reason="again")
    assert prereg.is_unblinded(draft)
    assert Unblinding.objects.get(study=draft).reason == "endline closed"
    assert AuditEvent.objects.filter(action="effects.unblinded").count() == 1


def test_pi_freezes_and_amends_on_the_page_which_shows_the_hash_and_the_log(draft: Study) -> None:
    pi = login("pi", roles.PI)
    form = {"study": draft.slug, "text": PLAN, "primary_outcomes": "polarization\nactive_minutes"}
    assert pi.post("/research/prereg/", form).status_code == 302
    plan = AnalysisPlan.objects.get(study=draft)
    assert plan.frozen["primary_outcomes"] == ["polarization", "active_minutes"]
    html = pi.get("/research/prereg/", {"study": draft.slug}).content.decode()
    assert plan.frozen_hash in html
    assert "No deviation from the frozen plan." in html

    no_reason = pi.post("/research/prereg/", {**form, "primary_outcomes": "polarization"})
    assert no_reason.status_code == 400
    assert "Say why" in no_reason.content.decode()
    amended = pi.post("/research/prereg/", {**form, "primary_outcomes": "polarization", "reason": "power"})
    assert amended.status_code == 302
    html = pi.get("/research/prereg/", {"study": draft.slug}).content.decode()
    assert "primary_outcomes" in html
    assert "power" in html
    assert plan.frozen_hash in html  # the frozen version's hash stays what it was


def test_a_reader_sees_the_plan_but_cannot_freeze_it(draft: Study) -> None:
    reader = login("reader", roles.READER)
    page = reader.get("/research/prereg/", {"study": draft.slug})
    assert page.status_code == 200
    assert "plan-form" not in page.content.decode()
    refused = reader.post("/research/prereg/", {"study": draft.slug, "text": PLAN, "primary_outcomes": "x"})
    assert refused.status_code == 403
    assert not AnalysisPlan.objects.filter(study=draft).exists()
