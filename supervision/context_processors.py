from django.utils import timezone

from blacklist_portal.accounts.models import Institution

from .services import member_suspensions

# The member's pages that show why it is suspended: its home page and the forms a suspension
# refuses. Not every page: lists such as "my entries" keep their fixed query budget.
BANNER_PAGES = frozenset({
    "accounts:role_home",
    "billing:query_create",
    "billing:consent_upload",
    "registry:entry_create",
    "registry:entry_edit",
    "registry:batch_upload",
    "supervision:own_supervision",
})


def suspension_banner(request):
    """A member's users see what is suspended, until when and why (one indexed query, on the
    pages above, for lenders' users only)."""
    user = getattr(request, "user", None)
    match = getattr(request, "resolver_match", None)
    if (
        user is None
        or not user.is_authenticated
        or match is None
        or match.view_name not in BANNER_PAGES
        or user.institution.kind != Institution.Kind.LENDER
    ):
        return {}
    return {"member_suspensions": member_suspensions(user.institution_id, today=timezone.localdate())}
