"""The Celery app. Jobs live in each app's ``jobs.py`` (DESIGN.md §5)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scaleenv_site.settings")

app = Celery("scaleenv")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(related_name="jobs")
