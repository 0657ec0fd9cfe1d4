"""SynthesisRun → Batch and SynthesisItem → BatchItem, keeping every row: a batch is background
work of any registered kind; an item's result is any model's primary key."""

from django.db import migrations, models


def copy_domain_to_result(apps, schema_editor):
    """Items used to point at a domain; now they keep the key of what they made, by kind."""
    BatchItem = apps.get_model("environments", "BatchItem")
    Task = apps.get_model("tasks", "Task")
    Run = apps.get_model("tasks", "Run")
    BatchItem.objects.filter(batch__kind="synthesis", domain__isnull=False).update(result_id=models.F("domain_id"))
    for item in BatchItem.objects.filter(batch__kind="tasks", status="done").iterator():
        task = Task.objects.filter(domain_id=item.payload.get("domain_id"), seed=item.seed).values_list("pk", flat=True)
        BatchItem.objects.filter(pk=item.pk).update(result_id=task.first())
    for item in BatchItem.objects.filter(batch__kind="rollout", status="done").iterator():
        run = Run.objects.filter(batch_id=item.batch_id, task_id=item.payload.get("task_id"),
                                 agent=item.payload.get("agent"), trial=item.payload.get("trial", 0))
        BatchItem.objects.filter(pk=item.pk).update(result_id=run.values_list("pk", flat=True).first())


def copy_result_to_domain(apps, schema_editor):
    BatchItem = apps.get_model("environments", "BatchItem")
    Domain = apps.get_model("environments", "Domain")
    for item in BatchItem.objects.filter(batch__kind="synthesis", result_id__isnull=False):
        if Domain.objects.filter(pk=item.result_id).exists():
            BatchItem.objects.filter(pk=item.pk).update(domain_id=item.result_id)


class Migration(migrations.Migration):

    dependencies = [
        ("environments", "0003_alter_synthesisrun_kind"),
        # The tasks app's foreign keys to SynthesisRun must exist before the rename updates them.
        ("tasks", "0002_run_owner_run_session"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="synthesisitem", name="unique_item_per_run"),
        migrations.RenameModel("SynthesisRun", "Batch"),
        migrations.RenameModel("SynthesisItem", "BatchItem"),
        migrations.RenameField(model_name="batchitem", old_name="run", new_name="batch"),
        migrations.RenameField(model_name="domain", old_name="synthesis_run", new_name="batch"),
        migrations.RenameField(model_name="llmcall", old_name="run", new_name="batch"),
        migrations.AlterModelOptions(name="batch", options={"ordering": ["-created_at"], "verbose_name_plural": "batches"}),
        migrations.AlterModelOptions(name="batchitem", options={"ordering": ["batch", "seed"]}),
        migrations.AlterField(model_name="batch", name="kind", field=models.CharField(db_index=True, max_length=32)),
        migrations.AddField(
            model_name="batchitem", name="result_id",
            field=models.BigIntegerField(blank=True, null=True,
                                         help_text="primary key of what the item produced (a domain, a task, a run)"),
        ),
        migrations.RunPython(copy_domain_to_result, copy_result_to_domain),
        migrations.RemoveField(model_name="batchitem", name="domain"),
        migrations.AddConstraint(
            model_name="batchitem",
            constraint=models.UniqueConstraint(fields=("batch", "item_key"), name="unique_item_per_batch"),
        ),
    ]
