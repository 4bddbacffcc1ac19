"""Create a demo user, a few colleagues with roles, and two demo projects; running it
again changes nothing."""

import hashlib
import io
import math
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from PIL import Image, ImageDraw

from wiki.access import AUDITOR_GROUP
from wiki.history import Actor, Source
from wiki.models import Project
from wiki.services.attachments import attach
from wiki.services.members import set_member
from wiki.services.pages import approve_page, create_free_page, edit_page, submit_for_review
from wiki.services.projects import create_project
from wiki.services.records import record_deployment, record_training_run
from wiki.services.validations import (
    close_finding,
    conclude_validation,
    file_finding,
    open_validation,
    propose_remediation,
)

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "mlwiki-demo"  # noqa: S105  (refused unless DEBUG is on)
# Colleagues to try the roles with (same password): name -> (role per project, auditor).
DEMO_PEOPLE = {
    "maria": ({"churn-prediction": "maintainer"}, False),
    "erik": ({"churn-prediction": "editor", "fraud-detection": "editor"}, False),
    "vera": ({"fraud-detection": "viewer"}, False),
    "audrey": ({}, True),
    "victor": ({"churn-prediction": "validator"}, False),
}


def rows(pairs):
    return [{"key": key, "value": value} for key, value in pairs.items()]


CHURN_PAGES = {
    "overview": {
        "purpose": (
            "Predicts, every night, the probability that each active subscriber cancels in "
            "the next 30 days. The retention team calls the 2,000 highest-risk customers "
            "each week and offers a plan change or a discount.\n\n"
            "The score informs **who is contacted first**; it never changes a price or a "
            "contract on its own."
        ),
        "owners": rows({"Product owner": "Ana Souza (Retention)", "ML lead": "João Lima"}),
        "stakeholders": rows(
            {
                "Retention team": "Uses the weekly call list",
                "Finance": "Budget for retention offers",
                "Data protection office": "Reviews use of personal data",
            }
        ),
        "status": "production",
        "risk_level": "medium",
        "out_of_scope": (
            "Credit decisions, collections, and any automated change to a customer's plan."
        ),
    },
    "data": {
        "sources": (
            "- `billing.invoices` (PostgreSQL, daily snapshot): payments and plan changes.\n"
            "- `support.tickets` (Zendesk export): contact reasons and counts.\n"
            "- `usage.daily_sessions` (event warehouse): logins and feature use.\n\n"
            "Collected from January 2021; owned by the Data Platform team."
        ),
        "preprocessing": (
            "Customers with less than 60 days of tenure are excluded. Duplicated invoices "
            "are dropped by invoice id. Missing usage days are filled with zero sessions."
        ),
        "feature_engineering": (
            "Rolling 7/30/90-day aggregates of usage, number of support tickets by reason, "
            "days since last plan change, and payment delays. Categorical plan names are "
            "one-hot encoded."
        ),
        "split": (
            "Split **by time** to mimic production: train on months 1–18, validate on "
            "months 19–21, test on months 22–24.\n\n"
            "| set | customers | churn rate |\n|---|---:|---:|\n"
            "| train | 412,000 | 4.1% |\n| validation | 68,500 | 4.4% |\n"
            "| test | 70,200 | 4.6% |"
        ),
        "dataset_versions": rows(
            {"customers": "2024-06-30", "usage_events": "v12", "tickets": "2024-06-30"}
        ),
        "limitations_bias": (
            "Customers who never log in have sparse usage features; their scores are less "
            "reliable. Business customers are under-represented (3% of rows)."
        ),
        "personal_data_licensing": (
            "Uses customer ids and behavioural data under legitimate interest, as assessed "
            "by the DPO (ref. DPIA-2023-014). No third-party data."
        ),
    },
    "model": {
        "architecture": (
            "Gradient-boosted decision trees (LightGBM), chosen over logistic regression for "
            "a +0.04 AUC gain at similar explainability with SHAP values."
        ),
        "hyperparameters": rows(
            {
                "num_leaves": "63",
                "learning_rate": "0.05",
                "n_estimators": "800",
                "min_child_samples": "40",
            }
        ),
        "training_algorithm": (
            "Gradient boosting with binary log-loss, early stopping after 50 rounds without "
            "improvement on the validation set. Trained on 8 CPU cores in about 12 minutes."
        ),
        "evaluation_metrics": (
            "- **AUC** on the test set (ranking quality; acceptance threshold 0.80).\n"
            "- **Precision at top 2,000** (what the retention team actually calls).\n"
            "- **Calibration** (Brier score), since Finance uses the probabilities."
        ),
        "previous_versions": (
            "- 1.0.0: logistic regression baseline (AUC 0.76).\n"
            "- 1.1.0: first LightGBM model (AUC 0.81).\n"
            "- 1.2.0: adds support-ticket features (AUC 0.84); see [[maintenance]]."
        ),
        "limitations": "Scores drift during promotions; see [[runbook-retraining]].",
    },
    "deployment": {
        "environment": "Kubernetes cluster ml-prod (eu-west-1), nightly batch job",
        "configuration": rows(
            {
                "schedule": "02:00 UTC daily",
                "replicas": "1 (batch)",
                "memory": "8 GiB",
                "timeout": "45 min",
            }
        ),
        "monitoring": (
            "Dashboards for job duration, row counts, score distribution (PSI against the "
            "training set) and weekly precision at top 2,000. An alert fires when PSI > 0.2."
        ),
        "scaling": (
            "The batch job is sharded by customer id; add shards when the run exceeds 30 "
            "minutes. Capacity tested up to 3 million customers."
        ),
        "architecture": (
            "Feature pipeline (dbt) → feature table → scoring job (this model) → "
            "`retention.churn_scores` table → CRM call list."
        ),
        "rollback": (
            "Re-point the scoring job to the previous model version in the registry and "
            "re-run it; takes about 20 minutes. The ML lead decides."
        ),
    },
    "workflow": {
        "workflow": (
            "1. New data lands nightly.\n2. Monthly retraining pipeline trains a candidate.\n"
            "3. Validation gate: AUC ≥ 0.80 and no segment drops by more than 0.03.\n"
            "4. Staging deployment and shadow scoring for one week.\n"
            "5. Production deployment after sign-off by the product owner."
        ),
        "scheduled_jobs": rows(
            {
                "nightly_scoring": "every day 02:00 UTC",
                "retraining": "first Monday of the month 03:00 UTC",
                "drift_report": "every Monday 06:00 UTC",
            }
        ),
        "dependencies": (
            "Airflow DAG `churn_training`, dbt project `features`, model registry (MLflow), "
            "and the CRM import job owned by the Retention team."
        ),
    },
    "maintenance": {
        "update_log": (
            "- 2023-11-27 — 1.0.0: first release, logistic regression baseline.\n"
            "- 2024-03-04 — 1.1.0: switched to LightGBM.\n"
            "- 2024-07-08 — 1.2.0: added support-ticket features."
        ),
        "update_reasons": (
            "1.1.0 raised ranking quality; 1.2.0 answered drift after the new support tool "
            "changed how contact reasons are recorded."
        ),
        "post_update_tests": (
            "Each release passed the validation gate and one week of shadow scoring "
            "(precision at top 2,000 within 2% of the offline estimate). Reports are "
            "attached to each deployment record."
        ),
    },
}

CHURN_BODIES = {
    "overview": (
        "## Contacts\n\nQuestions go to `#churn-model` on chat. Start with the [[model]] "
        "and [[deployment]] pages; day-to-day operations are in [[runbook-retraining]].\n\n"
        "## How it fits together\n\n![Scoring architecture](attachment:architecture.svg)"
    ),
    "model": (
        "Hyperparameters were tuned with 50 Bayesian optimisation trials on validation AUC.\n\n"
        "![ROC curve of 1.2.0 on the hold-out month](attachment:roc-curve.png)"
    ),
}

ARCHITECTURE_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="640" height="160"
 viewBox="0 0 640 160" font-family="sans-serif" font-size="14">
<title>Churn scoring: warehouse, nightly features, model, call list</title>
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8"
 markerHeight="8" orient="auto"><path d="M0 0L10 5L0 10z"/></marker></defs>
<g fill="#eef3fb" stroke="#1f4e8c">
<rect x="10" y="50" width="130" height="60" rx="6"/>
<rect x="180" y="50" width="130" height="60" rx="6"/>
<rect x="350" y="50" width="130" height="60" rx="6"/>
<rect x="520" y="50" width="110" height="60" rx="6"/>
</g>
<g stroke="#1f4e8c" marker-end="url(#arrow)">
<path d="M140 80H178"/><path d="M310 80H348"/><path d="M480 80H518"/>
</g>
<g text-anchor="middle">
<text x="75" y="85">Warehouse</text><text x="245" y="85">Nightly features</text>
<text x="415" y="85">LightGBM model</text><text x="575" y="85">Call list</text>
</g>
</svg>
"""

RUNBOOK = """## When to retrain outside the schedule

Retrain when the weekly drift report shows PSI > 0.2 for two weeks in a row.

```bash
airflow dags trigger churn_training --conf '{"reason": "drift"}'
```

Then follow the validation gate in [[workflow]].
"""

FRAUD_PAGES = {
    "overview": {
        "purpose": "Flags card transactions for manual review before they are settled.",
        "owners": rows({"Product owner": "Carla Dias (Payments risk)"}),
        "status": "development",
        "risk_level": "high",
    },
    "data": {
        "sources": "Card authorisations from the payments switch, since 2023-01.",
    },
}


def roc_curve_png():
    """A ROC curve drawn with Pillow (the demo has no plotting library)."""
    size, margin = 360, 40
    image = Image.new("RGB", (size + 2 * margin, size + 2 * margin), "white")
    draw = ImageDraw.Draw(image)
    x0, y0 = margin, margin + size  # the origin, bottom left

    def at(fpr, tpr):
        return (x0 + fpr * size, y0 - tpr * size)

    draw.rectangle([at(0, 1), at(1, 0)], outline="black")
    for step in range(0, 20, 2):  # the diagonal of a random model, dashed
        draw.line([at(step / 20, step / 20), at((step + 1) / 20, (step + 1) / 20)], fill="grey")
    draw.line([at(i / 100, (i / 100) ** 0.28) for i in range(101)], fill="#1f4e8c", width=3)
    draw.text(at(0.55, 0.12), "AUC 0.836", fill="black")
    draw.text((x0, y0 + 10), "false positive rate", fill="black")
    draw.text((4, margin - 24), "true positive rate", fill="black")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def learning_curves(final_auc, started, rounds=300):
    """Boosting rounds of a demo run: training loss falling, validation AUC rising to
    ``final_auc`` (with the wobble of a real run), one point every two seconds."""
    loss, auc = [], []
    for step in range(1, rounds + 1):
        at = (started + timedelta(seconds=2 * step)).isoformat()
        progress = 1 - math.exp(-step / 60)
        wobble = 0.004 * math.sin(step / 7)
        loss.append({"step": step, "value": round(0.69 - 0.32 * progress + wobble, 5),
                     "timestamp": at})  # fmt: skip
        auc.append({"step": step, "value": round(0.5 + (final_auc - 0.5) * progress + wobble, 5),
                    "timestamp": at})  # fmt: skip
    return {"train_loss": loss, "valid_auc": auc}


class Command(BaseCommand):
    help = "Create the demo user and demo projects (churn prediction, fraud detection)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            help=f"Password for a new demo user (default '{DEMO_PASSWORD}', only with DEBUG on).",
        )

    def handle(self, *args, password=None, **options):
        if password is None:
            if not settings.DEBUG:
                raise CommandError(
                    "DEBUG is off: give the demo user a real password with --password."
                )
            password = DEMO_PASSWORD
        user, created = self._demo_user(password)
        actor = Actor(user=user, source=Source.CLI)
        people = self._people(password)
        made = []
        if not Project.objects.filter(slug="churn-prediction").exists():
            self._churn(actor, people)
            made.append("churn-prediction")
        if not Project.objects.filter(slug="fraud-detection").exists():
            self._fraud(actor, people)
            made.append("fraud-detection")
        if made:
            self.stdout.write(f"Created demo projects: {', '.join(made)}.")
        else:
            self.stdout.write("Demo projects already present; nothing changed.")
        if created:
            self.stdout.write(f"Log in as '{user.username}' with password '{password}'.")
            self.stdout.write(
                "Colleagues with the same password: maria (maintains churn-prediction), "
                "erik (edits both), vera (views fraud-detection), audrey (auditor), "
                "victor (validates churn-prediction)."
            )
        else:
            self.stdout.write(
                f"Demo user '{user.username}' already exists; its password was left as is."
            )

    def _demo_user(self, password):
        User = get_user_model()
        user = User.objects.filter(username=DEMO_USERNAME).first()
        if user:
            return user, False
        user = User.objects.create_user(
            DEMO_USERNAME, password=password, is_staff=True, is_superuser=True
        )
        return user, True

    def _people(self, password):
        User = get_user_model()
        auditors = Group.objects.get_or_create(name=AUDITOR_GROUP)[0]
        people = {}
        for name, (_, auditor) in DEMO_PEOPLE.items():
            person = User.objects.filter(username=name).first()
            if person is None:
                person = User.objects.create_user(name, password=password)
                if auditor:
                    person.groups.add(auditors)
            people[name] = person
        return people

    def _share(self, project, actor, people):
        for name, (roles, _) in DEMO_PEOPLE.items():
            if project.slug in roles:
                set_member(project, actor=actor, username=name, role=roles[project.slug])

    def _fill(self, project, actor, pages, bodies):
        for page in project.pages.categories():
            if page.category in pages or page.category in bodies:
                edit_page(
                    page,
                    actor=actor,
                    base_revision=page.revision,
                    change_reason="Demo content",
                    fields=pages.get(page.category, {}),
                    body=bodies.get(page.category, ""),
                )

    @transaction.atomic
    def _churn(self, actor, people):
        project = create_project(
            actor=actor,
            slug="churn-prediction",
            name="Churn prediction",
            owner_team="Retention analytics",
            summary="Nightly churn-risk scores that drive the retention team's call list.",
            tags=["churn", "tabular", "batch"],
        )
        self._share(project, actor, people)
        self._churn_records(project, actor)
        self._figures(project, actor)
        # The pages are written after the records they describe, so they are current ...
        self._fill(project, actor, CHURN_PAGES, CHURN_BODIES)
        # Four eyes: maria approves the overview the demo user wrote; the model page waits.
        overview = project.pages.get(category="overview")
        maria = Actor(user=people["maria"], source=Source.CLI)
        approve_page(overview, actor=maria, revision=overview.revision, comment="Reviewed.")
        submit_for_review(project.pages.get(category="model"), actor=actor)
        create_free_page(
            project,
            actor=actor,
            slug="runbook-retraining",
            title="Runbook: retraining",
            body=RUNBOOK,
        )
        self._validation(project, people)
        # ... but for one candidate run that arrived since: the model page is stale.
        record_training_run(
            project, actor=actor, model_version="1.3.0-rc1", status="succeeded",
            started_at=datetime.combine(date(2024, 9, 2), time(3, 0), tzinfo=UTC),
            dataset_name="customers", dataset_version="2024-06-30",
            hyperparameters={"leaves": 127, "learning_rate": 0.03},
            metrics={"auc": 0.841, "precision_at_2000": 0.32}, tags={"trigger": "experiment"},
            notes="Candidate with deeper trees; not released yet.",
        )  # fmt: skip

    def _validation(self, project, people):
        """victor's independent validation: one finding remedied and closed, one with a
        remediation proposed, concluded "approved with conditions"."""
        victor = Actor(user=people["victor"], source=Source.CLI)
        erik = Actor(user=people["erik"], source=Source.CLI)
        validation = open_validation(
            project, actor=victor, title="Initial validation of 1.2.0",
            scope="Conceptual soundness, data and outcomes analysis of the model in production.",
        )  # fmt: skip
        closed = file_finding(
            validation, actor=victor, title="Rollback owner not named", severity="low",
            description="The deployment page does not say who may decide a rollback.",
            page="deployment", field="rollback", owner="maria",
        )  # fmt: skip
        closed = propose_remediation(
            closed, actor=Actor(user=people["maria"], source=Source.CLI),
            remediation="The on-call ML engineer decides; added to the rollback procedure.",
            base_revision=closed.revision,
        )  # fmt: skip
        close_finding(closed, actor=victor, base_revision=closed.revision)
        split = file_finding(
            validation, actor=victor, title="Test split is random, not by time",
            severity="medium", page="data", field="split", owner="erik",
            description="A random split lets the model see the future: evaluate on the last "
            "month instead, as production will.",
            due_date=date.today() + timedelta(days=45),
        )  # fmt: skip
        propose_remediation(
            split, actor=erik, base_revision=split.revision,
            remediation="Re-evaluate 1.3.0 on a time-based split (last 30 days held out).",
        )  # fmt: skip
        conclude_validation(
            validation, actor=victor, outcome="approved_with_conditions",
            conclusion="Fit for use while the time-based evaluation is done.",
        )  # fmt: skip

    def _figures(self, project, actor):
        """The figures the pages embed: an architecture diagram and a ROC curve."""
        overview, model = (project.pages.get(category=name) for name in ("overview", "model"))
        attach(overview, ContentFile(ARCHITECTURE_SVG.encode(), name="architecture.svg"),
               actor=actor)  # fmt: skip
        attach(model, ContentFile(roc_curve_png(), name="roc-curve.png"), actor=actor)

    def _churn_records(self, project, actor):
        # The dates match the maintenance page's update log: production a week after training.
        history = [
            ("1.0.0", date(2023, 11, 20), {"auc": 0.761, "precision_at_2000": 0.21}, {"C": 1.0}),
            ("1.1.0", date(2024, 2, 26), {"auc": 0.812, "precision_at_2000": 0.27}, {"leaves": 31}),
            ("1.2.0", date(2024, 7, 1), {"auc": 0.836, "precision_at_2000": 0.31}, {"leaves": 63}),
        ]
        for version, day, metrics, params in history:
            started = datetime.combine(day, time(3, 0), tzinfo=UTC)
            commit = hashlib.sha1(version.encode(), usedforsecurity=False).hexdigest()
            record_training_run(
                project,
                actor=actor,
                model_version=version,
                status="succeeded",
                started_at=started,
                finished_at=started + timedelta(minutes=12),
                git_commit=commit,
                pipeline_url=f"https://ci.example.com/churn/training/{version}",
                dataset_name="customers",
                dataset_version="2024-06-30" if version == "1.2.0" else "2024-01-31",
                hyperparameters=params | {"learning_rate": 0.05},
                metrics=metrics,
                tags={"trigger": "monthly"},
                environment={"python": "3.11", "lightgbm": "4.3.0"},
                series=learning_curves(metrics["auc"], started),
            )
            for environment, offset in (("staging", 2), ("production", 7)):
                deployed = started + timedelta(days=offset)
                record_deployment(
                    project,
                    actor=actor,
                    model_version=version,
                    environment=environment,
                    target="ml-prod/churn-scoring" if environment == "production" else "ml-staging",
                    status="succeeded",
                    git_commit=commit,
                    started_at=deployed,
                    finished_at=deployed + timedelta(minutes=20),
                    reason=f"Release {version} after passing the validation gate.",
                    checks=[
                        {"name": "row count", "passed": True, "value": 1_204_332},
                        {"name": "score PSI", "passed": True, "value": 0.04},
                    ],
                )

    @transaction.atomic
    def _fraud(self, actor, people):
        project = create_project(
            actor=actor,
            slug="fraud-detection",
            name="Card fraud detection",
            owner_team="Payments risk",
            summary="Real-time scores that route suspicious card transactions to review.",
            tags=["fraud", "real-time"],
        )
        self._fill(project, actor, FRAUD_PAGES, {})
        self._share(project, actor, people)
