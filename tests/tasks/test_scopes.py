"""What each role reaches. An agent's token walks every URL the project serves and gets only its own
sessions, domains with their policy and tool schemas; every task, run, batch, test, edge and other
account's session answers 403 or 404, and every HTML page refuses a signed-in agent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from environments import batches
from environments.models import Batch, Dependency, ToolTest
from tasks import services
from tasks.models import Export, Run
from tests.conftest import account, api_client, page_client
from tests.tasks.conftest import stored_tasks

pytestmark = pytest.mark.django_db(transaction=True)

# What an agent may read or do, by URL name. Everything else refuses it.
AGENT_MAY = {"api-root", "api-schema", "api-docs", "api-redoc", "healthz", "login", "logout",
             "domain-list", "domain-detail", "tool-list", "tool-detail",
             "session-list", "session-detail", "session-tool-calls", "session-messages", "session-finish",
             "session-plain-call"}
REFUSED = {401, 403, 404, 405, "sign-in"}


def url_names(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[tuple[str, list[str]]]:
    """Every named URL the project serves (namespaced), with the names of its arguments."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            namespace = f"{prefix}{entry.namespace}:" if entry.namespace else prefix
            if entry.namespace == "admin":
                continue  # Django's admin: staff only, covered by its own test below
            yield from url_names(entry, namespace)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{prefix}{entry.name}", list(entry.pattern.regex.groupindex)


@pytest.fixture
def world():
    """Tasks with rollout runs, another account's open session, and the agent under test."""
    tasks = stored_tasks(seed=9, per_domain=2)
    rollout, _ = services.start_rollout_batch(agent="oracle", which="all", trials=1)
    for item in rollout.items.all():
        batches.run_item(item.pk, worker="test")
    task = next(t for t in tasks if t.status == "verified")
    other = api_client("Agent", "someone-else")
    theirs = other.post("/api/sessions/", json.dumps({"task": task.pk}), content_type="application/json").json()
    agent = api_client("Agent", "agent")
    mine = agent.post("/api/sessions/", json.dumps({"task": task.pk}), content_type="application/json").json()
    export = Export.objects.create(requester=account("Researcher", "rita"), format="tasks_jsonl")
    return {"task": task, "agent": agent, "theirs": theirs["session"], "mine": mine["session"],
            "run": Run.objects.exclude(agent="external").first(), "export": export}


def arguments_for(name: str, world: dict[str, Any], session: int) -> dict[str, Any]:
    """Real values for a URL's arguments, chosen by what the URL names (an unknown name fails the walk)."""
    task = world["task"]
    batch = Batch.objects.first().pk
    pks = {"task": task.pk, "run": world["run"].pk, "session": session, "batch": batch,
           "tooltest": ToolTest.objects.first().pk, "tool": task.domain.tools.first().pk,
           "dependency": Dependency.objects.first().pk, "review": task.pk, "export": world["export"].pk}
    short = name.split(":")[-1]
    pk = next((pks[kind] for kind in sorted(pks, key=len, reverse=True) if short.startswith(kind)), None)
    return {"pk": pk, "slug": task.domain.slug, "name": task.domain.tools.first().name, "format": "json",
            "table": next(iter(task.s0)), "action_path": "messages"}


def outcome(response: Any) -> int | str:
    """The status, or "sign-in" for a page that sends a token-only client to the login form."""
    if response.status_code == 302 and response["Location"].startswith("/accounts/login/"):
        return "sign-in"
    return response.status_code


def walk(world: dict[str, Any], session: int) -> list[tuple[str, str, str, int | str]]:
    """(name, method, url, status) for every named URL, read and written with the agent's token."""
    answers = []
    for name, argument_names in sorted(set((n, tuple(a)) for n, a in url_names())):
        values = arguments_for(name, world, session)
        assert all(values[a] is not None for a in argument_names), f"the walk has no value for {name}"
        try:
            url = reverse(name, kwargs={a: values[a] for a in argument_names})
        except Exception as exc:  # a URL this walk cannot build is a gap in the walk, not a pass
            raise AssertionError(f"cannot build {name} with {argument_names}: {exc}") from exc
        answers.append((name, "get", url, outcome(world["agent"].get(url))))
        answers.append((name, "post", url, outcome(world["agent"].post(url, "{}", content_type="application/json"))))
    return answers


def test_an_agent_token_reaches_nothing_but_its_sessions_domains_and_tool_schemas(world):
    answers = walk(world, session=world["theirs"])
    assert len({name for name, *_ in answers}) >= 25  # the walk saw the whole project
    leaks = [(name, method, url, status) for name, method, url, status in answers
             if name.split(":")[-1] not in AGENT_MAY and status not in REFUSED]
    assert leaks == []
    # Another account's session, in every form, is not found.
    used = {"session-detail": "get", "session-tool-calls": "post", "session-messages": "post", "session-finish": "post"}
    theirs = [(name, status) for name, method, url, status in answers if used.get(name) == method]
    assert len(theirs) == 8 and all(status == 404 for name, status in theirs), theirs  # with and without ".json"


def test_an_agent_token_reads_tool_schemas_but_no_code_or_answer_key(world):
    agent, task = world["agent"], world["task"]
    tool = agent.get(f"/api/tools/{task.domain.tools.first().pk}/").json()
    assert set(tool) == {"id", "domain", "name", "description", "parameters", "returns", "mutates"}
    domain = agent.get(f"/api/domains/{task.domain.slug}/").json()
    assert domain["policy"] == task.domain.policy
    for url in (f"/api/tasks/{task.pk}/", "/api/tasks/", "/api/runs/", f"/api/runs/{world['run'].pk}/",
                f"/api/runs/{world['run'].pk}/steps/", f"/api/runs/{world['theirs']}/", "/api/batches/",
                "/api/tool-tests/", "/api/dependencies/"):
        response = agent.get(url)
        assert response.status_code in (403, 404), url
        assert "gold_chain" not in response.content.decode() and "s_gt" not in response.content.decode()


def test_an_agent_token_plays_its_own_session(world):
    agent, mine = world["agent"], world["mine"]
    assert agent.get(f"/api/sessions/{mine}/").status_code == 200
    call = {"name": world["task"].gold_chain[0]["tool"], "arguments": world["task"].gold_chain[0]["args"]}
    reply = agent.post(f"/api/sessions/{mine}/tool-calls/", json.dumps(call), content_type="application/json")
    assert reply.status_code == 200 and reply.json()["outcome"] == "success"
    score = agent.post(f"/api/sessions/{mine}/finish/", "{}", content_type="application/json").json()
    assert set(score) == {"reward", "termination", "breakdown"}  # no expected values


def test_every_html_page_refuses_a_signed_in_agent_and_sends_visitors_to_sign_in(world):
    agent_pages, visitor = page_client("Agent", "agent-in-browser"), Client()
    pages = [(name, url) for name, method, url, status in walk(world, session=world["theirs"])
             if method == "get" and not url.startswith("/api/") and name not in ("healthz", "login", "logout")]
    assert len(pages) >= 6
    for name, url in pages:
        status = agent_pages.get(url).status_code
        if status == 405:  # a POST-only action: refused as a POST
            status = agent_pages.post(url, {}).status_code
        assert status == 403, (name, url)
        response = visitor.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), (name, url)
    assert agent_pages.get("/admin/").status_code == 302  # the admin wants a staff account


def test_curators_see_every_session_and_viewers_only_rollouts(world):
    theirs = world["theirs"]
    assert api_client("Curator", "curator").get(f"/api/runs/{theirs}/").status_code == 200
    assert page_client("Curator", "curator-page").get(f"/runs/{theirs}/").status_code == 200
    viewer = api_client("Viewer", "viewer")
    assert viewer.get(f"/api/runs/{theirs}/").status_code == 404
    assert viewer.get(f"/api/runs/{world['run'].pk}/").status_code == 200
    assert page_client("Viewer", "viewer-page").get(f"/runs/{theirs}/").status_code == 404
    assert "gold_chain" in viewer.get(f"/api/tasks/{world['task'].pk}/").json()
