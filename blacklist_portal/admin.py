"""Django admin, for platform admins only (two-factor verified)."""

from urllib.parse import urlencode

from django.contrib import admin
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from blacklist_portal.accounts.roles import Role


class PortalAdminSite(admin.AdminSite):
    site_header = _("Microloan blacklist portal — administration")
    site_title = _("Portal administration")
    index_title = _("Administration")

    def has_permission(self, request) -> bool:
        user = request.user
        return bool(
            user.is_active
            and user.is_authenticated
            and user.has_role(Role.PLATFORM_ADMIN)
            and user.is_verified()
        )

    def login(self, request, extra_context=None):
        if self.has_permission(request):
            target = request.GET.get("next", "")
            safe = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
            return redirect(target if target and safe else reverse("admin:index"))
        if request.user.is_authenticated:
            # Signed in but not a (verified) platform admin: the admin does not exist for them.
            raise Http404
        # One login page for the whole portal, with lockout and two-factor.
        return redirect(f"{reverse('accounts:login')}?{urlencode({'next': request.get_full_path()})}")


portal_admin = PortalAdminSite(name="admin")


class PortalModelAdmin(admin.ModelAdmin):
    """The site lets in only verified platform admins (PortalAdminSite.has_permission), and
    roles carry capabilities rather than Django's per-model permissions, so every model
    registered here is open to them; subclasses narrow it (read-only models)."""

    def has_module_permission(self, request):
        return self.admin_site.has_permission(request)

    def has_view_permission(self, request, obj=None):
        return self.admin_site.has_permission(request)

    def has_add_permission(self, request):
        return self.admin_site.has_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.admin_site.has_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.admin_site.has_permission(request)


class ReadOnlyAdmin(PortalModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AuditedModelAdmin(PortalModelAdmin):
    """Every add, change and delete made in the admin is written to the audit log, in the
    same transaction as the change (admin views run inside one)."""

    def save_model(self, request, obj, form, change):
        from blacklist_portal.audit.services import audit_record

        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action=f"admin.{'change' if change else 'add'}",
            target=obj,
            request=request,
            details={"fields": list(form.changed_data)},
        )

    def delete_model(self, request, obj):
        from blacklist_portal.audit.services import audit_record

        audit_record(actor=request.user, action="admin.delete", target=obj, request=request)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)
