from django.urls import path

from surveys import api, views

app_name = "surveys"

urlpatterns = [
    path("survey/<str:token>/", views.survey_page, name="page"),
    path("api/v1/extension/surveys", api.ExtensionSurveysView.as_view(), name="extension-surveys"),
    path("api/v1/surveys/callback", api.completion_callback, name="callback"),
]
