from django.urls import path, re_path

from . import views

app_name = "api"

urlpatterns = [
    path("schema", views.schema, name="schema"),
    path("consents", views.consents, name="consents"),
    path("queries", views.queries, name="queries"),
    path("queries/<str:query_no>", views.query_detail, name="query_detail"),
    path("batch-screenings", views.batch_screenings, name="batch_screenings"),
    path("entries", views.entries, name="entries"),
    # Anything else under /api/v1/ is a JSON 404 (after authentication, like every endpoint).
    re_path(r"^.*$", views.not_found, name="not_found"),
]
