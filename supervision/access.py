"""Fetch-and-authorise helpers for supervision. What a user may not see is a 404, never a 403
that confirms it exists.

Regulators (`supervise`) read everything. A member's administrators
(`view_own_supervision`) read their own institution's sanctions and the complaints about it,
never another member's. Whoever took a complaint at the counter or from a letter
(`take_complaint`) reads the complaints they took, to print the receipt."""

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from blacklist_portal.accounts.models import Institution, User

from .models import Complaint, QueryAlert, Sanction, Violation, ViolationEvidence


def supervises(user: User) -> bool:
    return user.has_perm("accounts.supervise") or user.has_perm("accounts.handle_complaints")


def is_member_admin(user: User) -> bool:
    return user.institution.kind == Institution.Kind.LENDER and user.has_perm("accounts.view_own_supervision")


def complaints_visible_to(user: User) -> QuerySet[Complaint]:
    if supervises(user):
        return Complaint.objects.all()
    visible = Q(pk__in=[])
    if user.has_perm("accounts.take_complaint"):
        visible |= Q(taken_by=user)
    if is_member_admin(user):
        visible |= Q(member_id=user.institution_id)
    return Complaint.objects.filter(visible)


def access_complaint(user: User, pk: int, *, for_write: bool = False) -> Complaint:
    complaint = (
        complaints_visible_to(user)
        .select_related("member", "taken_by", "assignee", "replied_by")
        .filter(pk=pk)
        .first()
    )
    if complaint is None:
        raise Http404
    if for_write and not user.has_perm("accounts.handle_complaints"):
        # They may read it, so it is no secret that it exists.
        raise PermissionDenied
    return complaint


def _regulator_only(user: User) -> None:
    if not supervises(user):
        raise Http404


def access_violation(user: User, pk: int) -> Violation:
    _regulator_only(user)
    violation = Violation.objects.select_related("member", "recorded_by", "alert").filter(pk=pk).first()
    if violation is None:
        raise Http404
    return violation


def access_evidence(user: User, pk: int) -> ViolationEvidence:
    _regulator_only(user)
    evidence = ViolationEvidence.objects.select_related("violation").filter(pk=pk).first()
    if evidence is None:
        raise Http404
    return evidence


def sanctions_visible_to(user: User) -> QuerySet[Sanction]:
    if supervises(user):
        return Sanction.objects.all()
    if is_member_admin(user):
        return Sanction.objects.filter(member_id=user.institution_id)
    return Sanction.objects.none()


def access_sanction(user: User, pk: int) -> Sanction:
    sanction = (
        sanctions_visible_to(user)
        .select_related("member", "violation", "recorded_by", "lifted_by")
        .filter(pk=pk)
        .first()
    )
    if sanction is None:
        raise Http404
    return sanction


def access_alert(user: User, pk: int) -> QueryAlert:
    _regulator_only(user)
    alert = QueryAlert.objects.select_related("member", "handled_by").filter(pk=pk).first()
    if alert is None:
        raise Http404
    return alert
