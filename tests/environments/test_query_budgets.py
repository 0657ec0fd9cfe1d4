"""Pages of the environments app answer with a bounded number of queries, whatever the data size."""

import pytest
from django.test import Client

from environments import services
from tests.conftest import api_client, page_client, store_domain

pytestmark = pytest.mark.django_db


# A signed-in page costs 4 queries of its own: the session, the user, the user's and the groups' permissions.
AUTH = 4


def queries(django_assert_max_num_queries, url: str, budget: int, client: Client) -> None:
    with django_assert_max_num_queries(budget):
        response = client.get(url)
    assert response.status_code == 200, url


def test_the_dashboard_needs_the_same_queries_for_one_domain_and_for_three(django_assert_num_queries):
    viewer = page_client("Viewer")
    viewer.get("/healthz")
    store_domain(1001)
    services.start_synthesis_batch(backend="procedural", domains=3, seed=40)
    with django_assert_num_queries(2 + AUTH) as one:
        viewer.get("/")
    store_domain(1002)
    store_domain(1003)
    services.start_synthesis_batch(backend="procedural", domains=3, seed=41)
    with django_assert_num_queries(len(one.captured_queries)):
        viewer.get("/")


def test_domain_and_tool_pages_are_bounded(stored_domain, django_assert_max_num_queries):
    tool = stored_domain.tools.order_by("name").first()
    viewer = page_client("Viewer")
    queries(django_assert_max_num_queries, f"/domains/{stored_domain.slug}/", 6 + AUTH, viewer)
    queries(django_assert_max_num_queries, f"/domains/{stored_domain.slug}/graph.json", 3 + AUTH, viewer)
    queries(django_assert_max_num_queries, f"/domains/{stored_domain.slug}/tools/{tool.name}/", 5 + AUTH, viewer)


def test_an_api_list_is_bounded(stored_domain, django_assert_max_num_queries):
    client = api_client("Viewer", "reader")
    # token auth: the token with its user, then the permissions (2)
    queries(django_assert_max_num_queries, "/api/tools/?page_size=50", 3 + 3, client)
    queries(django_assert_max_num_queries, "/api/domains/", 3 + 3, client)
