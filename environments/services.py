"""Writes for the environments app: synthesis batches and persisting domains."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.text import slugify

from environments.runtime.executor import SandboxConfig
from environments.synthesis.interface import get_backend
from environments.synthesis.pipeline import DomainResult, synthesize_domain

from . import batches
from .models import Batch, BatchItem, Dependency, Domain, Table, Tool, ToolTest


SEEDS_PER_BATCH_SEED = 1000  # domain seed = batch seed * 1000 + index


def sandbox_config() -> SandboxConfig:
    return SandboxConfig.from_env(mode=settings.SCALEENV_SANDBOX, call_timeout=settings.SCALEENV_SANDBOX_CALL_TIMEOUT)


# ---------------------------------------------------------------------------------------------
# Synthesis batches: one item per domain


PAPER_TOKENS_PER_DOMAIN = 546_000  # ScaleEnv Table 9: ~379k prompt + ~167k completion tokens per domain


def start_synthesis_batch(*, backend: str, domains: int, seed: int, fault_rate: float = 0.0, domain_name: str = "",
                          description: str = "") -> tuple[Batch, bool]:
    """Get or create the batch for these parameters (the same command twice resumes, never duplicates).

    With the ``llm`` backend, ``domain_name`` (and an optional ``description``) asks for that one
    domain; otherwise the domain proposer names ``domains`` new ones when the batch is created."""
    if backend == "llm":
        return _start_llm_batch(domains=domains, seed=seed, domain_name=domain_name.strip(),
                                description=description.strip())
    if domain_name:
        raise ValueError("--domain needs --backend llm (the procedural backend draws its domains from its seed)")
    if domains < 1:
        raise ValueError("--domains must be at least 1")
    if domains > SEEDS_PER_BATCH_SEED:
        raise ValueError(f"--domains must be at most {SEEDS_PER_BATCH_SEED}")
    if seed < 0:
        raise ValueError("--seed must not be negative")
    get_backend(backend, fault_rate=fault_rate)  # fails early on an unknown backend or bad option
    params = {"domains": domains, "seed": seed, "fault_rate": fault_rate}
    return batches.get_or_create_batch(
        kind="synthesis", backend=backend, params=params,
        items=lambda: [BatchItem(item_key=str(i), seed=seed * SEEDS_PER_BATCH_SEED + i) for i in range(domains)])


def _start_llm_batch(*, domains: int, seed: int, domain_name: str, description: str) -> tuple[Batch, bool]:
    if not llm_settings().configured:
        raise ValueError("the llm backend needs an endpoint: set SCALEENV_LLM_BASE_URL and SCALEENV_LLM_MODEL "
                         "(see docs/llm.md)")
    if seed < 0:
        raise ValueError("--seed must not be negative")
    if domain_name:
        if len(domain_name) > 80:
            raise ValueError("--domain must have at most 80 characters")
        params: dict[str, Any] = {"domain": domain_name, "description": description, "seed": seed}
    else:
        if not 1 <= domains <= 50:
            raise ValueError("--domains must be between 1 and 50 with the llm backend")
        params = {"domains": domains, "seed": seed}

    def items() -> list[BatchItem]:
        if domain_name:
            return [BatchItem(item_key=slugify(domain_name)[:64] or "domain", seed=seed * SEEDS_PER_BATCH_SEED,
                              payload={"name": domain_name, "description": description})]
        return [BatchItem(item_key=p["slug"][:64], seed=seed * SEEDS_PER_BATCH_SEED + i, payload=p)
                for i, p in enumerate(_propose_domains(domains, seed))]

    batch, created = batches.get_or_create_batch(kind="synthesis", backend="llm", params=params, items=items)
    if created:  # the proposer ran before the batch existed: its calls belong to it
        from .models import LLMCall

        LLMCall.objects.filter(batch__isnull=True, role="domain_proposer", context__proposal__domains=domains,
                               context__proposal__seed=seed).update(batch=batch)
    return batch, created


def _propose_domains(count: int, seed: int) -> list[dict[str, Any]]:
    from environments.synthesis.llm import stages

    existing = list(Domain.objects.values_list("name", flat=True))
    client = llm_client(None, proposal={"domains": count, "seed": seed})
    proposals = stages.propose_domains(client, count=count, existing=existing)
    return [p.model_dump() for p in proposals]


def _existing_domain(item: BatchItem) -> batches.Outcome | None:
    domain = Domain.objects.filter(backend=item.batch.backend, seed=item.seed).first()
    return (domain.pk, domain_counters(domain)) if domain is not None else None


def _synthesize(item: BatchItem) -> DomainResult:
    if item.batch.backend == "llm":
        backend = _llm_backend(item)
    else:
        backend = get_backend(item.batch.backend, fault_rate=float(item.batch.params.get("fault_rate", 0.0)))
    return synthesize_domain(item.seed, backend, sandbox_config(), repair_rounds=settings.SCALEENV_REPAIR_ROUNDS)


def _llm_backend(item: BatchItem) -> Any:
    payload = item.payload or {}
    client = llm_client(item.batch_id, domain=payload.get("name", item.item_key), item=item.pk)
    existing = sorted(set(Domain.objects.values_list("name", flat=True)) - {payload.get("name", "")})
    return get_backend("llm", client=client, domain_name=payload.get("name", ""),
                       description=payload.get("description", ""), keywords=payload.get("keywords"),
                       sector=payload.get("sector", ""), existing=existing)


def _persist_synthesized(item: BatchItem, result: DomainResult) -> batches.Outcome:
    counters: dict[str, Any] = dict(result.counters)
    if item.batch.backend == "llm":
        slug, n = result.spec.slug, 2
        while Domain.objects.filter(slug=result.spec.slug).exists():  # a model may repeat a name
            result.spec.slug, n = f"{slug}-{n}", n + 1
        counters.update(llm_item_figures(item))
    return persist_domain(result, item.batch).pk, counters


def llm_item_figures(item: BatchItem) -> dict[str, Any]:
    """Tokens, cost and calls of one item's LLM work (from its LLMCall rows): what reached the
    endpoint, and what the cache answered for free."""
    from django.db.models import Count, Q, Sum

    from .models import LLMCall

    calls = LLMCall.objects.filter(batch_id=item.batch_id, context__item=item.pk)
    fresh = calls.filter(cached=False).aggregate(p=Sum("prompt_tokens"), c=Sum("completion_tokens"), cost=Sum("cost"),
                                                 n=Count("id"), bad=Count("id", filter=~Q(outcome="ok")))
    cached = calls.filter(cached=True).aggregate(t=Sum("prompt_tokens") + Sum("completion_tokens"), n=Count("id"))
    prompt, completion = fresh["p"] or 0, fresh["c"] or 0
    return {"llm_calls": fresh["n"] or 0, "llm_failed_calls": fresh["bad"] or 0, "llm_prompt_tokens": prompt,
            "llm_completion_tokens": completion, "llm_tokens": prompt + completion,
            "llm_cost": round(float(fresh["cost"] or 0.0), 6), "llm_cached_calls": cached["n"] or 0,
            "llm_cached_tokens": cached["t"] or 0}


def synthesis_job_name(batch: Batch) -> str:
    """LLM batches run on the ``llm`` Celery queue (CELERY_TASK_ROUTES routes ``scaleenv.llm_*``)."""
    return "scaleenv.llm_synthesize_domain" if batch.backend == "llm" else SYNTHESIS.job_name


def _synthesis_progress(batch: Batch) -> str:
    c = batch.counters or {}
    return (f"tools {c.get('tools_verified', 0)}/{c.get('tools_total', 0)} verified"
            f" · tests {c.get('tests_passed', 0)}/{c.get('tests_total', 0)} passed"
            f" · edges {c.get('edges_witnessed', 0)}/{c.get('edges_total', 0)} witnessed")


SYNTHESIS = batches.BatchKind(
    name="synthesis", job_name="scaleenv.synthesize_domain", noun="domains", compute=_synthesize,
    persist=_persist_synthesized, existing=_existing_domain, progress=_synthesis_progress,
    job_for=synthesis_job_name)


def domain_counters(domain: Domain) -> dict[str, int]:
    tools = list(domain.tools.values_list("status", flat=True))
    tests = ToolTest.objects.filter(tool__domain=domain)
    edges = domain.dependencies.all()
    kinds = Counter(k for ks in edges.values_list("kinds", flat=True) for k in ks)
    verified = sum(1 for s in tools if s == Tool.Status.VERIFIED)
    return {
        "domains": 1, "tools_total": len(tools), "tools_verified": verified, "tools_failed": len(tools) - verified,
        "tests_total": tests.count(), "tests_passed": tests.exclude(outcome=ToolTest.Outcome.UNEXPECTED_FAILURE).count(),
        "repairs": sum(domain.tools.values_list("repair_count", flat=True)),
        "edges_total": edges.count(), "edges_witnessed": edges.filter(witnessed=True).count(),
        "edges_data_flow": kinds["data_flow"], "edges_pre_post": kinds["pre_post"],
        "edges_shared_state": kinds["shared_state"],
    }


# ---------------------------------------------------------------------------------------------
# Persisting a synthesized domain


def persist_domain(result: DomainResult, batch: Batch | None) -> Domain:
    """Store a domain and everything under it. Call inside a transaction."""
    spec = result.spec
    failed = sum(1 for s in result.tool_status.values() if s["status"] != "verified")
    status = Domain.Status.VERIFIED if not failed else (
        Domain.Status.FAILED if failed == len(result.tool_status) else Domain.Status.PARTIAL)
    domain = Domain.objects.create(
        name=spec.name, slug=spec.slug, description=spec.description, keywords=spec.keywords, sector=spec.sector,
        backend=spec.backend, seed=spec.seed, spec_hash=spec.spec_hash(), status=status, batch=batch,
        clock=spec.clock, id_seed=spec.id_seed, fixture=spec.fixture, policy=spec.policy,
        policy_version=spec.policy_version, notes=spec.notes, stats=result.stats,
        layout=result.layout, stages=[asdict(s) for s in result.stages], sandbox=result.sandbox, seconds=result.seconds)
    Table.objects.bulk_create(
        Table(domain=domain, name=t.name, label=t.label, pk_column=t.pk, role=t.role, position=i, machine=t.machine,
              columns=[{"name": c.name, "type": c.type, "nullable": c.nullable, "default": c.default, "fk": c.fk,
                        "policy": c.policy, "values": c.values, "description": c.description} for c in t.columns])
        for i, t in enumerate(spec.tables))
    tools = Tool.objects.bulk_create(
        Tool(domain=domain, name=t.name, description=t.description, kind=t.kind, template=t.template,
             parameters=t.parameters, returns=t.returns, output_fields=t.output_fields, preconditions=t.preconditions,
             postconditions=t.postconditions, raises=t.raises, reads=t.reads, writes=t.writes, mutates=t.mutates,
             contract=t.contract, code=t.code, status=result.tool_status[t.name]["status"],
             failure_reason=result.tool_status[t.name]["reason"], repair_count=result.tool_status[t.name]["repairs"])
        for t in spec.tools)
    by_name = {t.name: t for t in tools}
    if any(t.pk is None for t in tools):  # backends without RETURNING ids
        by_name = {t.name: t for t in domain.tools.all()}
    ToolTest.objects.bulk_create(
        (ToolTest(tool=by_name[c.tool], name=c.name[:200], kind=c.kind, instance_patch=c.patch, call_args=c.args,
                  expected=c.expected, outcome=c.outcome or ToolTest.Outcome.UNEXPECTED_FAILURE,
                  message=c.message or "not run", observed=c.observed, attempts=c.attempts) for c in result.tests),
        batch_size=500)
    Dependency.objects.bulk_create(
        (Dependency(domain=domain, src=by_name[e.src], dst=by_name[e.dst], kinds=e.kinds, evidence=e.evidence,
                    witnessed=e.witnessed, witness=e.witness, source=spec.backend) for e in result.edges),
        batch_size=1000)
    return domain


# ---------------------------------------------------------------------------------------------
# Accounts


def create_account(username: str, role: str, *, password: str | None = None, email: str = "",
                   token: bool = False) -> tuple[Any, str | None, str | None]:
    """Create (or update) a user with one role; returns (user, the password if one was generated,
    the API token if asked). Agents get no password: they only use tokens."""
    import secrets

    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from .roles import ADMIN, AGENT, ROLES, ensure_roles

    role = role.capitalize()
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(r.lower() for r in ROLES)}")
    if not username or len(username) > 150:
        raise ValueError("the user name must have 1 to 150 characters")
    generated = None
    with transaction.atomic():
        ensure_roles()
        user, _created = User.objects.get_or_create(username=username, defaults={"email": email})
        if email:
            user.email = email
        if role == AGENT and password is None:
            user.set_unusable_password()
        else:
            if password is None:
                generated = password = secrets.token_urlsafe(12)
            user.set_password(password)
        user.is_staff = role == ADMIN  # the Django admin is for admins
        user.save()
        user.groups.set([Group.objects.get(name=role)])
        key = Token.objects.get_or_create(user=user)[0].key if token else None
    return user, generated, key


# ---------------------------------------------------------------------------------------------
# The LLM client, with its calls cached and recorded as LLMCall rows


class DatabaseCallStore:
    """environments.llm's CallStore on the LLMCall table: a successful answer is the cache for the
    same request; every call (hits included) is a row with its tokens, cost and outcome."""

    def __init__(self, batch_id: int | None = None) -> None:
        self.batch_id = batch_id

    def cached(self, cache_key: str) -> dict[str, Any] | None:
        from .models import LLMCall

        return (LLMCall.objects.filter(request_hash=cache_key, outcome=LLMCall.Outcome.OK, cached=False)
                .values_list("response", flat=True).first())

    def record(self, call: Any) -> None:
        from .models import LLMCall

        LLMCall.objects.create(
            batch_id=self.batch_id, stage=call.stage[:32], role=call.role[:32], model=call.model[:120],
            prompt_version=call.prompt_version[:80], request_hash=call.cache_key, request=call.request,
            response=call.response, prompt_tokens=call.prompt_tokens, completion_tokens=call.completion_tokens,
            latency_ms=round(call.latency_ms, 2), cost=call.cost, outcome=call.outcome,
            attempts=max(1, call.attempts), cached=call.cached, context=call.context, error=call.error)


def llm_settings() -> Any:
    from environments.llm import settings_from

    return settings_from(settings.SCALEENV_LLM)


def llm_client(batch_id: int | None = None, **context: Any) -> Any:
    """The configured LLM client, recording its calls (for ``batch_id``) in the database."""
    from environments.llm import LLMClient

    return LLMClient(llm_settings(), DatabaseCallStore(batch_id), context=context)
