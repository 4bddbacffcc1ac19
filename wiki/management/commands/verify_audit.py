"""Recompute audit chains; exit 0 when intact, 1 naming the first bad entry."""

from django.core.management.base import BaseCommand, CommandError

from wiki.audit import head_for, verify
from wiki.models import ChainHead, Project


class Command(BaseCommand):
    help = (
        "Verify the audit chain of a project (--project), or of every project and the global "
        "chain (users, tokens). Exits 1 and names the first entry that was altered, "
        "deleted, inserted or reordered."
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
        intact = True
        for head in heads:
            verdict = verify(head)
            name = head.project.slug if head.project_id else "global"
            if verdict.ok:
                self.stdout.write(f"{name}: intact, {verdict.entries} entries, head {verdict.head}")
                continue
            intact = False
            bad = verdict.first_bad
            where = f" ({bad['table']} history row {bad['history_id']})" if bad["table"] else ""
            self.stdout.write(
                f"{name}: NOT INTACT after {verdict.entries} good entries: entry {bad['seq']} "
                f"{bad['kind']}{where}: {bad['detail']}"
            )
        if not intact:
            raise SystemExit(1)
