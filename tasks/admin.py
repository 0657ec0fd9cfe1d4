from django.contrib import admin

from .models import Run, Task


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("id", "domain", "seed", "complexity", "status", "h_size", "distractor_count", "created_at")
    list_filter = ("status", "complexity")
    search_fields = ("instruction", "domain__name")
    readonly_fields = ("user_profile", "s0", "gold_chain", "gold_calls", "gold_outputs", "s_gt", "communicate_info",
                       "subgraph", "distractors", "gate", "patches", "expansion", "perturbations", "audit_flags")


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "agent", "trial", "reward", "termination", "tool_errors", "seconds")
    list_filter = ("agent", "termination")
    readonly_fields = ("messages", "steps", "final_state", "breakdown")
