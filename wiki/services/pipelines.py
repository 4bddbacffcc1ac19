"""Posting a project's pipeline (the DAG its workflow page draws)."""

from django.db import transaction

from wiki import audit, pipelines
from wiki.history import check_reason, recording
from wiki.models import Pipeline, Project


def post_pipeline(project, dag, *, actor, change_reason=""):
    """Store ``dag`` (normalized by wiki.pipelines.normalize) as ``project``'s pipeline;
    returns (pipeline, whether a revision was saved).

    The same DAG as the current one saves nothing, so a retried or repeated post is
    harmless; a different one is the next revision, and makes the workflow page stale
    (wiki.health) until it is edited.
    """
    change_reason = check_reason(change_reason)
    digest = pipelines.digest(dag)
    with transaction.atomic():
        # The chain's head first, as every write takes it, then the pipeline's row: two
        # posts queue here, and the first post of a project's pipeline cannot race another.
        audit.lock_chain(project)
        current = Pipeline.objects.select_for_update().filter(project=project).first()
        if current is not None and current.digest == digest:
            return current, False
        if current is None:
            current = Pipeline(project=project, revision=1)
        else:
            current.revision += 1
        current.name, current.source, current.dag = dag["name"], dag["source"], dag
        current.digest = digest
        current.full_clean(exclude=["project"], validate_constraints=False)
        reason = change_reason or f"Posted pipeline {dag['name']} (revision {current.revision})"
        with recording(actor, reason):
            current.save()
        Project.records_changed(project.pk)
    return current, True


def previous_dag(pipeline):
    """The DAG of the revision before ``pipeline``'s current one (None for the first)."""
    row = pipeline.history.filter(revision=pipeline.revision - 1).order_by("-history_id").first()
    return row.dag if row is not None else None


def recent_revisions(pipeline, count=10):
    """The latest ``count`` revisions of ``pipeline``, newest first, each with its step
    changes from the revision before (wiki.pipelines.step_changes): [(history row,
    changes)]. One history row per revision: a post that changes nothing saves none."""
    rows = list(pipeline.history.order_by("-revision")[: count + 1])
    found = []
    for i, row in enumerate(rows[:count]):
        before = rows[i + 1].dag if i + 1 < len(rows) else None
        if before is None and row.revision > 1:
            break  # its previous revision was not read: no honest diff to show
        found.append((row, pipelines.step_changes(before, row.dag)))
    return found
