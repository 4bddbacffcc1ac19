"""Build an audit report of one project into a file, here and now (no worker needed)."""

import shutil
from datetime import date

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from wiki import storage
from wiki.history import Actor, Source
from wiki.models import ExportJob, Project
from wiki.services.exports import build, request_export


def _day(value):
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"'{value}' is not a date: use YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = (
        "Write the audit report of a project (PDF, HTML, Markdown or the JSON bundle) to "
        "--output. The export is recorded in the project's history like one asked for in "
        "the browser, and kept with the others."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, metavar="SLUG")
        parser.add_argument("--format", required=True, choices=ExportJob.Format.values)
        parser.add_argument("--output", required=True, metavar="FILE")
        parser.add_argument("--since", type=_day, metavar="DATE", help="First day (UTC).")
        parser.add_argument("--until", type=_day, metavar="DATE", help="Last day, included.")
        parser.add_argument("--include-diffs", action="store_true")
        parser.add_argument("--user", help="Who asks (a user name); default: the command line.")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"There is no project '{options['project']}'.")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"There is no user '{options['user']}'.")
        try:
            job = request_export(
                project,
                actor=Actor(user=user, source=Source.CLI),
                format=options["format"],
                since=options["since"],
                until=options["until"],
                include_diffs=options["include_diffs"],
                enqueue=False,
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        try:
            built = build(job.pk)
        except storage.Unavailable as error:  # the job waits, queued, for a worker
            raise CommandError(f"{error}. Export #{job.pk} is queued for a worker.") from None
        if built is None:  # a worker took it meanwhile (a sweep that thought it lost)
            raise CommandError(f"Export #{job.pk} is being built by a worker; see the wiki.")
        job = built
        if job.status != ExportJob.Status.DONE:
            raise CommandError(job.last_error)
        try:
            with (
                storage.answering(),
                job.file.open("rb") as source,
                open(options["output"], "wb") as target,
            ):
                shutil.copyfileobj(source, target)
        except storage.Unavailable as error:
            raise CommandError(f"{error}. Export #{job.pk} is built; see the wiki.") from None
        except OSError as error:
            raise CommandError(f"Cannot write {options['output']}: {error.strerror}.") from None
        self.stdout.write(
            f"Wrote {options['output']}: {job.size} bytes, SHA-256 {job.sha256} (export #{job.pk})."
        )
