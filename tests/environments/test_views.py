"""Pages and API: they render, escape generated text, and the API needs a token."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token


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
    response = Client().get("/")
    assert response.status_code == 200
    assert domain.name in response.content.decode()


def test_domain_page_escapes_generated_text_and_embeds_the_graph(domain):
    body = Client().get(f"/domains/{domain.slug}/").content.decode()
    assert HOSTILE not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    assert 'id="tdg-data"' in body and "hx-disable" in body


def test_tool_page_shows_code_and_tests_escaped(domain):
    tool = domain.tools.first()
    body = Client().get(f"/domains/{domain.slug}/tools/{tool.name}/").content.decode()
    assert HOSTILE not in body
    assert "positive: valid call" in body


def test_graph_json_has_nodes_with_positions_and_typed_edges(domain):
    data = Client().get(f"/domains/{domain.slug}/graph.json").json()
    assert len(data["nodes"]) == domain.stats["nodes"]
    assert all("x" in n["position"] for n in data["nodes"])
    assert {e["data"]["kind"] for e in data["edges"]} <= {"data_flow", "pre_post", "shared_state"}


def test_unknown_pages_are_404(domain):
    assert Client().get("/domains/nope/").status_code == 404
    assert Client().get(f"/domains/{domain.slug}/tools/nope/").status_code == 404


def test_api_requires_a_token_and_serves_domains(domain):
    assert Client().get("/api/domains/").status_code in (401, 403)
    user = User.objects.create_user("researcher", password="pw-not-used")
    token = Token.objects.create(user=user)
    response = Client().get("/api/domains/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    assert response.json()["results"][0]["slug"] == domain.slug
    tools = Client().get(f"/api/tools/?domain__slug={domain.slug}", HTTP_AUTHORIZATION=f"Token {token.key}").json()
    assert tools["count"] == domain.tools.count()


def test_api_is_read_only(domain):
    user = User.objects.create_user("r2")
    token = Token.objects.create(user=user)
    response = Client().post("/api/domains/", {}, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 405


def test_healthz():
    assert Client().get("/healthz").json() == {"status": "ok"}
