from django.urls import path

from . import views

app_name = "supervision"

urlpatterns = [
    # Complaints (投诉)
    path("complaints/", views.complaint_list, name="complaint_list"),
    path("complaints/new/", views.complaint_intake, name="complaint_intake"),
    path("complaints/taken/", views.complaints_taken, name="complaints_taken"),
    path("complaints/<int:pk>/", views.complaint_detail, name="complaint_detail"),
    path("complaints/<int:pk>/receipt/", views.complaint_receipt, name="complaint_receipt"),
    path("complaints/<int:pk>/letter/", views.complaint_letter, name="complaint_letter"),
    path("complaints/<int:pk>/reveal/", views.complaint_reveal, name="complaint_reveal"),
    path("complaints/<int:pk>/assign/", views.complaint_assign, name="complaint_assign"),
    path("complaints/<int:pk>/reply/", views.complaint_reply, name="complaint_reply"),
    path("complaints/<int:pk>/close/", views.complaint_close, name="complaint_close"),
    # Violations and sanctions
    path("violations/", views.violation_list, name="violation_list"),
    path("violations/new/", views.violation_create, name="violation_create"),
    path("violations/<int:pk>/", views.violation_detail, name="violation_detail"),
    path("violations/<int:pk>/sanction/", views.sanction_create, name="sanction_create"),
    path("evidence/<int:pk>/", views.evidence_download, name="evidence_download"),
    path("sanctions/", views.sanction_list, name="sanction_list"),
    path("sanctions/<int:pk>/", views.sanction_detail, name="sanction_detail"),
    path("sanctions/<int:pk>/lift/", views.sanction_lift, name="sanction_lift"),
    path("our-institution/", views.own_supervision, name="own_supervision"),
    # Abnormal-query alerts
    path("alerts/", views.alert_list, name="alert_list"),
    path("alerts/evaluate/", views.alert_evaluate, name="alert_evaluate"),
    path("alerts/<int:pk>/", views.alert_detail, name="alert_detail"),
    path("alerts/<int:pk>/acknowledge/", views.alert_acknowledge, name="alert_acknowledge"),
    path("alerts/<int:pk>/escalate/", views.alert_escalate, name="alert_escalate"),
]

# Part B: dashboard, data-quality scores, audit log explorer, consent sampling (issue 8).
from . import views_audit, views_dashboard  # noqa: E402

urlpatterns += [
    path("dashboard/", views_dashboard.dashboard_view, name="dashboard"),
    path("dashboard/<slug:table>.csv", views_dashboard.dashboard_csv, name="dashboard_csv"),
    path("dashboard/refresh/", views_dashboard.dashboard_refresh, name="dashboard_refresh"),
    path("quality/", views_dashboard.quality_list, name="quality_list"),
    path("quality/compute/", views_dashboard.quality_recompute, name="quality_recompute"),
    path("quality/mine/", views_dashboard.quality_mine, name="quality_mine"),
    path("quality/<int:member_id>/", views_dashboard.quality_detail, name="quality_detail"),
    path("audit/", views_audit.audit_log, name="audit_log"),
    path("audit/export.csv", views_audit.audit_export, name="audit_export"),
    path("audit/verify/", views_audit.audit_verify, name="audit_verify"),
    path("samples/", views_audit.sample_list, name="sample_list"),
    path("samples/<int:pk>/", views_audit.sample_detail, name="sample_detail"),
    path("samples/<int:pk>/items/<int:item_pk>/", views_audit.sample_item_record, name="sample_item_record"),
]
