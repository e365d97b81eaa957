"""The researcher admin, the roles and who may open the dashboards: all through HTTP and commands."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.test import Client

from participants.audit import record_audit
from participants.models import (
    Assignment,
    AuditEvent,
    ExtensionInstall,
    Heartbeat,
    Participant,
    PayoutBatch,
    PayoutMethod,
    Study,
)
from participants.payments import run_lottery
from participants.roles import OPS, PI, READER, ROLE_NAMES, create_roles
from tests.demo import PEOPLE, seed_small_demo
from tests.factories import ArmFactory, ParticipantFactory, StudyFactory, login

pytestmark = pytest.mark.django_db

FUNNEL = "/research/funnel/"


@pytest.fixture(autouse=True)
def roles() -> dict[str, Group]:
    return create_roles()


@pytest.fixture
def participant() -> Participant:
    return ParticipantFactory(email="someone@example.org", study__status=Study.Status.RUNNING)


# --- roles --------------------------------------------------------------------------------------


def test_create_roles_is_idempotent_and_read_only_role_only_views() -> None:
    call_command("create_roles")
    call_command("create_roles")

    assert Group.objects.filter(name__in=ROLE_NAMES).count() == 3
    reader = Group.objects.get(name=READER)
    assert reader.permissions.exists()
    assert all(p.codename.startswith("view_") for p in reader.permissions.all())
    assert not reader.permissions.filter(codename="view_contact_data").exists()
    ops = set(Group.objects.get(name=OPS).permissions.values_list("codename", flat=True))
    assert {"change_participant", "change_payment", "view_assignment"} <= ops
    assert "change_assignment" not in ops
    pi = set(Group.objects.get(name=PI).permissions.values_list("codename", flat=True))
    assert {"change_study", "export_identifiable_data", "view_auditevent"} <= pi
    assert not pi & {"change_auditevent", "delete_auditevent", "change_assignment"}


def test_adding_and_removing_a_role_writes_audit_events() -> None:
    user = User.objects.create_user("newcomer", is_staff=True)

    user.groups.add(Group.objects.get(name=READER))
    user.groups.remove(Group.objects.get(name=READER))

    events = AuditEvent.objects.filter(object_type="User", object_id=str(user.pk), action__startswith="role.")
    events = events.order_by("at", "id")
    assert [(e.action, e.detail["groups"], e.actor_label) for e in events] == [
        ("role.added", [READER], "system"),
        ("role.removed", [READER], "system"),
    ]


def test_role_change_in_the_admin_is_audited_with_the_acting_user() -> None:
    pi = login("boss", PI, superuser=True)
    target = User.objects.create_user("alice", is_staff=True)
    ops = Group.objects.get(name=OPS)

    response = pi.post(
        f"/admin/auth/user/{target.pk}/change/",
        {
            "username": "alice",
            "is_active": "on",
            "is_staff": "on",
            "groups": [ops.pk],
            "date_joined_0": "2025-01-01",
            "date_joined_1": "10:00:00",
            "_save": "Save",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    event = AuditEvent.objects.get(action="role.added", object_id=str(target.pk))
    assert (event.actor_label, event.actor, event.detail["groups"]) == (
        "boss",
        User.objects.get(username="boss"),
        [OPS],
    )


# --- no privilege escalation in the user admin ----------------------------------------------------


def user_form(user: User, **fields: object) -> dict[str, object]:
    """What the change form posts for ``user``, with ``fields`` on top."""
    data: dict[str, object] = {
        "username": user.username,
        "is_active": "on",
        "date_joined_0": "2025-01-01",
        "date_joined_1": "10:00:00",
        "_save": "Save",
    }
    return {**data, **fields}


def refusals(actor: str) -> list[list[str]]:
    events = AuditEvent.objects.filter(action="user.change_refused", actor_label=actor).order_by("id")
    return [event.detail["problems"] for event in events]


@pytest.fixture
def pi_client() -> Client:
    return login("pi-only", PI)


def test_a_pi_cannot_make_themself_superuser_or_staff_or_give_raw_permissions(pi_client: Client) -> None:
    me = User.objects.get(username="pi-only")
    permission = Permission.objects.get(codename="delete_auditevent")

    attempts = [
        user_form(me, is_superuser="on", groups=[Group.objects.get(name=PI).pk]),
        user_form(me, user_permissions=[permission.pk], groups=[Group.objects.get(name=PI).pk]),
    ]
    answers = [pi_client.post(f"/admin/auth/user/{me.pk}/change/", data).status_code for data in attempts]

    assert answers == [403, 403]
    me.refresh_from_db()
    assert (me.is_superuser, list(me.user_permissions.all())) == (False, [])
    assert refusals("pi-only") == [["sets is_superuser"], ["sets user_permissions"]]


def test_a_pi_never_sees_the_superuser_staff_or_permission_fields(pi_client: Client) -> None:
    me = User.objects.get(username="pi-only")

    form = pi_client.get(f"/admin/auth/user/{me.pk}/change/").context["adminform"].form

    assert not {"is_superuser", "is_staff", "user_permissions"} & set(form.fields)
    assert sorted(form.fields["groups"].queryset.values_list("name", flat=True)) == sorted(ROLE_NAMES)


def test_a_pi_cannot_reset_a_superusers_password_or_edit_their_account(pi_client: Client) -> None:
    root = User.objects.create_superuser("root", password="old-secret-pass")

    password = pi_client.post(
        f"/admin/auth/user/{root.pk}/password/", {"password1": "Taken0ver!x", "password2": "Taken0ver!x"}
    )
    edit = pi_client.post(f"/admin/auth/user/{root.pk}/change/", user_form(root, is_active=""))

    assert (password.status_code, edit.status_code) == (403, 403)
    root.refresh_from_db()
    assert root.check_password("old-secret-pass")
    assert root.is_active
    assert refusals("pi-only") == [["target is a superuser"], ["target is a superuser"]]


def test_a_pi_cannot_put_someone_in_a_group_that_is_not_a_role(pi_client: Client) -> None:
    powerful = Group.objects.create(name="everything")
    target = User.objects.create_user("bob")

    response = pi_client.post(f"/admin/auth/user/{target.pk}/change/", user_form(target, groups=[powerful.pk]))

    assert response.status_code == 403
    assert not target.groups.exists()
    assert refusals("pi-only") == [["adds a group that is not a role"]]


def test_a_pi_gives_access_through_a_role_and_the_staff_flag_follows(pi_client: Client) -> None:
    newcomer = User.objects.create_user("carol")
    reader = Group.objects.get(name=READER)

    granted = pi_client.post(f"/admin/auth/user/{newcomer.pk}/change/", user_form(newcomer, groups=[reader.pk]))
    newcomer.refresh_from_db()
    assert granted.status_code == 302
    assert newcomer.is_staff
    revoked = pi_client.post(f"/admin/auth/user/{newcomer.pk}/change/", user_form(newcomer, groups=[]))
    newcomer.refresh_from_db()

    assert revoked.status_code == 302
    assert not newcomer.is_staff
    actions = AuditEvent.objects.filter(object_id=str(newcomer.pk), actor_label="pi-only").order_by("id")
    assert [(e.action, e.detail.get("field"), e.detail.get("to")) for e in actions] == [
        ("role.added", None, None),
        ("user.flag_changed", "is_staff", True),
        ("role.removed", None, None),
        ("user.flag_changed", "is_staff", False),
    ]


def test_a_pi_may_set_a_password_for_a_non_superuser_and_it_is_audited(pi_client: Client) -> None:
    target = User.objects.create_user("dave", password="first-pass-123")

    response = pi_client.post(
        f"/admin/auth/user/{target.pk}/password/", {"password1": "Second-pass-456", "password2": "Second-pass-456"}
    )

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="user.password_changed", object_id=str(target.pk))
    assert (event.actor_label, event.detail) == ("pi-only", {"username": "dave"})  # never the hash


def test_every_flag_and_permission_change_by_a_superuser_is_audited() -> None:
    root = login("root", superuser=True)
    target = User.objects.create_user("erin", is_staff=True)
    permission = Permission.objects.get(codename="view_auditevent")

    response = root.post(
        f"/admin/auth/user/{target.pk}/change/",
        user_form(target, is_staff="on", is_superuser="on", user_permissions=[permission.pk], is_active=""),
    )

    assert response.status_code == 302
    events = AuditEvent.objects.filter(object_id=str(target.pk), actor_label="root")
    changed = {(e.detail["field"], e.detail["to"]) for e in events.filter(action="user.flag_changed")}
    assert changed == {("is_superuser", True), ("is_active", False)}
    assert events.get(action="user.permissions_added").detail["permissions"] == ["participants.view_auditevent"]


@pytest.mark.django_db(transaction=True)
def test_the_demo_pi_holds_exactly_the_pi_role_and_admin_is_the_superuser() -> None:
    seed_small_demo()

    pi = User.objects.get(username="pi")
    assert (pi.is_superuser, pi.is_staff, list(pi.groups.values_list("name", flat=True))) == (False, True, [PI])
    demo_admin = User.objects.get(username="admin")
    assert (demo_admin.is_superuser, demo_admin.is_staff) == (True, True)
    signed_in = Client().post("/admin/login/?next=/admin/", {"username": "admin", "password": "prc-demo-pass"})
    assert signed_in["Location"] == "/admin/"


# --- dashboard access ---------------------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_the_login_page() -> None:
    response = Client().get(FUNNEL)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/research/funnel/")


def test_staff_without_a_role_is_forbidden() -> None:
    assert login("helpdesk").get(FUNNEL).status_code == 403


def test_role_without_staff_flag_is_forbidden() -> None:
    assert login("outsider", READER, staff=False).get(FUNNEL).status_code == 403


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_role_can_open_the_funnel(role: str) -> None:
    StudyFactory(status=Study.Status.RUNNING)
    assert login("someone", role).get(FUNNEL).status_code == 200


def test_superuser_without_a_role_can_open_the_funnel() -> None:
    StudyFactory(status=Study.Status.RUNNING)
    assert login("root", superuser=True).get(FUNNEL).status_code == 200


# --- participants and contact data --------------------------------------------------------------


def test_read_only_researcher_sees_participants_without_contact_data(participant: Participant) -> None:
    reader = login("reader", READER)

    listing = reader.get("/admin/participants/participant/")
    detail = reader.get(f"/admin/participants/participant/{participant.pk}/change/")

    assert listing.status_code == 200
    assert participant.public_id in listing.content.decode()
    assert "someone@example.org" not in listing.content.decode()
    assert detail.status_code == 200
    assert "someone@example.org" not in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()


def test_read_only_researcher_cannot_change_a_participant(participant: Participant) -> None:
    response = login("reader", READER).post(
        f"/admin/participants/participant/{participant.pk}/change/", {"email": "new@example.org"}
    )

    assert response.status_code == 403
    participant.refresh_from_db()
    assert participant.email == "someone@example.org"


def test_read_only_researcher_finds_participants_by_public_id_but_not_by_email(participant: Participant) -> None:
    ParticipantFactory(study=participant.study)  # someone the search must leave out
    reader = login("reader", READER)
    listing = "/admin/participants/participant/"

    by_email = reader.get(listing, {"q": "someone@example.org"})
    by_id = reader.get(listing, {"q": participant.public_id})

    assert by_email.status_code == 200
    assert list(by_email.context["cl"].result_list) == []
    assert by_id.status_code == 200
    assert list(by_id.context["cl"].result_list) == [participant]


def test_pi_finds_participants_by_email(participant: Participant) -> None:
    ParticipantFactory(study=participant.study, email="other@example.org")

    response = login("pi", PI).get("/admin/participants/participant/", {"q": "someone@example.org"})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [participant]


def _withdraw_action(client: Client, *participants: Participant) -> Any:
    return client.post(
        "/admin/participants/participant/",
        {"action": "withdraw", "_selected_action": [p.pk for p in participants]},
        follow=True,
    )


@pytest.mark.parametrize("role", [PI, OPS])
def test_withdraw_selected_participants_action_withdraws_and_audits_once(participant: Participant, role: str) -> None:
    other = ParticipantFactory(study=participant.study)
    untouched = ParticipantFactory(study=participant.study)
    client = login("staffer", role)

    first = _withdraw_action(client, participant, other)
    again = _withdraw_action(client, participant)

    assert first.status_code == again.status_code == 200
    assert "2 participant(s) withdrawn." in first.content.decode()
    assert "0 participant(s) withdrawn." in again.content.decode()
    withdrawn = Participant.objects.filter(withdrawn_at__isnull=False, stage="withdrawn")
    assert set(withdrawn) == {participant, other}
    assert Participant.objects.get(pk=untouched.pk).withdrawn_at is None
    events = AuditEvent.objects.filter(action="participant.withdrawn")
    assert sorted(events.values_list("object_id", flat=True)) == sorted([participant.public_id, other.public_id])
    assert {(e.actor_label, e.detail["reason_given"]) for e in events} == {("staffer", True)}
    assert set(withdrawn.values_list("withdrawal_reason", flat=True)) == {"withdrawn by a researcher"}  # keep terms


def test_read_only_researcher_cannot_withdraw_participants(participant: Participant) -> None:
    reader = login("reader", READER)

    listing = reader.get("/admin/participants/participant/").content.decode()
    response = _withdraw_action(reader, participant)

    assert "Withdraw selected participants" not in listing
    assert response.status_code == 200
    participant.refresh_from_db()
    assert participant.withdrawn_at is None
    assert not AuditEvent.objects.filter(action="participant.withdrawn").exists()


@pytest.mark.parametrize("role", [PI, OPS, None])
def test_nobody_can_delete_a_participant_in_the_admin(participant: Participant, role: str | None) -> None:
    client = login("someone", role, superuser=role is None)
    base = "/admin/participants/participant/"

    listing = client.get(base).content.decode()
    page = client.get(f"{base}{participant.pk}/delete/")
    post = client.post(f"{base}{participant.pk}/delete/", {"post": "yes"})
    bulk = client.post(base, {"action": "delete_selected", "_selected_action": [participant.pk], "post": "yes"})

    assert 'value="delete_selected"' not in listing
    assert (page.status_code, post.status_code) == (403, 403)
    assert bulk.status_code in (200, 302)  # the unknown action is ignored
    assert Participant.objects.filter(pk=participant.pk).exists()


def test_operations_can_change_a_participant_but_not_an_assignment(participant: Participant) -> None:
    arm = ArmFactory(study=participant.study)
    assignment = Assignment.objects.create(participant=participant, arm=arm, stratum="all", position=0)
    ops = login("ops", OPS)

    participant_page = ops.get(f"/admin/participants/participant/{participant.pk}/change/").content.decode()
    assignment_page = ops.get(f"/admin/participants/assignment/{assignment.pk}/change/")

    assert 'name="_save"' in participant_page
    assert "someone@example.org" in participant_page
    assert assignment_page.status_code == 200
    assert 'name="_save"' not in assignment_page.content.decode()


def test_email_never_appears_on_the_participant_list_even_for_superusers(participant: Participant) -> None:
    listing = login("root", superuser=True).get("/admin/participants/participant/").content.decode()

    assert "someone@example.org" not in listing


# --- studies ------------------------------------------------------------------------------------


def test_study_shows_only_the_seed_hash_once_recruitment_started() -> None:
    study = StudyFactory(status=Study.Status.RUNNING)

    page = login("root", superuser=True).get(f"/admin/participants/study/{study.pk}/change/").content.decode()

    assert study.randomization_seed_hash in page
    assert study.randomization_seed not in page
    assert 'name="randomization_seed"' not in page


def test_draft_study_lets_the_pi_set_the_seed_but_readers_never_see_it() -> None:
    study = StudyFactory(status=Study.Status.DRAFT)
    url = f"/admin/participants/study/{study.pk}/change/"

    assert 'name="randomization_seed"' in login("root", superuser=True).get(url).content.decode()
    assert study.randomization_seed not in login("reader", READER).get(url).content.decode()


# --- audit log ----------------------------------------------------------------------------------


def test_audit_log_is_listed_in_the_admin() -> None:
    record_audit(action="consent.given", obj="Participant", detail={"version": "1.0"})

    page = login("reader", READER).get("/admin/participants/auditevent/").content.decode()

    assert "consent.given" in page


def test_audit_events_cannot_be_added_changed_or_deleted_even_by_a_superuser() -> None:
    event = record_audit(action="assignment.created", obj="Participant", detail={"arm": "control"})
    root = login("root", superuser=True)
    base = "/admin/participants/auditevent/"

    assert root.get(f"{base}add/").status_code == 403
    assert 'name="_save"' not in root.get(f"{base}{event.pk}/change/").content.decode()
    assert root.post(f"{base}{event.pk}/change/", {"action": "edited"}).status_code == 403
    assert root.get(f"{base}{event.pk}/delete/").status_code == 403
    assert root.post(f"{base}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = root.post(base, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"})
    assert bulk.status_code in (200, 302)
    event.refresh_from_db()
    assert event.action == "assignment.created"


# --- demo seed ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_seed_demo_runs_twice_and_rehearses_the_six_paper_arms_once() -> None:
    first = seed_small_demo()
    participants = Participant.objects.count()
    again = seed_small_demo()

    study = Study.objects.get(slug="prc-demo")
    assert study.status == Study.Status.RUNNING
    assert list(study.arms.order_by("id").values_list("slug", "ranker_key", "allocation_weight", "is_control")) == [
        ("control", "control", 2, True),
        ("uprank_bridging", "uprank_bridging", 1, False),
        ("bridging_downrank_toxic", "bridging_downrank_toxic", 1, False),
        ("challenging_stereotypes", "challenging_stereotypes", 1, False),
        ("diverse_approval", "diverse_approval", 1, False),
        ("add_news", "add_news", 1, False),
    ]
    assert "rehearsed in" in first
    assert "exists already: its data is kept" in again
    assert study.simulated
    assert study.rank_hold_ms == 500
    assert PEOPLE == participants == Participant.objects.count()
    # Every arrival came through one of the three vendors' links, which carry the demo's names and costs.
    assert not Participant.objects.filter(source__isnull=True).exists()
    assert dict(study.sources.values_list("slug", "name")) == {
        "rep-data": "Rep Data",
        "cloud-research": "Cloud Research",
        "prodege": "Prodege",
    }
    assert (
        Assignment.objects.filter(arm__study=study).count()
        == study.participants.filter(consented_at__isnull=False).count()
    )
    assert User.objects.get(username="pi").groups.get().name == PI


@pytest.mark.django_db(transaction=True)
def test_seed_demo_logins_reach_the_funnel_with_the_demo_password() -> None:
    seed_small_demo()
    client = Client()

    signed_in = client.post("/admin/login/?next=/admin/", {"username": "reader", "password": "prc-demo-pass"})
    assert signed_in["Location"] == "/admin/"
    response = client.get(FUNNEL, {"study": "prc-demo"})

    assert response.status_code == 200
    assert sum(row.started for row in response.context["funnel"]) > 0


# Per participants admin page: the add page's status and whether the change page offers Save, for the demo's
# PI, read-only researcher and operations logins. Every role may list and open every page. A new admin page
# needs a row here: deciding who may do what on it is part of adding it.
ROLE_TABLE: dict[str, tuple[tuple[int, int, int], tuple[bool, bool, bool]]] = {
    #                      add: PI, reader, ops    Save: PI, reader, ops
    "study": ((200, 403, 403), (True, False, False)),
    "recruitmentsource": ((200, 403, 403), (True, False, False)),
    "pagecopy": ((200, 403, 403), (True, False, False)),
    "consentdocument": ((200, 403, 403), (True, False, False)),
    "participant": ((403, 403, 403), (True, False, True)),  # people arrive through a vendor link only
    "payment": ((200, 403, 200), (True, False, True)),
    "lotterydraw": ((200, 403, 403), (False, False, False)),  # adding one runs the draw; a draw never changes
    # written by code only
    "vendorevent": ((403, 403, 403), (False, False, False)),
    "consentrecord": ((403, 403, 403), (False, False, False)),
    "assignment": ((403, 403, 403), (False, False, False)),
    "stratumcounter": ((403, 403, 403), (False, False, False)),
    "extensioninstall": ((403, 403, 403), (False, False, False)),
    "heartbeat": ((403, 403, 403), (False, False, False)),
    "auditevent": ((403, 403, 403), (False, False, False)),
    "payoutbatch": ((403, 403, 403), (False, False, False)),
}
DEMO_ROLES = ("pi", "reader", "ops")


def test_the_role_table_covers_every_participants_admin_page() -> None:
    from django.contrib import admin

    registered = {model._meta.model_name for model in admin.site._registry if model._meta.app_label == "participants"}

    assert registered == set(ROLE_TABLE)


@pytest.mark.django_db(transaction=True)
def test_each_role_gets_the_expected_answer_on_every_participants_admin_page() -> None:
    seed_small_demo()  # once for the three roles: a rehearsal takes seconds
    Client().get("/join/nobody/", {"rid": "x"})  # a vendor event; the demo seeds none
    Heartbeat.objects.create(install=ExtensionInstall.objects.first(), platform="reddit")
    demo = Study.objects.get(slug="prc-demo")
    PayoutBatch.objects.create(study=demo, method=PayoutMethod.GIFT_CARD)
    run_lottery(
        study=demo, name="Demo draw", prize=Decimal("50.00"), winners_count=1, by=User.objects.get(username="pi")
    )
    for username in DEMO_ROLES:
        assert_role_table(username)


def assert_role_table(username: str) -> None:
    client = Client()
    client.force_login(User.objects.get(username=username))
    role = DEMO_ROLES.index(username)
    got, expected = {}, {}

    for model_name, (add, save) in ROLE_TABLE.items():
        base = f"/admin/participants/{model_name}/"
        model = apps.get_model("participants", model_name)
        first = model.objects.order_by("pk").first()
        assert first is not None, f"the demo has no {model_name}"
        change = client.get(f"{base}{first.pk}/change/")
        got[model_name] = (
            client.get(base).status_code,
            change.status_code,
            client.get(f"{base}add/").status_code,
            'name="_save"' in change.content.decode(),
        )
        expected[model_name] = (200, 200, add[role], save[role])

    assert got == expected, username
