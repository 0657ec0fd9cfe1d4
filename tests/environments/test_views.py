"""Pages and API: pages need a signed-in human role, render and escape generated text; the API needs a
token and reads by role."""

import pytest
from django.test import Client

from tests.conftest import api_client, page_client


pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1) hx-get="/admin/">'


@pytest.fixture
def domain(stored_domain):
    d = stored_domain
    d.description = HOSTILE
    d.save()
    tool = d.tools.first()
    tool.code = tool.code + "\n# " + HOSTILE
    tool.save()
    return d


def test_dashboard_lists_domains(domain):
    response = page_client().get("/")
    assert response.status_code == 200
    assert domain.name in response.content.decode()


def test_domain_page_escapes_generated_text_and_embeds_the_graph(domain):
    body = page_client().get(f"/domains/{domain.slug}/").content.decode()
    assert HOSTILE not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    assert 'id="tdg-data"' in body and "hx-disable" in body


def test_tool_page_shows_code_and_tests_escaped(domain):
    tool = domain.tools.first()
    body = page_client().get(f"/domains/{domain.slug}/tools/{tool.name}/").content.decode()
    assert HOSTILE not in body
    assert "positive: valid call" in body


def test_graph_json_has_nodes_with_positions_and_typed_edges(domain):
    data = page_client().get(f"/domains/{domain.slug}/graph.json").json()
    assert len(data["nodes"]) == domain.stats["nodes"]
    assert all("x" in n["position"] for n in data["nodes"])
    assert {e["data"]["kind"] for e in data["edges"]} <= {"data_flow", "pre_post", "shared_state"}


def test_unknown_pages_are_404(domain):
    assert page_client().get("/domains/nope/").status_code == 404
    assert page_client().get(f"/domains/{domain.slug}/tools/nope/").status_code == 404


def test_pages_need_a_sign_in_and_a_human_role(domain):
    response = Client().get(f"/domains/{domain.slug}/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    assert page_client("Agent", "bot").get(f"/domains/{domain.slug}/").status_code == 403
    assert page_client("Viewer").get(f"/domains/{domain.slug}/").status_code == 200


def test_api_requires_a_token_and_serves_domains(domain):
    assert Client().get("/api/domains/").status_code in (401, 403)
    researcher = api_client("Researcher")
    response = researcher.get("/api/domains/")
    assert response.status_code == 200
    assert response.json()["results"][0]["slug"] == domain.slug
    tools = researcher.get(f"/api/tools/?domain__slug={domain.slug}").json()
    assert tools["count"] == domain.tools.count() and "code" in tools["results"][0]


def test_an_agent_reads_tool_schemas_but_not_their_code(domain):
    tools = api_client("Agent", "bot").get(f"/api/tools/?domain__slug={domain.slug}").json()
    assert tools["count"] == domain.tools.count()
    assert set(tools["results"][0]) == {"id", "domain", "name", "description", "parameters", "returns", "mutates"}


def test_api_is_read_only(domain):
    response = api_client("Admin").post("/api/domains/", {}, content_type="application/json")
    assert response.status_code == 403


def test_healthz():
    assert Client().get("/healthz").json() == {"status": "ok"}
