"""Load a documentation template (a YAML file; the shipped packs are in wiki/packs/)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from wiki.doc_templates import TemplateError
from wiki.history import Actor, Source
from wiki.services.templates import load_template


class Command(BaseCommand):
    help = (
        "Load a documentation template from a YAML file. Loading the same slug and version "
        "again with the same content does nothing; with other content it is refused (a "
        "loaded version never changes). Exits 1 naming every problem of a bad file."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the template's YAML file")
        parser.add_argument("--reason", default="", help="the change reason kept in history")

    def handle(self, *args, file, reason, **options):
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {file}: {error}") from None
        try:
            template, created = load_template(
                text, actor=Actor(user=None, source=Source.CLI), reason=reason
            )
        except TemplateError as error:
            self.stderr.write(f"{file}: not loaded:")
            for problem in error.errors:
                self.stderr.write(f"  {problem}")
            raise SystemExit(1) from None
        if created:
            self.stdout.write(f"Loaded template {template} ({template.label}).")
        else:
            self.stdout.write(f"Template {template} is already loaded with this content.")
