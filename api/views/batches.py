"""Records posted in batches: up to 1,000 training runs or deployments in one request.

Each record carries its own idempotency key. The answer has one result per record, in
order: created (its id and url), replayed (a key already answered for the same record:
the first answer's id and url, nothing written) or invalid (its errors; a key used
before for a different record is one). A bad record never blocks the others; all the
valid new records of a batch are written in one transaction (wiki.ingest, with
multi-row inserts), so none is ever half-written: if the database fails, the answer is
a 503, nothing of the batch is stored, and the same batch can be sent again as it is.
"""

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, transaction
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from api import idempotency
from api.auth import Scope
from api.errors import ErrorSerializer, FieldErrors, summary
from api.parsers import BATCH_MAX_BODY_BYTES, BatchJSONParser
from api.serializers import DeploymentSerializer, TrainingRunSerializer
from api.views.base import ApiView, responses
from wiki import ingest, metrics
from wiki.middleware import DATABASE_RETRY_AFTER
from wiki.services.records import record_many

logger = logging.getLogger(__name__)

MAX_RECORDS = 1000
KEY = "idempotency_key"
UNWRITTEN = (
    "The batch could not be written; nothing of it was saved. Send the same batch again "
    "in a few seconds: its idempotency keys make the retry safe."
)


class BatchResultSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["created", "replayed", "invalid"])
    id = serializers.IntegerField(required=False, help_text="created and replayed only.")
    url = serializers.URLField(required=False, help_text="created and replayed only.")
    detail = serializers.CharField(required=False, help_text="invalid only: what is wrong.")
    errors = FieldErrors(required=False, help_text="invalid only: by field.")


class BatchAnswerSerializer(serializers.Serializer):
    results = BatchResultSerializer(many=True, help_text="One per record, in order.")
    created = serializers.IntegerField()
    replayed = serializers.IntegerField()
    invalid = serializers.IntegerField()


def _invalid(errors):
    return {"status": "invalid", "detail": summary(errors), "errors": errors}


def _found(state, body):
    return {"status": state, "id": body["id"], "url": body["url"]}


class RecordBatch(ApiView):
    """Shared by the batch endpoints: ``record_serializer`` checks each record as the
    single endpoint ``single`` (a URL name) does, ``prepare`` makes it ready for
    wiki.ingest, ``kind`` names it."""

    scopes = ApiView.scopes | {"POST": Scope.RECORDS_WRITE}
    parser_classes = [BatchJSONParser]
    serializer_class = BatchAnswerSerializer
    record_serializer = None
    prepare = None
    single = None
    kind = None

    def records(self, data):
        """The body's records (a list of 1 to MAX_RECORDS items); 400 otherwise."""
        if not isinstance(data, dict) or set(data) != {"records"}:
            raise exceptions.ValidationError(
                {"records": ['Send {"records": [...]}, each record with its idempotency_key.']}
            )
        records = data["records"]
        if not isinstance(records, list) or not records:
            raise exceptions.ValidationError({"records": ["A non-empty list of records."]})
        if len(records) > MAX_RECORDS:
            raise exceptions.ValidationError(
                {
                    "records": [
                        f"At most {MAX_RECORDS} records per batch ({len(records)} sent): split it."
                    ]
                }
            )
        return records

    def check(self, project, item, seen, path):
        """(key, fingerprint, prepared record) of a valid ``item``; the result to answer
        with if it is invalid."""
        if not isinstance(item, dict):
            return _invalid({"non_field_errors": ["A record is a JSON object."]})
        key = item.get(KEY)
        if not isinstance(key, str) or not idempotency.valid_key(key):
            return _invalid({KEY: ["Required: 1 to 255 printable ASCII characters."]})
        if key in seen:
            return _invalid({KEY: [f"Also the key of record {seen[key]} of this batch."]})
        body = {name: value for name, value in item.items() if name != KEY}
        try:
            data = self.serializer.run_validation(body)
        except exceptions.ValidationError as error:
            return _invalid(error.detail)
        try:
            record = self.prepare(project, **data)
        except DjangoValidationError as error:
            return _invalid(exceptions.ValidationError(error.message_dict).detail)
        record._validated_data = data
        # The single endpoint's fingerprint: a record posted alone and then in a batch
        # (or the other way round) under the same key is the same request.
        return key, idempotency.fingerprint("POST", path, body), record

    @extend_schema(
        request=inline_serializer(
            "RecordBatch",
            {"records": serializers.ListField(child=serializers.DictField(), max_length=1000)},
        ),
        responses=responses({200: BatchAnswerSerializer}, 400, 404, 413, 415)
        | {
            413: OpenApiResponse(
                ErrorSerializer, description=f"The body is over {BATCH_MAX_BODY_BYTES >> 20} MiB."
            ),
            503: OpenApiResponse(ErrorSerializer, description=UNWRITTEN),
        },
    )
    def post(self, request, project):
        if "Idempotency-Key" in request.headers:
            raise exceptions.ValidationError(
                {"Idempotency-Key": [f"Not on a batch: give each record its own {KEY}."]}
            )
        project = self.get_project()
        items = self.records(request.data)
        # One serializer checks and shows every record: building its fields (a deep copy
        # of the declared ones) for each record would cost more than checking it.
        self.serializer = self.record_serializer(context=self.get_serializer_context())
        path = reverse(self.single, args=[project.slug])
        results, valid, seen = [None] * len(items), {}, {}
        for index, item in enumerate(items):
            checked = self.check(project, item, seen, path)
            if isinstance(checked, dict):
                results[index] = checked
                continue
            seen[checked[0]] = index
            valid[index] = checked
        try:
            with transaction.atomic():
                self.write(project, valid, results)
        except DatabaseError as error:
            logger.warning("Batch not written: %s: %s", type(error).__name__, error)
            metrics.DATABASE_ERRORS.labels(type(error).__name__).inc()
            body = {"status": 503, "detail": UNWRITTEN}
            return Response(body, status=503, headers={"Retry-After": DATABASE_RETRY_AFTER})
        counts = {state: 0 for state in ("created", "replayed", "invalid")}
        for result in results:
            counts[result["status"]] += 1
        return Response({"results": results, **counts})

    def write(self, project, valid, results):
        """Claim the keys (sorted), answer the replays, write the new records together
        and store their answers; ``results`` filled in place."""
        claimed = idempotency.claim_many(
            project, {key: print_ for key, print_, _ in valid.values()}
        )
        taken = idempotency.stored(
            project, [key for key, _, _ in valid.values() if key not in claimed]
        )
        new = []
        for index, (key, print_, record) in valid.items():
            if key in claimed:
                new.append((index, key, record))
            elif key not in taken:  # expired and purged (wiki.tasks) since the claim
                results[index] = _invalid(
                    {KEY: ["This key expired while the batch was written; send the record again."]}
                )
            elif taken[key].fingerprint != print_:
                results[index] = _invalid(
                    {KEY: ["Already used for a different record; use a new key for a new record."]}
                )
            else:
                metrics.IDEMPOTENT_REPLAYS.inc()
                results[index] = _found("replayed", taken[key].response_body)
        if not new:
            return
        record_many(project, self.kind, [record for _, _, record in new], actor=self.actor())
        answers = {}
        for index, key, record in new:
            # What the record was posted with (a run's series_points come from it).
            self.serializer._validated_data = record._validated_data
            answers[key] = self.serializer.to_representation(record)
            results[index] = _found("created", answers[key])
        idempotency.answer_many(project, status.HTTP_201_CREATED, answers)


class TrainingRunBatch(RecordBatch):
    """Up to 1,000 training runs in one request (bodies up to 16 MiB), each with its own
    ``idempotency_key`` beside the fields of a single post; one result per run, in
    order. A bad run never blocks the others; the valid ones are written together."""

    record_serializer = TrainingRunSerializer
    prepare = staticmethod(ingest.prepare_run)
    single = "api:training-run-list"
    kind = "training_run"


class DeploymentBatch(RecordBatch):
    """Up to 1,000 deployments in one request (bodies up to 16 MiB), each with its own
    ``idempotency_key`` beside the fields of a single post; one result per deployment,
    in order. A bad one never blocks the others; the valid ones are written together."""

    record_serializer = DeploymentSerializer
    prepare = staticmethod(ingest.prepare_deployment)
    single = "api:deployment-list"
    kind = "deployment"
