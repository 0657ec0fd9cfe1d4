"""Every response carries the Content-Security-Policy that django-csp makes of the settings; the
project's middleware only builds that string once (views that change the policy still get theirs)."""

import pytest
from csp.constants import HEADER
from csp.exceptions import CSPNonceError
from csp.utils import build_policy
from django.test import RequestFactory
from django.http import HttpResponse

from scaleenv_site.middleware import PolicyOnceCSPMiddleware
from tests.conftest import api_client

pytestmark = pytest.mark.django_db


def test_pages_api_answers_and_errors_carry_the_policy_of_the_settings(client):
    expected = build_policy()
    assert "frame-ancestors 'none'" in expected
    for answer in (client.get("/accounts/login/"), client.get("/healthz"), client.get("/no-such-page/"),
                   api_client("Agent", "agent").get("/api/domains/")):
        assert answer[HEADER] == expected, answer.status_code


def test_a_view_that_changes_the_policy_gets_its_own(client):
    docs = client.get("/api/docs/")  # csp_update: Swagger UI's inline script
    assert "'unsafe-inline'" in docs[HEADER]
    assert docs[HEADER] != build_policy()
    assert "'unsafe-inline'" not in client.get("/accounts/login/")[HEADER]


def test_a_response_whose_request_drew_a_nonce_goes_through_django_csp_and_a_late_nonce_is_an_error():
    middleware = PolicyOnceCSPMiddleware(lambda request: HttpResponse("ok"))
    request = RequestFactory().get("/")
    middleware.process_request(request)
    nonce = str(request.csp_nonce)  # as a template using the nonce would
    response = middleware.process_response(request, HttpResponse("ok"))
    assert response[HEADER] == build_policy(nonce=nonce)

    late = RequestFactory().get("/")
    middleware.process_request(late)
    middleware.process_response(late, HttpResponse("ok"))
    with pytest.raises(CSPNonceError):
        str(late.csp_nonce)
