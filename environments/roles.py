"""Roles: the groups a user belongs to decide what they may see and do (created by a data migration,
tasks/migrations/0007_roles.py).

| role | may |
|---|---|
| Agent | play its own HTTP sessions; read domains (with their policy) and tool schemas; nothing else |
| Viewer | read domains, tools, tests, batches, tasks (with their answer keys), rollout runs, reviews, exports |
| Researcher | a Viewer who may also export datasets and start batches |
| Curator | a Viewer who may also review tasks, start batches and see every account's HTTP sessions |
| Admin | everything, including managing users |
"""

from __future__ import annotations

from typing import Any

AGENT, VIEWER, RESEARCHER, CURATOR, ADMIN = "Agent", "Viewer", "Researcher", "Curator", "Admin"
ROLES = (AGENT, VIEWER, RESEARCHER, CURATOR, ADMIN)

VIEW_ALL = ["environments.view_domain", "environments.view_table", "environments.view_tool",
            "environments.view_tooltest", "environments.view_dependency", "environments.view_batch",
            "environments.view_batchitem", "tasks.view_task", "tasks.view_run", "tasks.view_runstep"]
VIEW_REVIEWS = ["tasks.view_reviewqueue", "tasks.view_rejectionreason", "tasks.view_review", "tasks.view_reviewevent",
                "tasks.view_export"]
PERMISSIONS: dict[str, list[str]] = {
    AGENT: ["tasks.play_session", "environments.view_domain", "environments.view_tool"],
    VIEWER: VIEW_ALL + VIEW_REVIEWS,
    RESEARCHER: VIEW_ALL + VIEW_REVIEWS + ["tasks.export_dataset", "tasks.add_export", "environments.add_batch"],
    CURATOR: VIEW_ALL + VIEW_REVIEWS + ["tasks.review_task", "tasks.view_any_session", "tasks.add_review",
                                        "tasks.change_review", "environments.add_batch"],
    ADMIN: ["*"],  # every permission of environments, tasks and auth
}


def role_of(user: Any) -> str | None:
    """The highest role a user holds (superusers are Admins)."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser:
        return ADMIN
    names = set(user.groups.values_list("name", flat=True))
    for role in reversed(ROLES):
        if role in names:
            return role
    return None


def sees_answer_keys(user: Any) -> bool:
    """Whether a user may read tasks' gold chains and states (every human role; never an agent)."""
    return user.has_perm("tasks.view_task")


def ensure_roles() -> None:
    """Create the role groups with their permissions where they are missing (the data migration
    does it once; this repairs a database whose groups were deleted or flushed)."""
    from django.contrib.auth.models import Group, Permission

    for role, codes in PERMISSIONS.items():
        group, created = Group.objects.get_or_create(name=role)
        if not created and group.permissions.exists():
            continue
        if codes == ["*"]:
            group.permissions.set(Permission.objects.filter(
                content_type__app_label__in=["environments", "tasks", "auth"]))
            continue
        group.permissions.set([Permission.objects.get(content_type__app_label=code.split(".")[0],
                                                      codename=code.split(".")[1]) for code in codes])
