from rest_framework import serializers

from wiki.models import Project


class ProjectSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:project-detail", lookup_field="slug")

    class Meta:
        model = Project
        fields = [
            "url", "slug", "name", "summary", "owner_team", "tags", "revision", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = fields
