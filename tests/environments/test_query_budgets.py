"""Pages of the environments app answer with a bounded number of queries, whatever the data size."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token

from environments import services
from tests.conftest import store_domain

pytestmark = pytest.mark.django_db


def queries(django_assert_max_num_queries, url: str, budget: int, client: Client | None = None) -> None:
    with django_assert_max_num_queries(budget):
        response = (client or Client()).get(url)
    assert response.status_code == 200, url


def test_the_dashboard_needs_the_same_queries_for_one_domain_and_for_three(django_assert_num_queries):
    store_domain(1001)
    services.start_synthesis_batch(backend="procedural", domains=3, seed=40)
    with django_assert_num_queries(2) as one:
        Client().get("/")
    store_domain(1002)
    store_domain(1003)
    services.start_synthesis_batch(backend="procedural", domains=3, seed=41)
    with django_assert_num_queries(len(one.captured_queries)):
        Client().get("/")


def test_domain_and_tool_pages_are_bounded(stored_domain, django_assert_max_num_queries):
    tool = stored_domain.tools.order_by("name").first()
    queries(django_assert_max_num_queries, f"/domains/{stored_domain.slug}/", 6)
    queries(django_assert_max_num_queries, f"/domains/{stored_domain.slug}/graph.json", 3)
    queries(django_assert_max_num_queries, f"/domains/{stored_domain.slug}/tools/{tool.name}/", 5)


def test_an_api_list_is_bounded(stored_domain, django_assert_max_num_queries):
    token = Token.objects.create(user=User.objects.create_user("reader"))
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    queries(django_assert_max_num_queries, "/api/tools/?page_size=50", 4, client)
    queries(django_assert_max_num_queries, "/api/domains/", 4, client)
