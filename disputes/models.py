from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from registry.fields import EncryptedTextField

from .workflow import Action, Status


class ClaimType(models.TextChoices):
    NOT_ME = "not_me", _("Not me / identity theft")
    WRONG_AMOUNT = "wrong_amount", _("Wrong amount")
    REPAID = "repaid", _("Already repaid")
    PAST_RETENTION = "past_retention", _("Past the retention period")
    OTHER = "other", _("Other")


class IntakeChannel(models.TextChoices):
    COUNTER = "counter", _("Counter")
    MEMBER = "member", _("Member on the borrower's behalf")
    LETTER = "letter", _("Letter")
    PLATFORM = "platform", _("Platform staff")


class VerificationAnswer(models.TextChoices):
    VERIFIED = "verified", _("Verified as reported")
    CORRECTED = "corrected", _("Corrected")
    DELETE = "delete", _("Delete the entry")
    UNVERIFIABLE = "unverifiable", _("No answer in time (unverifiable)")


class Decision(models.TextChoices):
    CORRECTED = "corrected", _("Corrected")
    DELETED = "deleted", _("Deleted")
    UPHELD = "upheld", _("Upheld")
    FRIVOLOUS = "frivolous", _("Frivolous")


class Dispute(models.Model):
    """A correction request (纠错/异议) about one entry, or about every entry of a subject
    ("not me at all"). Deadlines are absolute instants, computed in Asia/Shanghai days."""

    receipt_no = models.CharField(_("receipt number"), max_length=24, unique=True)
    subject = models.ForeignKey("registry.Subject", on_delete=models.PROTECT, related_name="disputes")
    entries = models.ManyToManyField("registry.Entry", related_name="disputes", verbose_name=_("entries"))
    claim_type = models.CharField(_("claim"), max_length=16, choices=ClaimType.choices)
    description = models.TextField(_("description"), max_length=4000)
    applicant_name = EncryptedTextField(_("applicant"))
    applicant_name_masked = models.CharField(_("applicant"), max_length=100)
    applicant_contact = EncryptedTextField(_("applicant's contact"), blank=True)
    channel = models.CharField(_("received through"), max_length=10, choices=IntakeChannel.choices)
    filed_by_member = models.ForeignKey(
        "accounts.Institution", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("filed by member"),
    )
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("status"), max_length=24, choices=Status.choices, default=Status.RECEIVED)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("assigned to"),
    )
    received_at = models.DateTimeField(_("received at"))
    decision_due_at = models.DateTimeField(_("decision due"))
    extension_reason = models.TextField(_("reason for extension"), blank=True)
    verification_due_at = models.DateTimeField(_("verification due"), null=True, blank=True)
    verification_answer = models.CharField(
        _("member's answer"), max_length=16, choices=VerificationAnswer.choices, blank=True
    )
    verification_note = models.TextField(_("member's note"), blank=True)
    verification_answered_at = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(_("decision"), max_length=12, choices=Decision.choices, blank=True)
    decision_reasons = models.TextField(_("reasons"), blank=True)
    corrections = models.JSONField(_("corrections"), default=dict, blank=True)
    # {entry id: {field: value before the correction}}: lets a reconsideration undo it.
    corrections_before = models.JSONField(default=dict, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    appeal_due_at = models.DateTimeField(_("appeal possible until"), null=True, blank=True)
    appeal_reason = models.TextField(_("grounds of appeal"), blank=True)
    appealed_at = models.DateTimeField(null=True, blank=True)
    reconsidered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reconsideration = models.CharField(_("outcome of reconsideration"), max_length=12, choices=Decision.choices, blank=True)
    reconsideration_reasons = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["applicant_name", "applicant_contact"])

    class Meta:
        verbose_name = _("dispute")
        verbose_name_plural = _("disputes")
        indexes = [
            models.Index(fields=["status", "decision_due_at"], name="dispute_queue_idx"),
            models.Index(fields=["status", "verification_due_at"], name="dispute_verify_idx"),
            models.Index(fields=["assignee", "status"], name="dispute_assignee_idx"),
            # The queue: open disputes by due date, without sorting all of them.
            models.Index(
                fields=["decision_due_at", "id"],
                name="dispute_open_due_idx",
                condition=models.Q(
                    status__in=["received", "assigned", "awaiting_verification", "verified", "appealed"]
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.receipt_no


class DisputeEvent(models.Model):
    """The dispute's timeline: every step, who took it and when."""

    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=24, choices=Action.choices + [("receive", _("Received"))])
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    note = models.TextField(blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.dispute_id} {self.action}"


class Attachment(models.Model):
    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="attachments")
    file = models.CharField(max_length=255)
    kind = models.CharField(max_length=8)
    original_name = models.CharField(_("file name"), max_length=200)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.original_name


class Reminder(models.Model):
    """One reminder that was due and has been sent. The unique key (dispute, kind, step) is
    what makes each reminder go out exactly once, however often the sweep runs."""

    class Kind(models.TextChoices):
        DUE_SOON = "due_soon", _("Decision due soon")
        OVERDUE = "overdue", _("Decision overdue")
        VERIFY_DUE = "verify_due", _("Verification due soon")
        APPEAL_DUE = "appeal_due", _("Appeal overdue for reconsideration")

    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    step = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dispute", "kind", "step"], name="reminder_once")]

    def __str__(self) -> str:
        return f"{self.dispute_id} {self.kind} {self.step}"
