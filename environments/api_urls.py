from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter()
router.register("runs", api.SynthesisRunViewSet)
router.register("domains", api.DomainViewSet)
router.register("tools", api.ToolViewSet)
router.register("tool-tests", api.ToolTestViewSet)
router.register("dependencies", api.DependencyViewSet)

urlpatterns = router.urls
