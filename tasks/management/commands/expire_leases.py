"""python manage.py expire_leases"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tasks import reviews


class Command(BaseCommand):
    help = ("Put tasks whose review lease ran out back to pending, with an event each (the queue already "
            "treats them as free; run it from cron to keep the record tidy).")

    def handle(self, *args: Any, **opts: Any) -> None:
        self.stdout.write(f"released {reviews.expire_leases()} expired review leases")
