from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Synthesized tasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from environments import batches

        from . import reviews, services

        batches.register(services.TASKS)
        batches.register(services.ROLLOUT)
        batches.register(services.EXPORT)  # exports (item 8)
        batches.register(reviews.bulk_kind())
