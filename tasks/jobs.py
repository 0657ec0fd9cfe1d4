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


@shared_task(name="scaleenv.bulk_review", **batches.JOB_OPTIONS)
def bulk_review(self, item_id: int) -> str:  # noqa: ANN001 - Celery binds the task
    """Decide one chunk of a bulk review (each task gets its own event)."""
    return batches.run_item(item_id)


@shared_task(name="scaleenv.export", **batches.JOB_OPTIONS)
def export(self, item_id: int) -> str:  # noqa: ANN001 - Celery binds the task
    """Write one export's file (claims its item first; the export row records progress and errors)."""
    return batches.run_item(item_id)


# The same jobs for batches whose work waits on a model: their names route them to the ``llm``
# queue (CELERY_TASK_ROUTES), so long model calls never hold the workers that execute sandboxed code.
@shared_task(name="scaleenv.llm_make_task", **batches.JOB_OPTIONS)
def llm_make_task(self, item_id: int) -> str:  # noqa: ANN001 - Celery binds the task
    """make_task for a batch with LLM stages."""
    return batches.run_item(item_id)


@shared_task(name="scaleenv.llm_rollout", **batches.JOB_OPTIONS)
def llm_rollout(self, item_id: int) -> str:  # noqa: ANN001 - Celery binds the task
    """rollout for a batch with an LLM agent or user."""
    return batches.run_item(item_id)
