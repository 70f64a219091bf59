from django.urls import include, path
from django.views.generic import RedirectView

from blacklist_portal.admin import portal_admin
from blacklist_portal.views import healthz

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="accounts:home", permanent=False), name="root"),
    path("accounts/", include("blacklist_portal.accounts.urls")),
    path("registry/", include("registry.urls")),
    path("api/v1/", include("billing.api.urls")),
    path("billing/", include("billing.urls")),
    path("disputes/", include("disputes.urls")),
    path("supervision/", include("supervision.urls")),
    path("inbox/", include("blacklist_portal.inbox.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", healthz, name="healthz"),
    path("admin/", portal_admin.urls),
]
