"""Synthesized tasks and the runs (trajectories) of agents on them."""

from __future__ import annotations

from django.db import models


class ReviewStatus(models.TextChoices):
    PENDING = "pending"
    IN_REVIEW = "in_review"  # leased by a reviewer
    APPROVED = "approved"
    REJECTED = "rejected"
    NEEDS_CHANGES = "needs_changes"


class Task(models.Model):
    class Status(models.TextChoices):
        VERIFIED = "verified"  # no blocking audit flag
        FLAGGED = "flagged"  # at least one blocking audit flag

    class Complexity(models.TextChoices):
        EASY = "easy"
        MEDIUM = "medium"
        HARD = "hard"

    domain = models.ForeignKey("environments.Domain", on_delete=models.CASCADE, related_name="tasks")
    batch = models.ForeignKey("environments.Batch", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="tasks")
    class Kind(models.TextChoices):
        WRITE = "write"  # the state must change as the user asked
        QUESTION = "question"  # read-only: the answer must be said
        REFUSAL = "refusal"  # the policy forbids it: nothing may change and the refusal must name why

    seed = models.BigIntegerField()
    complexity = models.CharField(max_length=8, choices=Complexity.choices)
    intent = models.CharField(max_length=200, db_index=True, blank=True,
                              help_text="the goal kind(s) the task was built from, e.g. cancel_booking:visits")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.WRITE, db_index=True)
    instruction = models.TextField(help_text="the user scenario as one text (what an LLM user simulator reads)")
    reason_for_call = models.CharField(max_length=500, blank=True,
                                       help_text="the scenario's reason for call, for lists and search")
    user_scenario = models.JSONField(default=dict, help_text="τ²-bench user_scenario: persona and instructions "
                                                             "(domain, reason_for_call, known_info, unknown_info, "
                                                             "task_instructions); never shown to the agent")
    script = models.JSONField(default=dict, help_text="the scripted user's script: opening, facts, goals, answers")
    evaluation = models.JSONField(default=dict, help_text="refusal, targets, near miss, probes, reward basis")
    policy_version = models.CharField(max_length=16, blank=True, help_text="version of the domain policy it was made with")
    user_profile = models.JSONField(default=dict)
    s0 = models.JSONField(help_text="initial state (hidden from the agent)")
    gold_chain = models.JSONField(help_text="steps; later arguments may be {'$ref': [step, path]}")
    gold_calls = models.JSONField(default=list, help_text="the gold calls with the literal arguments they ran with")
    gold_outputs = models.JSONField(default=list)
    chain_length = models.PositiveIntegerField(default=0, help_text="steps in the gold chain (lists show it without loading the chain)")
    s_gt = models.JSONField(help_text="ground-truth final state: the gold chain executed on s0")
    communicate_info = models.JSONField(default=list, help_text="answers a question task must be answered with")
    subgraph = models.JSONField(default=list, help_text="tools in the task subgraph H")
    subgraph_edges = models.PositiveIntegerField(default=0)
    h_size = models.PositiveIntegerField(default=0, db_index=True)
    c_h = models.FloatField(default=0.0)
    distractors = models.JSONField(default=list)
    distractor_count = models.PositiveIntegerField(default=0)
    gate = models.JSONField(default=list, help_text="every gate decision")
    patches = models.JSONField(default=list)
    expansion = models.JSONField(default=list)
    perturbations = models.JSONField(default=dict, help_text="effective perturbations found by the audit")
    audit_flags = models.JSONField(default=list)
    flag_codes = models.CharField(max_length=300, blank=True,
                                  help_text="the audit flags' codes as ',code,code,' (for filtering without the JSON)")
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    content_hash = models.CharField(max_length=64)
    # Review: one authoritative status (exports read only this), a lease while someone reviews it.
    review_status = models.CharField(max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.PENDING,
                                     db_index=True)
    queue = models.ForeignKey("ReviewQueue", null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks",
                              help_text="the review queue it is in (none: the default queue)")
    lease_holder = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="leased_tasks")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True, help_text="when its review status was last decided")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["domain", "seed"]
        constraints = [models.UniqueConstraint(fields=["domain", "seed"], name="one_task_per_domain_seed")]
        indexes = [
            models.Index(fields=["review_status", "id"], name="task_review_queue"),
            # The queue's flag filter reads only flagged tasks (a small share) and never the wide rows.
            models.Index(fields=["review_status", "flag_codes"], condition=~models.Q(flag_codes=""),
                         name="task_flagged_status"),
            models.Index(fields=["id", "flag_codes"], condition=~models.Q(flag_codes=""), name="task_flagged_by_id"),
            # The queue's counts under text and facet filters, read from the index, not the wide rows.
            models.Index(fields=["review_status", "kind", "complexity", "intent", "reason_for_call"],
                         name="task_queue_words"),
            models.Index(fields=["kind", "complexity", "id", "intent", "reason_for_call"], name="task_queue_facets"),
        ]
        permissions = [("review_task", "Can review tasks (approve, reject, ask for changes)"),
                       ("export_dataset", "Can export datasets")]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.domain.slug}, seed {self.seed})"


class Run(models.Model):
    """One episode (trajectory) of an agent and a simulated user on a task. Not to be confused with a
    batch (environments.Batch), which is one invocation of background work."""

    class Termination(models.TextChoices):
        AGENT_STOP = "agent_stop"
        USER_STOP = "user_stop"
        MAX_STEPS = "max_steps"
        TOO_MANY_ERRORS = "too_many_errors"
        AGENT_ERROR = "agent_error"
        USER_ERROR = "user_error"  # the simulated user could not answer (an LLM user's call failed)
        INFRASTRUCTURE_ERROR = "infrastructure_error"
        EXPIRED = "expired"  # an HTTP session left idle longer than SCALEENV_SESSION_IDLE_SECONDS
        RUNNING = "running"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="runs")
    batch = models.ForeignKey("environments.Batch", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="rollouts")
    agent = models.CharField(max_length=64, db_index=True)
    agent_model = models.CharField(max_length=120, blank=True)
    user = models.CharField(max_length=64, default="scripted")
    trial = models.PositiveIntegerField(default=0)
    seed = models.BigIntegerField(default=0)
    messages = models.JSONField(default=list, help_text="the conversation in the OpenAI chat format (when it ended)")
    step_count = models.PositiveIntegerField(default=0, help_text="steps stored so far (RunStep rows)")
    final_state = models.JSONField(null=True, blank=True)
    final_hash = models.CharField(max_length=64, blank=True)
    reward = models.FloatField(null=True, blank=True)
    breakdown = models.JSONField(default=dict)
    termination = models.CharField(max_length=32, choices=Termination.choices, default=Termination.RUNNING)
    tool_errors = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0.0)
    owner = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    ids_used = models.PositiveIntegerField(default=0, help_text="HTTP sessions: generated ids handed out so far")
    state_version = models.PositiveIntegerField(
        default=0, help_text="HTTP sessions: tool calls executed so far (names the state for the per-process caches)")
    agent_messages = models.PositiveIntegerField(
        default=0, help_text="HTTP sessions: messages the agent sent so far (names the scripted user's state for the "
                             "per-process cache)")
    last_activity_at = models.DateTimeField(null=True, blank=True, help_text="HTTP sessions: the last call or message")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["batch", "task", "agent", "trial"], name="one_run_per_trial")]
        indexes = [models.Index(fields=["owner", "termination"], name="run_owner_open")]
        permissions = [("play_session", "Can start and play sessions over the HTTP API"),
                       ("view_any_session", "Can see the HTTP sessions of other accounts")]

    @property
    def is_open(self) -> bool:
        return self.termination == self.Termination.RUNNING

    def __str__(self) -> str:
        return f"run {self.pk} ({self.agent} on task {self.task_id})"


class RunStep(models.Model):
    """One step of a run, appended once and never rewritten: a tool call with its outcome and state
    diff, an agent message, or the user's reply."""

    class Kind(models.TextChoices):
        TOOL_CALL = "tool_call"
        MESSAGE = "message"  # the agent's
        USER = "user"  # the simulated user's

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="step_rows")
    index = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    tool = models.CharField(max_length=200, blank=True)
    arguments = models.JSONField(null=True, blank=True)
    outcome = models.CharField(max_length=32, blank=True)
    observation = models.TextField(blank=True, help_text="what the agent was shown (capped, truncation marked)")
    diff = models.JSONField(default=dict, blank=True)
    content = models.TextField(blank=True)
    duration_ms = models.FloatField(default=0.0)
    executed = models.BooleanField(default=True, help_text="False for calls refused before reaching the sandbox")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="one_step_per_index")]

    def __str__(self) -> str:
        return f"run {self.run_id} step {self.index} ({self.kind})"

    def as_dict(self) -> dict:
        return {"index": self.index, "kind": self.kind, "tool": self.tool or None, "arguments": self.arguments,
                "outcome": self.outcome or None, "observation": self.observation, "diff": self.diff,
                "content": self.content, "duration_ms": self.duration_ms, "executed": self.executed}


# ---------------------------------------------------------------------------------------------
# Review


class ReviewQueue(models.Model):
    """A set of tasks reviewed under the same rules: how many agreeing verdicts decide a task, and
    the guidelines shown beside each task. Tasks without a queue are in the default one."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown beside each task (rendered sanitized)")
    reviews_required = models.PositiveSmallIntegerField(default=1, help_text="agreeing verdicts that decide a task")
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True),
                                               name="one_default_queue")]

    def __str__(self) -> str:
        return self.name


class RejectionReason(models.Model):
    """One entry of the rejection taxonomy (seeded by a migration, editable in the admin)."""

    class Source(models.TextChoices):
        ENVIRONMENT = "environment"
        TOOL = "tool"
        TASK = "task"
        REWARD = "reward"  # the reward or checker
        TRAJECTORY = "trajectory"

    code = models.SlugField(max_length=64, unique=True)
    label = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    needs_comment = models.BooleanField(default=False, help_text="a reject with this reason needs a comment")
    active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=100, help_text="order in the picker (the first nine get keys)")

    class Meta:
        ordering = ["position", "label"]

    def __str__(self) -> str:
        return self.label


class Review(models.Model):
    """One reviewer's current verdict on a task (several when a queue requires several)."""

    class Verdict(models.TextChoices):
        APPROVED = "approved"
        REJECTED = "rejected"
        NEEDS_CHANGES = "needs_changes"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="reviews")
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    reasons = models.ManyToManyField(RejectionReason, blank=True, related_name="reviews")
    comment = models.TextField(blank=True)
    adjudication = models.BooleanField(default=False, help_text="an adjudicator's verdict, deciding a disagreement")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["task", "created_at"]
        constraints = [models.UniqueConstraint(fields=["task", "reviewer"], name="one_verdict_per_reviewer")]
        # Disagreements and agreement group the verdicts by task from this index alone.
        indexes = [models.Index(fields=["task", "adjudication", "verdict"], name="review_verdicts")]

    def __str__(self) -> str:
        return f"{self.reviewer} {self.verdict} task {self.task_id}"


class ReviewEvent(models.Model):
    """Every review transition of a task: who, when, from and to, why, and what changed."""

    class Action(models.TextChoices):
        CLAIM = "claim"
        RELEASE = "release"
        LEASE_EXPIRED = "lease_expired"
        APPROVE = "approve"
        REJECT = "reject"
        NEEDS_CHANGES = "needs_changes"
        VERDICT = "verdict"  # a verdict recorded while the task waits for more reviewers
        ADJUDICATE = "adjudicate"
        REOPEN = "reopen"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="review_events")
    actor = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="review_events")
    action = models.CharField(max_length=16, choices=Action.choices)
    from_status = models.CharField(max_length=16, choices=ReviewStatus.choices)
    to_status = models.CharField(max_length=16, choices=ReviewStatus.choices)
    reasons = models.JSONField(default=list, blank=True, help_text="codes of the rejection reasons")
    comment = models.TextField(blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    batch = models.ForeignKey("environments.Batch", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="review_events", help_text="the bulk action it was part of")
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["task", "at", "id"]
        indexes = [models.Index(fields=["action", "at"], name="review_event_action_at")]

    def __str__(self) -> str:
        return f"{self.action} task {self.task_id}: {self.from_status} → {self.to_status}"


# ---------------------------------------------------------------------------------------------
# Exports


class Export(models.Model):
    """A file of tasks (or runs) picked by a filter, written by a background job and downloaded
    through a permission-checked view."""

    class Format(models.TextChoices):
        TASKS_JSONL = "tasks_jsonl", "Tasks (JSONL)"
        OPENAI_JSONL = "openai_jsonl", "OpenAI fine-tuning (JSONL)"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    requester = models.ForeignKey("auth.User", null=True, on_delete=models.SET_NULL, related_name="exports")
    batch = models.ForeignKey("environments.Batch", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="exports")
    format = models.CharField(max_length=16, choices=Format.choices)
    filters = models.JSONField(default=dict, blank=True, help_text="the task filter the export was made from")
    only_approved = models.BooleanField(default=True, help_text="False only when an admin asked for every status")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    total = models.PositiveIntegerField(default=0, help_text="rows to write (known once the job starts)")
    written = models.PositiveIntegerField(default=0)
    size_bytes = models.BigIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True, help_text="under SCALEENV_EXPORT_DIR")
    sha256 = models.CharField(max_length=64, blank=True)
    app_version = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.format}, {self.status})"
