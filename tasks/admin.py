from django.contrib import admin

from .models import Run, RunStep, Task


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("id", "domain", "seed", "kind", "intent", "complexity", "status", "h_size", "created_at")
    list_filter = ("status", "kind", "complexity")
    search_fields = ("intent", "domain__name")
    readonly_fields = ("user_profile", "user_scenario", "script", "evaluation", "s0", "gold_chain", "gold_calls",
                       "gold_outputs", "s_gt", "communicate_info", "subgraph", "distractors", "gate", "patches",
                       "expansion", "perturbations", "audit_flags")


class RunStepInline(admin.TabularInline):
    model = RunStep
    extra = 0
    fields = ("index", "kind", "tool", "outcome", "content")
    readonly_fields = fields
    show_change_link = False
    can_delete = False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "agent", "owner", "trial", "reward", "termination", "step_count", "seconds")
    list_filter = ("agent", "termination")
    readonly_fields = ("messages", "final_state", "breakdown")
    inlines = [RunStepInline]
