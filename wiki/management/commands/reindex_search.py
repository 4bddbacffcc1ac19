"""Rebuild the search index from what is stored."""

from django.core.management.base import BaseCommand
from django.db import transaction

from wiki.search import reindex


class Command(BaseCommand):
    help = (
        "Write every search entry anew from the projects, pages and training runs (run it "
        "once after an upgrade that changes what search indexes; writes keep it up to date)."
    )

    def handle(self, *args, **options):
        with transaction.atomic():  # searches see the old index until the new one is whole
            written = reindex()
        self.stdout.write(f"Indexed {written} projects, pages and training runs.")
