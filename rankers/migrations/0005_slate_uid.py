import uuid

from django.db import migrations, models


class Migration(migrations.Migration):
    """Each slate carries an id made when it is served, unique with its partition key, so that a slate
    written twice (a retry after a time-out, two drains of the Redis fallback) is stored once."""

    dependencies = [
        ('rankers', '0004_slate_pass_length_fixed_capped'),
    ]

    operations = [
        migrations.AddField(
            model_name='slate',
            name='uid',
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunSQL(
            'UPDATE "rankers_slate" SET "uid" = gen_random_uuid() WHERE "uid" IS NULL',
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name='slate',
            name='uid',
            field=models.UUIDField(default=uuid.uuid4, editable=False, help_text='Made when served; a repeated insert of the slate is a no-op.'),
        ),
        migrations.AddConstraint(
            model_name='slate',
            constraint=models.UniqueConstraint(fields=('uid', 'served_at'), name='slate_unique_uid'),
        ),
    ]
