"""Domains describe themselves: distinct descriptions and a policy written from the contracts."""

from __future__ import annotations

import hashlib

import pytest

from environments.synthesis.procedural import generator, policy
from environments.synthesis.spec import DomainSpec
from tests.conftest import synthesized
from tests.synthesis.test_tool_specs import SAMPLE, make


def with_policy(seed: int) -> tuple[DomainSpec, dict]:
    draft = generator.draft_domain(seed)
    tables = generator.design_schema(draft)
    tools, rules = generator.design_tools(draft, tables)
    spec = DomainSpec(name=draft["name"], slug=draft["slug"],
                      description=generator.describe_domain(draft, tables, tools, rules), keywords=[],
                      sector=draft["sector"], seed=seed, backend="procedural", tables=tables, tools=tools)
    spec.policy = policy.write_policy(spec, rules)
    return spec, rules


def test_one_hundred_domains_have_at_least_95_distinct_descriptions_without_their_names():
    # The domains of `synthesize --domains 100 --seed 1` (seeds 1000..1099).
    texts = []
    for seed in range(1000, 1100):
        d = make(seed)
        assert 1 <= d.description.count(". ") + 1 <= 3, d.description
        texts.append(d.description.replace(d.name, ""))
    assert len(set(texts)) >= 95


def test_descriptions_come_from_what_the_domain_contains():
    d = make(1001)
    assert d.description != f"{d.name}: "
    for tool in d.tools:
        if tool.template == "book":
            resource = next(t for t in tool.contract["subject"]["keys"].values() if d.table(t).role == "resource")
            assert resource.replace("_", " ") in d.description


@pytest.mark.parametrize("seed", SAMPLE)
def test_the_policy_states_who_when_the_general_rules_and_the_domain_limits(seed):
    spec, rules = with_policy(seed)
    text = spec.policy
    words = len(text.split())
    assert 500 <= words <= 1200, words
    assert text.count(f"You are the customer-service agent of {spec.name}") == 1
    assert spec.clock in text
    person = next(t for t in spec.tables if t.role == "person")
    assert f"`search_{person.name}`" in text and "e-mail" in text
    assert "another person's records must be refused" in text
    assert 'explicit "yes"' in text and "one tool call or send one message" in text
    assert "## Domain basics" in text
    for table in spec.tables:
        assert f"`{table.name}`" in text
        for state in (table.machine or {}).get("states", []):
            assert state.replace("_", " ") in text
    templates = {t.template for t in spec.tools}
    assert ("## Booking " in text) == ("book" in templates)
    assert ("## Paying " in text) == ("pay" in templates)
    if "book" in templates:
        assert f"the domain allows at most {rules['max_per_booking']} places per booking" in text.lower()
        for tool in spec.tools:
            if tool.template == "book":
                most = tool.parameters["properties"]["quantity"]["maximum"]
                assert (f"at most {most} " in text) or (most == 1 and "exactly one of the" in text)
        assert "Only a pending or confirmed" in text and "can be cancelled" in text
    if "pay" in templates:
        rule = "must equal the" if rules["exact_payment"] else "Partial payments are accepted"
        assert rule in text
        assert "a paid or void" in text
    if person.machine and person.machine["name"] == "account":
        assert "## Account status" in text


def test_the_policy_is_deterministic_and_changes_with_the_rules():
    a, _ = with_policy(1001)
    b, _ = with_policy(1001)
    assert a.policy == b.policy
    assert a.policy_version == hashlib.sha256(a.policy.encode()).hexdigest()[:12]
    payments = {with_policy(s)[1]["exact_payment"]: with_policy(s)[0].policy for s in range(1000, 1030)
                if "pay" in {t.template for t in make(s).tools}}
    assert set(payments) == {True, False}


def test_the_pipeline_records_the_description_and_policy_stages():
    result = synthesized(1001)
    stages = [s.stage for s in result.stages]
    assert stages.index("tools") < stages.index("description") < stages.index("policy") < stages.index("code")
    assert result.spec.policy.startswith(f"# {result.spec.name}")
    assert result.spec.description == make(1001).description
