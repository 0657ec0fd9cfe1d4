"""Celery jobs of the environments app. Thin: each runs one batch item through the shared lifecycle."""

from __future__ import annotations

from celery import shared_task

from . import batches


@shared_task(name="scaleenv.synthesize_domain", **batches.JOB_OPTIONS)
def synthesize_domain(self, item_id: int) -> str:  # noqa: ANN001 - Celery binds the task
    """Synthesize the domain of one batch item (claims it first, so duplicates do nothing)."""
    return batches.run_item(item_id)


@shared_task(name="scaleenv.llm_synthesize_domain", **batches.JOB_OPTIONS)
def llm_synthesize_domain(self, item_id: int) -> str:  # noqa: ANN001 - Celery binds the task
    """The same job for batches of the ``llm`` backend: its name routes it to the ``llm`` queue, so
    long model calls never hold the workers that execute sandboxed code."""
    return batches.run_item(item_id)
