"""HTML views of tasks and runs (thin: parse, call a selector, render)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from environments import batches as batch_lifecycle
from environments.models import Batch

from . import batch_forms, quality, reviews, selectors, services
from .api import visible_runs
from .models import Export, Task
from .services import start_export

TASKS_PER_PAGE = 50


@require_GET
@permission_required("tasks.view_task", raise_exception=True)
def task_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or None
    domain = request.GET.get("domain") or None
    page = Paginator(selectors.task_list_ids(status, domain), TASKS_PER_PAGE).get_page(request.GET.get("page"))
    tasks = selectors.task_list_rows(page.object_list)
    return render(request, "tasks/task_list.html", {"page": page, "tasks": tasks, "status": status,
                                                    "domain": domain})


@require_GET
@permission_required("tasks.view_task", raise_exception=True)
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(Task.objects.select_related("domain", "lease_holder").defer(
        "domain__fixture", "domain__layout", "domain__stages", "domain__sandbox", "domain__notes"), pk=pk)
    params = _filter_params(request)
    _filter, tasks = selectors.filtered_tasks(params)
    previous, following = selectors.neighbours(tasks, task.pk)
    return render(request, "tasks/task_detail.html", {
        **selectors.task_page(task), "filter_qs": params.urlencode(), "previous": previous, "following": following,
        "history": selectors.review_history(task), "verdicts": selectors.verdicts_for(task, request.user),
        "reasons": selectors.rejection_reasons(), "queue": reviews.queue_of(task), "now": timezone.now(),
        "can_review": request.user.has_perm("tasks.review_task"), "claim_on_load": request.GET.get("review") == "1",
        "graph_highlight": {"h": list(task.subgraph or []), "chain": [step["tool"] for step in task.gold_chain]}})


@require_GET
@permission_required("tasks.view_task", raise_exception=True)
def task_s0_table(request: HttpRequest, pk: int, table: str) -> HttpResponse:
    """One table of a task's s0, its distractor and task-added rows marked (loaded when opened)."""
    task = get_object_or_404(Task.objects.only("id", "s0", "distractors", "evaluation"), pk=pk)
    return render(request, "tasks/_s0_table.html", selectors.s0_table(task, table))


# ---------------------------------------------------------------------------------------------
# Trajectory replay (item 4): the run page and the fragments it loads on demand


def _number(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _visible_run(request: HttpRequest, pk: int, *fields: str):  # -> Run
    # Another account's HTTP session is not found (not forbidden): its existence is private too.
    return get_object_or_404(visible_runs(request.user).select_related("task").only(*fields), pk=pk)


@require_GET
@permission_required("tasks.view_run", raise_exception=True)
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = _visible_run(request, pk, *selectors.REPLAY_RUN_FIELDS)
    return render(request, "tasks/run_detail.html", selectors.replay_page(
        run, step=_number(request.GET.get("step")), page=_number(request.GET.get("page"))))


@require_GET
@permission_required("tasks.view_run", raise_exception=True)
def run_steps(request: HttpRequest, pk: int) -> HttpResponse:
    """One page of the run's steps (``open=all``: with their bodies)."""
    run = _visible_run(request, pk, "id", "step_count", "task_id", "task__id")
    context = selectors.replay_step_rows(run, _number(request.GET.get("page")) or 1,
                                         open_all=request.GET.get("open") == "all")
    return render(request, "tasks/_run_steps.html", {
        **context, "run": run, "open_all": request.GET.get("open") == "all",
        "failing_index": _number(request.GET.get("failing")), "current": _number(request.GET.get("current"))})


@require_GET
@permission_required("tasks.view_run", raise_exception=True)
def run_step(request: HttpRequest, pk: int) -> HttpResponse:
    """One step's body (``?index=N``): the tool-call card, the message, the state diff (loaded when
    the step opens); with ``part`` all of one part of it ("show all")."""
    index, part = _number(request.GET.get("index")), request.GET.get("part")
    if index is None or (part is not None and part not in selectors.REPLAY_BODY_PARTS):
        raise Http404("no such step")
    run = _visible_run(request, pk, "id", "task_id", "task__id")
    step = selectors.replay_step(run, index)
    if part is not None:
        return render(request, "tasks/_run_step_part.html", {"run": run, "step": step,
                                                             **selectors.replay_step_part(step, part)})
    return render(request, "tasks/_run_step_body.html", {
        "run": run, "step": selectors.step_header(step), "body": selectors.step_body(step)})


@require_GET
@permission_required("tasks.view_run", raise_exception=True)
def run_final_state(request: HttpRequest, pk: int) -> HttpResponse:
    """The final state against s_gt, coloured by column policy (loaded after the page)."""
    run = _visible_run(request, pk, "id", "task_id", "reward", "breakdown", "final_state", "task__id", "task__s0",
                       "task__s_gt", "task__domain_id")
    return render(request, "tasks/_run_final_state.html", {"run": run, **selectors.replay_final_state(run)})


# ---------------------------------------------------------------------------------------------
# Review (the queue, the review panel on the task page, bulk decisions)

QUEUE_PAGE_SIZE = 50
BULK_INLINE_LIMIT = 200  # above this, a bulk decision runs as background work with a batch row


def _filter_params(request: HttpRequest) -> QueryDict:
    """The queue's filters from the request (GET, or the hidden fields a POST carries)."""
    source = request.POST if request.method == "POST" else request.GET
    params = QueryDict(mutable=True)
    for name in selectors.TaskFilter.base_filters:
        if source.get(name):
            params[name] = source[name]
    return params


def _with_review(params: QueryDict) -> str:
    """The filter's query string plus ``review=1`` (the task page then takes the task's lease)."""
    query = params.copy()
    query["review"] = "1"
    return query.urlencode()


@require_GET
@permission_required("tasks.view_task", raise_exception=True)
def review_queue(request: HttpRequest) -> HttpResponse:
    reviews.expire_leases()  # a run-out lease is pending again before anything is counted or listed
    params = _filter_params(request)
    task_filter, tasks = selectors.filtered_tasks(params)
    counts = selectors.review_counts(tasks)
    # The counts already say how many match: the paginator need not count again.
    page = CountedPaginator(selectors.queue_ids(tasks), QUEUE_PAGE_SIZE, counts["total"]).get_page(
        request.GET.get("page"))
    return render(request, "tasks/review_queue.html", {
        "filter": task_filter, "page": page, "tasks": selectors.queue_rows(page.object_list),
        "filter_qs": params.urlencode(),
        "counts": counts, "all_counts": selectors.review_counts(Task.objects.all()) if params else counts,
        "queue": reviews.default_queue(), "reasons": selectors.rejection_reasons(),
        "can_review": request.user.has_perm("tasks.review_task"), "now": timezone.now()})


class CountedPaginator(Paginator):
    def __init__(self, object_list: Any, per_page: int, count: int) -> None:
        super().__init__(object_list, per_page)
        self._known_count = count

    @property
    def count(self) -> int:  # type: ignore[override]
        return self._known_count


@require_GET
@permission_required("tasks.view_task", raise_exception=True)
def review_agreement(request: HttpRequest) -> HttpResponse:
    """Agreement between reviewers and the adjudication count (a fragment the queue loads after it
    renders: it reads every verdict)."""
    queue = reviews.default_queue()
    return render(request, "tasks/_agreement.html", {
        "queue": queue, "agreement": selectors.agreement(Task.objects.all(), queue.reviews_required),
        "disputed": selectors.disputed_count()})


@require_POST
@permission_required("tasks.review_task", raise_exception=True)
def review_next(request: HttpRequest) -> HttpResponse:
    reviews.expire_leases()
    params = _filter_params(request)
    _filter, tasks = selectors.filtered_tasks(params)
    after = int(request.POST.get("after") or 0)
    while True:
        task_id = selectors.next_task_for(request.user, tasks, after)
        if task_id is None:
            messages.info(request, "Nothing left for you to review under this filter.")
            return redirect(f"{reverse('tasks:review-queue')}?{params.urlencode()}")
        try:
            reviews.claim(task_id, request.user)
        except reviews.ReviewError:  # taken between the read and the claim: try the next one
            after = task_id
            tasks = tasks.exclude(pk=task_id)
            continue
        return redirect(f"{reverse('tasks:task-detail', args=[task_id])}?{_with_review(params)}")


def _panel(request: HttpRequest, task_id: int, error: str = "", status: int = 200) -> HttpResponse:
    task = get_object_or_404(Task.objects.select_related("lease_holder").only(
        "id", "review_status", "lease_holder__username", "lease_expires_at", "queue_id", "reviewed_at"), pk=task_id)
    params = _filter_params(request)
    return render(request, "tasks/_review_panel.html", {
        "task": task, "error": error, "filter_qs": params.urlencode(), "reasons": selectors.rejection_reasons(),
        "verdicts": selectors.verdicts_for(task, request.user), "queue": reviews.queue_of(task),
        "can_review": request.user.has_perm("tasks.review_task"), "now": timezone.now()}, status=status)


@require_POST
@permission_required("tasks.review_task", raise_exception=True)
def review_claim(request: HttpRequest, pk: int) -> HttpResponse:
    """Take or renew the lease (the open panel posts this on load and every minute)."""
    try:
        reviews.claim(pk, request.user)
    except reviews.ReviewError as exc:
        return _panel(request, pk, str(exc))
    return _panel(request, pk)


@require_POST
@permission_required("tasks.review_task", raise_exception=True)
def review_release(request: HttpRequest, pk: int) -> HttpResponse:
    reviews.release(pk, request.user)
    return _panel(request, pk)


@require_POST
@permission_required("tasks.review_task", raise_exception=True)
def review_submit(request: HttpRequest, pk: int) -> HttpResponse:
    verdict, reasons, comment = request.POST.get("verdict", ""), request.POST.getlist("reasons"), request.POST.get(
        "comment", "")
    try:
        if request.POST.get("adjudicate"):
            reviews.adjudicate(pk, request.user, verdict, reasons, comment)
        else:
            reviews.submit(pk, request.user, verdict, reasons, comment)
    except reviews.ReviewError as exc:
        return _panel(request, pk, str(exc), status=exc.status)
    # Decided: on to the next task for me under the same filter (or back to the queue).
    params = _filter_params(request)
    _filter, tasks = selectors.filtered_tasks(params)
    following = selectors.next_task_for(request.user, tasks, after=pk)
    target = (f"{reverse('tasks:task-detail', args=[following])}?{_with_review(params)}" if following
              else f"{reverse('tasks:review-queue')}?{params.urlencode()}")
    if following:
        try:
            reviews.claim(following, request.user)
        except reviews.ReviewError:
            pass  # the page's panel says who holds it
    messages.success(request, f"Task {pk}: {verdict.replace('_', ' ')}.")
    if request.htmx:
        return HttpResponseClientRedirect(target)
    return redirect(target)


@require_POST
@permission_required("tasks.review_task", raise_exception=True)
def review_reopen(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        reviews.reopen(pk, request.user, request.POST.get("comment", ""))
    except reviews.ReviewError as exc:
        return _panel(request, pk, str(exc), status=exc.status)
    return _panel(request, pk)


@require_POST
@permission_required("tasks.review_task", raise_exception=True)
def review_bulk(request: HttpRequest) -> HttpResponse:
    """Decide every undecided task of the filter: first a confirmation naming the count and the
    filter, then (with ``confirm`` and the same count) the decision, inline or as a batch."""
    params = _filter_params(request)
    task_filter, tasks = selectors.filtered_tasks(params)
    targets = reviews.undecided(tasks)
    count = targets.count()
    verdict, reasons, comment = request.POST.get("verdict", ""), request.POST.getlist("reasons"), request.POST.get(
        "comment", "")
    context = {"filter": task_filter, "filter_qs": params.urlencode(), "count": count, "verdict": verdict,
               "verdict_label": {"approved": "Approve", "rejected": "Reject", "needs_changes": "Ask for changes on"}.get(
                   verdict, verdict),
               "reasons": reasons, "comment": comment, "reason_labels": selectors.rejection_reasons()}
    if request.POST.get("confirm") != "yes" or str(count) != request.POST.get("count"):
        # The count may have changed since the confirmation was shown: confirm again.
        return render(request, "tasks/_bulk_confirm.html", context)
    try:
        if count <= BULK_INLINE_LIMIT:
            result = reviews.decide_many(list(targets.values_list("pk", flat=True)), request.user, verdict, reasons,
                                         comment)
            messages.success(request, f"{result['decided']} task(s) {verdict.replace('_', ' ')}; "
                                      f"{result['skipped_leased']} skipped (someone is reviewing them).")
            return HttpResponseClientRedirect(f"{reverse('tasks:review-queue')}?{params.urlencode()}")
        batch = reviews.start_bulk(params.dict(), list(targets.values_list("pk", flat=True)), request.user, verdict,
                                   reasons, comment)
    except reviews.ReviewError as exc:
        return render(request, "tasks/_bulk_confirm.html", {**context, "error": str(exc)}, status=exc.status)
    messages.info(request, f"Deciding {count} tasks in the background (batch #{batch.pk}).")
    return HttpResponseClientRedirect(f"{reverse('tasks:review-queue')}?{params.urlencode()}")


# ---------------------------------------------------------------------------------------------
# Batches from the browser and quality over time (issue 9, items 6 and 7)


BATCHES_PER_PAGE = 25


def _start_forms(bound: dict[str, object] | None = None) -> dict[str, object]:
    """The three start forms, each with its own prefix (one of them bound when it was posted)."""
    bound = bound or {}
    return {kind: bound[kind] if kind in bound else form_class(prefix=kind)
            for kind, form_class in batch_forms.FORMS.items()}


def _batches_page(request: HttpRequest, bound: dict[str, object] | None = None, status: int = 200) -> HttpResponse:
    kind = request.GET.get("kind") or None
    page = Paginator(selectors.batch_list(kind), BATCHES_PER_PAGE).get_page(request.GET.get("page"))
    now = timezone.now()
    return render(request, "tasks/batches.html", {
        "page": page, "rows": [(b, selectors.batch_figures(b, now)) for b in page], "kind": kind,
        "kinds": [k.name for k in batch_lifecycle.kinds()], "forms": _start_forms(bound),
        "can_start": request.user.has_perm("environments.add_batch")}, status=status)


@require_GET
@permission_required("environments.view_batch", raise_exception=True)
def batch_list(request: HttpRequest) -> HttpResponse:
    return _batches_page(request)


@permission_required("environments.add_batch", raise_exception=True)  # first: a GET without it is a 403 too
@require_POST
def batch_start(request: HttpRequest, kind: str) -> HttpResponse:
    """Create (or resume) a batch and queue its jobs; the work runs in Celery workers."""
    form_class = batch_forms.FORMS.get(kind)
    if form_class is None:
        raise Http404("no such kind of batch")
    form = form_class(request.POST, prefix=kind)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if kind == "synthesis":
                launched = [services.launch_synthesis_batch(
                    backend=data["backend"], domains=data["domains"], seed=data["seed"],
                    fault_rate=data["fault_rate"] or 0.0, domain_name=data.get("domain_name") or "",
                    description=data.get("description") or "")]
            elif kind == "tasks":
                launched = [services.launch_task_batch(domains=form.chosen_domains(), per_domain=data["per_domain"],
                                                       seed=data["seed"], complexity=data["complexity"],
                                                       backend=data.get("backend") or "procedural",
                                                       scenarios=data.get("scenarios") or "procedural")]
            else:
                launched = services.launch_rollout_batches(agents=data["agents"], which=data["tasks"],
                                                           trials=data["trials"], user=data.get("user") or "scripted")
        except ValueError as exc:
            form.add_error(None, str(exc).replace("--", ""))
        else:
            for one in launched:
                _say_launched(request, one)
            if len(launched) == 1:
                return redirect("tasks:batch-detail", pk=launched[0].batch.pk)
            return redirect(f"{reverse('tasks:batch-list')}?kind={kind}")
    return _batches_page(request, {kind: form}, status=400)


def _say_launched(request: HttpRequest, launched: services.Launched) -> None:
    batch = launched.batch
    name = f"{batch.kind.capitalize()} batch #{batch.pk}"
    if launched.error:
        messages.error(request, f"{name} was saved, but its jobs were not sent: {launched.error}")
    elif launched.created:
        messages.success(request, f"Started {name}: {launched.sent} job(s) queued for a worker.")
    elif launched.sent:
        messages.info(request, f"{name} has the same parameters: resumed it ({launched.sent} job(s) queued again).")
    else:
        messages.info(request, f"{name} has the same parameters and nothing left to do ({batch.status}).")


@require_GET
@permission_required("environments.view_batch", raise_exception=True)
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(Batch.objects.defer("sandbox"), pk=pk)
    return render(request, "tasks/batch_detail.html", {
        **selectors.batch_live(batch, idle_after=settings.SCALEENV_WORKER_WAIT), "params": selectors.batch_params(batch)})


@require_GET
@permission_required("environments.view_batch", raise_exception=True)
def batch_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The polled progress fragment; it stops polling once the batch has finished."""
    batch = get_object_or_404(Batch.objects.defer("sandbox"), pk=pk)
    try:
        idle_since = float(request.GET["idle_since"]) if request.GET.get("idle_since") else None
    except ValueError:
        idle_since = None
    return render(request, "tasks/_batch_live.html", selectors.batch_live(
        batch, idle_since=idle_since, seen=request.GET.get("seen", "")[:100], idle_after=settings.SCALEENV_WORKER_WAIT))


@require_GET
@permission_required("environments.view_batch", raise_exception=True)
def batch_row(request: HttpRequest, pk: int) -> HttpResponse:
    """One row of the batches list (polled while the batch runs)."""
    batch = get_object_or_404(Batch.objects.only(*selectors.BATCH_LIST_FIELDS), pk=pk)
    return render(request, "tasks/_batch_row.html", {"batch": batch, "figures": selectors.batch_figures(batch)})


@permission_required("environments.add_batch", raise_exception=True)  # first: a GET without it is a 403 too
@require_POST
def batch_resume(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a batch's jobs again (failed items, work a lost worker left, jobs the broker never got)."""
    batch = get_object_or_404(Batch, pk=pk)
    launched = services.resume_batch(batch)
    if launched.error:
        messages.error(request, launched.error)
    else:
        messages.info(request, f"{launched.sent} job(s) of batch #{batch.pk} queued again." if launched.sent
                      else f"Nothing of batch #{batch.pk} needed sending again.")
    return redirect("tasks:batch-detail", pk=batch.pk)


@require_GET
@permission_required("tasks.view_task", raise_exception=True)
def quality_page(request: HttpRequest) -> HttpResponse:
    form, quality_filter = quality.parse_filter(request.GET)
    return render(request, "tasks/quality.html", {"form": form, "filter": quality_filter,
                                                  **quality.quality_page(quality_filter)})


# ---------------------------------------------------------------------------------------------
# Exports (item 8): the list with its start form, the polled row, the permission-checked download


EXPORTS_PER_PAGE = 25


class ExportForm(forms.Form):
    """What to export besides the task filter (whose fields come from the review queue's TaskFilter)."""

    format = forms.ChoiceField(choices=Export.Format.choices, initial=Export.Format.TASKS_JSONL,
                               widget=forms.RadioSelect)
    all_statuses = forms.BooleanField(required=False, label="Every review status, not only approved tasks")


def _export_filters(data: QueryDict) -> dict[str, Any]:
    return {key: data.get(key) for key in selectors.EXPORT_FILTER_KEYS if data.get(key)}


def _exports_page(request: HttpRequest, form: ExportForm, filters: dict[str, Any], status: int = 200) -> HttpResponse:
    page = Paginator(selectors.export_list(), EXPORTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "tasks/exports.html", {
        "page": page, "exports": selectors.export_rows(page.object_list, request.user), "form": form,
        "filter": selectors.export_filter_form(filters, request.user), "domains": selectors.export_domain_choices(),
        "chosen_domain": filters.get("domain", ""), "can_export": selectors.can_export(request.user),
        "is_admin": selectors.is_admin(request.user)}, status=status)


@require_GET
@permission_required("tasks.view_export", raise_exception=True)
def export_list(request: HttpRequest) -> HttpResponse:
    return _exports_page(request, ExportForm(), {})


@require_POST
@permission_required(("tasks.export_dataset", "tasks.add_export"), raise_exception=True)
def export_start(request: HttpRequest) -> HttpResponse:
    form = ExportForm(request.POST)
    filters = _export_filters(request.POST)
    if form.is_valid():
        try:
            export = start_export(requester=request.user, format=form.cleaned_data["format"], filters=filters,
                                  all_statuses=form.cleaned_data["all_statuses"])
        except ValueError as exc:  # PermissionDenied (every status asked by a non-Admin) becomes a 403
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Export #{export.pk} started: it appears below and updates by itself.")
            return redirect("tasks:export-list")
    return _exports_page(request, form, filters, status=400)


@require_GET
@permission_required("tasks.view_export", raise_exception=True)
def export_row(request: HttpRequest, pk: int) -> HttpResponse:
    """One row of the exports list, polled while the export is queued or running."""
    export = get_object_or_404(selectors.export_list(), pk=pk)
    return render(request, "tasks/_export_row.html", {"e": selectors.export_rows([export], request.user)[0]})


@require_GET
@permission_required("tasks.export_dataset", raise_exception=True)
def export_download(request: HttpRequest, pk: int) -> FileResponse:
    """The export's file, streamed; only to its requester or an Admin. ``?part=metadata``: the OpenAI
    export's provenance sidecar."""
    export = get_object_or_404(Export.objects.only("id", "requester_id", "format", "status", "file_name", "sha256"),
                               pk=pk)
    if not selectors.can_download(request.user, export):
        raise PermissionDenied("only the account that made an export, or an Admin, may download it")
    part = request.GET.get("part", "data")
    path = selectors.export_file(export, part) if part in ("data", "metadata") else None
    if path is None:
        raise Http404("this export has no such file (not finished, failed or removed)")
    try:
        file = path.open("rb")
    except FileNotFoundError:  # removed since it was checked
        raise Http404("this export's file has been removed") from None
    suffix = ".metadata" if part == "metadata" else ""
    response = FileResponse(file, as_attachment=True, content_type="application/x-ndjson",
                            filename=f"scaleenv-export-{export.pk}-{export.format}{suffix}.jsonl")
    response["Cache-Control"] = "private, no-store"
    if part == "data":
        response["X-Export-SHA256"] = export.sha256
    return response
