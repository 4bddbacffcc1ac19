"""Import runs and registered model versions from an MLflow tracking server."""

from datetime import UTC, date, datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from wiki.history import Actor, Source
from wiki.mlflow import MlflowError
from wiki.models import Project
from wiki.services import mlflow


def _since(text):
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None
    if isinstance(moment, date) and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


class Command(BaseCommand):
    help = (
        "Import an MLflow tracking server's runs (of the experiments named) as training "
        "runs and its registered model versions as model versions. Run it again to bring "
        "what changed: runs seen before and unchanged are not written again, changed "
        "ones get a new revision, runs deleted in MLflow are reported."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tracking-uri", required=True, metavar="URI")
        parser.add_argument("--project", required=True, metavar="SLUG")
        parser.add_argument(
            "--experiment", action="append", default=[], metavar="NAME|ID",
            help="an experiment to import (repeatable)",
        )  # fmt: skip
        parser.add_argument(
            "--registered-model", action="append", default=[], metavar="NAME",
            help="a registered model whose versions to import (repeatable)",
        )  # fmt: skip
        parser.add_argument(
            "--since", type=_since, metavar="DATE", help="only the runs started since"
        )
        parser.add_argument(
            "--no-images", action="store_true", help="do not attach the runs' image artifacts"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="say what would be imported; write nothing"
        )

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"There is no project '{options['project']}'.")
        if not options["experiment"] and not options["registered_model"]:
            raise CommandError("Name at least one --experiment or --registered-model.")
        shown = {"at": -1}

        def progress(done, total):
            # A line per tenth (and the last), so a long import shows it is moving.
            tenth = done * 10 // total if total else 10
            if tenth > shown["at"]:
                shown["at"] = tenth
                self.stderr.write(f"{done:,} of {total:,} runs")

        try:
            report = mlflow.import_runs(
                project,
                actor=Actor(user=None, source=Source.CLI),
                tracking_uri=options["tracking_uri"],
                experiments=options["experiment"],
                registered_models=options["registered_model"],
                since=options["since"],
                dry_run=options["dry_run"],
                images=not options["no_images"],
                progress=progress,
            )
        except (MlflowError, ValidationError) as error:
            message = "; ".join(error.messages) if isinstance(error, ValidationError) else error
            raise CommandError(
                f"{message} (what was imported before stays: run it again)"
            ) from None
        prefix = "Would import (dry run): " if options["dry_run"] else ""
        for number, line in enumerate(report.lines()):
            self.stdout.write(f"{prefix}{line}" if number == 0 else line)
