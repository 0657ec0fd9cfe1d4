"""Read-only REST API (token or session auth) for batches, domains, tools, tests and dependencies.

Reads need the model's ``view`` permission (scaleenv_site.api.ReadByRole): an agent's token reads
domains (with their policy) and tool schemas only; the tool code, tests, edges and batches need a
human role."""

from __future__ import annotations

from rest_framework import serializers, viewsets

from scaleenv_site.api import LOOKUP_VALUE_REGEX

from .models import Batch, Dependency, Domain, Tool, ToolTest
from .selectors import DOMAIN_HEAVY


class BatchSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)

    class Meta:
        model = Batch
        fields = ("id", "kind", "backend", "params", "status", "total_items", "done_items", "failed_items",
                  "progress", "counters", "metrics", "sandbox", "error", "created_at", "started_at", "finished_at")


class DomainSerializer(serializers.ModelSerializer):
    """One domain, with its policy (the agent's system prompt, Markdown) and the policy's version."""

    class Meta:
        model = Domain
        fields = ("id", "name", "slug", "description", "keywords", "sector", "backend", "seed", "spec_hash", "status",
                  "batch", "clock", "policy", "policy_version", "stats", "created_at")


class DomainListSerializer(DomainSerializer):
    """A list carries the policy's version, not its text (lists select only what they show)."""

    class Meta(DomainSerializer.Meta):
        fields = tuple(f for f in DomainSerializer.Meta.fields if f != "policy")


class ToolSchemaSerializer(serializers.ModelSerializer):
    """What an agent may read of a tool: its schema."""

    domain = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Tool
        fields = ("id", "domain", "name", "description", "parameters", "returns", "mutates")


class ToolSerializer(ToolSchemaSerializer):
    class Meta(ToolSchemaSerializer.Meta):
        fields = ToolSchemaSerializer.Meta.fields + (
            "kind", "preconditions", "postconditions", "raises", "reads", "writes", "code", "status",
            "failure_reason", "repair_count")


class ToolTestSerializer(serializers.ModelSerializer):
    tool = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = ToolTest
        fields = ("id", "tool", "name", "kind", "instance_patch", "call_args", "expected", "outcome", "message",
                  "observed", "attempts")


class DependencySerializer(serializers.ModelSerializer):
    src = serializers.SlugRelatedField(slug_field="name", read_only=True)
    dst = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = Dependency
        fields = ("id", "src", "dst", "kinds", "evidence", "witnessed", "witness", "source")


class BatchViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_value_regex = LOOKUP_VALUE_REGEX
    queryset = Batch.objects.all()
    serializer_class = BatchSerializer
    filterset_fields = ("status", "kind", "backend")


class DomainViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_value_regex = LOOKUP_VALUE_REGEX
    queryset = Domain.objects.all()
    serializer_class = DomainSerializer
    lookup_field = "slug"
    filterset_fields = ("status", "sector", "backend")
    search_fields = ("name", "description")

    def get_queryset(self):  # type: ignore[no-untyped-def]
        # A list selects only what it shows (docs/design.md, "Queries").
        return Domain.objects.defer(*DOMAIN_HEAVY) if self.action == "list" else Domain.objects.all()

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        return DomainListSerializer if self.action == "list" else DomainSerializer


class ToolViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_value_regex = LOOKUP_VALUE_REGEX
    queryset = Tool.objects.select_related("domain").defer("domain__fixture", "domain__layout", "domain__stages",
                                                           "domain__policy", "contract")
    serializer_class = ToolSerializer
    filterset_fields = ("status", "kind", "domain__slug")
    search_fields = ("name", "description")

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        # The code, contracts and tests are for people who check the environment, not for agents.
        return ToolSerializer if self.request.user.has_perm("environments.view_tooltest") else ToolSchemaSerializer


class ToolTestViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_value_regex = LOOKUP_VALUE_REGEX
    queryset = ToolTest.objects.select_related("tool")
    serializer_class = ToolTestSerializer
    filterset_fields = ("outcome", "kind", "tool__domain__slug")


class DependencyViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_value_regex = LOOKUP_VALUE_REGEX
    queryset = Dependency.objects.select_related("src", "dst")
    serializer_class = DependencySerializer
    filterset_fields = ("witnessed", "domain__slug")
