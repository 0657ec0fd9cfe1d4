"""Exports: the file holds exactly the approved tasks (the review status is the one field read), the
formats hold what they promise, only Researchers and Admins export, only the requester or an Admin
downloads, failures are recorded on the row, and the command does the same as the page."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.test import Client

from environments import batches
from environments.models import BatchItem
from tasks import selectors, services
from tasks.exporters import (LINE_KEYS, DomainInfo, HashingWriter, OpenAIWriter, TasksWriter, clean_messages,
                             encode_object, example_problems, json_text)
from tasks.models import Export, ReviewEvent, ReviewStatus, Run, Task
from tasks.spec import openai_tools
from tests.conftest import account, page_client
from tests.tasks.conftest import stored_tasks

pytestmark = pytest.mark.django_db(transaction=True)

APPROVED = [0, 2, 3]  # positions (by seed) of the tasks the fixture approves


@pytest.fixture
def export_dir(settings, tmp_path: Path) -> Path:
    settings.SCALEENV_EXPORT_DIR = tmp_path / "exports"
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the page's export runs at enqueue time (no worker in tests)
    return settings.SCALEENV_EXPORT_DIR


@pytest.fixture
def world(export_dir) -> dict:
    """Seven real tasks with oracle runs: three approved, one rejected, one needing changes, two pending."""
    tasks = stored_tasks(seed=21, per_domain=7)
    rollout, _ = services.start_rollout_batch(agent="oracle", which="all", trials=1)
    for item in rollout.items.all():
        batches.run_item(item.pk, worker="test")
    statuses = {0: ReviewStatus.APPROVED, 1: ReviewStatus.REJECTED, 2: ReviewStatus.APPROVED,
                3: ReviewStatus.APPROVED, 4: ReviewStatus.NEEDS_CHANGES}
    for i, status in statuses.items():
        Task.objects.filter(pk=tasks[i].pk).update(review_status=status)
    curator = account("Curator", "cur")
    ReviewEvent.objects.create(task=tasks[0], actor=curator, action="approve", from_status="in_review",
                               to_status="approved", comment="clean <b>task</b>")
    return {"tasks": tasks, "approved": [tasks[i] for i in APPROVED], "domain": tasks[0].domain}


def lines_of(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n") and "\r" not in text
    return [json.loads(line) for line in text.split("\n")[:-1]]


def run_export(format: str = "tasks_jsonl", filters: dict | None = None, all_statuses: bool = False,
               requester=None) -> Export:
    export = services.start_export(requester=requester, format=format, filters=filters or {},
                                   all_statuses=all_statuses, enqueue=False)
    return services.run_export_here(export)


# ---------------------------------------------------------------------------------------------
# What the file holds


def test_it_exports_exactly_the_approved_tasks(world):
    export = run_export()
    assert export.status == "done" and export.error == ""
    path = selectors.export_file(export)
    lines = lines_of(path)
    approved = sorted(world["approved"], key=lambda t: t.pk)
    assert [line["id"] for line in lines] == [t.pk for t in approved]
    assert [line["content_hash"] for line in lines] == [t.content_hash for t in approved]
    assert {line["review"]["status"] for line in lines} == {"approved"}
    assert export.written == export.total == 3
    assert export.size_bytes == path.stat().st_size
    assert export.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert export.app_version and export.only_approved
    assert export.batch.kind == "export" and export.batch.status == "done"


def test_a_rejected_pending_or_needs_changes_task_never_appears(world):
    export = run_export()
    ids = {line["id"] for line in lines_of(selectors.export_file(export))}
    others = Task.objects.exclude(review_status=ReviewStatus.APPROVED).values_list("pk", flat=True)
    assert len(others) == 4 and ids.isdisjoint(others)


def test_a_task_line_holds_the_whole_task(world):
    export = run_export(filters={"domain": world["domain"].slug})
    line = next(x for x in lines_of(selectors.export_file(export)) if x["id"] == world["approved"][0].pk)
    task = Task.objects.get(pk=line["id"])
    view = selectors.domain_view(task.domain)
    assert list(line) == list(LINE_KEYS)
    assert line["schema"] == "scaleenv.task/1"
    assert line["user_scenario"] == task.user_scenario and line["instruction"] == task.instruction
    assert line["s0"] == task.s0 and line["s_gt"] == task.s_gt
    assert line["gold_calls"] == task.gold_calls and line["gold_chain"] == task.gold_chain
    assert line["communicate_info"] == task.communicate_info
    assert line["rubric"]["evaluation"] == task.evaluation
    assert line["rubric"]["column_policies"] == {t.name: {c["name"]: c["policy"] for c in t.columns}
                                                 for t in task.domain.tables.all()}
    assert line["policy"] == task.domain.policy and line["policy"]
    assert line["tools"] == openai_tools(view) and len(line["tools"]) == len(view.tools)
    assert line["domain"] == {"slug": task.domain.slug, "name": task.domain.name,
                              "policy_version": view.policy_version}
    assert line["audit"] == {"status": task.status, "flags": task.audit_flags}
    (event,) = line["review"]["events"]
    assert event["actor"] == "cur" and event["action"] == "approve" and event["comment"] == "clean <b>task</b>"
    assert (event["from"], event["to"]) == ("in_review", "approved")


def test_an_admin_may_export_every_status_and_pick_one(world):
    admin = account("Admin", "boss")
    everything = run_export(all_statuses=True, requester=admin)
    assert not everything.only_approved
    assert [x["id"] for x in lines_of(selectors.export_file(everything))] == sorted(t.pk for t in world["tasks"])
    rejected = run_export(all_statuses=True, requester=admin, filters={"review_status": "rejected"})
    assert [x["id"] for x in lines_of(selectors.export_file(rejected))] == [world["tasks"][1].pk]


def test_filters_narrow_the_approved_tasks_and_bad_filters_are_refused(world):
    first = world["approved"][0]
    same_kind = run_export(filters={"kind": first.kind})
    assert {x["kind"] for x in lines_of(selectors.export_file(same_kind))} == {first.kind}
    assert first.pk in {x["id"] for x in lines_of(selectors.export_file(same_kind))}
    none = run_export(filters={"domain": world["domain"].slug, "intent": "zzz"})
    assert none.status == "done" and none.written == 0 and selectors.export_file(none).read_text() == ""
    for bad in ({"colour": "red"}, {"kind": "poem"}, {"domain": "no-such-domain"}):
        with pytest.raises(ValueError):
            services.start_export(requester=None, format="tasks_jsonl", filters=bad, enqueue=False)
    with pytest.raises(ValueError):
        services.start_export(requester=None, format="csv", filters={}, enqueue=False)
    assert not Export.objects.filter(filters__has_key="colour").exists()


def test_openai_lines_validate_and_come_from_successful_runs_of_approved_tasks(world):
    export = run_export("openai_jsonl")
    assert export.status == "done"
    examples = lines_of(selectors.export_file(export))
    provenance = lines_of(selectors.export_file(export, "metadata"))
    successful = Run.objects.filter(task__in=[t.pk for t in world["approved"]], reward=1.0)
    assert len(examples) == len(provenance) == export.written == successful.count() > 0
    tools = openai_tools(selectors.domain_view(world["domain"]))
    for n, (example, meta) in enumerate(zip(examples, provenance), start=1):
        assert example_problems(example) == []
        assert set(example) == {"messages", "tools", "parallel_tool_calls"}
        assert example["tools"] == tools
        roles = [m["role"] for m in example["messages"]]
        assert roles[0] == "system" and roles[-1] == "assistant"
        for m in example["messages"]:
            for call in m.get("tool_calls") or []:
                assert isinstance(call["function"]["arguments"], str)
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
            assert "###" not in (m.get("content") or "")
        assert meta["line"] == n and meta["review_status"] == "approved" and meta["reward"] == 1.0
        run = Run.objects.get(pk=meta["run_id"])
        assert run.task_id == meta["task_id"] and run.task.content_hash == meta["content_hash"]
    assert any(m["role"] == "tool" for example in examples for m in example["messages"])


def test_a_failing_export_records_its_error_and_the_next_one_works(world, settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the export folder should be")
    settings.SCALEENV_EXPORT_DIR = blocker / "exports"
    failed = run_export()
    assert failed.status == "failed" and failed.finished_at is not None
    assert "FileExistsError" in failed.error or "NotADirectoryError" in failed.error
    item = BatchItem.objects.get(batch=failed.batch)
    assert item.status == "failed" and item.error
    assert failed.batch.status == "failed"
    settings.SCALEENV_EXPORT_DIR = tmp_path / "exports-again"
    assert run_export().status == "done"


def test_an_unreachable_broker_is_said_on_the_row(world, settings, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = False

    def down(kind, ids):  # noqa: ANN001
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(batches, "_send", down)
    response = page_client("Researcher", "res-broker").post("/exports/start/", {"format": "tasks_jsonl"})
    assert response.status_code == 302
    export = Export.objects.get()
    assert export.status == "queued" and "Could not send the job to the broker" in export.error
    assert f"batch #{export.batch_id}" in export.error


def test_a_done_export_is_not_written_twice(world):
    export = run_export()
    item = BatchItem.objects.get(batch=export.batch)
    assert batches.run_item(item.pk, worker="again") == "skipped"
    BatchItem.objects.filter(pk=item.pk).update(status="retry")  # as if redelivered after a lost lease
    assert batches.run_item(item.pk, worker="again") == "linked"
    assert Export.objects.get(pk=export.pk).sha256 == export.sha256


# ---------------------------------------------------------------------------------------------
# Who may export and download


def test_a_viewer_and_a_curator_cannot_start_or_download_an_export(world):
    export = run_export(requester=account("Researcher", "res"))
    for role in ("Viewer", "Curator"):
        client = page_client(role, f"{role.lower()}-x")
        assert client.post("/exports/start/", {"format": "tasks_jsonl"}).status_code == 403
        assert client.get(f"/exports/{export.pk}/download/").status_code == 403
        page = client.get("/exports/")
        assert page.status_code == 200 and b"Start export" not in page.content
        with pytest.raises(PermissionDenied):
            services.start_export(requester=account(role, f"{role.lower()}-y"), format="tasks_jsonl", filters={})
    assert Export.objects.count() == 1


def test_only_the_requester_or_an_admin_downloads(world):
    owner = account("Researcher", "owner")
    export = run_export(requester=owner)
    data = selectors.export_file(export).read_bytes()
    other = page_client("Researcher", "other-researcher")
    assert other.get(f"/exports/{export.pk}/download/").status_code == 403
    for client in (page_client("Admin", "admin-x"), _signed_in(owner)):
        response = client.get(f"/exports/{export.pk}/download/")
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == data
        assert response["Content-Disposition"].startswith("attachment;")
        assert response["X-Export-SHA256"] == export.sha256
    assert other.get(f"/exports/{export.pk}/download/?part=metadata").status_code == 403
    assert _signed_in(owner).get(f"/exports/{export.pk}/download/?part=metadata").status_code == 404
    assert _signed_in(owner).get(f"/exports/{export.pk}/download/?part=../../etc/passwd").status_code == 404


def test_a_researcher_cannot_ask_for_every_status(world):
    client = page_client("Researcher", "res-2")
    response = client.post("/exports/start/", {"format": "tasks_jsonl", "all_statuses": "on"})
    assert response.status_code == 403
    with pytest.raises(PermissionDenied):
        services.start_export(requester=account("Researcher", "res-3"), format="tasks_jsonl", filters={},
                              all_statuses=True)
    assert not Export.objects.exists()


def test_a_post_without_the_csrf_token_fails(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(account("Researcher", "csrf-res"))
    assert client.post("/exports/start/", {"format": "tasks_jsonl"}).status_code == 403
    assert not Export.objects.exists()


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# ---------------------------------------------------------------------------------------------
# The page and the command


def test_the_page_starts_an_export_that_runs_and_is_downloaded(world):
    client = page_client("Researcher", "res-web")
    response = client.post("/exports/start/", {"format": "tasks_jsonl", "domain": world["domain"].slug})
    assert response.status_code == 302 and response["Location"] == "/exports/"
    export = Export.objects.get()
    assert export.status == "done" and export.requester.username == "res-web"
    assert export.filters == {"domain": world["domain"].slug}
    page = client.get("/exports/").content.decode()
    assert f'id="export-{export.pk}"' in page and "Download" in page and "hx-trigger" not in page
    body = b"".join(client.get(f"/exports/{export.pk}/download/").streaming_content).decode()
    assert [json.loads(x)["id"] for x in body.splitlines()] == sorted(t.pk for t in world["approved"])


def test_bad_input_redisplays_the_form_with_the_error(world):
    client = page_client("Researcher", "res-bad")
    response = client.post("/exports/start/", {"format": "tasks_jsonl", "domain": "nope", "kind": "write"})
    assert response.status_code == 400 and b"no domain nope" in response.content
    assert client.post("/exports/start/", {"format": "zip"}).status_code == 400
    assert not Export.objects.exists()


def test_a_running_export_row_polls_and_a_finished_one_stops(world):
    export = services.start_export(requester=account("Researcher", "poll"), format="tasks_jsonl", filters={},
                                   enqueue=False)
    client = page_client("Viewer", "watcher")
    row = client.get(f"/exports/{export.pk}/row/").content.decode()
    assert 'hx-trigger="every 1s"' in row and "waiting for a worker" in row and "Download" not in row
    services.run_export_here(export)
    row = client.get(f"/exports/{export.pk}/row/").content.decode()
    assert "hx-trigger" not in row and "done" in row and ">3<" in row


def test_the_exports_page_uses_a_bounded_number_of_queries(world, django_assert_max_num_queries):
    researcher = account("Researcher", "many")
    for _ in range(30):
        services.start_export(requester=researcher, format="tasks_jsonl", filters={"kind": "write"}, enqueue=False)
    client = _signed_in(researcher)
    client.get("/exports/")
    with django_assert_max_num_queries(12):
        response = client.get("/exports/")
    assert response.status_code == 200 and response.content.decode().count('class="export-row"') == 25


def test_the_command_exports_the_same_tasks(world, tmp_path):
    out, copy = io.StringIO(), tmp_path / "copy.jsonl"
    call_command("export", "--format", "tasks_jsonl", "--domain", world["domain"].slug, "--out", str(copy),
                 "--json", stdout=out)
    figures = json.loads(out.getvalue().strip().splitlines()[-1])
    assert figures["lines"] == 3 and Path(figures["path"]).is_file()
    assert [x["id"] for x in lines_of(copy)] == sorted(t.pk for t in world["approved"])
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == figures["sha256"]
    out = io.StringIO()
    call_command("export", "--format", "openai_jsonl", "--all-statuses", "--filter", "review_status=pending",
                 "--json", stdout=out)
    assert "Provenance of each line" in out.getvalue()


# ---------------------------------------------------------------------------------------------
# The writers alone (no database)


def test_json_text_is_copied_and_other_values_encoded():
    assert json_text('{"a": [1, 2]}') == '{"a": [1, 2]}'
    assert json_text('{\n  "a": 1\n}') == '{"a": 1}'  # pretty-printed text is put on one line
    assert json_text({"b": "é"}) == '{"b": "\\u00e9"}'
    assert json.loads(encode_object([("x", 1), ("y", "two")])) == {"x": 1, "y": "two"}


def test_the_tasks_writer_streams_one_line_per_task_and_hashes_what_it_wrote(tmp_path):
    domain = DomainInfo(slug="d", name="D", policy="Be kind.\nAsk first.", policy_version="v1",
                        tools=[{"type": "function", "function": {"name": "t", "description": "", "parameters": {}}}],
                        column_policies={"items": {"id": "exempt", "qty": "exact"}})
    path = tmp_path / "tasks.jsonl"
    with path.open("wb") as file, HashingWriter(file) as out:
        writer = TasksWriter(out, {7: domain})
        for i in range(3):
            writer.write({"id": i, "content_hash": f"h{i}", "domain_id": 7, "seed": i, "kind": "write", "intent": "x",
                          "complexity": "easy", "status": "verified", "policy_version": "v1", "instruction": "hi\n",
                          "review_status": "approved", "reviewed_at": None, "created_at": None,
                          "user_scenario": '{"persona": "p"}', "s0": {"items": {}}, "gold_calls": "[]",
                          "gold_chain": [], "s_gt": '{"items": {"a": {"id": "a", "qty": 1}}}', "evaluation": {},
                          "communicate_info": [], "audit_flags": "[]"})
    data = path.read_bytes()
    assert out.lines == 3 and out.bytes == len(data) and out.sha256 == hashlib.sha256(data).hexdigest()
    rows = [json.loads(x) for x in data.decode().splitlines()]
    assert [r["id"] for r in rows] == [0, 1, 2] and rows[0]["policy"] == "Be kind.\nAsk first."
    assert rows[2]["s_gt"]["items"]["a"]["qty"] == 1 and rows[1]["rubric"]["column_policies"]["items"]["id"] == "exempt"


def test_the_writer_thread_passes_a_write_error_on():
    class Broken(io.BytesIO):
        def writelines(self, lines):  # noqa: ANN001
            raise OSError("disk full")

    writer = HashingWriter(Broken())
    writer.write_line("x" * 10)
    with pytest.raises(OSError, match="disk full"):
        writer.close()


def test_clean_messages_makes_a_valid_training_example():
    raw = [{"role": "system", "content": "policy"}, {"role": "user", "content": "hi"},
           {"role": "assistant", "content": None, "tool_calls": [
               {"id": "c1", "type": "function", "function": {"name": "get", "arguments": {"id": "a"}}}]},
           {"role": "tool", "tool_call_id": "c1", "content": {"id": "a"}},
           {"role": "assistant", "content": "Done. ###STOP###", "extra": 1},
           {"role": "user", "content": "thanks ###STOP###"}]
    messages = clean_messages(raw)
    example = {"messages": messages, "tools": [{"type": "function", "function": {"name": "get"}}]}
    assert example_problems(example) == []
    assert messages[2]["tool_calls"][0]["function"]["arguments"] == '{"id": "a"}'
    assert messages[3]["content"] == '{"id": "a"}' and messages[-1] == {"role": "assistant", "content": "Done."}
    assert clean_messages([{"role": "user", "content": "hello"}]) is None
    assert example_problems({"messages": [{"role": "user", "content": "x"}], "meta": 1}) == [
        "unexpected top-level key 'meta'", "no assistant message"]
    bad = {"messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]},
        {"role": "tool", "tool_call_id": "zz", "content": "x"}]}
    assert len(example_problems(bad)) == 2


def test_the_openai_writer_skips_runs_with_nothing_to_learn():
    out, meta = HashingWriter(io.BytesIO()), HashingWriter(io.BytesIO())
    writer = OpenAIWriter(out, meta)
    assert not writer.write({"messages": [{"role": "user", "content": "hi"}]}, "[]")
    out.close(), meta.close()
    assert writer.skipped == 1 and out.lines == meta.lines == 0
