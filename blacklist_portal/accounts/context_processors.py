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
    (_("Users"), "accounts:user_list", "accounts.manage_institution_users"),
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
        items.append({"label": label, "url": url, "active": request.path.startswith(url)})
    if user.has_role(Role.PLATFORM_ADMIN):
        items.append({"label": _("Administration"), "url": reverse("admin:index"), "active": False})
    return {"nav_items": items, "user_roles": [r.label for r in user.roles]}
