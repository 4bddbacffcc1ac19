"""What the records say, for the pages they concern: read live, so it never goes stale.

The model page shows every model version with its training runs and deployments, and the
latest run's hyperparameters and metrics; the deployment page the version currently live
in each environment; the maintenance page the update log with post-deployment checks.
Each summary is plain data (dicts, lists, datetimes): the browser and the API show the same.
"""

from django.db.models import Count, F, OuterRef, Subquery, Window
from django.db.models.functions import Coalesce, RowNumber

from wiki.models import Deployment, ModelVersion, TrainingRun

VERSIONS_SHOWN = 20
RUNS_PER_VERSION = 10
KEY_METRICS = 6
UPDATES_SHOWN = 50


def _key_metrics(run, names):
    return {name: run.metrics[name] for name in names if name in run.metrics}


def _latest_per_version(model, versions, columns, limit):
    """{version id: its ``limit`` latest records}, each limit applied by the database."""
    rank = Window(
        RowNumber(),
        partition_by=F("model_version_id"),
        order_by=[F("started_at").desc(), F("id").desc()],
    )
    latest = (
        model.objects.filter(model_version__in=versions)
        .only("model_version_id", *columns)
        .annotate(rank=rank)
        .filter(rank__lte=limit)
        .order_by("model_version_id", "rank")
    )
    grouped = {}
    for record in latest:
        grouped.setdefault(record.model_version_id, []).append(record)
    return grouped


def model_summary(project):
    """Model versions (newest first) with their runs and deployments, and the latest run."""
    latest = TrainingRun.objects.filter(project=project).select_related("model_version").first()
    # The metrics the latest run reports are the ones worth comparing across versions; a
    # run still running (or failed) reports none, so the latest that reported some.
    reporting = latest
    if latest and not latest.metrics:
        reporting = TrainingRun.objects.filter(project=project).exclude(metrics={}).first()
    names = sorted(reporting.metrics)[:KEY_METRICS] if reporting else []
    all_versions = ModelVersion.objects.filter(project=project)
    versions = list(all_versions[:VERSIONS_SHOWN])
    runs = _latest_per_version(
        TrainingRun, versions, ["status", "started_at", "metrics"], RUNS_PER_VERSION
    )
    deployments = _latest_per_version(
        Deployment, versions, ["environment", "status", "started_at"], RUNS_PER_VERSION
    )
    return {
        "versions_total": all_versions.count()
        if len(versions) == VERSIONS_SHOWN
        else len(versions),
        "key_metrics": names,
        "latest_run": latest
        and {
            "id": latest.id,
            "model_version": latest.model_version.version,
            "status": latest.status,
            "started_at": latest.started_at,
            "hyperparameters": latest.hyperparameters,
            "metrics": latest.metrics,
        },
        "model_versions": [
            {
                "version": version.version,
                "created_at": version.created_at,
                "training_runs": [
                    {
                        "id": run.id,
                        "status": run.status,
                        "started_at": run.started_at,
                        "metrics": _key_metrics(run, names),
                    }
                    for run in runs.get(version.id, [])
                ],
                "deployments": [
                    {
                        "id": d.id,
                        "environment": d.environment,
                        "status": d.status,
                        "started_at": d.started_at,
                    }
                    for d in deployments.get(version.id, [])
                ],
            }
            for version in versions
        ],
    }


def deployment_summary(project):
    """The version live in each environment: its latest succeeded deployment."""
    succeeded = Deployment.objects.filter(project=project, status=Deployment.Status.SUCCEEDED)
    latest = succeeded.filter(environment=OuterRef("environment")).order_by("-started_at", "-id")
    current = (
        succeeded.filter(id=Subquery(latest.values("id")[:1]))
        .select_related("model_version")
        .order_by("environment")
    )
    return {
        "environments": [
            {
                "environment": d.environment,
                "model_version": d.model_version.version,
                "deployment_id": d.id,
                "target": d.target,
                "since": d.finished_at or d.started_at,
            }
            for d in current
        ]
    }


def maintenance_summary(project):
    """The update log: deployments newest first, with why, who, when, outcome and checks."""
    updates = list(
        Deployment.objects.filter(project=project).select_related("model_version")[:UPDATES_SHOWN]
    )
    recorded_by = {
        id: (username, token)
        for id, username, token in Deployment.history.filter(
            id__in=[d.id for d in updates], history_type="+"
        ).values_list("id", "history_username", "history_token_name")
    }
    return {
        "updates": [
            {
                "deployment_id": d.id,
                "model_version": d.model_version.version,
                "environment": d.environment,
                "status": d.status,
                "reason": d.reason,
                "recorded_by": recorded_by.get(d.id, ("", ""))[0],
                "recorded_with_token": recorded_by.get(d.id, ("", ""))[1],
                "started_at": d.started_at,
                "finished_at": d.finished_at,
                "checks": d.checks,
            }
            for d in updates
        ]
    }


SUMMARIES = {
    "model": model_summary,
    "deployment": deployment_summary,
    "maintenance": maintenance_summary,
}


LINEAGE_VERSIONS = 20
LINEAGE_RUNS = 3
LINEAGE_DEPLOYMENTS = 5


def count_per_version(model):
    """How many ``model`` records a version has: a subquery (two joined counts would
    multiply each other's rows)."""
    counted = model.objects.filter(model_version=OuterRef("pk")).order_by()
    return Coalesce(
        Subquery(counted.values("model_version").annotate(n=Count("id")).values("n")[:1]), 0
    )


def lineage(project):
    """The latest model versions, each with where it came from and where it went: dataset
    versions → training runs → model version → deployments (the latest few of each, with
    counts), in a fixed number of queries."""
    versions = list(
        ModelVersion.objects.filter(project=project)
        .annotate(
            runs_total=count_per_version(TrainingRun),
            deployments_total=count_per_version(Deployment),
        )
        .order_by("-created_at", "-id")[:LINEAGE_VERSIONS]
    )
    runs = _latest_per_version(
        TrainingRun, versions, ["status", "started_at", "dataset_name", "dataset_version"],
        LINEAGE_RUNS,
    )  # fmt: skip
    deployments = _latest_per_version(
        Deployment, versions, ["environment", "status", "started_at"], LINEAGE_DEPLOYMENTS
    )
    datasets = {}
    used = (
        TrainingRun.objects.filter(model_version__in=versions)
        .exclude(dataset_name="")
        .values_list("model_version_id", "dataset_name", "dataset_version")
        .distinct()
        .order_by("model_version_id", "dataset_name", "dataset_version")
    )
    for version_id, name, version in used:
        datasets.setdefault(version_id, []).append(f"{name}@{version}" if version else name)
    return [
        {
            "version": v.version,
            "created_at": v.created_at,
            "datasets": datasets.get(v.id, []),
            "training_runs": runs.get(v.id, []),
            "runs_total": v.runs_total,
            "deployments": deployments.get(v.id, []),
            "deployments_total": v.deployments_total,
        }
        for v in versions
    ]


def records_summary(page):
    """The records summary for ``page``'s category, or None if records don't concern it."""
    summary = SUMMARIES.get(page.category)
    return summary(page.project) if summary else None
