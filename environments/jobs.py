"""Celery jobs of the environments app. Thin: load by id, call one service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from environments.runtime.executor import SandboxError

from . import services


@shared_task(name="scaleenv.synthesize_domain", bind=True, acks_late=True, ignore_result=True,
             autoretry_for=(SandboxError, OperationalError), retry_backoff=5, retry_backoff_max=300,
             retry_jitter=True, max_retries=3)
def synthesize_domain(self, item_id: int) -> str:  # noqa: ANN001 - Celery binds the task
    """Synthesize the domain of one run item (claims it first, so duplicates do nothing)."""
    return services.run_synthesis_item(item_id, worker=services.worker_identity())
