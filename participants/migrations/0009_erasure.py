"""Erasure that a retry cannot undo: the vendor id's keyed hash, opaque stratum codes, the reason off the audit.

Existing rows are converted: every participant gets the hash of its vendor id, and every stratum
label in assignments, counters and assignment audit events becomes its code (the immutability
triggers are paused for this one migration, in its transaction). Assignments made before this
migration were drawn from sequences named by label, so ``audit_randomization`` reports them.
"""

from typing import Any

from django.db import migrations, models

from participants.models import hash_vendor_pid
from participants.randomization import stratum_code


def hash_vendor_ids(apps: Any, schema_editor: Any) -> None:
    Participant = apps.get_model("participants", "Participant")
    for participant in Participant.objects.exclude(vendor_pid="").only("pk", "vendor_pid").iterator():
        Participant.objects.filter(pk=participant.pk).update(vendor_pid_hash=hash_vendor_pid(participant.vendor_pid))


def code_strata(apps: Any, schema_editor: Any) -> None:
    Study = apps.get_model("participants", "Study")
    Assignment = apps.get_model("participants", "Assignment")
    StratumCounter = apps.get_model("participants", "StratumCounter")
    AuditEvent = apps.get_model("participants", "AuditEvent")
    seeds = dict(Study.objects.values_list("pk", "randomization_seed"))
    schema_editor.execute("ALTER TABLE participants_assignment DISABLE TRIGGER participants_assignment_immutable")
    schema_editor.execute("ALTER TABLE participants_auditevent DISABLE TRIGGER participants_auditevent_append_only")
    for counter in StratumCounter.objects.exclude(stratum__startswith="s_"):
        counter.stratum = stratum_code(seeds[counter.study_id], counter.stratum)
        counter.save(update_fields=["stratum"])
    by_participant = {}
    for assignment in Assignment.objects.exclude(stratum__startswith="s_").select_related("participant"):
        code = stratum_code(seeds[assignment.participant.study_id], assignment.stratum)
        Assignment.objects.filter(pk=assignment.pk).update(stratum=code)
        by_participant[assignment.participant.public_id] = code
    for event in AuditEvent.objects.filter(action="assignment.created", object_id__in=list(by_participant)):
        if "stratum" in event.detail:
            event.detail["stratum"] = by_participant[event.object_id]
            event.save(update_fields=["detail"])
    for event in AuditEvent.objects.filter(action="participant.withdrawn", detail__has_key="reason"):
        reason = event.detail.pop("reason")
        event.detail["reason_given"] = bool(str(reason).strip())
        event.save(update_fields=["detail"])
    schema_editor.execute("ALTER TABLE participants_auditevent ENABLE TRIGGER participants_auditevent_append_only")
    schema_editor.execute("ALTER TABLE participants_assignment ENABLE TRIGGER participants_assignment_immutable")


class Migration(migrations.Migration):

    dependencies = [
        ('participants', '0008_screener_promises'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='participant',
            name='participant_unique_vendor_pid',
        ),
        migrations.AddField(
            model_name='participant',
            name='erased_at',
            field=models.DateTimeField(blank=True, help_text='When data collected so far was erased (withdrawal under delete terms).', null=True),
        ),
        migrations.AddField(
            model_name='participant',
            name='vendor_pid_hash',
            field=models.CharField(blank=True, editable=False, help_text="Keyed hash of the vendor's id: recognises a re-entry.", max_length=64),
        ),
        migrations.AddField(
            model_name='participant',
            name='withdrawal_reason',
            field=models.TextField(blank=True, help_text="In the participant's words; erased with their data."),
        ),
        migrations.AlterField(
            model_name='assignment',
            name='stratum',
            field=models.CharField(help_text='Opaque code of the stratum (never the screener answers behind it).', max_length=200),
        ),
        migrations.AlterField(
            model_name='participant',
            name='vendor_pid',
            field=models.CharField(blank=True, help_text="The vendor's id, verbatim; erased on withdrawal under delete terms.", max_length=255),
        ),
        migrations.AlterField(
            model_name='stratumcounter',
            name='stratum',
            field=models.CharField(help_text='Opaque code of the stratum.', max_length=200),
        ),
        migrations.RunPython(hash_vendor_ids, migrations.RunPython.noop),
        migrations.RunPython(code_strata, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='participant',
            constraint=models.UniqueConstraint(condition=models.Q(('vendor_pid_hash', ''), _negated=True), fields=('source', 'vendor_pid_hash'), name='participant_unique_vendor_pid_hash'),
        ),
    ]
