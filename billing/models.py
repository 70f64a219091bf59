from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from registry.choices import IdType

from .choices import Channel, LoanType, Purpose


class Consent(models.Model):
    """A borrower's signed authorisation (条例 Art. 18) held by one member for one subject."""

    member = models.ForeignKey(
        "accounts.Institution", on_delete=models.PROTECT, related_name="consents"
    )
    subject = models.ForeignKey("registry.Subject", on_delete=models.PROTECT, related_name="consents")
    signed_on = models.DateField(_("signed on"))
    expires_on = models.DateField(_("expires on"))
    covers_loan_approval = models.BooleanField(_("loan approval"), default=False)
    covers_post_loan = models.BooleanField(_("post-loan management"), default=False)
    covers_guarantor_check = models.BooleanField(_("guarantor check"), default=False)
    file = models.CharField(max_length=255)  # private storage name
    kind = models.CharField(max_length=8)
    original_name = models.CharField(_("file name"), max_length=200)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.WEB)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        indexes = [
            models.Index(fields=["member", "subject", "expires_on"], name="consent_member_subject_idx"),
            models.Index(fields=["member", "-uploaded_at"], name="consent_member_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk}"

    def covers(self, purpose: str) -> bool:
        return {
            Purpose.LOAN_APPROVAL: self.covers_loan_approval,
            Purpose.POST_LOAN: self.covers_post_loan,
            Purpose.GUARANTOR_CHECK: self.covers_guarantor_check,
        }.get(purpose, False)

    @property
    def purposes(self) -> list[str]:
        return [p for p in (Purpose.LOAN_APPROVAL, Purpose.POST_LOAN, Purpose.GUARANTOR_CHECK) if self.covers(p)]

    @property
    def purpose_labels(self) -> list[str]:
        return [str(Purpose(p).label) for p in self.purposes]


class ApiKey(models.Model):
    """A member's key for the JSON API. Only a SHA-256 of the key is stored (keys are 256-bit
    random, so a fast hash is enough); the prefix finds the row without scanning."""

    member = models.ForeignKey("accounts.Institution", on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Query(models.Model):
    """One query of the register: an immutable log row (条例 Art. 22). `result` is the snapshot
    of what was returned; identifiers appear only as the blind index and masked copies."""

    class Kind(models.TextChoices):
        MEMBER = "member", _("Member query")
        SELF = "self", _("Self-query")

    # Unique through Meta.constraints, not unique=True: on PostgreSQL that would add a second,
    # pattern-matching index, and the query log is the most written table (no LIKE on numbers).
    query_no = models.CharField(_("query number"), max_length=24)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.MEMBER)
    member = models.ForeignKey(
        "accounts.Institution", verbose_name=_("institution"), on_delete=models.PROTECT, related_name="queries",
        db_index=False,  # query_member_idx begins with it
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    purpose = models.CharField(_("purpose"), max_length=16, choices=Purpose.choices)
    consent = models.ForeignKey(Consent, null=True, blank=True, on_delete=models.PROTECT, related_name="queries")
    id_type = models.CharField(_("ID type"), max_length=10, choices=IdType.choices)
    subject_index = models.CharField(max_length=64)
    subject = models.ForeignKey(
        "registry.Subject", null=True, blank=True, on_delete=models.PROTECT, related_name="queries"
    )
    id_masked = models.CharField(_("ID number"), max_length=40)
    name_masked = models.CharField(_("name"), max_length=100)
    name_matches = models.BooleanField(_("name matches"), null=True)
    application_amount = models.DecimalField(
        _("applied amount (CNY)"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    application_loan_type = models.CharField(_("loan type"), max_length=12, choices=LoanType.choices, blank=True)
    application_date = models.DateField(_("application date"), null=True, blank=True)
    identity_check = models.CharField(_("identity check"), max_length=200, blank=True)
    representative = models.CharField(_("representative"), max_length=100, blank=True)
    hit = models.BooleanField(_("hit"))
    risk_grade = models.CharField(_("risk grade"), max_length=2, blank=True)
    result = models.JSONField(default=dict)
    fee = models.DecimalField(_("fee (CNY)"), max_digits=10, decimal_places=2, default=Decimal("0.00"))
    created_at = models.DateTimeField(_("time"), db_index=True)

    class Meta:
        verbose_name = _("query")
        verbose_name_plural = _("queries")
        constraints = [models.UniqueConstraint(fields=["query_no"], name="query_no_unique")]
        indexes = [
            models.Index(fields=["subject_index", "created_at"], name="query_subject_time_idx"),
            models.Index(fields=["member", "-created_at"], name="query_member_idx"),
        ]

    def __str__(self) -> str:
        return self.query_no

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise RuntimeError("The query log is immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("The query log is immutable")


class PriceSchedule(models.Model):
    """A price list that applies from `effective_from` until the next one: the history of
    prices is the list of schedules (never edited once in force)."""

    name = models.CharField(_("name"), max_length=100)
    effective_from = models.DateTimeField(_("in force from"), unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("price schedule")
        verbose_name_plural = _("price schedules")
        ordering = ["-effective_from"]

    def __str__(self) -> str:
        return f"{self.name} ({self.effective_from:%Y-%m-%d})"


class PriceRule(models.Model):
    """One price. Empty channel / purpose / hit match anything; among matching rules the most
    specific wins, and within it the highest volume tier not above the month's count."""

    schedule = models.ForeignKey(PriceSchedule, on_delete=models.CASCADE, related_name="rules")
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices, blank=True)
    purpose = models.CharField(_("purpose"), max_length=16, choices=Purpose.choices, blank=True)
    hit = models.BooleanField(_("hit"), null=True, blank=True)
    tier_from = models.PositiveIntegerField(
        _("from the n-th billable query of the month"), default=1
    )
    price = models.DecimalField(_("price (CNY)"), max_digits=10, decimal_places=2)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("price")
        verbose_name_plural = _("prices")
        ordering = ["channel", "purpose", "hit", "tier_from"]

    def __str__(self) -> str:
        return f"{self.price}"


class MonthlyVolume(models.Model):
    """How many billable queries a member has made in a month: the row is locked while a fee
    is priced, so concurrent queries take consecutive numbers (no tier skipped or repeated)."""

    member = models.ForeignKey("accounts.Institution", on_delete=models.PROTECT, related_name="+")
    month = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "month"], name="volume_member_month")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.month:%Y-%m}: {self.count}"


class Statement(models.Model):
    class Status(models.TextChoices):
        UNPAID = "unpaid", _("Unpaid")
        PAID = "paid", _("Paid")

    member = models.ForeignKey("accounts.Institution", on_delete=models.PROTECT, related_name="statements")
    month = models.DateField(_("month"))
    total = models.DecimalField(_("total (CNY)"), max_digits=14, decimal_places=2, default=Decimal("0.00"))
    line_count = models.PositiveIntegerField(_("billable queries"), default=0)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.UNPAID)
    generated_at = models.DateTimeField(_("generated at"))
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("statement")
        verbose_name_plural = _("statements")
        constraints = [models.UniqueConstraint(fields=["member", "month"], name="statement_member_month")]
        ordering = ["-month"]

    def __str__(self) -> str:
        return f"{self.member_id} {self.month:%Y-%m}"


class FeeLine(models.Model):
    """The fee of one billable query, written in the query's transaction. One per query: the
    unique key makes double billing impossible."""

    query = models.OneToOneField(Query, on_delete=models.PROTECT, related_name="fee_line")
    member = models.ForeignKey("accounts.Institution", on_delete=models.PROTECT, related_name="+")
    month = models.DateField()
    sequence = models.PositiveIntegerField(_("n-th billable query of the month"))
    rule = models.ForeignKey(PriceRule, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(_("amount (CNY)"), max_digits=10, decimal_places=2)
    statement = models.ForeignKey(
        Statement, null=True, blank=True, on_delete=models.PROTECT, related_name="lines"
    )
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("fee line")
        verbose_name_plural = _("fee lines")
        constraints = [
            models.UniqueConstraint(fields=["member", "month", "sequence"], name="fee_sequence_unique")
        ]
        indexes = [models.Index(fields=["member", "month"], name="fee_member_month_idx")]

    def __str__(self) -> str:
        return f"{self.query_id}: {self.amount}"


class Receipt(models.Model):
    """A counter receipt for a fee paid in cash."""

    receipt_no = models.CharField(_("receipt number"), max_length=24, unique=True)
    query = models.OneToOneField(Query, on_delete=models.PROTECT, related_name="receipt")
    amount = models.DecimalField(_("amount (CNY)"), max_digits=10, decimal_places=2)
    payer_masked = models.CharField(_("payer"), max_length=100)
    clerk = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("time"))

    class Meta:
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")

    def __str__(self) -> str:
        return self.receipt_no
