"""Research dashboards, mounted at /research/."""

import plotly
from django.urls import path

from participants import dashboard_views, data_views, views

app_name = "dashboards"

urlpatterns = [
    path("", dashboard_views.index, name="index"),
    path("funnel/", dashboard_views.funnel, name="funnel"),
    path("behaviour/", data_views.behaviour, name="behaviour"),
    path("exports/", data_views.exports_page, name="exports"),
    path("exports/<int:export_id>/", data_views.export_detail, name="export"),
    path("exports/<int:export_id>/status.json", data_views.export_status, name="export-status"),
    path("exports/<int:export_id>/download/", data_views.export_download, name="export-download"),
    path("payments/", dashboard_views.payments_page, name="payments"),
    path("payments/export/", dashboard_views.payout_export, name="payout-export"),
    path("payments/batches/<int:batch_id>/file/", dashboard_views.payout_file, name="payout-file"),
    path("payments/batches/<int:batch_id>/results/", dashboard_views.payout_results, name="payout-results"),
    path("studies/<slug:study_slug>/preview/<str:page>/", views.preview, name="preview"),
    # The version in the path lets browsers cache the file for a week and still see upgrades.
    path(f"static/plotly-{plotly.__version__}.min.js", dashboard_views.plotly_js, name="plotly_js"),
]
