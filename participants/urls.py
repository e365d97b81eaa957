from django.urls import path

from participants import views
from participants.api import EventsView, HeartbeatView, RegisterView, UninstallView

app_name = "participants"

urlpatterns = [
    path("join/<slug:source_slug>/", views.join, name="join"),
    path("join/<slug:study_slug>/<slug:source_slug>/", views.join, name="join-study"),
    path("signup/", views.landing, name="landing"),
    path("signup/screener/", views.screener, name="screener"),
    path("signup/consent/", views.consent, name="consent"),
    path("signup/install/", views.install, name="install"),
    path("signup/return/", views.vendor_return, name="vendor-return"),
    path("p/<str:key>/", views.status, name="status"),
    path("p/<str:key>/consent/", views.status_consent, name="status-consent"),
    path("p/<str:key>/withdraw/", views.withdraw, name="withdraw"),
    path("p/<str:key>/code/", views.new_code, name="new-code"),
    path("api/v1/extension/register", RegisterView.as_view(), name="extension-register"),
    path("api/v1/extension/heartbeat", HeartbeatView.as_view(), name="extension-heartbeat"),
    path("api/v1/extension/events", EventsView.as_view(), name="extension-events"),
    path("api/v1/extension/uninstall", UninstallView.as_view(), name="extension-uninstall"),
]
