"""Helpers for running jobs on every core without Celery (the commands' in-process fallback).

Kept free of model imports at module level: spawned processes unpickle these functions before
Django is set up.
"""

from __future__ import annotations


def init(database_name: str | None = None) -> None:
    """Set Django up in a helper; ``database_name`` makes it use the parent's database (under
    tests that is the test database, which only the parent process knows about)."""
    import django
    from django.conf import settings

    django.setup()
    if database_name:
        settings.DATABASES["default"]["NAME"] = database_name
        from django.db import connections

        connections["default"].settings_dict["NAME"] = database_name


def run_item(item_id: int) -> str:
    from environments import batches

    return batches.run_item(item_id, worker=f"cli:{batches.worker_identity()}")
