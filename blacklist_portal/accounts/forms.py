from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from .models import User
from .roles import LENDER_ASSIGNABLE_ROLES, Role

ROLE_CHOICES = [(r.value, r.label) for r in LENDER_ASSIGNABLE_ROLES]


class LoginForm(AuthenticationForm):
    error_messages = {
        # One message whether the user exists or not.
        "invalid_login": _("The username or password is not correct."),
        "inactive": _("The username or password is not correct."),
    }


class TokenForm(forms.Form):
    token = forms.RegexField(
        label=_("Six-digit code from your authenticator app"),
        regex=r"^\d{6}$",
        max_length=6,
        error_messages={"invalid": _("Enter the six digits shown in your authenticator app.")},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class RolesField(forms.MultipleChoiceField):
    def __init__(self, **kwargs):
        super().__init__(
            label=_("Roles"),
            choices=ROLE_CHOICES,
            widget=forms.CheckboxSelectMultiple,
            error_messages={"required": _("Choose at least one role.")},
            **kwargs,
        )

    def clean(self, value):
        return [Role(v) for v in super().clean(value)]


class InviteUserForm(forms.Form):
    username = forms.RegexField(
        label=_("Username"),
        regex=r"^[A-Za-z0-9_.-]{3,150}$",
        error_messages={
            "invalid": _("3–150 letters, digits, dots, hyphens or underscores.")
        },
    )
    full_name = forms.CharField(label=_("Full name"), max_length=100)
    email = forms.EmailField(label=_("E-mail"), help_text=_("The invitation is sent here."))
    roles = RolesField()

    def clean_username(self):
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(_("This username is taken."))
        return username


class UserRolesForm(forms.Form):
    roles = RolesField()
