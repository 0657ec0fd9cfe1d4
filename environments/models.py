"""Domains, their tables, tools, procedural tests and dependency graph; batches of background work."""

from __future__ import annotations

from django.db import models


class Batch(models.Model):
    """One invocation of background work of any registered kind (synthesis, tasks, rollouts, ...):
    its parameters, progress, counters, timings and error. Its items are the units of work."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        PARTIAL = "partial"  # finished, but some items failed
        FAILED = "failed"

    # Any kind registered in environments.batches (no choices: apps add kinds without a migration).
    kind = models.CharField(max_length=32, db_index=True)
    backend = models.CharField(max_length=32)
    params = models.JSONField(default=dict)
    params_key = models.CharField(max_length=64, unique=True, help_text="hash of kind, backend and params")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    total_items = models.PositiveIntegerField(default=0)
    done_items = models.PositiveIntegerField(default=0)
    failed_items = models.PositiveIntegerField(default=0)
    counters = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    sandbox = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"{self.kind} batch #{self.pk} ({self.backend}, {self.status})"

    @property
    def progress(self) -> float:
        return (self.done_items + self.failed_items) / self.total_items if self.total_items else 0.0

    @property
    def progress_percent(self) -> int:
        return round(self.progress * 100)

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return round((self.finished_at - self.started_at).total_seconds(), 2)
        return None

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.PARTIAL, self.Status.FAILED)

    @property
    def noun(self) -> str:
        from .batches import noun

        return noun(self)

    @property
    def progress_text(self) -> str:
        """What the counters say so far, in the words of the batch's kind."""
        from .batches import progress_text

        return progress_text(self)


class BatchItem(models.Model):
    """One unit of work of a batch, claimed by a job with a conditional update."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        RETRY = "retry"
        DONE = "done"
        FAILED = "failed"
        POISONED = "poisoned"  # failed too many attempts (killed workers, crashes)

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    item_key = models.CharField(max_length=64)
    seed = models.BigIntegerField()
    payload = models.JSONField(default=dict, blank=True, help_text="what the job needs besides the seed")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    claimed_by = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    counters = models.JSONField(default=dict, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    result_id = models.BigIntegerField(null=True, blank=True,
                                       help_text="primary key of what the item produced (a domain, a task, a run)")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["batch", "seed"]
        constraints = [models.UniqueConstraint(fields=["batch", "item_key"], name="unique_item_per_batch")]

    def __str__(self) -> str:
        return f"{self.batch_id}/{self.item_key} ({self.status})"


class Domain(models.Model):
    class Status(models.TextChoices):
        VERIFIED = "verified"  # every tool passed its tests
        PARTIAL = "partial"  # some tools failed and are left out of the graph
        FAILED = "failed"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField()
    keywords = models.JSONField(default=list)
    sector = models.CharField(max_length=64, db_index=True)
    backend = models.CharField(max_length=32, db_index=True)
    seed = models.BigIntegerField()
    spec_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="domains")
    clock = models.CharField(max_length=32)
    id_seed = models.BigIntegerField(default=0)
    fixture = models.JSONField(default=dict, help_text="the rich valid state test instances are patches of")
    policy = models.TextField(blank=True, help_text="the agent's system prompt (Markdown), written from the contracts")
    policy_version = models.CharField(max_length=12, blank=True,
                                      help_text="first 12 hex digits of the policy's SHA-256")
    notes = models.JSONField(default=list, blank=True)
    stats = models.JSONField(default=dict, blank=True)
    layout = models.JSONField(default=dict, blank=True, help_text="cached TDG node positions")
    stages = models.JSONField(default=list, blank=True)
    sandbox = models.JSONField(default=dict, blank=True)
    seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["backend", "seed"], name="one_domain_per_backend_seed")]

    def __str__(self) -> str:
        return self.name


class Table(models.Model):
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="tables")
    name = models.CharField(max_length=100)
    label = models.CharField(max_length=100)
    pk_column = models.CharField(max_length=100)
    role = models.CharField(max_length=32)
    columns = models.JSONField(help_text="[{name, type, nullable, default, fk, policy, values}]")
    machine = models.JSONField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["domain", "position"]
        constraints = [models.UniqueConstraint(fields=["domain", "name"], name="unique_table_per_domain")]

    def __str__(self) -> str:
        return f"{self.domain.slug}.{self.name}"


class Tool(models.Model):
    class Status(models.TextChoices):
        VERIFIED = "verified"
        FAILED = "failed"

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="tools")
    name = models.CharField(max_length=120)
    description = models.TextField()
    kind = models.CharField(max_length=16)
    template = models.CharField(max_length=32, blank=True)
    parameters = models.JSONField()
    returns = models.JSONField()
    output_fields = models.JSONField(default=list)
    preconditions = models.JSONField(default=list)
    postconditions = models.JSONField(default=list)
    raises = models.JSONField(default=list)
    reads = models.JSONField(default=list)
    writes = models.JSONField(default=list)
    mutates = models.BooleanField(default=False)
    contract = models.JSONField()
    code = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    failure_reason = models.TextField(blank=True)
    repair_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["domain", "name"]
        constraints = [models.UniqueConstraint(fields=["domain", "name"], name="unique_tool_per_domain")]

    def __str__(self) -> str:
        return self.name


class ToolTest(models.Model):
    class Outcome(models.TextChoices):
        SUCCESS = "success"
        ANTICIPATED_REJECTION = "anticipated_rejection"
        UNEXPECTED_FAILURE = "unexpected_failure"

    tool = models.ForeignKey(Tool, on_delete=models.CASCADE, related_name="tests")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16)
    instance_patch = models.JSONField(default=dict, help_text="this case's database: a patch over the domain fixture")
    call_args = models.JSONField(default=dict)
    expected = models.JSONField(default=dict)
    outcome = models.CharField(max_length=24, choices=Outcome.choices, db_index=True)
    message = models.TextField(blank=True)
    observed = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["tool", "id"]

    def __str__(self) -> str:
        return f"{self.tool.name}: {self.name}"

    @property
    def passed(self) -> bool:
        return self.outcome != self.Outcome.UNEXPECTED_FAILURE


class Dependency(models.Model):
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="dependencies")
    src = models.ForeignKey(Tool, on_delete=models.CASCADE, related_name="outgoing")
    dst = models.ForeignKey(Tool, on_delete=models.CASCADE, related_name="incoming")
    kinds = models.JSONField(help_text="data_flow, pre_post, shared_state")
    evidence = models.JSONField(default=dict)
    witnessed = models.BooleanField(default=False, db_index=True)
    witness = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=32, default="procedural")

    class Meta:
        ordering = ["domain", "src", "dst"]
        constraints = [models.UniqueConstraint(fields=["src", "dst"], name="one_edge_per_tool_pair")]

    def __str__(self) -> str:
        return f"{self.src.name} → {self.dst.name}"


class LLMCall(models.Model):
    """One request to an LLM endpoint: what was asked and answered, what it cost, how it ended. A
    successful answer is the cache for the same request (``request_hash``: model, messages, params)."""

    class Outcome(models.TextChoices):
        OK = "ok"
        INVALID_OUTPUT = "invalid_output"  # not JSON, or JSON that breaks the stage's schema
        TRUNCATED = "truncated"  # cut at the token limit
        RATE_LIMITED = "rate_limited"
        SERVER_ERROR = "server_error"
        TIMEOUT = "timeout"
        CONNECTION_ERROR = "connection_error"
        REFUSED = "refused"  # another 4xx
        BUSY = "busy"  # no concurrency slot came free

    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="llm_calls")
    stage = models.CharField(max_length=32, db_index=True)
    role = models.CharField(max_length=32, blank=True, db_index=True)
    model = models.CharField(max_length=120)
    prompt_version = models.CharField(max_length=80, blank=True)
    request_hash = models.CharField(max_length=64, db_index=True)
    request = models.JSONField()
    response = models.JSONField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(default=0.0)
    cost = models.FloatField(default=0.0, help_text="dollars, from SCALEENV_LLM_PRICES")
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.OK, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    cached = models.BooleanField(default=False, help_text="answered from an earlier call's stored answer")
    context = models.JSONField(default=dict, blank=True, help_text="what the call was for: domain, task, tool, run")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["request_hash", "outcome", "cached"], name="llm_call_cache")]

    def __str__(self) -> str:
        return f"{self.stage} {self.model} ({self.request_hash[:8]}, {self.outcome})"
