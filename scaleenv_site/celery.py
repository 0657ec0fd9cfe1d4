"""The Celery app. Jobs live in each app's ``jobs.py`` (docs/jobs.md)."""

import os
from pathlib import Path

from celery import Celery
from celery.signals import before_task_publish, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scaleenv_site.settings")

app = Celery("scaleenv")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(related_name="jobs")


def ensure_broker_folders(**_kwargs: object) -> None:
    """The embedded filesystem broker needs its folders; make them when the broker is first used
    (by a sender or a worker), not when settings are imported."""
    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


before_task_publish.connect(ensure_broker_folders, weak=False)
worker_init.connect(ensure_broker_folders, weak=False)
