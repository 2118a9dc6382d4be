from django.urls import path

from . import views

app_name = "desk"

urlpatterns = [
    path("", views.ask, name="ask"),
    path("runs/<str:run_id>/", views.run, name="run"),
    path("runs/<str:run_id>/feedback/", views.feedback, name="feedback"),
    path("staff/approvals/", views.approvals, name="approvals"),
    path("staff/approvals/<int:approval>/", views.decide, name="decide"),
    path("api/ask", views.api_ask, name="api-ask"),
    path("api/runs/<str:run_id>", views.api_run, name="api-run"),
]
