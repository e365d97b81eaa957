"""The audit log is append-only in the database itself: the trigger refuses what the admin already hides."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction

from participants.audit import record_audit
from participants.models import AuditEvent

pytestmark = pytest.mark.django_db


def _refused(sql: str, params: list[object]) -> str:
    with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(refused.value)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("action", "consent.given"),
        ("actor_label", "someone else"),
        ("object_type", "Study"),
        ("object_id", "p_other"),
        ("detail", '{"arm": "uprank_bridging"}'),
        ("at", "2020-01-01T00:00:00Z"),
    ],
)
def test_an_audit_event_cannot_be_updated_even_in_sql(column: str, value: str) -> None:
    event = record_audit(action="assignment.created", obj="Participant", detail={"arm": "control"})

    sql = f"UPDATE participants_auditevent SET {column} = %s WHERE id = %s"  # noqa: S608  (column: the list above)
    message = _refused(sql, [value, event.pk])

    assert "append-only" in message
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.action, stored.detail, stored.actor_label) == ("assignment.created", {"arm": "control"}, "system")


def test_an_audit_event_cannot_be_deleted_even_in_sql() -> None:
    event = record_audit(action="participant.withdrawn", obj="Participant")

    message = _refused("DELETE FROM participants_auditevent WHERE id = %s", [event.pk])

    assert "cannot be deleted" in message
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_orm_cannot_update_or_delete_audit_events_either() -> None:
    record_audit(action="consent.given", obj="Participant")

    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.update(action="edited")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.all().delete()

    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["consent.given"]


def test_deleting_a_user_keeps_their_audit_events_under_their_name() -> None:
    user = User.objects.create_user("departing", password="x")
    event = record_audit(action="role.added", obj=user, actor=user)

    user.delete()  # the one change the trigger allows: the actor link is cleared

    event.refresh_from_db()
    assert (event.actor_id, event.actor_label, event.action) == (None, "departing", "role.added")


def test_the_actor_link_cannot_be_pointed_at_someone_else() -> None:
    first = User.objects.create_user("first", password="x")
    second = User.objects.create_user("second", password="x")
    event = record_audit(action="role.added", obj=first, actor=first)

    message = _refused("UPDATE participants_auditevent SET actor_id = %s WHERE id = %s", [second.pk, event.pk])

    assert "append-only" in message
