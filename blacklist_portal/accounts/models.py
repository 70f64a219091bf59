from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from .roles import CAPABILITIES, HOME_ORDER, ROLES_REQUIRING_2FA, Role


class Institution(models.Model):
    class Kind(models.TextChoices):
        LENDER = "lender", _("Microloan lender")
        BUREAU = "bureau", _("Credit bureau")
        COURT_SOURCE = "court_source", _("Court data source")
        OPERATOR = "operator", _("Platform operator")
        REGULATOR = "regulator", _("Regulator")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("type"), max_length=20, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE
    )
    region = models.CharField(_("region"), max_length=100, help_text=_("Province or city"))
    uscc = models.CharField(
        _("unified social credit code"), max_length=18, unique=True, null=True, blank=True
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("institution")
        verbose_name_plural = _("institutions")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class PortalUserManager(UserManager):
    def get_queryset(self):
        return super().get_queryset().select_related("institution")


class User(AbstractUser):
    """A person working for one institution. first_name/last_name are unused: Chinese names do
    not split that way, so `full_name` holds the whole name."""

    institution = models.ForeignKey(
        Institution,
        verbose_name=_("institution"),
        on_delete=models.PROTECT,
        related_name="users",
    )
    full_name = models.CharField(_("full name"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)

    objects = PortalUserManager()
    history = HistoricalRecords(excluded_fields=["password", "last_login"])

    REQUIRED_FIELDS = ["email", "institution"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["username"]

    def __str__(self) -> str:
        return self.full_name or self.username

    @property
    def roles(self) -> list[Role]:
        """The user's roles, cached on the instance (one query per request at most)."""
        if not hasattr(self, "_roles_cache"):
            names = {g.name for g in self.groups.all()}
            self._roles_cache = [r for r in HOME_ORDER if r.value in names]
        return self._roles_cache

    @property
    def role_labels(self) -> list[str]:
        return [str(r.label) for r in self.roles]

    def has_role(self, role: Role) -> bool:
        return role in self.roles

    @property
    def primary_role(self) -> Role | None:
        return self.roles[0] if self.roles else None

    @property
    def requires_two_factor(self) -> bool:
        return any(r in ROLES_REQUIRING_2FA for r in self.roles)


class Capability(models.Model):
    """Holds the portal's capability permissions; has no table. See roles.CAPABILITIES."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = CAPABILITIES

    def __str__(self) -> str:
        return "capability"
