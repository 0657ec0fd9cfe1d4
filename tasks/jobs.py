"""Celery jobs of the tasks app. Thin: load by id, call one service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from environments.runtime.executor import SandboxError

from . import services


@shared_task(name="scaleenv.make_task", bind=True, acks_late=True, ignore_result=True,
             autoretry_for=(SandboxError, OperationalError), retry_backoff=5, retry_backoff_max=300,
             retry_jitter=True, max_retries=3)
def make_task(self, item_id: int) -> str:  # noqa: ANN001 - Celery binds the task
    """Instantiate, audit and store one task (claims its item first)."""
    return services.run_task_item(item_id)


@shared_task(name="scaleenv.rollout", bind=True, acks_late=True, ignore_result=True,
             autoretry_for=(SandboxError, OperationalError), retry_backoff=5, retry_backoff_max=300,
             retry_jitter=True, max_retries=3)
def rollout(self, item_id: int) -> str:  # noqa: ANN001 - Celery binds the task
    """Run one episode of one agent on one task (claims its item first)."""
    return services.run_rollout_item(item_id)
