"""REST API of the tasks app: tasks and runs (by role) and the session API agents play through.

An agent's token (role Agent) reaches only its own sessions; tasks, their answer keys and runs need
a human role (environments/roles.py)."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, pagination, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from scaleenv_site.api import LOOKUP_VALUE_REGEX, ErrorSerializer, JSONFirstNegotiation

from . import selectors, sessions
from .models import Run, RunStep, Task


class Cursor(pagination.CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class StepPages(pagination.PageNumberPagination):
    page_size = 50


# ---------------------------------------------------------------------------------------------
# Tasks and runs (human roles)


class TaskListSerializer(serializers.ModelSerializer):
    domain = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Task
        fields = ("id", "domain", "seed", "kind", "intent", "complexity", "status", "h_size", "chain_length",
                  "reason_for_call", "audit_flags", "review_status", "reviewed_at", "content_hash", "created_at")



class TaskSerializer(TaskListSerializer):
    class Meta(TaskListSerializer.Meta):
        fields = TaskListSerializer.Meta.fields + (
            "user_scenario", "instruction", "policy_version", "gold_chain", "gold_calls", "communicate_info",
            "evaluation", "subgraph", "c_h", "distractor_count")


class TaskViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_value_regex = LOOKUP_VALUE_REGEX
    queryset = Task.objects.select_related("domain")
    filterset_class = selectors.TaskFilter  # the review queue's filters (q searches)
    pagination_class = Cursor

    def get_queryset(self) -> QuerySet[Task]:
        if self.action == "list":
            return super().get_queryset().only(
                "id", "domain__slug", "seed", "kind", "intent", "complexity", "status", "h_size", "chain_length",
                "reason_for_call", "audit_flags", "review_status", "reviewed_at", "content_hash", "created_at")
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
    lookup_value_regex = LOOKUP_VALUE_REGEX
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

    # The run's list filters and cursor are not this action's: it pages the steps by number.
    @extend_schema(responses=StepSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=StepPages)
    def steps(self, request: Request, pk: Any = None, **kwargs: Any) -> Response:
        """The run's steps, oldest first, a page at a time (?page=N)."""
        run = self.get_object()
        rows = self.paginate_queryset(RunStep.objects.filter(run=run).order_by("index"))
        return self.get_paginated_response(StepSerializer(rows, many=True).data)


# ---------------------------------------------------------------------------------------------
# Sessions (agents)


class CanPlaySessions(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.has_perm("tasks.play_session"))


def _llm_user_refusal() -> Response | None:
    """Why a session cannot have the LLM user here (a 400 the caller can act on), or None."""
    from tasks.services import llm_configured

    if not llm_configured():
        return Response({"detail": "the llm user needs an LLM endpoint on the server: set SCALEENV_LLM_BASE_URL and "
                                   "SCALEENV_LLM_MODEL (or start the session with user=scripted)"},
                        status=status.HTTP_400_BAD_REQUEST)
    return None


class StartSession(serializers.Serializer):
    task = serializers.IntegerField(min_value=1, max_value=2**53 - 1, help_text="id of the task to play")
    agent_model = serializers.CharField(required=False, allow_blank=True, max_length=120, default="",
                                        help_text="what the agent is (recorded on the run)")
    user = serializers.ChoiceField(choices=["scripted", "llm"], default="scripted", required=False, help_text=(
        "the simulated user: scripted (deterministic) or llm (a model reading the task's user scenario; "
        "needs SCALEENV_LLM_BASE_URL and SCALEENV_LLM_MODEL on the server)"))


class FunctionCall(serializers.Serializer):
    name = serializers.CharField(help_text="the tool's name")
    arguments = serializers.CharField(help_text="the arguments, a JSON string")


class ChatToolCall(serializers.Serializer):
    id = serializers.CharField(help_text="the call's id (a tool message's tool_call_id answers it)")
    type = serializers.ChoiceField(choices=["function"])
    function = FunctionCall()


class ChatMessage(serializers.Serializer):
    """One message of the conversation, in the OpenAI chat format."""

    role = serializers.ChoiceField(choices=["system", "user", "assistant", "tool"])
    content = serializers.CharField(allow_null=True, allow_blank=True,
                                    help_text="the text (null on an assistant message that calls a tool)")
    tool_calls = ChatToolCall(many=True, required=False, help_text="an assistant message's tool call")
    tool_call_id = serializers.CharField(required=False, help_text="a tool message: the call it answers")


class StartedSession(serializers.Serializer):
    session = serializers.IntegerField(help_text="the session's id (use it in the other calls)")
    messages = ChatMessage(many=True, help_text="the system message (the domain's policy) and the user's opening")
    tools = serializers.ListField(child=serializers.DictField(), help_text="OpenAI function schemas")


class ToolCall(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="the tool's name")
    arguments = serializers.JSONField(required=False, default=dict,
                                      help_text="an object, or a JSON string of one (as OpenAI tool calls carry them)")


_start_bodies: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
_start_bodies_lock = threading.Lock()


def _started(run_id: int, task_key: tuple[Any, ...], messages: list[dict[str, Any]],
             tools: list[dict[str, Any]]) -> HttpResponse:
    """The answer to a session start: its id, the first messages and the tool schemas. With the
    scripted user the messages and tools are the same for every session of a task, so their JSON
    (the policy and every schema, tens of kilobytes) is rendered once per task and process."""
    with _start_bodies_lock:
        rendered = _start_bodies.get(task_key)
    if rendered is None:
        rendered = JSONRenderer().render({"messages": messages, "tools": tools})
        with _start_bodies_lock:
            _start_bodies[task_key] = rendered
            while len(_start_bodies) > 256:
                _start_bodies.popitem(last=False)
    body = b'{"session":%d,' % run_id + rendered[1:]
    return HttpResponse(body, status=status.HTTP_201_CREATED, content_type="application/json")


def _plainly_valid(serializer: type[serializers.Serializer], data: Any) -> dict[str, Any] | None:
    """The validated body of a tool call or a message when it is plainly valid (nearly every call of
    a trainer), without instantiating the serializer, which costs more than the call's own work;
    None for anything else, which the serializer then judges (and words the error). The request's
    JSON parser has already refused NUL and lone surrogates (scaleenv_site/api.py)."""
    if not isinstance(data, dict):
        return None
    fields = serializer._declared_fields  # the limits come from the serializer itself
    if serializer is ToolCall and set(data) <= {"name", "arguments"}:
        name, arguments = data.get("name"), data.get("arguments", {})
        if (isinstance(name, str) and 0 < len(name) <= fields["name"].max_length and name == name.strip()
                and isinstance(arguments, (dict, str))):
            return {"name": name, "arguments": arguments}
    if serializer is StartSession and "task" in data and set(data) <= {"task", "agent_model", "user"}:
        task, model, user = data["task"], data.get("agent_model", ""), data.get("user", "scripted")
        if (type(task) is int and fields["task"].min_value <= task <= fields["task"].max_value
                and isinstance(model, str) and len(model) <= fields["agent_model"].max_length
                and model == model.strip() and user in fields["user"].choices):
            return {"task": task, "agent_model": model, "user": user}
    if serializer is Message and set(data) == {"content"}:
        content = data["content"]
        if isinstance(content, str) and len(content) <= fields["content"].max_length:
            return {"content": content}
    return None


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
    full_breakdown = serializers.DictField(required=False, help_text=(
        "the reward's whole breakdown, with the expected values: only for roles that may read tasks "
        "(an agent's token never gets it)"))


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
    create=extend_schema(summary="Start a session", description=(
        "Start an episode on a task: the answer holds the session's id, the first messages (the domain's "
        "policy as the system message, the simulated user's opening) and the tools as OpenAI function "
        "schemas."), request=StartSession, responses={201: StartedSession,
                                                          429: _refusal("Too many open sessions or starts.")}),
    retrieve=extend_schema(summary="Read a session", description=(
        "The session's state and its conversation so far, in the OpenAI chat format."), responses=SessionState),
)
class SessionViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Start an episode on a task, call tools, talk to the simulated user, finish for the reward."""

    lookup_value_regex = LOOKUP_VALUE_REGEX
    queryset = Run.objects.none()
    permission_classes = [CanPlaySessions]
    # Agents post JSON and read JSON; no browsable pages to negotiate for on the hottest endpoints.
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONFirstNegotiation
    serializer_class = StartSession
    throttle_scope = "session-start"

    def get_throttles(self) -> list[Any]:
        from scaleenv_site.throttles import ScopedThrottle, UserThrottle

        return [UserThrottle()] + ([ScopedThrottle()] if self.action == "create" else [])

    def _run(self, pk: Any, check: bool = True) -> int:
        """The session id of the path; 404 unless it is one of this account's sessions (the calls
        below leave that check to the session's locked read, which refuses others' too)."""
        try:
            run_id = int(pk)
        except (TypeError, ValueError):
            raise Http404("no such session") from None
        if not 0 < run_id < 2**63:  # no row has it (and the database could not even be asked about it)
            raise Http404("no such session")
        if check and not Run.objects.filter(pk=run_id, owner=self.request.user, agent="external").exists():
            raise Http404("no such session")
        return run_id

    def _body(self, serializer: type[serializers.Serializer], run_id: int) -> dict[str, Any]:
        """The validated body; an invalid one is a 400 on the account's own session, a 404 on any other."""
        plain = _plainly_valid(serializer, self.request.data)
        if plain is not None:
            return plain
        body = serializer(data=self.request.data)
        if not body.is_valid():
            self._run(run_id)
            body.is_valid(raise_exception=True)
        return body.validated_data

    def _act(self, fn: Any) -> Response:
        try:
            return Response(fn())
        except sessions.SessionError as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        except Run.DoesNotExist:
            raise Http404("no such session") from None

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        valid = _plainly_valid(StartSession, request.data)
        if valid is None:
            body = StartSession(data=request.data)
            body.is_valid(raise_exception=True)
            valid = body.validated_data
        task = sessions.session_task(valid["task"])
        if task is None:
            return Response({"detail": f"no task {valid['task']}"}, status=status.HTTP_404_NOT_FOUND)
        simulated = valid.get("user", "scripted")
        if simulated == "llm":
            refusal = _llm_user_refusal()
            if refusal is not None:
                return refusal
        try:
            run, messages, tools = sessions.start_session(task, request.user, valid["agent_model"], user=simulated)
        except sessions.SessionError as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        if simulated == "llm":  # the opening is the model's, new each time
            return Response({"session": run.pk, "messages": messages, "tools": tools}, status=status.HTTP_201_CREATED)
        return _started(run.pk, (task.pk, task.content_hash, task.domain.spec_hash), messages, tools)

    def retrieve(self, request: Request, pk: Any = None, **kwargs: Any) -> Response:
        run = Run.objects.select_related("task", "task__domain").get(pk=self._run(pk))
        return Response({"session": run.pk, "task": run.task_id, "termination": run.termination, "reward": run.reward,
                         "step_count": run.step_count, "messages": sessions.messages_of(run)})

    @extend_schema(summary="Call a tool", description=(
        "Run one tool call on the session's environment. A refused or malformed call (unknown tool, invalid "
        "arguments, the tool's own exception) is an error observation, not an HTTP error."),
        request=ToolCall, responses={200: ToolResult, **CLOSED})
    @action(detail=True, methods=["post"], url_path="tool-calls")
    def tool_calls(self, request: Request, pk: Any = None, **kwargs: Any) -> Response:
        run_id = self._run(pk, check=False)
        body = self._body(ToolCall, run_id)
        return self._act(lambda: _tool_call_answer(run_id, request.user, body))

    @extend_schema(summary="Say something to the user", description=(
        "Send the agent's message; the simulated user answers. ###STOP### in either ends the session, and "
        "the answer then carries the score."), request=Message, responses={200: UserReply, **CLOSED})
    @action(detail=True, methods=["post"])
    def messages(self, request: Request, pk: Any = None, **kwargs: Any) -> Response:
        run_id = self._run(pk, check=False)
        body = self._body(Message, run_id)
        return self._act(lambda: _message_answer(run_id, request.user, body))

    @extend_schema(summary="Finish and score", description=(
        "End the session and get its reward; finishing a finished session answers its score again."),
        request=None, responses={200: Score})
    @action(detail=True, methods=["post"])
    def finish(self, request: Request, pk: Any = None, **kwargs: Any) -> Response:
        run_id = self._run(pk, check=False)
        return self._act(lambda: self._score(sessions.finish(run_id, request.user)))

    def _score(self, result: dict[str, Any]) -> dict[str, Any]:
        return _score_for(self.request.user, result)


def _score_for(user: Any, result: dict[str, Any]) -> dict[str, Any]:
    """Expected values are the answer key: only roles that may read tasks see them."""
    if user.has_perm("tasks.view_task"):
        return {"reward": result["reward"], "termination": result["termination"],
                "breakdown": sessions.agent_view(result)["breakdown"], "full_breakdown": result["breakdown"]}
    return sessions.agent_view(result)


def _tool_call_answer(run_id: int, user: Any, body: dict[str, Any]) -> dict[str, Any]:
    return sessions.call_tool(run_id, user, body["name"], body.get("arguments", {}))


def _message_answer(run_id: int, user: Any, body: dict[str, Any]) -> dict[str, Any]:
    reply = sessions.send_message(run_id, user, body["content"])
    if reply.get("finished"):
        error = {"error": reply["error"]} if reply.get("error") else {}  # the LLM user failed
        return {"user": reply["user"], "finished": True, **error, **_score_for(user, reply)}
    return reply


# ---------------------------------------------------------------------------------------------
# Plain session calls: the same answers without DRF's request cycle


_PLAIN_ACTIONS: dict[str, tuple[str, type[serializers.Serializer], Any]] = {
    "tool-calls": ("tool_calls", ToolCall, _tool_call_answer),
    "messages": ("messages", Message, _message_answer),
}
_drf_views: dict[str, Any] = {}


def _drf_session_view(path_action: str) -> Any:
    """The router's own view of a session action (found once): every call the plain path does not
    take goes there, so errors, refusals and their wording stay DRF's."""
    if not _drf_views:
        from scaleenv_site.api_router import build_router

        names = {f"session-{path}": path for path in _PLAIN_ACTIONS}
        for pattern in build_router().urls:
            if getattr(pattern, "name", None) in names:
                _drf_views[names[pattern.name]] = pattern.callback
    return _drf_views[path_action]


@csrf_exempt  # token calls only; anything else goes to the DRF view, which checks CSRF for cookie sign-ins
def plain_session_call(request: HttpRequest, pk: str, action_path: str) -> HttpResponse:
    """``POST /api/sessions/<id>/tool-calls/`` and ``/messages/``.

    Nearly every request of a trainer is plain: a token, a JSON body that is plainly valid, JSON
    accepted, no query string. Those are answered here with what the DRF view would answer (the
    same authentication, permission, throttle, parser and service, rendered by DRF's renderer with
    its headers) without DRF's request and response cycle, ~10 % of such a call's CPU. Anything else,
    and any refusal but a finished or busy session, goes to the DRF view unchanged."""
    answer = plain_session_answer(request, pk, action_path) if settings.SCALEENV_SESSION_PLAIN_PATH else None
    return answer if answer is not None else _drf_session_view(action_path)(request, pk=pk)


def _plain_request(request: HttpRequest, serializer: type[serializers.Serializer]) -> tuple[Any, dict[str, Any]] | None:
    """(account, validated body) of a plain agent request (a token, a plainly valid JSON body, JSON
    accepted, no query string) that may play sessions; None for any other request."""
    from scaleenv_site.api import StrictJSONParser
    from scaleenv_site.auth import CachedTokenAuthentication

    header = request.META.get("HTTP_AUTHORIZATION", "")
    if (request.method != "POST" or request.GET or request.content_type != "application/json"
            or request.content_params.get("charset", "utf-8").lower() != "utf-8"
            or request.META.get("HTTP_ACCEPT", "").strip() not in JSONFirstNegotiation.ANY
            or not header.startswith("Token ") or len(header.split()) != 2):
        return None
    try:
        user, _token = CachedTokenAuthentication().authenticate_credentials(header.split()[1])
        data = StrictJSONParser().parse(io.BytesIO(request.body), parser_context={"request": request})
    except Exception:  # noqa: BLE001 - DRF answers it (401, 400, 413), from the same classes
        return None
    body = _plainly_valid(serializer, data)
    if body is None or not user.has_perm("tasks.play_session"):
        return None
    request.user = user  # what DRF sets too; the throttles count per account
    return user, body


def _throttled(request: HttpRequest, view: Any = None) -> bool:
    """Whether a throttle of the session views refuses the request (counted, as DRF counts it)."""
    from scaleenv_site.throttles import ScopedThrottle, UserThrottle

    throttles = [UserThrottle()] + ([ScopedThrottle()] if view is not None else [])
    return not all(throttle.allow_request(request, view) for throttle in throttles)


class _StartScope:  # what the scoped throttle reads of the view that starts sessions
    throttle_scope = "session-start"


def plain_session_start(request: HttpRequest) -> HttpResponse | None:
    """``POST /api/sessions/`` on the plain path (the site's WSGI handler calls it), or None (nothing
    done) when the request is not plain: DRF's view answers it (a session with the LLM user, a task
    that does not exist, a throttle's refusal)."""
    plain = _plain_request(request, StartSession)
    if plain is None or plain[1]["user"] != "scripted":
        return None
    user, body = plain
    task = sessions.session_task(body["task"])
    if task is None or _throttled(request, _StartScope):
        return None  # DRF answers: the 404 (nothing was counted), or the 429 (DRF counts it again)
    try:
        run, messages, tools = sessions.start_session(task, user, body["agent_model"], user="scripted")
    except sessions.SessionError as exc:
        response = HttpResponse(JSONRenderer().render({"detail": str(exc)}), content_type="application/json",
                                status=exc.status)
    else:
        response = _started(run.pk, (task.pk, task.content_hash, task.domain.spec_hash), messages, tools)
    response["Allow"] = "POST, OPTIONS"  # as DRF's answer carries it
    return response


def plain_session_answer(request: HttpRequest, pk: str, action_path: str) -> HttpResponse | None:
    """The plain path's answer to a tool call or a message, or None (nothing done) when the request
    is not plain. Also called by the site's WSGI handler (scaleenv_site/handlers.py)."""
    if not (pk.isascii() and pk.isdigit() and len(pk) <= 18):
        return None
    _action, serializer, answer_of = _PLAIN_ACTIONS[action_path]
    plain = _plain_request(request, serializer)
    if plain is None:
        return None
    user, body = plain
    if _throttled(request):
        return None  # DRF counts it again and answers 429 with its Retry-After
    try:
        data, status_code = answer_of(int(pk), user, body), 200
    except sessions.SessionError as exc:
        data, status_code = {"detail": str(exc)}, exc.status
    except Run.DoesNotExist:
        return None  # nothing was done: DRF's 404
    response = HttpResponse(JSONRenderer().render(data), content_type="application/json", status=status_code)
    response["Allow"] = "POST, OPTIONS"  # as DRF's answer carries it (no Vary: the sessions have one renderer)
    return response
