"""Fetch-and-authorise helpers for disputes. A dispute the user may not see is a 404, never a
403 that confirms it exists.

Who reads a dispute: review officers, senior review officers and regulators (read-only) see
all; a lender's users see disputes about their institution's entries or filed by their
institution; the clerk or platform staff member who took the request sees it."""

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from blacklist_portal.accounts.models import Institution, User

from .models import Attachment, Dispute
from .workflow import Action

# The capabilities that make a lender's user part of its dispute work (a lender admin, who
# manages users and keys, has none of them and sees no dispute).
_MEMBER_CAPABILITIES = ("accounts.answer_verification", "accounts.take_dispute", "accounts.report_entry")

# Actions an officer takes from the dispute page.
_OFFICER_ACTIONS = frozenset(
    {Action.ASSIGN, Action.REQUEST_VERIFICATION, Action.EXTEND, Action.DECIDE, Action.CLOSE}
)


def reads_everything(user: User) -> bool:
    return user.has_perm("accounts.work_disputes") or user.has_perm("accounts.supervise")


def is_member_user(user: User) -> bool:
    return user.institution.kind == Institution.Kind.LENDER and any(
        user.has_perm(p) for p in _MEMBER_CAPABILITIES
    )


def about_member(member_id: int) -> Exists:
    """Disputes with at least one entry reported by this member (no duplicate rows)."""
    through = Dispute.entries.through.objects.filter(dispute_id=OuterRef("pk"), entry__member_id=member_id)
    return Exists(through)


def disputes_visible_to(user: User) -> QuerySet[Dispute]:
    if reads_everything(user):
        return Dispute.objects.all()
    visible = Q(taken_by=user)
    if is_member_user(user):
        visible |= Q(filed_by_member_id=user.institution_id) | Q(about_member(user.institution_id))
    return Dispute.objects.filter(visible)


def member_ids(dispute: Dispute) -> set[int]:
    """The institutions that reported the dispute's entries (cached on the object)."""
    if not hasattr(dispute, "_member_ids"):
        dispute._member_ids = set(dispute.entries.values_list("member_id", flat=True))
    return dispute._member_ids


def user_may(user: User, dispute: Dispute, action: str) -> bool:
    """Whether this user may take `action` on this dispute at all, whatever its status (the
    workflow and the services decide whether it is possible now)."""
    if action in _OFFICER_ACTIONS:
        return user.has_perm("accounts.work_disputes")
    if action == Action.RECONSIDER:
        return user.has_perm("accounts.decide_appeal")
    if action == Action.ANSWER_VERIFICATION:
        return user.has_perm("accounts.answer_verification") and user.institution_id in member_ids(dispute)
    if action == Action.APPEAL:
        # On the applicant's behalf: whoever took it, the member that filed it, or platform
        # staff at the counter. Never the member whose entry is disputed.
        return user.has_perm("accounts.take_dispute") and (
            dispute.taken_by_id == user.pk
            or (dispute.filed_by_member_id is not None and dispute.filed_by_member_id == user.institution_id)
            or user.institution.kind == Institution.Kind.OPERATOR
        )
    return False  # the verification timeout is the sweep's


def access_dispute(user: User, pk: int, *, for_write: bool = False) -> Dispute:
    dispute = (
        disputes_visible_to(user)
        .select_related("subject", "assignee", "taken_by", "filed_by_member", "decided_by", "reconsidered_by")
        .filter(pk=pk)
        .first()
    )
    if dispute is None:
        raise Http404
    if for_write and not any(user_may(user, dispute, a) for a in Action.values):
        # Read-only oversight (regulators): they know it exists, so no need to hide it.
        raise PermissionDenied
    return dispute


def access_attachment(user: User, pk: int) -> Attachment:
    attachment = Attachment.objects.filter(pk=pk).first()
    if attachment is None:
        raise Http404
    access_dispute(user, attachment.dispute_id)
    return attachment


def entries_shown(user: User, dispute: Dispute) -> QuerySet:
    """The dispute's entries this user may see: a lender sees only its own institution's
    (a "not me at all" request also covers other members' entries, which are theirs to see)."""
    qs = dispute.entries.select_related("member").order_by("member__name", "contract_no")
    if user.institution.kind == Institution.Kind.LENDER:
        return qs.filter(member_id=user.institution_id)
    return qs
