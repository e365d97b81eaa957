from django.urls import path

from surveys import api, dashboard_views, views

app_name = "surveys"

urlpatterns = [
    path("survey/<str:token>/", views.survey_page, name="page"),
    path("api/v1/extension/surveys", api.ExtensionSurveysView.as_view(), name="extension-surveys"),
    path("api/v1/surveys/callback", api.completion_callback, name="callback"),
    path("research/surveys/", dashboard_views.surveys_dashboard, name="dashboard"),
    path("research/surveys/responses.csv", dashboard_views.responses_csv, name="responses-csv"),
]
