"""python manage.py create_user NAME --role agent|viewer|researcher|curator|admin [--password P] [--token]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from environments import services
from environments.roles import ROLES


class Command(BaseCommand):
    help = "Create (or update) a user with a role; prints a generated password and, with --token, an API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[r.lower() for r in ROLES])
        parser.add_argument("--password", help="default: a random one (printed); agents get none unless given")
        parser.add_argument("--email", default="")
        parser.add_argument("--token", action="store_true", help="also make an API token and print it")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            user, password, token = services.create_account(opts["username"], opts["role"], password=opts["password"],
                                                            email=opts["email"], token=opts["token"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"user {user.username} ({opts['role']})")
        if password:
            self.stdout.write(f"password {password}")
        if token:
            self.stdout.write(f"token {token}")
