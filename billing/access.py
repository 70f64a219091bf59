"""Fetch-and-authorise helpers for consents, queries, statements and API keys."""

from django.http import Http404

from blacklist_portal.accounts.models import User

from .models import ApiKey, Consent, Query, Receipt, Statement


def _platform_reader(user: User) -> bool:
    return user.has_perm("accounts.supervise") or user.has_perm("accounts.review_entry")


def access_consent(user: User, pk: int) -> Consent:
    """Owning member, review officers and regulators (product.md, issue #4)."""
    consent = Consent.objects.select_related("subject", "member").filter(pk=pk).first()
    if consent is None:
        raise Http404
    if consent.member_id == user.institution_id and (
        user.has_perm("accounts.upload_consent") or user.has_perm("accounts.query_register")
    ):
        return consent
    if _platform_reader(user):
        return consent
    raise Http404


def access_query(user: User, query_no: str) -> Query:
    query = Query.objects.select_related("member", "user", "consent").filter(query_no=query_no).first()
    if query is None:
        raise Http404
    if query.member_id == user.institution_id and (
        user.has_perm("accounts.query_register")
        or user.has_perm("accounts.serve_counter")
        or user.has_perm("accounts.view_statements")
    ):
        return query
    if user.has_perm("accounts.supervise"):
        return query
    if query.user_id == user.pk and user.has_perm("accounts.serve_counter"):
        # The clerk who ran a representative query prints its result for the representative.
        return query
    raise Http404


def access_statement(user: User, pk: int) -> Statement:
    statement = Statement.objects.select_related("member").filter(pk=pk).first()
    if statement is None:
        raise Http404
    if statement.member_id == user.institution_id and user.has_perm("accounts.view_statements"):
        return statement
    if user.has_perm("accounts.manage_prices") or user.has_perm("accounts.supervise"):
        return statement
    raise Http404


def access_apikey(user: User, pk: int) -> ApiKey:
    key = ApiKey.objects.filter(pk=pk, member_id=user.institution_id).first()
    if key is None or not user.has_perm("accounts.manage_api_keys"):
        raise Http404
    return key


def access_receipt(user: User, pk: int) -> Receipt:
    receipt = Receipt.objects.select_related("query").filter(pk=pk).first()
    if receipt is None or not user.has_perm("accounts.serve_counter"):
        raise Http404
    return receipt
