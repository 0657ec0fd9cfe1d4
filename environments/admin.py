from django.contrib import admin

from .models import Batch, BatchItem, Dependency, Domain, LLMCall, Table, Tool, ToolTest


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "backend", "status", "done_items", "failed_items", "total_items", "created_at")
    list_filter = ("status", "backend", "kind")
    readonly_fields = ("params", "params_key", "counters", "metrics", "sandbox")


@admin.register(BatchItem)
class BatchItemAdmin(admin.ModelAdmin):
    list_display = ("id", "batch", "item_key", "seed", "status", "attempts", "claimed_by", "result_id", "seconds")
    list_filter = ("status",)
    search_fields = ("claimed_by", "error")
    readonly_fields = ("counters",)


class TableInline(admin.TabularInline):
    model = Table
    extra = 0
    fields = ("name", "label", "pk_column", "role")
    readonly_fields = fields
    show_change_link = True


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "sector", "backend", "status", "seed", "created_at")
    list_filter = ("status", "sector", "backend")
    search_fields = ("name", "slug", "description")
    readonly_fields = ("fixture", "stats", "layout", "stages", "sandbox", "notes", "keywords", "spec_hash", "policy",
                       "policy_version")
    inlines = [TableInline]


@admin.register(Table)
class TableAdmin(admin.ModelAdmin):
    list_display = ("name", "domain", "role", "pk_column")
    list_filter = ("role",)
    search_fields = ("name", "domain__name")
    readonly_fields = ("columns", "machine")


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    list_display = ("name", "domain", "kind", "status", "repair_count", "mutates")
    list_filter = ("status", "kind", "mutates")
    search_fields = ("name", "description", "domain__name")
    readonly_fields = ("parameters", "returns", "output_fields", "preconditions", "postconditions", "raises",
                       "reads", "writes", "contract")


@admin.register(ToolTest)
class ToolTestAdmin(admin.ModelAdmin):
    list_display = ("name", "tool", "kind", "outcome", "attempts")
    list_filter = ("outcome", "kind")
    search_fields = ("name", "tool__name", "message")
    readonly_fields = ("instance_patch", "call_args", "expected", "observed")


@admin.register(Dependency)
class DependencyAdmin(admin.ModelAdmin):
    list_display = ("src", "dst", "kinds", "witnessed", "domain")
    list_filter = ("witnessed", "source")
    search_fields = ("src__name", "dst__name")
    readonly_fields = ("evidence", "witness", "kinds")


@admin.register(LLMCall)
class LLMCallAdmin(admin.ModelAdmin):
    list_display = ("stage", "model", "cached", "prompt_tokens", "completion_tokens", "latency_ms", "created_at")
    list_filter = ("stage", "model", "cached")
    readonly_fields = ("request", "response")
