from django.apps import AppConfig


class EnvironmentsConfig(AppConfig):
    name = "environments"
    verbose_name = "Environments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import batches, checks, services  # noqa: F401 - checks registers itself

        batches.register(services.SYNTHESIS)
