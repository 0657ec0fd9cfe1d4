"""Shared fixtures. The sandbox runs for real in every test (no mocks)."""

from __future__ import annotations

import functools
import os

import pytest

from environments.runtime.executor import EnvironmentBundle, Sandbox, SandboxConfig
from environments.synthesis.interface import get_backend
from environments.synthesis.pipeline import DomainResult, synthesize_domain

ITEMS_SCHEMA = {"tables": {"items": {"pk": "item_id", "columns": {
    "item_id": {"type": "string", "nullable": False},
    "name": {"type": "string", "nullable": False},
    "qty": {"type": "integer", "nullable": False},
    "owner_id": {"type": "string", "nullable": True, "fk": {"table": "owners", "column": "owner_id"}}}},
    "owners": {"pk": "owner_id", "columns": {"owner_id": {"type": "string", "nullable": False}}}}}

ITEMS_CODE = '''
def add_item(db, ctx, name, qty, owner_id=None):
    if not isinstance(qty, int) or qty <= 0:
        raise ValueError("qty must be a positive integer")
    item_id = ctx.new_id("itm")
    db["items"][item_id] = {"item_id": item_id, "name": name, "qty": qty, "owner_id": owner_id}
    return {"item_id": item_id, "created_at": ctx.now_iso()}

def get_item(db, ctx, item_id):
    if item_id not in db["items"]:
        raise KeyError(f"no item {item_id}")
    return dict(db["items"][item_id])

def take(db, ctx, item_id, qty):
    row = db["items"][item_id]
    row["qty"] = row["qty"] - qty
    return dict(row)
'''


def sandbox_mode() -> str:
    return os.environ.get("SCALEENV_SANDBOX", "auto")


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig(mode=sandbox_mode(), call_timeout=1.0)


def items_bundle(extra_code: str = "", names: tuple[str, ...] = ()) -> EnvironmentBundle:
    code = ITEMS_CODE + extra_code
    tools = {n: {"code": code} for n in ("add_item", "get_item", "take", *names)}
    state = {"items": {"a": {"item_id": "a", "name": "apple", "qty": 3, "owner_id": None}}, "owners": {}}
    return EnvironmentBundle(tools=tools, schema=ITEMS_SCHEMA, state=state, clock="2026-03-02T09:00:00Z", id_seed=7)


@pytest.fixture
def items_sandbox(config: SandboxConfig):
    with Sandbox(items_bundle(), config) as sandbox:
        yield sandbox


@functools.lru_cache(maxsize=8)
def synthesized(seed: int) -> DomainResult:
    """A procedurally synthesized domain (cached per test session: synthesis is deterministic)."""
    return synthesize_domain(seed, get_backend("procedural"), SandboxConfig(mode=sandbox_mode()))


def store_domain(seed: int = 1001):  # -> environments.models.Domain
    """Persist a synthesized domain (the same one every time for a seed) in the test database."""
    from django.db import transaction

    from environments.services import persist_domain

    with transaction.atomic():
        return persist_domain(synthesized(seed), None)


@pytest.fixture
def stored_domain():  # -> environments.models.Domain
    """The test domain (seed 1001), stored; needs a django_db mark on the test."""
    return store_domain()


def account(role: str, name: str | None = None):  # -> django.contrib.auth.models.User
    """A user holding one role (environments/roles.py), made the way `create_user` makes it."""
    from environments.services import create_account

    user, _password, _token = create_account(name or f"{role.lower()}-user", role, password="pw-Secret-123")
    return user


def api_client(role: str, name: str | None = None):  # -> django.test.Client with a token
    from django.test import Client
    from rest_framework.authtoken.models import Token

    user = account(role, name)
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")


def page_client(role: str = "Curator", name: str | None = None, **kwargs):  # -> a signed-in django.test.Client
    from django.test import Client

    client = Client(**kwargs)
    client.force_login(account(role, name))
    return client


@pytest.fixture(autouse=True)
def _forget_remembered_tokens():
    """Each test starts with no token remembered by scaleenv_site.auth and no request counted by a
    throttle of this process (rows are made anew per test)."""
    from scaleenv_site.auth import CachedTokenAuthentication

    from scaleenv_site.throttles import forget_counts

    CachedTokenAuthentication.forget()
    forget_counts()  # throttle windows: the same account ids come back in the next test
    yield


@pytest.fixture(autouse=True)
def _seeded_review_taxonomy(request):
    """The rejection reasons and the default queue a data migration seeds, for database tests:
    transactional tests flush the tables after each test, taking the seeded rows with them."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        yield
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    from tasks import reviews

    reviews.seed_reasons()
    reviews.default_queue()
    yield
