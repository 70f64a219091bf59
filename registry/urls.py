from django.urls import path

from . import views

app_name = "registry"

urlpatterns = [
    path("entries/", views.entry_list, name="entry_list"),
    path("entries/new/", views.entry_create, name="entry_create"),
    path("entries/<int:pk>/", views.entry_detail, name="entry_detail"),
    path("entries/<int:pk>/edit/", views.entry_edit, name="entry_edit"),
    path("entries/<int:pk>/settle/", views.entry_settle, name="entry_settle"),
    path("entries/<int:pk>/revoke/", views.entry_revoke, name="entry_revoke"),
    path("entries/<int:pk>/statement/", views.entry_statement, name="entry_statement"),
    path("entries/<int:pk>/approve/", views.entry_approve, name="entry_approve"),
    path("entries/<int:pk>/return/", views.entry_return, name="entry_return"),
    path("evidence/<int:pk>/", views.evidence_download, name="evidence_download"),
    path("subjects/<int:pk>/reveal/", views.subject_reveal, name="subject_reveal"),
    path("review/", views.review_queue, name="review_queue"),
    path("imports/", views.batch_list, name="batch_list"),
    path("imports/new/", views.batch_upload, name="batch_upload"),
    path("imports/<int:pk>/", views.batch_detail, name="batch_detail"),
    path("imports/<int:pk>/progress/", views.batch_progress, name="batch_progress"),
    path("imports/<int:pk>/errors/", views.batch_error_report, name="batch_error_report"),
    path("imports/template.<slug:fmt>", views.import_template, name="import_template"),
    path("feeds/", views.feed_list, name="feed_list"),
    path("feeds/new/", views.feed_upload, name="feed_upload"),
]
