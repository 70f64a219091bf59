from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from .roles import Role

# (label, url name, capability or None for everyone). Each app adds its pages here; an item
# whose URL is not wired is skipped.
NAV_ITEMS = [
    (_("Home"), "accounts:home", None),
    (_("My entries"), "registry:entry_list", "accounts.report_entry"),
    (_("Bulk files"), "registry:batch_list", "accounts.report_entry"),
    (_("Review queue"), "registry:review_queue", "accounts.review_entry"),
    (_("Data feeds"), "registry:feed_list", "accounts.load_feeds"),
    (_("Query"), "billing:query_create", "accounts.query_register"),
    (_("Consents"), "billing:consent_list", "accounts.query_register"),
    (_("Counter"), "billing:counter_home", "accounts.serve_counter"),
    (_("Query log"), "billing:query_log", "accounts.query_register"),
    (_("Query log"), "billing:query_log", "accounts.supervise"),
    (_("Statements"), "billing:statement_list", "accounts.view_statements"),
    (_("Statements"), "billing:statement_list", "accounts.manage_prices"),
    (_("API keys"), "billing:apikey_list", "accounts.manage_api_keys"),
    (_("Dispute queue"), "disputes:queue", "accounts.work_disputes"),
    (_("Verification requests"), "disputes:verification_inbox", "accounts.answer_verification"),
    (_("Correction request"), "disputes:intake", "accounts.take_dispute"),
    (_("Complaints"), "supervision:complaint_list", "accounts.supervise"),
    (_("Query alerts"), "supervision:alert_list", "accounts.supervise"),
    (_("Sanctions"), "supervision:sanction_list", "accounts.supervise"),
    (_("Take a complaint"), "supervision:complaint_intake", "accounts.take_complaint"),
    (_("Sanctions and complaints"), "supervision:own_supervision", "accounts.view_own_supervision"),
    (_("Corrections bulletin"), "disputes:bulletin", None),
    (_("Users"), "accounts:user_list", "accounts.manage_institution_users"),
    (_("Dashboard"), "supervision:dashboard", "accounts.supervise"),
    (_("Quality scores"), "supervision:quality_list", "accounts.supervise"),
    (_("Consent sampling"), "supervision:sample_list", "accounts.supervise"),
    (_("Audit log"), "supervision:audit_log", "accounts.view_audit_log"),
    (_("Our data quality"), "supervision:quality_mine", "accounts.report_entry"),
    (_("Our data quality"), "supervision:quality_mine", "accounts.view_statements"),
]


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    items = []
    for label, url_name, perm in NAV_ITEMS:
        if perm is not None and not user.has_perm(perm):
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        if any(i["url"] == url for i in items):
            continue
        items.append({"label": label, "url": url, "active": False})
    # Only the longest matching item is the current one (/billing/queries/new/ is "Query",
    # not also "Query log").
    matching = [i for i in items if request.path.startswith(i["url"])]
    if matching:
        max(matching, key=lambda i: len(i["url"]))["active"] = True
    if user.has_role(Role.PLATFORM_ADMIN):
        items.append({"label": _("Administration"), "url": reverse("admin:index"), "active": False})
    from blacklist_portal.inbox.services import unread_count

    return {
        "nav_items": items,
        "user_roles": [r.label for r in user.roles],
        "inbox_unread": unread_count(user),
    }
