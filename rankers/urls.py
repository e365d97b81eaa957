from django.urls import path

from rankers import prometheus, views

urlpatterns = [
    path("rank", views.rank, name="rank"),
    path("rankers/<str:name>/rank", views.ranker_service, name="ranker-service"),
    path("metrics", prometheus.metrics_view, name="metrics"),
]
