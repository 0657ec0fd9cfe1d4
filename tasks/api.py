"""REST API of the tasks app: tasks and runs (by role) and the session API agents play through.

An agent's token (role Agent) reaches only its own sessions; tasks, their answer keys and runs need
a human role (environments/roles.py)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, pagination, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from scaleenv_site.api import ErrorSerializer

from . import sessions
from .models import Run, RunStep, Task


class Cursor(pagination.CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


# ---------------------------------------------------------------------------------------------
# Tasks and runs (human roles)


class TaskListSerializer(serializers.ModelSerializer):
    domain = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    reason_for_call = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = ("id", "domain", "seed", "kind", "intent", "complexity", "status", "h_size", "chain_length",
                  "reason_for_call", "audit_flags", "content_hash", "created_at")

    def get_reason_for_call(self, task: Task) -> str:
        return ((task.user_scenario or {}).get("instructions") or {}).get("reason_for_call", "")


class TaskSerializer(TaskListSerializer):
    class Meta(TaskListSerializer.Meta):
        fields = TaskListSerializer.Meta.fields + (
            "user_scenario", "instruction", "policy_version", "gold_chain", "gold_calls", "communicate_info",
            "evaluation", "subgraph", "c_h", "distractor_count")


class TaskViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Task.objects.select_related("domain")
    filterset_fields = ("status", "complexity", "kind", "domain__slug")
    search_fields = ("intent",)
    pagination_class = Cursor

    def get_queryset(self) -> QuerySet[Task]:
        if self.action == "list":
            return super().get_queryset().only(
                "id", "domain__slug", "seed", "kind", "intent", "complexity", "status", "h_size", "chain_length",
                "user_scenario", "audit_flags", "content_hash", "created_at")
        return super().get_queryset().defer("s0", "s_gt", "gold_outputs", "distractors", "gate", "patches",
                                            "expansion", "perturbations", "domain__fixture", "domain__layout")

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return TaskListSerializer if self.action == "list" else TaskSerializer


class RunListSerializer(serializers.ModelSerializer):
    class Meta:
        model = Run
        fields = ("id", "task", "agent", "agent_model", "user", "trial", "seed", "reward", "termination",
                  "tool_errors", "step_count", "seconds", "final_hash", "created_at")


class RunSerializer(RunListSerializer):
    class Meta(RunListSerializer.Meta):
        fields = RunListSerializer.Meta.fields + ("messages", "breakdown")


class StepSerializer(serializers.ModelSerializer):
    class Meta:
        model = RunStep
        fields = ("index", "kind", "tool", "arguments", "outcome", "observation", "diff", "content", "duration_ms",
                  "executed")


def visible_runs(user: Any) -> QuerySet[Run]:
    """Rollout runs for every human role; an account's HTTP sessions only for it and for curators."""
    runs = Run.objects.all()
    if user.has_perm("tasks.view_any_session"):
        return runs
    return runs.filter(~Q(agent="external") | Q(owner=user))


class RunViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Run.objects.all()
    filterset_fields = ("agent", "termination", "task")
    pagination_class = Cursor

    def get_queryset(self) -> QuerySet[Run]:
        runs = visible_runs(self.request.user)
        if self.action in ("list", "steps"):
            return runs.only(*RunListSerializer.Meta.fields[:-1], "created_at", "owner_id")
        return runs.defer("final_state")

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return RunSerializer if self.action == "retrieve" else RunListSerializer

    @extend_schema(responses=StepSerializer(many=True))
    @action(detail=True, methods=["get"])
    def steps(self, request: Request, pk: Any = None) -> Response:
        """The run's steps, oldest first, a page at a time."""
        run = self.get_object()
        page = pagination.PageNumberPagination()
        page.page_size = 50
        rows = page.paginate_queryset(RunStep.objects.filter(run=run).order_by("index"), request, view=self)
        return page.get_paginated_response(StepSerializer(rows, many=True).data)


# ---------------------------------------------------------------------------------------------
# Sessions (agents)


class CanPlaySessions(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.has_perm("tasks.play_session"))


class StartSession(serializers.Serializer):
    task = serializers.IntegerField(min_value=1, max_value=2**53 - 1, help_text="id of the task to play")
    agent_model = serializers.CharField(required=False, allow_blank=True, max_length=120, default="",
                                        help_text="what the agent is (recorded on the run)")


class ChatMessage(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant", "tool"])
    content = serializers.CharField(allow_null=True, allow_blank=True)


class StartedSession(serializers.Serializer):
    session = serializers.IntegerField(help_text="the session's id (use it in the other calls)")
    messages = ChatMessage(many=True, help_text="the system message (the domain's policy) and the user's opening")
    tools = serializers.ListField(child=serializers.DictField(), help_text="OpenAI function schemas")


class ToolCall(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="the tool's name")
    arguments = serializers.JSONField(required=False, default=dict,
                                      help_text="an object, or a JSON string of one (as OpenAI tool calls carry them)")


class ToolResult(serializers.Serializer):
    tool_call_id = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["success", "anticipated_rejection", "unexpected_failure"])
    content = serializers.CharField(allow_blank=True, help_text="the observation (an error observation starts "
                                                                "with 'Error:')")
    error = serializers.BooleanField()
    truncated = serializers.BooleanField(help_text="the observation was cut at SCALEENV_SESSION_MAX_OBSERVATION_CHARS")


class Message(serializers.Serializer):
    content = serializers.CharField(allow_blank=True, max_length=20000, trim_whitespace=False,
                                    help_text="what the agent says to the user; ###STOP### ends the session")


class ScoreBreakdown(serializers.Serializer):
    db_match = serializers.BooleanField(allow_null=True)
    communicate_ok = serializers.BooleanField(allow_null=True)
    refusal_ok = serializers.BooleanField(allow_null=True)
    partial = serializers.FloatField(allow_null=True)
    failing_tables = serializers.ListField(child=serializers.CharField())


class Score(serializers.Serializer):
    reward = serializers.FloatField(allow_null=True)
    termination = serializers.CharField()
    breakdown = ScoreBreakdown()


class UserReply(Score):
    user = serializers.CharField(allow_null=True, help_text="the simulated user's reply")
    finished = serializers.BooleanField()
    reward = serializers.FloatField(allow_null=True, required=False)
    termination = serializers.CharField(required=False)
    breakdown = ScoreBreakdown(required=False)


class SessionState(serializers.Serializer):
    session = serializers.IntegerField()
    task = serializers.IntegerField()
    termination = serializers.CharField()
    reward = serializers.FloatField(allow_null=True)
    step_count = serializers.IntegerField()
    messages = ChatMessage(many=True)


def _refusal(message: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=message)


CLOSED = {409: _refusal("The session is finished (or expired, or at its step limit).")}


@extend_schema_view(
    create=extend_schema(request=StartSession, responses={201: StartedSession,
                                                          429: _refusal("Too many open sessions or starts.")}),
    retrieve=extend_schema(responses=SessionState),
)
class SessionViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Start an episode on a task, call tools, talk to the simulated user, finish for the reward."""

    queryset = Run.objects.none()
    permission_classes = [CanPlaySessions]
    serializer_class = StartSession
    throttle_scope = "session-start"

    def get_throttles(self) -> list[Any]:
        from rest_framework.throttling import ScopedRateThrottle, UserRateThrottle

        return [UserRateThrottle()] + ([ScopedRateThrottle()] if self.action == "create" else [])

    def _run(self, pk: Any) -> int:
        try:
            run_id = int(pk)
        except (TypeError, ValueError):
            raise Http404("no such session") from None
        if not Run.objects.filter(pk=run_id, owner=self.request.user, agent="external").exists():
            raise Http404("no such session")
        return run_id

    def _act(self, fn: Any) -> Response:
        try:
            return Response(fn())
        except sessions.SessionError as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        except Run.DoesNotExist:
            raise Http404("no such session") from None

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = StartSession(data=request.data)
        body.is_valid(raise_exception=True)
        task = Task.objects.filter(pk=body.validated_data["task"]).select_related("domain").first()
        if task is None:
            return Response({"detail": f"no task {body.validated_data['task']}"}, status=status.HTTP_404_NOT_FOUND)
        try:
            run, messages, tools = sessions.start_session(task, request.user, body.validated_data["agent_model"])
        except sessions.SessionError as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        return Response({"session": run.pk, "messages": messages, "tools": tools}, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: Any = None) -> Response:
        run = Run.objects.select_related("task", "task__domain").get(pk=self._run(pk))
        return Response({"session": run.pk, "task": run.task_id, "termination": run.termination, "reward": run.reward,
                         "step_count": run.step_count, "messages": sessions.messages_of(run)})

    @extend_schema(request=ToolCall, responses={200: ToolResult, **CLOSED})
    @action(detail=True, methods=["post"], url_path="tool-calls")
    def tool_calls(self, request: Request, pk: Any = None) -> Response:
        run_id = self._run(pk)
        body = ToolCall(data=request.data)
        body.is_valid(raise_exception=True)
        return self._act(lambda: sessions.call_tool(run_id, request.user, body.validated_data["name"],
                                                    body.validated_data.get("arguments", {})))

    @extend_schema(request=Message, responses={200: UserReply, **CLOSED})
    @action(detail=True, methods=["post"])
    def messages(self, request: Request, pk: Any = None) -> Response:
        run_id = self._run(pk)
        body = Message(data=request.data)
        body.is_valid(raise_exception=True)

        def say() -> dict[str, Any]:
            reply = sessions.send_message(run_id, request.user, body.validated_data["content"])
            if reply.get("finished"):
                return {"user": reply["user"], "finished": True, **self._score(reply)}
            return reply

        return self._act(say)

    @extend_schema(request=None, responses={200: Score})
    @action(detail=True, methods=["post"])
    def finish(self, request: Request, pk: Any = None) -> Response:
        run_id = self._run(pk)
        return self._act(lambda: self._score(sessions.finish(run_id, request.user)))

    def _score(self, result: dict[str, Any]) -> dict[str, Any]:
        """Expected values are the answer key: only roles that may read tasks see them."""
        if self.request.user.has_perm("tasks.view_task"):
            return {"reward": result["reward"], "termination": result["termination"],
                    "breakdown": sessions.agent_view(result)["breakdown"], "full_breakdown": result["breakdown"]}
        return sessions.agent_view(result)
