from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from prc_site import health

urlpatterns = [
    path("healthz", health.ready, name="healthz"),
    path("healthz/ready", health.ready, name="healthz-ready"),
    path("healthz/live", health.live, name="healthz-live"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("research/ranking/", include("rankers.dashboard_urls")),
    path("research/", include("participants.dashboard_urls")),
    path("", include("rankers.urls")),
    path("", include("surveys.urls")),
    path("", include("participants.urls")),
]
