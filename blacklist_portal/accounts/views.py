import time

import segno
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import services
from .access import access_institution_user
from .forms import InviteUserForm, LoginForm, TokenForm, UserRolesForm
from .middleware import LOGIN_TIME_KEY
from .models import User
from .roles import HOME_TASKS, Role


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)  # rotates the session key
        self.request.session[LOGIN_TIME_KEY] = time.time()
        return response


class LogoutView(auth_views.LogoutView):
    template_name = "accounts/logged_out.html"


class InvitationView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/invitation.html"
    success_url = reverse_lazy("accounts:login")

    def form_valid(self, form):
        messages.success(self.request, _("Your password is set. Please sign in."))
        return super().form_valid(form)


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:home")

    def form_valid(self, form):
        messages.success(self.request, _("Your password has been changed."))
        return super().form_valid(form)


@login_required
def otp_verify(request: HttpRequest) -> HttpResponse:
    if request.user.is_verified():
        return redirect("accounts:home")
    if services.totp_device(request.user) is None:
        return redirect(request.get_full_path().replace(request.path, reverse("accounts:otp_enrol"), 1))
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if services.totp_verify(user=request.user, token=form.cleaned_data["token"], request=request):
            return redirect(_safe_next(request) or "accounts:home")
        form.add_error("token", _("This code is not correct or has expired. Try the current one."))
    return render(request, "accounts/otp_verify.html", {"form": form})


def _safe_next(request: HttpRequest) -> str | None:
    """The `next` parameter if it points into this site, else None (no open redirect)."""
    target = request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


@login_required
def otp_enrol(request: HttpRequest) -> HttpResponse:
    if services.totp_device(request.user) is not None:
        # Re-enrolment (a lost phone) is done by a platform admin, who removes the old device.
        return redirect("accounts:otp_verify")
    device = services.totp_pending_device(request.user)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if services.totp_enrol_confirm(
            user=request.user, device=device, token=form.cleaned_data["token"], request=request
        ):
            messages.success(request, _("Two-factor sign-in is set up."))
            return redirect(_safe_next(request) or "accounts:home")
        form.add_error("token", _("This code is not correct. Check the time on your phone."))
    qr_svg = segno.make(device.config_url, error="m").svg_inline(scale=4, omitsize=False)
    return render(
        request,
        "accounts/otp_enrol.html",
        {
            "form": form,
            # segno builds the SVG from our own otpauth URL; no user input reaches it.
            "qr_svg": mark_safe(qr_svg),  # noqa: S308
            "secret": _base32(device.bin_key),
        },
    )


def _base32(key: bytes) -> str:
    import base64

    return base64.b32encode(key).decode().rstrip("=")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    role = request.user.primary_role
    if role is None:
        return render(request, "home/no_role.html")
    return redirect("accounts:role_home", role=role.value)


@login_required
def role_home(request: HttpRequest, role: str) -> HttpResponse:
    try:
        role_obj = Role(role)
    except ValueError:
        raise Http404 from None
    if not request.user.has_role(role_obj):
        raise Http404
    tasks = []
    for title, description, url_name in HOME_TASKS[role_obj]:
        try:
            url = reverse(url_name) if url_name else None
        except NoReverseMatch:
            url = None
        tasks.append({"title": title, "description": description, "url": url})
    return render(request, "home/role.html", {"role": role_obj, "tasks": tasks})


@login_required
@permission_required("accounts.manage_institution_users", raise_exception=True)
def user_list(request: HttpRequest) -> HttpResponse:
    users = (
        User.objects.filter(institution_id=request.user.institution_id)
        .prefetch_related("groups")
        .order_by("username")
    )
    page = Paginator(users, 25).get_page(request.GET.get("page"))
    return render(request, "accounts/user_list.html", {"page": page})


@login_required
@permission_required("accounts.manage_institution_users", raise_exception=True)
def user_invite(request: HttpRequest) -> HttpResponse:
    form = InviteUserForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_invite(
                actor=request.user,
                institution=request.user.institution,
                request=request,
                **form.cleaned_data,
            )
        except ValidationError as exc:
            form.add_error("roles", exc)
        else:
            messages.success(
                request, _("%(name)s has been invited by e-mail.") % {"name": user.full_name}
            )
            return redirect("accounts:user_list")
    return render(request, "accounts/user_invite.html", {"form": form})


@login_required
def user_roles(request: HttpRequest, pk: int) -> HttpResponse:
    target = access_institution_user(request.user, pk, for_write=True)
    form = UserRolesForm(
        request.POST or None, initial={"roles": [r.value for r in target.roles]}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.user_set_roles(
                actor=request.user, user=target, roles=form.cleaned_data["roles"], request=request
            )
        except ValidationError as exc:
            form.add_error("roles", exc)
        else:
            messages.success(request, _("Roles updated."))
            return redirect("accounts:user_list")
    return render(request, "accounts/user_roles.html", {"form": form, "target": target})


@login_required
@require_POST
def user_set_active(request: HttpRequest, pk: int) -> HttpResponse:
    target = access_institution_user(request.user, pk, for_write=True)
    active = request.POST.get("active") == "1"
    try:
        services.user_set_active(actor=request.user, user=target, active=active, request=request)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        text = _("%(name)s can sign in again.") if active else _("%(name)s can no longer sign in.")
        messages.success(request, text % {"name": target})
    return redirect("accounts:user_list")
