from rest_framework.routers import DefaultRouter

from tasks import api as task_api

from . import api

router = DefaultRouter()
router.register("runs", api.SynthesisRunViewSet)
router.register("domains", api.DomainViewSet)
router.register("tools", api.ToolViewSet)
router.register("tool-tests", api.ToolTestViewSet)
router.register("dependencies", api.DependencyViewSet)
router.register("tasks", task_api.TaskViewSet)
router.register("runs-of-agents", task_api.RunViewSet)
router.register("sessions", task_api.SessionViewSet, basename="session")

urlpatterns = router.urls
