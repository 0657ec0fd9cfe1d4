"""A stored domain keeps its policy (with a version), shows it escaped, serves it over the API, and
its stored tools survive random schema-valid calls."""

from __future__ import annotations

import hashlib

import pytest
from rest_framework.authtoken.models import Token

from environments.models import Domain
from environments.runtime.executor import EnvironmentBundle, Sandbox, SandboxConfig
from environments.synthesis.schema_calls import run_random_calls
from tests.conftest import account, page_client, sandbox_mode, store_domain, synthesized

pytestmark = pytest.mark.django_db


def test_the_policy_is_persisted_with_its_version(stored_domain):
    spec = synthesized(1001).spec
    domain = Domain.objects.get(pk=stored_domain.pk)
    assert domain.policy == spec.policy and len(domain.policy.split()) >= 500
    assert domain.policy_version == hashlib.sha256(domain.policy.encode()).hexdigest()[:12]
    assert domain.clock in domain.policy
    assert domain.description == spec.description


def test_the_domain_page_shows_the_policy_escaped(stored_domain):
    stored_domain.policy = stored_domain.policy + "\n<script>alert(1)</script>"
    stored_domain.save()
    body = page_client().get(f"/domains/{stored_domain.slug}/").content.decode()
    assert "<details class=\"policy\">" in body and stored_domain.policy_version in body
    assert "You are the customer-service agent of" in body
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_the_api_serves_the_policy(stored_domain):
    token = Token.objects.get_or_create(user=account("Viewer", "reader"))[0]
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    data = client.get(f"/api/domains/{stored_domain.slug}/").json()
    assert data["policy"] == stored_domain.policy and data["policy_version"] == stored_domain.policy_version
    listed = client.get("/api/domains/").json()["results"][0]
    assert listed["policy_version"] == stored_domain.policy_version and "policy" not in listed


def stored_bundle(domain: Domain) -> tuple[EnvironmentBundle, list[dict]]:
    """The runtime bundle of a stored domain, built from the database rows alone."""
    tools = list(domain.tools.filter(status="verified"))
    schema = {"tables": {t.name: {"pk": t.pk_column, "columns": {
        c["name"]: {k: v for k, v in c.items() if k in ("type", "nullable", "fk", "values", "policy") and v is not None}
        for c in t.columns}} for t in domain.tables.all()}}
    bundle = EnvironmentBundle(
        tools={t.name: {"code": t.code, "raises": sorted({r["type"] for r in t.raises} | {"ValueError", "KeyError"})}
               for t in tools},
        schema=schema, state=domain.fixture, clock=domain.clock, id_seed=domain.id_seed)
    return bundle, [{"name": t.name, "parameters": t.parameters, "contract": t.contract} for t in tools]


def test_random_schema_valid_calls_on_stored_domains_never_fail_unexpectedly():
    outcomes = {}
    for seed in (1001, 1014):
        domain = store_domain(seed)
        bundle, tools = stored_bundle(domain)
        with Sandbox(bundle, SandboxConfig(mode=sandbox_mode())) as sandbox:
            report = run_random_calls(sandbox, tools, domain.fixture, calls=150, seed=seed)
        assert report.invalid_args == 0
        for outcome, n in report.outcomes.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + n
        assert report.outcomes["unexpected_failure"] == 0, report.failures[:3]
    assert sum(outcomes.values()) == 300
