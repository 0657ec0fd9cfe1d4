"""The groups Admin, Curator, Researcher, Viewer and Agent with their permissions (environments/roles.py)."""

from django.db import migrations

PERMISSIONS = {
    "Agent": ["tasks.play_session", "environments.view_domain", "environments.view_tool"],
    "Viewer": ["environments.view_domain", "environments.view_table", "environments.view_tool",
               "environments.view_tooltest", "environments.view_dependency", "environments.view_batch",
               "environments.view_batchitem", "tasks.view_task", "tasks.view_run", "tasks.view_runstep"],
}
PERMISSIONS["Researcher"] = PERMISSIONS["Viewer"] + ["tasks.export_dataset"]
PERMISSIONS["Curator"] = PERMISSIONS["Viewer"] + ["tasks.review_task", "tasks.view_any_session"]


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for config in apps.get_app_configs():  # permissions are made after migrations run: make them now
        config.models_module = True
        create_permissions(config, verbosity=0)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    def permission(code: str):
        app, codename = code.split(".")
        return Permission.objects.get(content_type__app_label=app, codename=codename)

    for name, codes in PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*[permission(c) for c in codes])
    admin, _ = Group.objects.get_or_create(name="Admin")
    admin.permissions.add(*Permission.objects.filter(content_type__app_label__in=["environments", "tasks", "auth"]))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["Admin", "Curator", "Researcher", "Viewer", "Agent"]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("tasks", "0006_run_steps"),
        ("environments", "0005_domain_policy"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
