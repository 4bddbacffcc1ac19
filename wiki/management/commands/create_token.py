"""Issue an API token and print its key (once, and nothing else on stdout)."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from wiki.history import Actor, Source
from wiki.models import ApiToken
from wiki.services.tokens import create_token


class Command(BaseCommand):
    help = (
        "Issue an API token acting as --user, for the given --project(s) (all projects "
        "without one) and --scope(s). Prints the key, which cannot be shown again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="User name the token acts as.")
        parser.add_argument(
            "--project", action="append", default=[], dest="projects", metavar="SLUG",
            help="A project the token may use (repeatable). Without it: every project.",
        )  # fmt: skip
        parser.add_argument(
            "--scope", action="append", required=True, dest="scopes",
            choices=ApiToken.Scope.values, help="A scope (repeatable).",
        )  # fmt: skip
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument("--name", default="", help="What the token is for.")

    def handle(self, *args, user, projects, scopes, expires_in_days, name, **options):
        account = get_user_model().objects.filter(username=user).first()
        if account is None:
            raise CommandError(f"There is no user '{user}'.")
        try:
            _, key = create_token(
                actor=Actor(user=account, source=Source.CLI),
                user=account,
                name=name or f"token for {', '.join(projects) or 'all projects'}",
                scopes=scopes,
                projects=projects,
                all_projects=not projects,
                expires_in_days=expires_in_days,
            )
        except ValidationError as error:
            raise CommandError(
                "; ".join(
                    f"{field}: {' '.join(messages)}"
                    for field, messages in error.message_dict.items()
                )
            ) from None
        if not projects:
            # stderr: stdout carries the key alone, for scripts.
            self.stderr.write("Note: without --project the token is valid for every project.")
        self.stdout.write(key)
