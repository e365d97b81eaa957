from django.urls import path

from participants import prereg_views
from surveys import analysis_views, api, dashboard_views, in_feed_api, views

app_name = "surveys"

urlpatterns = [
    path("survey/<str:token>/", views.survey_page, name="page"),
    path("api/v1/extension/surveys", api.ExtensionSurveysView.as_view(), name="extension-surveys"),
    path("api/v1/surveys/callback", api.completion_callback, name="callback"),
    path("api/v1/extension/in-feed/next", in_feed_api.NextInFeedQuestionView.as_view(), name="in-feed-next"),
    path("api/v1/extension/in-feed/answers", in_feed_api.InFeedAnswerView.as_view(), name="in-feed-answer"),
    path("api/v1/extension/in-feed/dismissals", in_feed_api.InFeedDismissView.as_view(), name="in-feed-dismiss"),
    path("research/surveys/", dashboard_views.surveys_dashboard, name="dashboard"),
    path("research/surveys/in-feed/", dashboard_views.in_feed, name="in-feed"),
    path("research/surveys/responses.csv", dashboard_views.responses_csv, name="responses-csv"),
    path("research/balance/", analysis_views.balance_page, name="balance"),
    path("research/effects/", analysis_views.effects_page, name="effects"),
    path("research/effects/recompute/", analysis_views.recompute_effects, name="effects-recompute"),
    path("research/effects/unblind/", analysis_views.unblind_effects, name="effects-unblind"),
    path("research/prereg/", prereg_views.prereg_page, name="prereg"),
]
