"""Load the paper's instrument library, so that a study set up only through the pages has its surveys.

Runs ``surveys.library.write_instruments`` with this migration's historical models; idempotent (a database
that already ran ``manage.py load_instruments`` is brought up to the library). Reversing leaves the rows:
waves may point at them, and the schema does not need them gone.
"""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

from surveys.library import write_instruments


def load_library(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    write_instruments(apps.get_model("surveys", "Instrument"), apps.get_model("surveys", "Question"))


class Migration(migrations.Migration):
    dependencies = [
        ("surveys", "0003_effect_runs"),
    ]

    operations = [
        migrations.RunPython(load_library, migrations.RunPython.noop, elidable=False),
    ]
