"""Celery jobs of the tasks app. Thin: each runs one batch item through the shared lifecycle."""

from __future__ import annotations

from celery import shared_task

from environments import batches


@shared_task(name="scaleenv.make_task", **batches.JOB_OPTIONS)
def make_task(self, item_id: int) -> str:  # noqa: ANN001 - Celery binds the task
    """Instantiate, audit and store one task (claims its item first)."""
    return batches.run_item(item_id)


@shared_task(name="scaleenv.rollout", **batches.JOB_OPTIONS)
def rollout(self, item_id: int) -> str:  # noqa: ANN001 - Celery binds the task
    """Run one episode of one agent on one task (claims its item first)."""
    return batches.run_item(item_id)
