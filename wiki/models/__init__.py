"""The domain: projects, their documentation pages, and the records pipelines post.

Every model keeps its full history (django-simple-history, stamped by wiki.history).
Nothing outside wiki/services writes these models. One module per subject; everything is
imported from here (``from wiki.models import Page``).
"""

from wiki.models.access import AccessStamp
from wiki.models.attachments import Attachment, SeriesChunk
from wiki.models.audit import AuditEntry, ChainHead, SearchEntry
from wiki.models.base import SLUG_PATTERN, max_length, validate_project_slug, validate_version
from wiki.models.exports import ExportJob
from wiki.models.mlflow import MlflowRun, MlflowSync
from wiki.models.notifications import Delivery, NotificationSettings
from wiki.models.pages import Page
from wiki.models.pipelines import Pipeline
from wiki.models.projects import Membership, Project
from wiki.models.records import Deployment, ModelVersion, RunValue, TrainingRun
from wiki.models.sso import SsoAccount
from wiki.models.templates import Template
from wiki.models.tokens import ApiToken, IdempotencyKey
from wiki.models.validations import Finding, FindingComment, Validation

HistoricalProject = Project.history.model
HistoricalPage = Page.history.model

__all__ = [
    "SLUG_PATTERN", "AccessStamp", "ApiToken", "Attachment", "AuditEntry", "ChainHead", "Delivery",
    "Deployment", "ExportJob", "Finding", "FindingComment", "HistoricalPage", "HistoricalProject",
    "IdempotencyKey", "Membership", "MlflowRun", "MlflowSync", "ModelVersion",
    "NotificationSettings", "Page", "Pipeline", "Project", "RunValue", "SearchEntry",
    "SeriesChunk", "SsoAccount", "Template", "TrainingRun", "Validation", "max_length",
    "validate_project_slug", "validate_version",
]  # fmt: skip
