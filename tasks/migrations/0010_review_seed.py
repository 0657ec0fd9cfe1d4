"""The default review queue, the rejection taxonomy (source × type; editable in the admin), and the
roles' permissions on the review and export models."""

from django.db import migrations

# (code, label, source, description, needs a comment); the first nine get the keys 1–9.
REASONS = [
    ("unsolvable", "Unsolvable task", "task", "No sequence of the domain's tools reaches the expected state.", False),
    ("missing-value", "Instruction lacks a needed value", "task",
     "The user scenario never gives a value the gold calls need (an id, a date, an amount).", False),
    ("leaked-answer", "Leaked answer", "task",
     "The user gives away what the agent should find out (ids, the answer of a question).", False),
    ("wrong-state-check", "Wrong state check", "reward",
     "The reward checks a column it should not, or misses one it should (column policies).", False),
    ("inaction-passes", "Inaction passes (no-op gold)", "reward",
     "Doing nothing, or less than asked, would earn the reward.", False),
    ("hallucinated", "Hallucinated tool or fact", "task",
     "The scenario names a tool, record or fact the environment does not have.", False),
    ("broken-dependency", "Broken dependency", "tool",
     "A tool's output does not feed the next step as the graph says, or a tool misbehaves.", False),
    ("unrealistic-data", "Unrealistic data", "environment",
     "Names, amounts, dates or states no real system would hold.", False),
    ("other", "Other", "task", "Anything else: say what in the comment.", True),
    ("duplicate", "Duplicate", "task", "The same task as another one (same goal on the same records).", False),
    ("unsafe-content", "Unsafe content", "task", "Content that must not be used for training.", False),
    ("user-off-script", "User simulator off script", "trajectory",
     "The simulated user says what the scenario does not support, or stops too early.", False),
]

NEW_VIEW = ["tasks.view_reviewqueue", "tasks.view_rejectionreason", "tasks.view_review", "tasks.view_reviewevent",
            "tasks.view_export"]
ROLE_PERMISSIONS = {
    "Viewer": NEW_VIEW,
    "Researcher": NEW_VIEW + ["tasks.add_export", "environments.add_batch"],
    "Curator": NEW_VIEW + ["tasks.add_review", "tasks.change_review", "environments.add_batch"],
}


def seed(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    ReviewQueue = apps.get_model("tasks", "ReviewQueue")
    RejectionReason = apps.get_model("tasks", "RejectionReason")
    ReviewQueue.objects.get_or_create(slug="default", defaults={
        "name": "All tasks", "is_default": True, "reviews_required": 1,
        "guidelines": "Approve a task when an agent could learn from it: the user scenario asks for one clear goal "
                      "in the user's own words, the policy allows or forbids it as the task says, the expected "
                      "state is what a careful agent would reach, and nothing the agent must find out is given "
                      "away. Reject with every reason that applies."})
    for position, (code, label, source, description, needs_comment) in enumerate(REASONS, start=1):
        RejectionReason.objects.get_or_create(code=code, defaults={
            "label": label, "source": source, "description": description, "needs_comment": needs_comment,
            "position": position})
    for config in apps.get_app_configs():  # permissions of the new models are made after migrations
        config.models_module = True
        create_permissions(config, verbosity=0)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codes in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*[Permission.objects.get(content_type__app_label=c.split(".")[0],
                                                       codename=c.split(".")[1]) for c in codes])
    admin, _ = Group.objects.get_or_create(name="Admin")
    admin.permissions.add(*Permission.objects.filter(content_type__app_label="tasks"))


def unseed(apps, schema_editor):
    apps.get_model("tasks", "ReviewQueue").objects.filter(slug="default").delete()
    apps.get_model("tasks", "RejectionReason").objects.filter(code__in=[r[0] for r in REASONS]).delete()


class Migration(migrations.Migration):

    dependencies = [("tasks", "0009_review_and_exports"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(seed, unseed)]
