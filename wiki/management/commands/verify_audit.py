"""Recompute audit chains and re-hash the files and series they seal; exit 0 when intact,
1 naming the first bad entry or file, 2 when the files could not be checked (the storage
did not answer)."""

from django.core.management.base import BaseCommand, CommandError

from wiki.audit import describe, head_for, verify
from wiki.models import ChainHead, Project


class Command(BaseCommand):
    help = (
        "Verify the audit chain of a project (--project), or of every project and the global "
        "chain (users, tokens). Exits 1 and names the first entry that was altered, "
        "deleted, inserted or reordered, or the first attachment file or metric series whose "
        "content no longer matches its sealed hash; exits 2 if the storage did not answer."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", metavar="SLUG")

    def handle(self, *args, project=None, **options):
        if project is not None:
            found = Project.objects.filter(slug=project).first()
            if found is None:
                raise CommandError(f"There is no project '{project}'.")
            heads = [head_for(found)]
        else:
            heads = [
                head_for(None),
                *ChainHead.objects.exclude(key="global").select_related("project").order_by("key"),
            ]
        intact, unchecked = True, False
        for head in heads:
            verdict = verify(head)
            name = head.project.slug if head.project_id else "global"
            if verdict.ok:
                line = f"{name}: intact, {verdict.entries} entries, head {verdict.head}"
                if verdict.unchecked:
                    unchecked = True
                    line += f"; {verdict.unchecked}"
                self.stdout.write(line)
                continue
            intact = False
            self.stdout.write(
                f"{name}: NOT INTACT after {verdict.entries} good entries: "
                f"{describe(verdict.first_bad)}"
            )
        if not intact:
            raise SystemExit(1)
        if unchecked:
            raise SystemExit(2)
