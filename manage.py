#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scaleenv_site.settings")
    from django.conf import settings
    from django.core.management import execute_from_command_line

    # The local state folder (SQLite file, broker, static files): made by the entry point, never by
    # importing the settings.
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
