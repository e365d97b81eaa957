"""Research dashboards, mounted at /research/."""

import plotly
from django.urls import path

from participants import dashboard_views

app_name = "dashboards"

urlpatterns = [
    path("", dashboard_views.index, name="index"),
    path("funnel/", dashboard_views.funnel, name="funnel"),
    # The version in the path lets browsers cache the file for a week and still see upgrades.
    path(f"static/plotly-{plotly.__version__}.min.js", dashboard_views.plotly_js, name="plotly_js"),
]
