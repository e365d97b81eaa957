"""Database-level guarantees: assignments never change, audit events are append-only."""

from django.db import migrations

ASSIGNMENT_SQL = """
CREATE FUNCTION participants_assignment_immutable() RETURNS trigger AS $$
BEGIN
    IF NEW.arm_id IS DISTINCT FROM OLD.arm_id
       OR NEW.participant_id IS DISTINCT FROM OLD.participant_id
       OR NEW.stratum IS DISTINCT FROM OLD.stratum
       OR NEW.position IS DISTINCT FROM OLD.position
       OR NEW.assigned_at IS DISTINCT FROM OLD.assigned_at THEN
        RAISE EXCEPTION 'assignments are immutable (participant %)', OLD.participant_id;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER participants_assignment_immutable BEFORE UPDATE ON participants_assignment
    FOR EACH ROW EXECUTE FUNCTION participants_assignment_immutable();
"""

AUDIT_SQL = """
CREATE FUNCTION participants_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit events cannot be deleted';
    END IF;
    -- Only the actor link may be cleared (when a user account is deleted).
    IF NEW.at IS DISTINCT FROM OLD.at OR NEW.actor_label IS DISTINCT FROM OLD.actor_label
       OR NEW.action IS DISTINCT FROM OLD.action OR NEW.object_type IS DISTINCT FROM OLD.object_type
       OR NEW.object_id IS DISTINCT FROM OLD.object_id OR NEW.detail IS DISTINCT FROM OLD.detail
       OR (NEW.actor_id IS NOT NULL AND NEW.actor_id IS DISTINCT FROM OLD.actor_id) THEN
        RAISE EXCEPTION 'audit events are append-only';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER participants_auditevent_append_only BEFORE UPDATE OR DELETE ON participants_auditevent
    FOR EACH ROW EXECUTE FUNCTION participants_auditevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("participants", "0001_initial")]

    operations = [
        migrations.RunSQL(
            ASSIGNMENT_SQL,
            reverse_sql="DROP TRIGGER participants_assignment_immutable ON participants_assignment;"
            " DROP FUNCTION participants_assignment_immutable();",
        ),
        migrations.RunSQL(
            AUDIT_SQL,
            reverse_sql="DROP TRIGGER participants_auditevent_append_only ON participants_auditevent;"
            " DROP FUNCTION participants_auditevent_append_only();",
        ),
    ]
