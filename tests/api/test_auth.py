"""Token authentication remembers an account per process for a bounded time: within it, no queries;
after it, a revoked token or a changed role takes effect."""

import json
import time

import pytest
from rest_framework.authtoken.models import Token

from tests.conftest import account, api_client

pytestmark = pytest.mark.django_db


def test_a_remembered_token_costs_no_query_and_a_revoked_one_stops_after_the_cache_time(
        settings, django_assert_max_num_queries):
    settings.SCALEENV_AUTH_CACHE_SECONDS = 0.5
    client = api_client("Agent", "agent")
    assert client.get("/api/domains/").status_code == 200
    with django_assert_max_num_queries(2):  # the list's count and page: no token, user or permission read
        assert client.get("/api/domains/").status_code == 200
    Token.objects.filter(user__username="agent").delete()
    time.sleep(0.6)
    assert client.get("/api/domains/").status_code == 401


def test_with_no_cache_time_a_role_change_takes_effect_at_once(settings):
    settings.SCALEENV_AUTH_CACHE_SECONDS = 0
    client = api_client("Agent", "agent")
    assert client.get("/api/tasks/").status_code == 403
    account("Viewer", "agent")  # the same account, now a viewer
    assert client.get("/api/tasks/").status_code == 200
    assert client.post("/api/sessions/", json.dumps({"task": 1}), content_type="application/json").status_code == 403


def test_each_request_gets_its_own_copy_of_the_remembered_account(settings):
    from scaleenv_site.auth import CachedTokenAuthentication

    settings.SCALEENV_AUTH_CACHE_SECONDS = 30
    carol = account("Curator", "carol")
    key = Token.objects.get_or_create(user=carol)[0].key
    first, _ = CachedTokenAuthentication().authenticate_credentials(key)
    first.note_from_a_view = "set by one request"
    first.username = "changed"
    second, _ = CachedTokenAuthentication().authenticate_credentials(key)
    assert second.username == "carol" and not hasattr(second, "note_from_a_view")
    assert second._state is not first._state and second.has_perm("tasks.view_task")
    first._state.fields_cache["set_by_one_request"] = "cached by one request"
    third, _ = CachedTokenAuthentication().authenticate_credentials(key)
    assert "set_by_one_request" not in third._state.fields_cache
    # the same as copy.copy of the stored account (which also stamps the pickling Django's version)
    import copy

    expected = copy.copy(CachedTokenAuthentication._remembered[key][1])
    assert vars(third._state) == vars(expected._state)
    assert {k: v for k, v in vars(third).items() if k != "_state"} == {
        k: v for k, v in vars(expected).items() if k not in ("_state", "_django_version")}
