"""Reading an MLflow tracking server (issue 14, item 1): its REST API, and what its runs
and registered model versions say as mlwiki records.

Only the REST API of the tracking server (``/api/2.0/mlflow/…``) and its artifact download
(``/get-artifact``) are used, over HTTP with the standard library: importing needs no
MLflow package in the wiki. wiki.services.mlflow writes what is read here.

How MLflow maps (README, "Import from MLflow"):
- a run is a training run: parameters as hyperparameters (numbers read as numbers),
  the latest value of each metric as its final metrics, the run's tags (the MLflow system
  tags mlflow.runName, mlflow.user and the source's among them), mlflow.source.git.commit
  as its commit, its first dataset input (training, else any) as dataset name, version
  (the digest) and URI, start and end times, its status (FINISHED succeeded, FAILED and
  KILLED failed, else running), its note as notes, and a link to the run in the MLflow UI;
- the run's model version is the registered model version it is the source of
  ("<model>:<version>"), else one named for its experiment;
- metric histories (a metric logged at more than one step) are the run's series;
- image artifacts are the run's attachments.
"""

import contextlib
import ipaddress
import json
import math
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from wiki.models.records import MAX_NAME_LENGTH, MAX_OBJECT_ENTRIES, MAX_TEXT_VALUE_LENGTH

TIMEOUT = 30  # seconds for one request to the tracking server
MAX_ANSWER_BYTES = 256 * 1024 * 1024  # a page of 1,000 runs is a few MB
PAGE_SIZE = 1000  # runs per search request
HISTORY_PAGE = 25_000  # points per metric history request
IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg")
MAX_ARTIFACT_DEPTH = 2  # folders below the run's artifact root looked into for images
STATUSES = {"FINISHED": "succeeded", "FAILED": "failed", "KILLED": "failed"}
# MLflow's own tags that say something a reader of the run wants; the others (the logged
# models' JSON history, say) are bookkeeping of MLflow.
SYSTEM_TAGS = {
    "mlflow.runName", "mlflow.user", "mlflow.source.name", "mlflow.source.type",
    "mlflow.source.git.branch", "mlflow.source.git.repoURL", "mlflow.parentRunId",
}  # fmt: skip
NOTE_TAG = "mlflow.note.content"
COMMIT_TAG = "mlflow.source.git.commit"
_NOT_IN_A_VERSION = re.compile(r"[^\w.+\-:@]+")


class MlflowError(Exception):
    """The tracking server cannot be reached, or answers what it should not."""


@dataclass(frozen=True)
class Experiment:
    id: str
    name: str


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A tracking server answers where it is asked: a redirect could lead the worker to
    an address the tracking URI's checks never saw."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise MlflowError(f"MLflow answered {code}, a redirect to {newurl}: use that address.")


_OPENER = urllib.request.build_opener(_NoRedirects)


def check_uri(uri):
    """``uri`` as a tracking URI mlwiki may read from, or MlflowError saying why not: http
    or https, no user or password in it (they would be kept in every record's history;
    MLflow reads them from the environment anyway), a host MLFLOW_TRACKING_HOSTS allows
    (if set), never a link-local address (a cloud's metadata service)."""
    uri = uri.strip().rstrip("/")
    try:
        URLValidator(schemes=["http", "https"])(uri)
    except ValidationError:
        raise MlflowError(
            f"The tracking URI must be an http(s) address of a tracking server, not {uri!r}."
        ) from None
    parts = urllib.parse.urlsplit(uri)
    if parts.username or parts.password:
        raise MlflowError("The tracking URI must not hold a user name or password.")
    allowed = settings.MLFLOW_TRACKING_HOSTS
    if allowed and parts.hostname not in allowed:
        raise MlflowError(
            f"{parts.hostname} is not among the MLflow hosts this wiki may read from "
            "(MLFLOW_TRACKING_HOSTS)."
        )
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, None)}
    except (OSError, UnicodeError):
        raise MlflowError(f"MLflow at {uri} cannot be reached: unknown host.") from None
    if any(ipaddress.ip_address(a.split("%")[0]).is_link_local for a in addresses):
        raise MlflowError(f"{parts.hostname} is a link-local address: not a tracking server.")
    return uri


class Tracking:
    """An MLflow tracking server at ``uri`` (checked by ``check_uri``)."""

    def __init__(self, uri):
        self.uri = check_uri(uri)

    def _call(self, method, path, query=None, body=None, raw=False, limit=MAX_ANSWER_BYTES):
        url = f"{self.uri}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - http(s) only (checked above)
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with _OPENER.open(request, timeout=TIMEOUT) as response:
                payload = response.read(limit + 1)
        except urllib.error.HTTPError as error:
            # MLflow's own message only: the body of whatever else answers at that address
            # (the URI is typed by a user) is not repeated to them.
            detail = "not an MLflow answer"
            with contextlib.suppress(ValueError, KeyError, TypeError):
                detail = str(json.loads(error.read(64 * 1024))["message"])[:500]
            if error.code == 404:
                raise LookupError(detail) from None
            raise MlflowError(f"MLflow answered {error.code} to {path}: {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise MlflowError(f"MLflow at {self.uri} cannot be reached: {reason}") from None
        if len(payload) > limit:
            raise MlflowError(f"MLflow's answer to {path} is over {limit:,} bytes.")
        if raw:
            return payload
        try:
            answer = json.loads(payload or b"{}")
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise MlflowError(f"The answer to {path} is not MLflow's (not a JSON object).")
        return answer

    def experiment(self, name_or_id):
        """The experiment with this id (digits) or name; MlflowError if there is none."""
        text = str(name_or_id)
        tries = [("get", {"experiment_id": text})] if text.isdigit() else []
        tries.append(("get-by-name", {"experiment_name": text}))
        for endpoint, query in tries:
            try:
                found = self._call("GET", f"/api/2.0/mlflow/experiments/{endpoint}", query)
            except LookupError:
                continue
            except MlflowError:
                if endpoint == "get" and len(tries) > 1:
                    continue  # a malformed id is answered 400: it may be a name
                raise
            experiment = found["experiment"]
            return Experiment(id=experiment["experiment_id"], name=experiment["name"])
        raise MlflowError(f"MLflow at {self.uri} has no experiment {text!r}.")

    def runs(self, experiment_ids, since=None):
        """Every run of the experiments (deleted ones included: they are reported), oldest
        first; ``since`` (aware datetime) keeps those started since."""
        body = {
            "experiment_ids": list(experiment_ids), "run_view_type": "ALL",
            "max_results": PAGE_SIZE, "order_by": ["attributes.start_time ASC"],
        }  # fmt: skip
        if since is not None:
            body["filter"] = f"attributes.start_time >= {int(since.timestamp() * 1000)}"
        while True:
            page = self._call("POST", "/api/2.0/mlflow/runs/search", body=body)
            yield from page.get("runs", [])
            token = page.get("next_page_token")
            if not token:
                return
            body["page_token"] = token

    def run(self, run_id):
        try:
            return self._call("GET", "/api/2.0/mlflow/runs/get", {"run_id": run_id})["run"]
        except LookupError:
            return None

    def metric_history(self, run_id, key):
        query = {"run_id": run_id, "metric_key": key, "max_results": HISTORY_PAGE}
        points = []
        while True:
            page = self._call("GET", "/api/2.0/mlflow/metrics/get-history", query)
            points += page.get("metrics", [])
            if not page.get("next_page_token"):
                return points
            query["page_token"] = page["next_page_token"]

    def model_versions(self, name):
        """(registered model, its versions) for the registered model ``name``."""
        try:
            model = self._call("GET", "/api/2.0/mlflow/registered-models/get", {"name": name})
        except LookupError:
            raise MlflowError(f"MLflow at {self.uri} has no registered model {name!r}.") from None
        query = {"filter": f"name='{name.replace(chr(39), chr(39) * 2)}'", "max_results": 200}
        versions = []
        while True:
            page = self._call("GET", "/api/2.0/mlflow/model-versions/search", query)
            versions += page.get("model_versions", [])
            if not page.get("next_page_token"):
                return model["registered_model"], versions
            query["page_token"] = page["next_page_token"]

    def images(self, run_id, path="", depth=0):
        """(path, size) of the run's image artifacts, folders looked into to a depth."""
        query = {"run_id": run_id} | ({"path": path} if path else {})
        try:
            listing = self._call("GET", "/api/2.0/mlflow/artifacts/list", query)
        except LookupError:
            return
        for item in listing.get("files", []):
            if item.get("is_dir"):
                if depth < MAX_ARTIFACT_DEPTH:
                    yield from self.images(run_id, item["path"], depth + 1)
            elif item["path"].lower().endswith(IMAGE_TYPES):
                yield item["path"], int(item.get("file_size") or 0)

    def artifact(self, run_id, path, limit):
        query = {"path": path, "run_uuid": run_id}
        return self._call("GET", "/get-artifact", query, raw=True, limit=limit)

    def run_url(self, run):
        info = run["info"]
        return f"{self.uri}/#/experiments/{info['experiment_id']}/runs/{info['run_id']}"


def version_name(*parts):
    """A model version name mlwiki accepts made of MLflow's names (spaces and other
    characters it refuses become '-'), at most 100 characters."""
    return ":".join(_NOT_IN_A_VERSION.sub("-", str(part)).strip("-") or "-" for part in parts)[:100]


def _moment(milliseconds):
    return (
        None
        if milliseconds in (None, 0, "")
        else datetime.fromtimestamp(int(milliseconds) / 1000, UTC)
    )


def _number(text):
    """A parameter's value: a finite number when it reads as one, else its text."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    if not math.isfinite(value) or text.strip().lower() in ("nan", "inf", "infinity"):
        return text
    return int(text) if re.fullmatch(r"-?\d{1,15}", text.strip()) else value


def _dataset(run):
    """(name, version, uri) of the run's training dataset input (else its first)."""
    inputs = (run.get("inputs") or {}).get("dataset_inputs") or []
    if not inputs:
        return "", "", ""

    def context(entry):
        tags = {t["key"]: t["value"] for t in entry.get("tags", [])}
        return tags.get("mlflow.data.context", "")

    entry = next((e for e in inputs if context(e) == "training"), inputs[0])
    dataset = entry.get("dataset", {})
    uri = ""
    try:
        source = json.loads(dataset.get("source") or "{}")
        uri = next((str(source[k]) for k in ("uri", "url", "path") if source.get(k)), "")
    except (ValueError, AttributeError):
        pass
    return dataset.get("name", "")[:200], dataset.get("digest", "")[:200], uri[:500]


def run_record(tracking, run, experiment_name, registered):
    """(model version name, the training run's fields, problems) of an MLflow ``run``.

    ``registered`` maps run ids to the model version they became. What mlwiki cannot
    store as given (a non-finite metric, a name or text past its limits, more entries
    than a record holds) is left out and told in ``problems``."""
    info, data = run["info"], run.get("data") or {}
    problems = []
    tags = {t["key"]: t["value"] for t in data.get("tags", [])}
    kept_tags = {}
    for key, value in sorted(tags.items()):
        if key.startswith("mlflow.") and key not in SYSTEM_TAGS:
            continue
        if len(key) > MAX_NAME_LENGTH or len(value) > MAX_TEXT_VALUE_LENGTH:
            problems.append(f"tag {key[:60]!r} is too long to keep")
            continue
        kept_tags[key] = value
    params = {}
    for param in data.get("params", []):
        if (
            len(param["key"]) > MAX_NAME_LENGTH
            or len(param.get("value", "")) > MAX_TEXT_VALUE_LENGTH
        ):
            problems.append(f"parameter {param['key'][:60]!r} is too long to keep")
            continue
        params[param["key"]] = _number(param.get("value", ""))
    metrics = {}
    for metric in data.get("metrics", []):
        value = metric.get("value")
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(f"metric {metric['key'][:60]!r} is not a finite number")
        elif len(metric["key"]) > MAX_NAME_LENGTH:
            problems.append(f"metric {metric['key'][:60]!r} has too long a name")
        else:
            metrics[metric["key"]] = value
    for name, values in (("tags", kept_tags), ("parameters", params), ("metrics", metrics)):
        if len(values) > MAX_OBJECT_ENTRIES:
            problems.append(f"only the first {MAX_OBJECT_ENTRIES} {name} are kept")
            for key in list(values)[MAX_OBJECT_ENTRIES:]:
                del values[key]
    commit = tags.get(COMMIT_TAG, "")
    if commit and not re.fullmatch(r"[0-9a-fA-F]{4,64}", commit):
        problems.append(f"the git commit {commit[:60]!r} is not a hash")
        commit = ""
    dataset_name, dataset_version, dataset_uri = _dataset(run)
    status = STATUSES.get(info.get("status"), "running")
    started = _moment(info.get("start_time")) or _moment(info.get("end_time"))
    finished = _moment(info.get("end_time")) if status != "running" else None
    fields = {
        "status": status, "started_at": started, "finished_at": finished,
        "git_commit": commit, "pipeline_url": tracking.run_url(run)[:500],
        "dataset_name": dataset_name, "dataset_version": dataset_version,
        "dataset_uri": dataset_uri, "hyperparameters": params, "metrics": metrics,
        "tags": kept_tags, "notes": tags.get(NOTE_TAG, ""),
    }  # fmt: skip
    version = registered.get(info["run_id"]) or version_name(experiment_name)
    return version, fields, problems


def with_history(data):
    """The metrics of a run's search result logged at more than one step (their latest
    step is above 0): only those have a history worth fetching."""
    return sorted(m["key"] for m in data.get("metrics", []) if int(m.get("step") or 0) > 0)


def series_of(history):
    """A metric's history as the points mlwiki's series take."""
    points = {}
    for point in history:
        value = point.get("value")
        if isinstance(value, (int, float)) and math.isfinite(value):
            moment = _moment(point.get("timestamp"))
            points[int(point.get("step") or 0)] = {
                "step": int(point.get("step") or 0), "value": value,
                "timestamp": moment.isoformat().replace("+00:00", "Z") if moment else None,
            }  # fmt: skip
    return [
        {k: v for k, v in point.items() if v is not None} for _, point in sorted(points.items())
    ]


def version_description(model, version):
    """A registered model version's description in mlwiki: MLflow's own, then where it
    comes from (model, version, stage, aliases, source run)."""
    aliases = sorted(
        a["alias"] for a in model.get("aliases", []) if a["version"] == version["version"]
    )
    facts = [f"MLflow registered model '{model['name']}' version {version['version']}"]
    stage = version.get("current_stage")
    if stage and stage != "None":
        facts.append(f"stage {stage}")
    if aliases:
        facts.append(f"aliases {', '.join(aliases)}")
    if version.get("run_id"):
        facts.append(f"source run {version['run_id']}")
    text = "; ".join(facts) + "."
    own = (version.get("description") or "").strip()
    return f"{own}\n\n{text}" if own else text
