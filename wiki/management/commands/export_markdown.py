"""Write a project's documentation as Markdown files with YAML front matter (wiki.doctree)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from wiki import doctree
from wiki.models import Project


class Command(BaseCommand):
    help = (
        "Write a project's pages as <slug>.md files (YAML front matter: page, title, fields; "
        "then the Markdown body) and their attachments under attachments/<slug>/, into "
        "a new or empty directory: the tree GET /api/v1/projects/{slug}/markdown.tar.gz sends."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", metavar="SLUG", required=True)
        parser.add_argument("--output", metavar="DIR", required=True, type=Path)

    def handle(self, *args, project, output, **options):
        found = Project.objects.filter(slug=project).first()
        if found is None:
            raise CommandError(f"There is no project '{project}'.")
        if output.exists() and (not output.is_dir() or any(output.iterdir())):
            # Files of an earlier export would stay beside the new ones, as if they were pages.
            raise CommandError(f"{output} is not an empty directory: give a new or empty one.")
        try:
            written = doctree.write(found, output)
        except doctree.MissingFile as error:
            raise CommandError(f"{error} Nothing more was written; run verify_audit.") from None
        self.stdout.write(f"Wrote {len(written)} files of '{project}' into {output}.")
