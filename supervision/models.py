from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from registry.fields import EncryptedTextField


class Complaint(models.Model):
    """A complaint (投诉) against a member, answered in writing within 30 days (条例 Art. 26)."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        ASSIGNED = "assigned", _("Assigned")
        REPLIED = "replied", _("Replied")
        CLOSED = "closed", _("Closed")

    class Channel(models.TextChoices):
        COUNTER = "counter", _("Counter")
        LETTER = "letter", _("Letter")

    receipt_no = models.CharField(_("receipt number"), max_length=24, unique=True)
    member = models.ForeignKey(
        "accounts.Institution", verbose_name=_("institution complained about"),
        on_delete=models.PROTECT, related_name="complaints",
    )
    complainant_name = EncryptedTextField(_("complainant"))
    complainant_name_masked = models.CharField(_("complainant"), max_length=100)
    complainant_contact = EncryptedTextField(_("complainant's contact"), blank=True)
    channel = models.CharField(_("received through"), max_length=8, choices=Channel.choices)
    summary = models.CharField(_("summary"), max_length=200)
    description = models.TextField(_("description"), max_length=4000)
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField(_("received at"))
    due_at = models.DateTimeField(_("reply due"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RECEIVED)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("assigned to"),
    )
    reply = models.TextField(_("written reply"), blank=True)
    replied_at = models.DateTimeField(_("replied at"), null=True, blank=True)
    replied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["complainant_name", "complainant_contact"])

    class Meta:
        verbose_name = _("complaint")
        verbose_name_plural = _("complaints")
        indexes = [models.Index(fields=["status", "due_at"], name="complaint_queue_idx")]

    def __str__(self) -> str:
        return self.receipt_no


class ComplaintReminder(models.Model):
    """Sent reminders; the unique key makes each go out once (as for disputes)."""

    class Kind(models.TextChoices):
        DUE_SOON = "due_soon", _("Reply due soon")
        OVERDUE = "overdue", _("Reply overdue")

    complaint = models.ForeignKey(Complaint, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    step = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["complaint", "kind", "step"], name="complaint_reminder_once")
        ]

    def __str__(self) -> str:
        return f"{self.complaint_id} {self.kind} {self.step}"


class Violation(models.Model):
    class Type(models.TextChoices):
        NO_CONSENT = "no_consent", _("Query without valid consent")
        FALSE_REPORTING = "false_reporting", _("False or unverified reporting")
        MISSED_DEADLINES = "missed_deadlines", _("Missed deadlines")
        MISUSE = "misuse", _("Misuse of data")

    member = models.ForeignKey(
        "accounts.Institution", verbose_name=_("institution"), on_delete=models.PROTECT, related_name="violations"
    )
    type = models.CharField(_("type"), max_length=20, choices=Type.choices)
    description = models.TextField(_("description"), max_length=4000)
    alert = models.ForeignKey(
        "QueryAlert", null=True, blank=True, on_delete=models.PROTECT, related_name="violations",
        verbose_name=_("from alert"),
    )
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(_("recorded at"))

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("violation")
        verbose_name_plural = _("violations")
        indexes = [models.Index(fields=["member", "-recorded_at"], name="violation_member_idx")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.type}"


class ViolationEvidence(models.Model):
    violation = models.ForeignKey(Violation, on_delete=models.CASCADE, related_name="evidence")
    file = models.CharField(max_length=255)
    kind = models.CharField(max_length=8)
    original_name = models.CharField(_("file name"), max_length=200)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.original_name


class Sanction(models.Model):
    """A warning, a fine, or a suspension of query and/or reporting access for a period. A
    suspension is in force from `starts_on` to `ends_on` inclusive (Asia/Shanghai dates) and
    so lifts by itself; `lifted_at` records an early lifting by a regulator."""

    class Kind(models.TextChoices):
        WARNING = "warning", _("Warning")
        FINE = "fine", _("Fine")
        SUSPENSION = "suspension", _("Suspension")

    violation = models.ForeignKey(Violation, on_delete=models.PROTECT, related_name="sanctions")
    member = models.ForeignKey(
        "accounts.Institution", verbose_name=_("institution"), on_delete=models.PROTECT, related_name="sanctions"
    )
    kind = models.CharField(_("sanction"), max_length=12, choices=Kind.choices)
    fine_amount = models.DecimalField(_("fine (CNY)"), max_digits=14, decimal_places=2, null=True, blank=True)
    suspends_queries = models.BooleanField(_("suspends queries"), default=False)
    suspends_reporting = models.BooleanField(_("suspends reporting"), default=False)
    starts_on = models.DateField(_("from"), null=True, blank=True)
    ends_on = models.DateField(_("until"), null=True, blank=True)
    reason = models.TextField(_("reason"), max_length=2000)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(_("recorded at"))
    lifted_at = models.DateTimeField(_("lifted early at"), null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("lifted by"),
    )
    lift_reason = models.TextField(_("reason for lifting"), max_length=2000, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("sanction")
        verbose_name_plural = _("sanctions")
        indexes = [
            models.Index(fields=["member", "kind", "starts_on", "ends_on"], name="sanction_active_idx")
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.kind}"


class QueryAlert(models.Model):
    """An abnormal query pattern found in the query log, with the queries behind it."""

    class Rule(models.TextChoices):
        NIGHT = "night", _("Queries at night (22:00–06:00)")
        VOLUME_SPIKE = "volume_spike", _("Daily volume far above the member's baseline")
        SUBJECT_REPEAT = "subject_repeat", _("Many queries on one subject")
        POST_LOAN_WITHOUT_APPROVAL = "post_loan_only", _("Post-loan queries on subjects never queried for approval")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        ESCALATED = "escalated", _("Escalated to a violation")

    rule = models.CharField(_("rule"), max_length=16, choices=Rule.choices)
    member = models.ForeignKey(
        "accounts.Institution", verbose_name=_("institution"), on_delete=models.PROTECT, related_name="query_alerts"
    )
    day = models.DateField(_("day"))
    key = models.CharField(max_length=80, blank=True)  # e.g. the subject index for subject_repeat
    details = models.JSONField(default=dict)
    queries = models.ManyToManyField("billing.Query", related_name="alerts")
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(_("raised at"))
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("query alert")
        verbose_name_plural = _("query alerts")
        constraints = [
            # Evaluating the rules again over the same day raises nothing twice.
            models.UniqueConstraint(fields=["rule", "member", "day", "key"], name="alert_once")
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="alert_queue_idx")]

    def __str__(self) -> str:
        return f"{self.rule} {self.member_id} {self.day}"


class QualityScore(models.Model):
    """A reporting member's data-quality score for a month, with the factors that made it."""

    member = models.ForeignKey(
        "accounts.Institution", verbose_name=_("institution"), on_delete=models.PROTECT, related_name="quality_scores"
    )
    month = models.DateField(_("month"))
    score = models.DecimalField(_("score"), max_digits=5, decimal_places=1)
    factors = models.JSONField(default=dict)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("data-quality score")
        verbose_name_plural = _("data-quality scores")
        constraints = [models.UniqueConstraint(fields=["member", "month"], name="quality_member_month")]
        ordering = ["-month"]

    def __str__(self) -> str:
        return f"{self.member_id} {self.month:%Y-%m} {self.score}"


class ConsentSample(models.Model):
    """A regulator's random sample of a member's recent queries, to check their consents."""

    member = models.ForeignKey(
        "accounts.Institution", verbose_name=_("institution"), on_delete=models.PROTECT, related_name="+"
    )
    drawn_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    drawn_at = models.DateTimeField(_("drawn at"))
    period_days = models.PositiveSmallIntegerField(_("from the last N days"), default=30)
    size = models.PositiveSmallIntegerField(_("sample size"))
    seed = models.CharField(max_length=32)

    class Meta:
        verbose_name = _("consent sample")
        verbose_name_plural = _("consent samples")

    def __str__(self) -> str:
        return f"{self.member_id} {self.drawn_at:%Y-%m-%d}"


class SampleItem(models.Model):
    class Finding(models.TextChoices):
        PENDING = "", _("Not checked yet")
        OK = "ok", _("Consent in order")
        MISSING = "missing", _("Consent file missing or unreadable")
        MISMATCH = "mismatch", _("Consent does not match the subject or purpose")
        FORGED = "forged", _("Signature doubtful")
        OTHER = "other", _("Other problem")

    sample = models.ForeignKey(ConsentSample, on_delete=models.CASCADE, related_name="items")
    query = models.ForeignKey("billing.Query", on_delete=models.PROTECT, related_name="+")
    finding = models.CharField(_("finding"), max_length=10, choices=Finding.choices, blank=True)
    note = models.TextField(_("note"), blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sample", "query"], name="sample_item_once")]

    def __str__(self) -> str:
        return f"{self.sample_id}:{self.query_id}"


class MarketStat(models.Model):
    """Dashboard counts per member, month (Asia/Shanghai) and key, pre-aggregated by a nightly
    task (supervision/dashboard.py, market_stats_rebuild) so that the regulator's dashboard
    reads a few thousand rows instead of scanning millions of entries, queries and disputes.

    Entry and dispute metrics are rebuilt in full each night (entries and disputes change after
    the fact); query months are immutable once over, so only the last two are recounted.
    `month` is empty for the snapshot of what is on the register at build time. Dispute rows
    with no member are the market's: a dispute about two members' entries counts once for
    each member, so member rows do not add up to the market."""

    class Metric(models.TextChoices):
        ON_REGISTER = "on_register", _("On the register")
        NEW = "new", _("New")
        SETTLED = "settled", _("Settled")
        EXPIRED = "expired", _("Expired")
        QUERIES = "queries", _("Queries")
        DISPUTES_RECEIVED = "d_received", _("Disputes received")
        DISPUTES_DECIDED = "d_decided", _("Disputes decided")

    metric = models.CharField(max_length=12, choices=Metric.choices)
    month = models.DateField(null=True, blank=True)
    member = models.ForeignKey(
        "accounts.Institution", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # The category; for queries "channel:purpose"; for decided disputes "<on time><against>"
    # as two digits (1 = yes), e.g. "10" on time and upheld.
    key = models.CharField(max_length=40, blank=True)
    count = models.PositiveIntegerField()
    built_at = models.DateTimeField()

    class Meta:
        verbose_name = _("dashboard count")
        verbose_name_plural = _("dashboard counts")
        indexes = [
            models.Index(fields=["metric", "month"], name="marketstat_metric_idx"),
            models.Index(fields=["member", "metric", "month"], name="marketstat_member_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.month} {self.member_id} {self.key}={self.count}"
