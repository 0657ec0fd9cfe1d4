"""python manage.py expire_sessions"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from tasks import sessions


class Command(BaseCommand):
    help = ("Finish every HTTP session idle longer than SCALEENV_SESSION_IDLE_SECONDS, recorded as 'expired' and "
            "scored on the state it reached (run it from cron; sessions also expire when touched).")

    def handle(self, *args: Any, **opts: Any) -> None:
        expired = sessions.expire_idle_sessions()
        self.stdout.write(f"expired {expired} sessions idle over {settings.SCALEENV_SESSION_IDLE_SECONDS} s")
