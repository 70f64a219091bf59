from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from blacklist_portal.audit.services import audit_record

from .models import Institution, User
from .roles import LENDER_ASSIGNABLE_ROLES, ROLE_INSTITUTION_KIND, Role


def _check_roles_fit(*, actor: User, institution: Institution, roles: list[Role]) -> None:
    if not actor.has_role(Role.PLATFORM_ADMIN):
        if actor.institution_id != institution.pk or not actor.has_perm(
            "accounts.manage_institution_users"
        ):
            raise PermissionDenied
        if any(r not in LENDER_ASSIGNABLE_ROLES for r in roles):
            raise ValidationError(_("You may only assign lender staff and lender admin roles."))
    for role in roles:
        if ROLE_INSTITUTION_KIND[role] != institution.kind:
            raise ValidationError(
                _("The role “%(role)s” does not belong to an institution of type “%(kind)s”.")
                % {"role": role.label, "kind": institution.get_kind_display()}
            )


def _set_groups(user: User, roles: list[Role]) -> None:
    user.groups.set(Group.objects.filter(name__in=[r.value for r in roles]))
    user.__dict__.pop("_roles_cache", None)


@transaction.atomic
def user_invite(
    *,
    actor: User,
    institution: Institution,
    username: str,
    full_name: str,
    email: str,
    roles: list[Role],
    request=None,
) -> User:
    """Create a colleague's account and e-mail them a link to choose their password."""
    _check_roles_fit(actor=actor, institution=institution, roles=roles)
    user = User(username=username, full_name=full_name, email=email, institution=institution)
    user.set_unusable_password()
    user.save()
    _set_groups(user, roles)
    audit_record(
        actor=actor,
        action="user.invite",
        target=user,
        request=request,
        details={"roles": [r.value for r in roles]},
    )
    user_send_invitation(user=user)
    return user


def user_send_invitation(*, user: User) -> None:
    """E-mail a one-time link to choose a password, once the surrounding transaction commits."""
    from django.conf import settings

    link = reverse(
        "accounts:invitation",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    body = render_to_string(
        "accounts/email/invitation.txt",
        {"user": user, "institution": user.institution, "link": settings.PORTAL_BASE_URL + link},
    )
    subject = _("Your account on the microloan blacklist portal")
    transaction.on_commit(lambda: send_mail(subject, body, None, [user.email]))


@transaction.atomic
def user_set_roles(*, actor: User, user: User, roles: list[Role], request=None) -> User:
    _check_roles_fit(actor=actor, institution=user.institution, roles=roles)
    if user.pk == actor.pk and Role.LENDER_ADMIN in user.roles and Role.LENDER_ADMIN not in roles:
        raise ValidationError(_("You cannot remove your own administrator role."))
    before = [r.value for r in user.roles]
    _set_groups(user, roles)
    audit_record(
        actor=actor,
        action="user.set_roles",
        target=user,
        request=request,
        details={"before": before, "after": [r.value for r in roles]},
    )
    return user


@transaction.atomic
def user_set_active(*, actor: User, user: User, active: bool, request=None) -> User:
    _check_roles_fit(actor=actor, institution=user.institution, roles=[])
    if user.pk == actor.pk:
        raise ValidationError(_("You cannot deactivate your own account."))
    user.is_active = active
    user.save(update_fields=["is_active"])
    audit_record(
        actor=actor,
        action="user.activate" if active else "user.deactivate",
        target=user,
        request=request,
    )
    return user


def totp_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def totp_pending_device(user: User) -> TOTPDevice:
    """The unconfirmed device being enrolled; one per user, reused until confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="TOTP", confirmed=False)
    return device


@transaction.atomic
def totp_enrol_confirm(*, user: User, device: TOTPDevice, token: str, request) -> bool:
    if device.user_id != user.pk or device.confirmed or not device.verify_token(token):
        return False
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    otp_login(request, device)
    audit_record(actor=user, action="auth.otp_enrolled", target=user, request=request)
    return True


@transaction.atomic
def totp_verify(*, user: User, token: str, request) -> bool:
    device = totp_device(user)
    if device is None or not device.verify_token(token):
        audit_record(actor=user, action="auth.otp_failed", target=user, request=request)
        return False
    otp_login(request, device)
    audit_record(actor=user, action="auth.otp_verified", target=user, request=request)
    return True
