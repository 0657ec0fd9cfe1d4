from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Synthesized tasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from environments import batches

        from . import services

        batches.register(services.TASKS)
        batches.register(services.ROLLOUT)
