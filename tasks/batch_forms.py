"""The start forms of the Batches page: what a synthesis, task-making or rollout batch needs.

Limits are the services' own (``start_*_batch`` checks them again and its message is shown as a
form error), so the page and the commands accept the same parameters.
"""

from __future__ import annotations

from django import forms

from environments.models import Domain
from environments.services import SEEDS_PER_BATCH_SEED
from tasks.instantiation import COMPLEXITY
from tasks.rollout.agents import AGENTS

# One line per agent for the picker (tasks/rollout/agents.py has the details).
AGENT_HELP = {
    "oracle": "plays the gold chain through the user (should earn 1)",
    "confirming": "the oracle, asking for an explicit yes before every write",
    "null": "does nothing (should earn 0)",
    "random": "valid random calls inside the task's subgraph H",
    "perturbed": "the gold chain with one effective perturbation (should earn 0)",
    "collateral": "the gold chain plus an edit nobody asked for (should earn 0)",
    "wrong_pick": "acts on the nearest distractor instead of the target",
    "llm": "a model with function calling, the policy as system prompt (needs SCALEENV_LLM_*)",
}
USERS = [("scripted", "scripted (deterministic, from the task's script)"),
         ("llm", "llm (a model reading the user scenario; needs SCALEENV_LLM_*)")]


class SynthesisBatchForm(forms.Form):
    backend = forms.ChoiceField(choices=[("procedural", "procedural (offline, seeded)"), ("llm", "llm")],
                                initial="procedural")
    domains = forms.IntegerField(min_value=1, max_value=SEEDS_PER_BATCH_SEED, initial=3,
                                 help_text="one job per domain")
    seed = forms.IntegerField(min_value=0, initial=1, help_text="the same backend, count and seed resume one batch")
    fault_rate = forms.FloatField(min_value=0.0, max_value=1.0, initial=0.0, required=False, label="Fault rate",
                                  help_text="procedural only: share of tools written with a bug, to exercise repair")
    domain_name = forms.CharField(max_length=120, required=False, label="Domain name",
                                  help_text="llm only: synthesize this one domain (e.g. pet care) instead of proposing")
    description = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                  help_text="llm only: what the domain should cover")


class TaskBatchForm(forms.Form):
    domains = forms.ModelMultipleChoiceField(
        queryset=Domain.objects.none(), required=False, widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text="none selected: every domain that did not fail")
    per_domain = forms.IntegerField(min_value=1, max_value=SEEDS_PER_BATCH_SEED, initial=5, label="Tasks per domain")
    seed = forms.IntegerField(min_value=0, initial=1)
    complexity = forms.ChoiceField(choices=[("mix", "mix (rotates the three)")] + [(c, c) for c in COMPLEXITY],
                                   initial="mix")
    backend = forms.ChoiceField(choices=[("procedural", "procedural"), ("llm", "llm (chain, state, scenario, gate)")],
                                initial="procedural", required=False, label="Task stages",
                                help_text="llm: a model writes the seed chain, distractors, scenario and gate opinion")
    scenarios = forms.ChoiceField(choices=[("procedural", "procedural"), ("llm", "llm")], initial="procedural",
                                  required=False, label="Scenarios",
                                  help_text="llm: procedural structure, user scenarios written by a model")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["domains"].queryset = Domain.objects.exclude(status=Domain.Status.FAILED).only(
            "id", "name", "slug").order_by("name")

    def chosen_domains(self) -> list[Domain]:
        picked = list(self.cleaned_data.get("domains") or [])
        return picked or list(self.fields["domains"].queryset.order_by("slug"))


class RolloutBatchForm(forms.Form):
    agents = forms.MultipleChoiceField(choices=[(name, f"{name} — {AGENT_HELP.get(name, '')}")
                                                for name in [*AGENTS, "llm"]],
                                       widget=forms.CheckboxSelectMultiple, initial=["oracle"],
                                       help_text="one batch per agent")
    tasks = forms.ChoiceField(choices=[("verified", "verified tasks"), ("all", "all tasks (flagged too)")],
                              initial="verified")
    trials = forms.IntegerField(min_value=1, max_value=32, initial=1, help_text="episodes per task (pass^k needs k)")
    user = forms.ChoiceField(choices=USERS, initial="scripted", required=False, label="User simulator",
                             help_text="the llm user reads the task's user scenario (SCALEENV_LLM_MODEL_USER)")

    def clean_user(self) -> str:
        return self.cleaned_data.get("user") or "scripted"


FORMS: dict[str, type[forms.Form]] = {"synthesis": SynthesisBatchForm, "tasks": TaskBatchForm,
                                      "rollout": RolloutBatchForm}
