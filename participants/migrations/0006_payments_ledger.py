"""The payments ledger: states owed -> approved -> paid/failed, kinds, payout batches, lottery draws.

Existing ``pending`` rows become ``owed``. A trigger makes a row's substance (who, how much, key)
immutable and ``paid``/``cancelled`` final, whatever code or admin touches the table.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


OWED_SQL = "UPDATE participants_payment SET status = 'owed' WHERE status = 'pending'"
PENDING_SQL = "UPDATE participants_payment SET status = 'pending' WHERE status IN ('owed', 'approved', 'failed')"

PAYMENT_SQL = """
CREATE FUNCTION participants_payment_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'payments cannot be deleted; cancel them (payment %)', OLD.id;
    END IF;
    IF NEW.participant_id IS DISTINCT FROM OLD.participant_id OR NEW.amount IS DISTINCT FROM OLD.amount
       OR NEW.currency IS DISTINCT FROM OLD.currency OR NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key
       OR NEW.kind IS DISTINCT FROM OLD.kind THEN
        RAISE EXCEPTION 'a payment''s participant, amount and key are fixed (payment %)', OLD.id;
    END IF;
    IF OLD.status IN ('paid', 'cancelled') AND NEW.status IS DISTINCT FROM OLD.status THEN
        RAISE EXCEPTION 'payment % is % and cannot change', OLD.id, OLD.status;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER participants_payment_guard BEFORE UPDATE OR DELETE ON participants_payment
    FOR EACH ROW EXECUTE FUNCTION participants_payment_guard();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("participants", "0005_drop_ramp_max_ms"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="payment",
            name="approved_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="payment",
            name="failed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="payment",
            name="kind",
            field=models.CharField(
                choices=[
                    ("survey", "Survey completed"),
                    ("lottery", "Lottery prize"),
                    ("adjustment", "Manual adjustment"),
                ],
                default="adjustment",
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="payment",
            name="method",
            field=models.CharField(
                choices=[("gift_card", "Gift card (provider CSV)"), ("prolific", "Prolific bonus")],
                default="gift_card",
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="payment",
            name="provider_reference",
            field=models.CharField(blank=True, help_text="The payout provider's id.", max_length=200),
        ),
        migrations.AddField(
            model_name="payment",
            name="status_note",
            field=models.CharField(blank=True, help_text="Why it was cancelled or failed.", max_length=300),
        ),
        migrations.AddField(
            model_name="recruitmentsource",
            name="payout_method",
            field=models.CharField(
                choices=[("gift_card", "Gift card (provider CSV)"), ("prolific", "Prolific bonus")],
                default="gift_card",
                help_text="How participants from this source are paid.",
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="study",
            name="payment_cap",
            field=models.DecimalField(
                blank=True,
                decimal_places=2,
                help_text="Most a participant can be credited in all (surveys and adjustments; lottery prizes apart).",
                max_digits=8,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="study",
            name="payout_days",
            field=models.PositiveIntegerField(
                default=30, help_text="Payments are sent within this many days of being earned (told to participants)."
            ),
        ),
        migrations.AlterField(
            model_name="payment",
            name="reason",
            field=models.CharField(help_text="Shown to the participant, e.g. 'Midline survey'.", max_length=200),
        ),
        migrations.AlterField(
            model_name="payment",
            name="status",
            field=models.CharField(
                choices=[
                    ("owed", "Owed"),
                    ("approved", "Approved"),
                    ("paid", "Paid"),
                    ("failed", "Failed"),
                    ("cancelled", "Cancelled"),
                ],
                default="owed",
                max_length=20,
            ),
        ),
        migrations.RunSQL(OWED_SQL, reverse_sql=PENDING_SQL),
        migrations.CreateModel(
            name="LotteryDraw",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(help_text="Shown to winners as the payment's reason.", max_length=200)),
                ("prize", models.DecimalField(decimal_places=2, max_digits=8)),
                ("winners_count", models.PositiveIntegerField(default=1)),
                ("seed", models.CharField(help_text="Recorded so anyone can redo the draw.", max_length=128)),
                (
                    "enrolled_before",
                    models.DateTimeField(
                        blank=True,
                        help_text="Only participants who installed the extension before this time.",
                        null=True,
                    ),
                ),
                ("eligible", models.JSONField(default=list, help_text="Public ids eligible at draw time, sorted.")),
                ("winners", models.JSONField(default=list)),
                ("drawn_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "drawn_by",
                    models.ForeignKey(
                        null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL
                    ),
                ),
                (
                    "study",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="lottery_draws",
                        to="participants.study",
                    ),
                ),
            ],
            options={
                "ordering": ["-drawn_at"],
            },
        ),
        migrations.CreateModel(
            name="PayoutBatch",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "method",
                    models.CharField(
                        choices=[("gift_card", "Gift card (provider CSV)"), ("prolific", "Prolific bonus")],
                        max_length=20,
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "created_by",
                    models.ForeignKey(
                        null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL
                    ),
                ),
                (
                    "study",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="payout_batches",
                        to="participants.study",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "payout batches",
                "ordering": ["-created_at"],
            },
        ),
        migrations.AddField(
            model_name="payment",
            name="batch",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="payments",
                to="participants.payoutbatch",
            ),
        ),
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(fields=["status", "method"], name="participant_status_f5df5f_idx"),
        ),
        migrations.AddConstraint(
            model_name="payment",
            constraint=models.CheckConstraint(condition=models.Q(("amount__gt", 0)), name="payment_amount_positive"),
        ),
        migrations.AddConstraint(
            model_name="payment",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "paid"), _negated=True), ("paid_at__isnull", False), _connector="OR"
                ),
                name="payment_paid_has_date",
            ),
        ),
        migrations.AddConstraint(
            model_name="lotterydraw",
            constraint=models.CheckConstraint(condition=models.Q(("prize__gt", 0)), name="lottery_prize_positive"),
        ),
        migrations.RunSQL(
            PAYMENT_SQL,
            reverse_sql="DROP TRIGGER participants_payment_guard ON participants_payment;"
            " DROP FUNCTION participants_payment_guard();",
        ),
    ]
