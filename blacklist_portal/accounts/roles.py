"""Roles, what each may do, and where each lands after login.

Roles are auth Groups named by `Role` values. Their permissions are the `Capability`
permissions listed here; `sync_roles` makes the database match this module (data migrations
call it whenever the list changes). Code checks capabilities (`user.has_perm("accounts.x")`),
never role names, except to pick a home page.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    LENDER_STAFF = "lender_staff", _("Lender staff")
    LENDER_ADMIN = "lender_admin", _("Lender admin")
    REVIEW_OFFICER = "review_officer", _("Review officer")
    SENIOR_REVIEW_OFFICER = "senior_review_officer", _("Senior review officer")
    COUNTER_CLERK = "counter_clerk", _("Counter clerk")
    REGULATOR = "regulator", _("Regulator")
    PLATFORM_ADMIN = "platform_admin", _("Platform admin")


# (codename, description). Descriptions are shown in Django admin only.
CAPABILITIES = [
    ("report_entry", "Report, edit, settle and revoke own institution's entries"),
    ("query_register", "Query the register with a consent"),
    ("upload_consent", "Upload borrowers' consents"),
    ("answer_verification", "Answer dispute verification requests"),
    ("manage_institution_users", "Invite, deactivate and assign roles in own institution"),
    ("manage_api_keys", "Create and revoke own institution's API keys"),
    ("view_statements", "See own institution's statements and spend"),
    ("review_entry", "Approve or return pending entries"),
    ("work_disputes", "Work the dispute queue and decide disputes"),
    ("decide_appeal", "Decide appeals (reconsideration)"),
    ("reveal_identifier", "Reveal a masked personal identifier (audit-logged)"),
    ("serve_counter", "Serve walk-ins at the offline counter"),
    ("take_dispute", "Take correction requests"),
    ("supervise", "Read-only oversight of the whole market"),
    ("handle_complaints", "Handle complaints and record sanctions"),
    ("view_audit_log", "Read and verify the audit log"),
    ("manage_institutions", "Create and suspend institutions"),
    ("manage_prices", "Manage price schedules"),
    ("load_feeds", "Load court-judgment and bureau feeds"),
    ("take_complaint", "Take complaints against members (counter, letters)"),
    ("view_own_supervision", "See own institution's sanctions and the complaints about it"),
]

ROLE_CAPABILITIES: dict[str, list[str]] = {
    Role.LENDER_STAFF: [
        "report_entry",
        "query_register",
        "upload_consent",
        "answer_verification",
        "take_dispute",
    ],
    Role.LENDER_ADMIN: ["manage_institution_users", "manage_api_keys", "view_statements", "view_own_supervision"],
    Role.REVIEW_OFFICER: ["review_entry", "work_disputes", "take_dispute", "reveal_identifier"],
    Role.SENIOR_REVIEW_OFFICER: [
        "review_entry",
        "work_disputes",
        "decide_appeal",
        "take_dispute",
        "reveal_identifier",
    ],
    Role.COUNTER_CLERK: ["serve_counter", "take_dispute", "upload_consent", "take_complaint"],
    Role.REGULATOR: ["supervise", "handle_complaints", "view_audit_log", "reveal_identifier", "take_complaint"],
    Role.PLATFORM_ADMIN: [
        "manage_institutions",
        "manage_prices",
        "load_feeds",
        "take_dispute",
        "view_audit_log",
        "take_complaint",
    ],
}

# Two-factor login is required for these roles (issue #2, product.md "Security").
ROLES_REQUIRING_2FA = frozenset(
    {Role.REVIEW_OFFICER, Role.SENIOR_REVIEW_OFFICER, Role.REGULATOR, Role.PLATFORM_ADMIN}
)

# Which kind of institution a role belongs to; assigning a role elsewhere is refused.
ROLE_INSTITUTION_KIND = {
    Role.LENDER_STAFF: "lender",
    Role.LENDER_ADMIN: "lender",
    Role.REVIEW_OFFICER: "operator",
    Role.SENIOR_REVIEW_OFFICER: "operator",
    Role.COUNTER_CLERK: "operator",
    Role.PLATFORM_ADMIN: "operator",
    Role.REGULATOR: "regulator",
}

# Roles a lender admin may hand out inside their own institution.
LENDER_ASSIGNABLE_ROLES = (Role.LENDER_STAFF, Role.LENDER_ADMIN)

# The first of a user's roles in this order picks the home page.
HOME_ORDER = [
    Role.PLATFORM_ADMIN,
    Role.REGULATOR,
    Role.SENIOR_REVIEW_OFFICER,
    Role.REVIEW_OFFICER,
    Role.COUNTER_CLERK,
    Role.LENDER_ADMIN,
    Role.LENDER_STAFF,
]


def sync_roles(apps, schema_editor=None) -> None:
    """Create every role group and give it exactly its capabilities. Usable from migrations."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = {
        p.codename: p
        for p in Permission.objects.filter(content_type__app_label="accounts", content_type__model="capability")
    }
    for role, codenames in ROLE_CAPABILITIES.items():
        group, _created = Group.objects.get_or_create(name=str(role.value))
        # An earlier migration runs against an earlier list of capabilities: it grants what
        # exists then, and the migration that added the others grants them.
        group.permissions.set([perms[c] for c in codenames if c in perms])


# What each role's home page offers: (title, description, url name or None). A task whose
# page is not built yet shows its description without a link.
HOME_TASKS: dict[str, list[tuple]] = {
    Role.LENDER_STAFF: [
        (_("Report an entry"), _("Report a borrower's default or fraud, with prior notice and evidence."), "registry:entry_create"),
        (_("My entries"), _("Entries your institution reported, their review status and settlement."), "registry:entry_list"),
        (_("Query the register"), _("Check a borrower with their signed consent before lending."), "billing:query_create"),
        (_("Consents"), _("Upload a borrower's signed authorisation before querying."), "billing:consent_upload"),
        (_("Verification requests"), _("Disputes about your entries that wait for your answer."), "disputes:verification_inbox"),
    ],
    Role.LENDER_ADMIN: [
        (_("Users"), _("Invite colleagues, assign their roles, deactivate leavers."), "accounts:user_list"),
        (_("API keys"), _("Keys for your loan system to call the portal's API."), "billing:apikey_list"),
        (_("Statements"), _("Monthly statements and spend of your institution."), "billing:statement_list"),
        (_("Sanctions and complaints"), _("Sanctions on your institution and complaints about it."), "supervision:own_supervision"),
    ],
    Role.REVIEW_OFFICER: [
        (_("Review queue"), _("Pending entries to approve or return, oldest first."), "registry:review_queue"),
        (_("Dispute queue"), _("Correction requests by due date."), "disputes:queue"),
    ],
    Role.SENIOR_REVIEW_OFFICER: [
        (_("Appeals"), _("Appealed decisions to reconsider (never your own)."), "disputes:queue"),
        (_("Review queue"), _("Pending entries to approve or return, oldest first."), "registry:review_queue"),
    ],
    Role.COUNTER_CLERK: [
        (_("Self-query"), _("A walk-in borrower's own report, after checking the ID card in person."), "billing:counter_self_query"),
        (_("Today at the counter"), _("Queries and receipts of today."), "billing:counter_home"),
        (_("Representative query"), _("A query brought by a member's representative with a paper consent."), "billing:counter_member_query"),
        (_("Correction request"), _("Take a borrower's correction request on paper."), "disputes:intake"),
        (_("Complaint"), _("Take a complaint against a member, at the counter or from a letter."), "supervision:complaint_intake"),
    ],
    Role.REGULATOR: [
        (_("Dashboard"), _("The market and each member at a glance."), "supervision:dashboard"),
        (_("Complaints"), _("Complaints against members, within 30 days."), "supervision:complaint_list"),
        (_("Query alerts"), _("Abnormal query patterns to acknowledge or escalate."), "supervision:alert_list"),
        (_("Violations and sanctions"), _("Record violations; warnings, fines and suspensions."), "supervision:sanction_list"),
        (_("Audit log"), _("Every change and every reading of personal data."), "supervision:audit_log"),
        (_("Query log"), _("Every query of every member."), "billing:query_log"),
    ],
    Role.PLATFORM_ADMIN: [
        (_("Administration"), _("Institutions, users, price schedules."), "admin:index"),
        (_("Data feeds"), _("Load court-judgment and bureau files."), "registry:feed_list"),
        (_("Statements"), _("Members' monthly statements; generate on demand, mark paid."), "billing:statement_list"),
        (_("Complaint"), _("Take a complaint against a member from a letter."), "supervision:complaint_intake"),
    ],
}
