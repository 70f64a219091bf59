from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from blacklist_portal.accounts.models import Institution, User
from blacklist_portal.uploads import DOCUMENT_KINDS, UploadRejected, check_upload
from disputes.forms import MultipleFileField

from .models import Complaint, QueryAlert, Sanction, Violation

_date = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
_text = forms.Textarea(attrs={"rows": 4})


def members():
    return Institution.objects.filter(kind=Institution.Kind.LENDER).order_by("name")


def complaint_handlers():
    return (
        User.objects.filter(is_active=True, groups__permissions__codename="handle_complaints")
        .distinct()
        .order_by("full_name", "username")
    )


class ComplaintIntakeForm(forms.Form):
    member = forms.ModelChoiceField(label=_("Institution complained about"), queryset=Institution.objects.none())
    complainant_name = forms.CharField(
        label=_("Complainant's name"), max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    complainant_contact = forms.CharField(
        label=_("Complainant's contact"), max_length=200,
        help_text=_("Phone or postal address: the written reply is sent there."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    channel = forms.ChoiceField(label=_("Received through"), choices=Complaint.Channel.choices)
    summary = forms.CharField(label=_("Summary"), max_length=200, help_text=_("One line, e.g. “collection calls at night”."))
    description = forms.CharField(label=_("The complaint, in the complainant's words"), max_length=4000, widget=_text)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = members()
        self.fields["channel"].initial = (
            Complaint.Channel.COUNTER if user.has_perm("accounts.serve_counter") else Complaint.Channel.LETTER
        )


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(label=_("Assign to"), queryset=User.objects.none())

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "assign")
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = complaint_handlers()


class ReplyForm(forms.Form):
    reply = forms.CharField(
        label=_("Written reply to the complainant"), max_length=8000, widget=forms.Textarea(attrs={"rows": 8})
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "reply")
        super().__init__(*args, **kwargs)


class ViolationForm(forms.Form):
    member = forms.ModelChoiceField(label=_("Institution"), queryset=Institution.objects.none())
    type = forms.ChoiceField(label=_("Type of violation"), choices=Violation.Type.choices)
    description = forms.CharField(label=_("What happened"), max_length=4000, widget=_text)
    evidence = MultipleFileField(
        label=_("Evidence"), required=False,
        help_text=_("PDF, JPEG or PNG files, several at once."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = members()
        self.checked_evidence: list = []

    def clean_evidence(self):
        files = self.cleaned_data.get("evidence") or []
        for f in files:
            try:
                self.checked_evidence.append((f, check_upload(f, allowed=DOCUMENT_KINDS)))
            except UploadRejected as exc:
                raise forms.ValidationError(f"{f.name}: {exc.message}") from None
        return files


class SanctionForm(forms.Form):
    """One form for the three kinds; the fields of the other kinds are ignored (the service
    checks that each kind carries its own terms)."""

    kind = forms.ChoiceField(label=_("Sanction"), choices=Sanction.Kind.choices, widget=forms.RadioSelect)
    fine_amount = forms.DecimalField(
        label=_("Fine (CNY)"), required=False, max_digits=14, decimal_places=2, min_value=0.01,
        help_text=_("For a fine only."),
    )
    suspends_queries = forms.BooleanField(label=_("Suspend queries"), required=False)
    suspends_reporting = forms.BooleanField(label=_("Suspend reporting"), required=False)
    starts_on = forms.DateField(label=_("Suspended from"), required=False, widget=_date,
                                help_text=_("For a suspension only. Beijing time; both days included."))
    ends_on = forms.DateField(label=_("Suspended until"), required=False, widget=_date)
    reason = forms.CharField(
        label=_("Reason"), max_length=2000, widget=_text,
        help_text=_("The member's users read it on their pages and in refusals."),
    )

    SUSPENSION_FIELDS = ("suspends_queries", "suspends_reporting", "starts_on", "ends_on")

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "sanction")
        super().__init__(*args, **kwargs)

    def terms(self) -> dict:
        data = self.cleaned_data
        kind = data["kind"]
        terms = {"kind": kind, "reason": data["reason"]}
        if kind == Sanction.Kind.FINE:
            terms["fine_amount"] = data.get("fine_amount")
        if kind == Sanction.Kind.SUSPENSION:
            terms.update({f: data.get(f) for f in self.SUSPENSION_FIELDS})
        return terms


class _NoteForm(forms.Form):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", self.prefix_name)
        super().__init__(*args, **kwargs)


class LiftForm(_NoteForm):
    prefix_name = "lift"
    reason = forms.CharField(label=_("Reason for lifting the suspension early"), max_length=2000, widget=_text)


class AcknowledgeForm(_NoteForm):
    prefix_name = "ack"
    note = forms.CharField(label=_("What you found"), max_length=4000, widget=_text)


class EscalateForm(_NoteForm):
    prefix_name = "escalate"
    type = forms.ChoiceField(label=_("Type of violation"), choices=Violation.Type.choices)
    description = forms.CharField(label=_("What happened"), max_length=4000, widget=_text)


class EvaluateForm(forms.Form):
    day = forms.DateField(label=_("Day to check"), widget=_date)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "evaluate")
        super().__init__(*args, **kwargs)
        self.fields["day"].initial = timezone.localdate() - timedelta(days=1)


class AlertFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any")), *QueryAlert.Status.choices]
    )
    rule = forms.ChoiceField(label=_("Rule"), required=False, choices=[("", _("Any")), *QueryAlert.Rule.choices])
    member = forms.ModelChoiceField(label=_("Institution"), required=False, queryset=Institution.objects.none())
    day = forms.DateField(label=_("Day"), required=False, widget=_date)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = members()


class ComplaintFilterForm(forms.Form):
    OPEN = "open"
    status = forms.ChoiceField(
        label=_("Status"), required=False,
        choices=[(OPEN, _("Not yet answered")), ("", _("Any")), *Complaint.Status.choices],
    )
    member = forms.ModelChoiceField(label=_("Institution"), required=False, queryset=Institution.objects.none())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = members()
