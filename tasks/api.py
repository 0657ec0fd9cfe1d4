"""REST API of the tasks app: tasks and runs (read-only) and the session API for outside agents."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from . import sessions
from .models import Run, Task

MAX_BODY_BYTES = 256 * 1024


class TaskSerializer(serializers.ModelSerializer):
    domain = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Task
        fields = ("id", "domain", "seed", "complexity", "instruction", "user_profile", "gold_chain", "communicate_info",
                  "subgraph", "h_size", "c_h", "distractor_count", "audit_flags", "status", "content_hash", "created_at")


class RunSerializer(serializers.ModelSerializer):
    class Meta:
        model = Run
        fields = ("id", "task", "agent", "agent_model", "user", "trial", "seed", "messages", "steps", "final_hash",
                  "reward", "breakdown", "termination", "tool_errors", "seconds", "created_at")


class TaskViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Task.objects.select_related("domain").defer(
        "s0", "s_gt", "gold_calls", "gold_outputs", "distractors", "gate", "patches", "expansion", "perturbations",
        "domain__fixture", "domain__layout", "domain__stages", "domain__sandbox", "domain__notes", "domain__stats")
    serializer_class = TaskSerializer
    filterset_fields = ("status", "complexity", "domain__slug")
    search_fields = ("instruction",)


class RunViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Run.objects.defer("final_state", "session")
    serializer_class = RunSerializer
    filterset_fields = ("agent", "termination", "task")


class StartSession(serializers.Serializer):
    task = serializers.IntegerField()
    agent_model = serializers.CharField(required=False, allow_blank=True, max_length=120, default="")


class ToolCall(serializers.Serializer):
    name = serializers.JSONField(allow_null=True)  # validated by the session, so a bad name is an observation, not a 400
    arguments = serializers.JSONField(required=False, default=dict)


class Message(serializers.Serializer):
    content = serializers.CharField(allow_blank=True, max_length=20000, trim_whitespace=False)


def _too_big(request: Request) -> Response | None:
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        return Response({"error": f"request body over {MAX_BODY_BYTES} bytes"}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    return None


class SessionViewSet(viewsets.GenericViewSet):
    """Start an episode on a task, call tools, talk to the simulated user, finish for the reward."""

    queryset = Run.objects.filter(agent="external").select_related("task", "task__domain").defer(
        "task__gate", "task__expansion", "task__patches", "task__distractors", "task__gold_outputs",
        "task__domain__fixture", "task__domain__layout", "task__domain__stages", "task__domain__sandbox")
    serializer_class = RunSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return super().get_queryset().filter(owner=self.request.user)

    def create(self, request: Request) -> Response:
        if (response := _too_big(request)) is not None:
            return response
        body = StartSession(data=request.data)
        body.is_valid(raise_exception=True)
        task = Task.objects.filter(pk=body.validated_data["task"]).select_related("domain").first()
        if task is None:
            return Response({"error": f"no task {body.validated_data['task']}"}, status=status.HTTP_404_NOT_FOUND)
        run, tools = sessions.start_session(task, request.user, body.validated_data["agent_model"])
        return Response({"session": run.pk, "messages": run.messages, "tools": tools}, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: Any = None) -> Response:
        return Response(RunSerializer(self.get_object()).data)

    def _act(self, request: Request, fn) -> Response:  # type: ignore[no-untyped-def]
        if (response := _too_big(request)) is not None:
            return response
        run = self.get_object()
        try:
            return Response(fn(run))
        except sessions.SessionError as exc:
            return Response({"error": str(exc)}, status=status.HTTP_409_CONFLICT)

    @action(detail=True, methods=["post"], url_path="tool-calls")
    def tool_calls(self, request: Request, pk: Any = None) -> Response:
        body = ToolCall(data=request.data)
        body.is_valid(raise_exception=True)
        return self._act(request, lambda run: sessions.call_tool(run, body.validated_data["name"],
                                                                 body.validated_data.get("arguments", {})))

    @action(detail=True, methods=["post"])
    def messages(self, request: Request, pk: Any = None) -> Response:
        body = Message(data=request.data)
        body.is_valid(raise_exception=True)
        return self._act(request, lambda run: sessions.send_message(run, body.validated_data["content"]))

    @action(detail=True, methods=["post"])
    def finish(self, request: Request, pk: Any = None) -> Response:
        return self._act(request, lambda run: sessions.finish(run))
