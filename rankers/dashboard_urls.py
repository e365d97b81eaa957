"""Ranking dashboards, mounted at /research/ranking/."""

from django.urls import path

from rankers import dashboard_views
from rankers.content import views as content_views

app_name = "rankers"

urlpatterns = [
    path("", dashboard_views.index, name="dashboards"),
    path("timelines/", dashboard_views.timelines, name="timelines"),
    path("delivery/", dashboard_views.delivery, name="delivery"),
    path("slates/", dashboard_views.slate_lookup, name="slate-lookup"),
    path("slates/<int:slate_id>/", dashboard_views.slate_inspector, name="slate"),
    path("content/", content_views.health, name="content-health"),
]
