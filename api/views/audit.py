"""The audit chain over the API: verification."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from api.views.base import ApiView, responses
from wiki.audit import FILE_KINDS, head_for, verify


class BadEntrySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["altered", "deleted", "inserted", "reordered", *FILE_KINDS],
        help_text="What happened to the entry; for a stored file or metric series (no entry "
        "number), whether its bytes changed, it is missing, or its points changed.",
    )
    seq = serializers.IntegerField(allow_null=True, help_text="The entry's number, from 1.")
    table = serializers.CharField(help_text="The history table of the row, if one is named.")
    history_id = serializers.IntegerField(allow_null=True)
    detail = serializers.CharField()


class VerdictSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    entries = serializers.IntegerField(help_text="Entries found intact, in order.")
    head = serializers.CharField(help_text="The chain head's digest.")
    first_bad = BadEntrySerializer(allow_null=True)
    unchecked = serializers.CharField(
        allow_null=True,
        help_text="Set when the attachment files and metric series could not be re-hashed "
        "(the storage did not answer): ``ok`` then covers the chain only.",
    )


class AuditVerify(ApiView):
    """Recompute the project's audit chain from its history rows and re-hash the stored
    attachment files and metric series they seal: ``ok``, the entries intact, the head
    digest, and the first entry altered, deleted, inserted or reordered behind the
    application's back, or the first file or series whose content changed (null when
    intact); ``unchecked`` says when the storage did not answer. Read-only: the verdict
    is not kept (the project page's "Verify now", a POST, keeps it)."""

    serializer_class = VerdictSerializer

    @extend_schema(responses=responses({200: VerdictSerializer}, 404))
    def get(self, request, project):
        verdict = verify(head_for(self.get_project()), record=False)
        return Response(VerdictSerializer(verdict).data)
