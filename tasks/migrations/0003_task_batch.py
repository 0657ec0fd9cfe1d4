import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("tasks", "0002_run_owner_run_session"),
        ("environments", "0004_batches"),
    ]

    operations = [
        migrations.RenameField(model_name="task", old_name="synthesis_run", new_name="batch"),
        migrations.AlterField(
            model_name="run", name="batch",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                    related_name="rollouts", to="environments.batch"),
        ),
        migrations.AlterField(
            model_name="task", name="batch",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                    related_name="tasks", to="environments.batch"),
        ),
    ]
