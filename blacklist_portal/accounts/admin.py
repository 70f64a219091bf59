from django import forms
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice
from simple_history.admin import SimpleHistoryAdmin

from blacklist_portal.admin import AuditedModelAdmin, portal_admin

from .models import Institution, User
from .roles import ROLE_INSTITUTION_KIND, Role


@admin.register(Institution, site=portal_admin)
class InstitutionAdmin(SimpleHistoryAdmin, AuditedModelAdmin):
    list_display = ["name", "kind", "status", "region", "uscc"]
    list_filter = ["kind", "status"]
    search_fields = ["name", "uscc"]


class UserAdminForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["username", "full_name", "email", "phone", "institution", "groups", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Only role groups, and only active institutions, can be chosen.
        self.fields["groups"].queryset = Group.objects.filter(name__in=Role.values).order_by("name")
        self.fields["groups"].label = _("Roles")
        self.fields["institution"].queryset = Institution.objects.filter(
            status=Institution.Status.ACTIVE
        )

    def clean(self):
        cleaned = super().clean()
        institution = cleaned.get("institution")
        for group in cleaned.get("groups") or []:
            if institution and ROLE_INSTITUTION_KIND[Role(group.name)] != institution.kind:
                raise ValidationError(
                    {"groups": _("The role “%(role)s” does not fit this institution's type.")
                     % {"role": Role(group.name).label}}
                )
        return cleaned


@admin.register(User, site=portal_admin)
class UserAdmin(SimpleHistoryAdmin, AuditedModelAdmin):
    form = UserAdminForm
    list_display = ["username", "full_name", "institution", "is_active", "last_login"]
    list_filter = ["is_active", "groups", "institution__kind"]
    search_fields = ["username", "full_name", "email"]
    list_select_related = ["institution"]
    filter_horizontal = ["groups"]
    # New users are invited (they choose their own password); admin never sees or sets one.
    exclude = ["password"]

    def save_model(self, request, obj, form, change):
        from .services import user_send_invitation

        if not change:
            obj.set_unusable_password()
        super().save_model(request, obj, form, change)
        if not change and obj.email:
            user_send_invitation(user=obj)


@admin.register(TOTPDevice, site=portal_admin)
class TOTPDeviceAdmin(AuditedModelAdmin):  # change = view; delete removes a lost phone
    """Platform admins remove a lost phone's device; the user then enrols a new one."""

    list_display = ["user", "name", "confirmed", "created_at"]
    list_select_related = ["user"]
    fields = ["user", "name", "confirmed"]
    readonly_fields = ["user", "name", "confirmed"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
