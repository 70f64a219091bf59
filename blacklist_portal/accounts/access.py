"""Fetch-and-authorise helpers. Another institution's row is a 404, never a 403."""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import User


def access_institution_user(actor: User, pk: int, *, for_write: bool = False) -> User:
    """A user of the actor's own institution, for a lender admin managing their colleagues."""
    if not actor.has_perm("accounts.manage_institution_users"):
        raise PermissionDenied
    try:
        return User.objects.get(pk=pk, institution_id=actor.institution_id)
    except User.DoesNotExist:
        raise Http404 from None
