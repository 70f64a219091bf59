"""Logins, failed logins, logouts and lockouts go into the audit log."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .services import audit_record


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    audit_record(actor=user, action="auth.login", target=user, request=request)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        audit_record(actor=user, action="auth.logout", target=user, request=request)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    # The username typed is kept (staff account names are not borrowers' personal data) so
    # that an attack on one account can be seen; never the password.
    audit_record(
        actor=None,
        action="auth.login_failed",
        request=request,
        details={"username": str(credentials.get("username", ""))[:150]},
    )


@receiver(user_locked_out)
def _locked_out(sender, request, username, ip_address, **kwargs):
    audit_record(
        actor=None,
        action="auth.locked_out",
        request=request,
        details={"username": str(username or "")[:150]},
    )
