from datetime import date

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from .choices import Category, IdType, NoticeMethod, SubjectRole, SubjectType
from .fields import EncryptedTextField


class Subject(models.Model):
    """A person or enterprise, one row per normalised identifier.

    The ID number, name and phone are stored only encrypted (EncryptedTextField), with a keyed
    blind index for exact lookup and a masked copy for display, so lists never decrypt.
    """

    subject_type = models.CharField(_("subject type"), max_length=12, choices=SubjectType.choices)
    id_type = models.CharField(_("ID type"), max_length=10, choices=IdType.choices)
    id_number = EncryptedTextField(_("ID number"))
    id_index = models.CharField(max_length=64, unique=True, editable=False)
    id_masked = models.CharField(_("ID number"), max_length=40, editable=False)
    name = EncryptedTextField(_("name"))
    name_index = models.CharField(max_length=64, editable=False)
    name_masked = models.CharField(_("name"), max_length=100, editable=False)
    phone = EncryptedTextField(_("phone"), blank=True)
    phone_masked = models.CharField(_("phone"), max_length=20, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    # Clear values stay out of the history table: only masked copies are kept there, so key
    # rotation has one table to re-encrypt.
    history = HistoricalRecords(excluded_fields=["id_number", "name", "phone"])

    class Meta:
        verbose_name = _("subject")
        verbose_name_plural = _("subjects")

    def __str__(self) -> str:
        return f"{self.name_masked} {self.id_masked}"


class ImportBatch(models.Model):
    """One uploaded bulk file (member report or feed), validated first, then loaded."""

    class Status(models.TextChoices):
        VALIDATING = "validating", _("Checking")
        VALIDATED = "validated", _("Checked")
        REJECTED = "rejected", _("File rejected")
        LOADING = "loading", _("Loading")
        LOADED = "loaded", _("Loaded")
        CANCELLED = "cancelled", _("Cancelled")

    class Mode(models.TextChoices):
        ALL_OR_NOTHING = "all", _("Load only if every row is valid")
        VALID_ONLY = "valid_only", _("Load the valid rows, skip the bad ones")

    member = models.ForeignKey(
        "accounts.Institution", on_delete=models.PROTECT, related_name="import_batches"
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    is_feed = models.BooleanField(_("feed"), default=False)
    file = models.CharField(max_length=255)  # private storage name
    filename = models.CharField(_("file name"), max_length=200)
    sha256 = models.CharField(max_length=64)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.VALIDATING
    )
    mode = models.CharField(_("loading mode"), max_length=12, choices=Mode.choices, blank=True)
    problem = models.TextField(_("problem with the file"), blank=True)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    error_rows = models.PositiveIntegerField(_("rows with errors"), default=0)
    created_rows = models.PositiveIntegerField(_("new entries"), default=0)
    updated_rows = models.PositiveIntegerField(_("updated entries"), default=0)
    unchanged_rows = models.PositiveIntegerField(_("unchanged rows"), default=0)
    error_report = models.CharField(max_length=255, blank=True)  # private storage name
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("bulk file")
        verbose_name_plural = _("bulk files")
        indexes = [models.Index(fields=["member", "-created_at"], name="batch_member_idx")]

    def __str__(self) -> str:
        return self.filename

    @property
    def valid_rows(self) -> int:
        return self.total_rows - self.error_rows

    @property
    def progress_percent(self) -> int:
        if not self.total_rows:
            return 0
        return min(100, round(100 * self.processed_rows / self.total_rows))


class Entry(models.Model):
    """A blacklist entry reported by a member about a subject under one contract."""

    class Status(models.TextChoices):
        PENDING_REVIEW = "pending_review", _("Pending review")
        RETURNED = "returned", _("Returned for correction")
        ACTIVE = "active", _("Active")
        SETTLED = "settled", _("Settled")
        EXPIRED = "expired", _("Expired")
        REVOKED = "revoked", _("Revoked")
        DELETED = "deleted", _("Deleted after dispute")

    # Statuses whose entries every member's queries see.
    VISIBLE = (Status.ACTIVE, Status.SETTLED)
    # Statuses in which the reporting member may still edit the entry.
    EDITABLE = (Status.PENDING_REVIEW, Status.RETURNED)

    class Source(models.TextChoices):
        MEMBER = "member", _("Member report")
        COURT = "court", _("Court judgment feed")
        BUREAU = "bureau", _("Bureau feed")

    # No single-column indexes on member and subject: the composite indexes below begin with
    # them, and every index is written again by each of a bulk file's 100,000 rows.
    member = models.ForeignKey(
        "accounts.Institution",
        verbose_name=_("reporting institution"),
        on_delete=models.PROTECT,
        related_name="entries",
        db_index=False,
    )
    subject = models.ForeignKey(
        Subject, verbose_name=_("subject"), on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    subject_role = models.CharField(_("subject's role"), max_length=10, choices=SubjectRole.choices)
    contract_no = models.CharField(_("contract number"), max_length=64)
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING_REVIEW
    )
    source = models.CharField(
        _("source"), max_length=8, choices=Source.choices, default=Source.MEMBER
    )
    loan_amount = models.DecimalField(_("loan amount (CNY)"), max_digits=14, decimal_places=2)
    overdue_amount = models.DecimalField(
        _("overdue amount (CNY)"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    delinquent_since = models.DateField(_("overdue since"), null=True, blank=True)
    court_name = models.CharField(_("court"), max_length=200, blank=True)
    case_number = models.CharField(_("case number"), max_length=64, blank=True)
    judgment_date = models.DateField(_("judgment date"), null=True, blank=True)
    notified_on = models.DateField(_("subject notified on"))
    notice_method = models.CharField(_("notice method"), max_length=10, choices=NoticeMethod.choices)
    settled_on = models.DateField(_("settled / behaviour ended on"), null=True, blank=True)
    retention_until = models.DateField(_("kept until"), null=True, blank=True)
    remarks = models.TextField(_("remarks"), max_length=500, blank=True)
    subject_statement = models.TextField(_("subject's statement"), max_length=1000, blank=True)
    disputed = models.BooleanField(_("under dispute"), default=False)

    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    submitted_at = models.DateTimeField(_("submitted at"))
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    return_reason = models.TextField(_("reason for return"), blank=True)
    revoke_reason = models.TextField(_("reason for revocation"), blank=True)
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="entries"
    )
    fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("entry")
        verbose_name_plural = _("entries")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "contract_no", "subject"], name="entry_unique_contract"
            ),
        ]
        indexes = [
            models.Index(fields=["member", "status", "-submitted_at"], name="entry_member_idx"),
            # "My entries" lists newest first, with or without a category filter.
            models.Index(fields=["member", "-submitted_at", "-id"], name="entry_member_recent_idx"),
            models.Index(
                fields=["member", "category", "-submitted_at", "-id"], name="entry_member_cat_idx"
            ),
            models.Index(fields=["status", "submitted_at"], name="entry_review_idx"),
            models.Index(fields=["subject", "status"], name="entry_subject_idx"),
            models.Index(fields=["status", "retention_until"], name="entry_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}/{self.contract_no}"

    def dpd_days(self, today: date) -> int | None:
        """Days past due: from the overdue start to settlement (or today)."""
        if self.delinquent_since is None:
            return None
        end = self.settled_on or today
        return max(0, (end - self.delinquent_since).days)

    def dpd_band(self, today: date) -> str:
        return dpd_band(self.dpd_days(today))

    @property
    def is_visible_to_queries(self) -> bool:
        return self.status in self.VISIBLE


def dpd_band(days: int | None) -> str:
    """Metro 2 style bands: 1–30, 31–60, 61–90, 91–180, 180+."""
    if days is None or days <= 0:
        return ""
    for upper, label in ((30, "1–30"), (60, "31–60"), (90, "61–90"), (180, "91–180")):
        if days <= upper:
            return label
    return "180+"


class Evidence(models.Model):
    """An evidence file: for one entry, or shared by every row of a bulk file."""

    entry = models.ForeignKey(
        Entry, null=True, blank=True, on_delete=models.CASCADE, related_name="evidence"
    )
    batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.CASCADE, related_name="evidence"
    )
    file = models.CharField(max_length=255)  # private storage name
    kind = models.CharField(max_length=8)
    original_name = models.CharField(_("file name"), max_length=200)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("evidence")
        verbose_name_plural = _("evidence")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(entry__isnull=False) | models.Q(batch__isnull=False),
                name="evidence_has_owner",
            )
        ]

    def __str__(self) -> str:
        return self.original_name


class FeedSource(models.Model):
    """A court-judgment or bureau data source and whether its entries skip review."""

    institution = models.OneToOneField(
        "accounts.Institution", on_delete=models.PROTECT, related_name="feed_source"
    )
    source = models.CharField(_("kind"), max_length=8, choices=Entry.Source.choices)
    auto_approve = models.BooleanField(
        _("approve automatically"),
        default=False,
        help_text=_("Entries from this source go live without review."),
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("feed source")
        verbose_name_plural = _("feed sources")

    def __str__(self) -> str:
        return str(self.institution)
