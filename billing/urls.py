from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("consents/", views.consent_list, name="consent_list"),
    path("consents/new/", views.consent_upload, name="consent_upload"),
    path("consents/<int:pk>/file/", views.consent_download, name="consent_download"),
    path("queries/new/", views.query_create, name="query_create"),
    path("queries/", views.query_log, name="query_log"),
    path("queries/<slug:query_no>/", views.query_detail, name="query_detail"),
    path("counter/", views.counter_home, name="counter_home"),
    path("counter/self-query/", views.counter_self_query, name="counter_self_query"),
    path("counter/member-query/", views.counter_member_query, name="counter_member_query"),
    path("counter/receipts/<int:pk>/", views.receipt_print, name="receipt_print"),
    path("statements/", views.statement_list, name="statement_list"),
    path("statements/<int:pk>/", views.statement_detail, name="statement_detail"),
    path("statements/<int:pk>/paid/", views.statement_mark_paid, name="statement_mark_paid"),
    path("api-keys/", views.apikey_list, name="apikey_list"),
    path("api-keys/<int:pk>/revoke/", views.apikey_revoke, name="apikey_revoke"),
]
