from django import forms
from django.utils.translation import gettext_lazy as _

from blacklist_portal.accounts.models import Institution, User
from blacklist_portal.uploads import DOCUMENT_KINDS, UploadRejected, check_upload
from registry.choices import Category, IdType
from registry.identifiers import IdentifierError, normalize_id_number
from registry.models import Entry, Subject
from registry.selectors import entries_visible_for_subject
from registry.services import subject_find

from .models import ClaimType, Decision, IntakeChannel, VerificationAnswer

NOT_ME_AT_ALL = "all"

_date = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
_text = forms.Textarea(attrs={"rows": 4})


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data if d]
        return [single(data, initial)] if data else []


def entry_label(entry: Entry) -> str:
    label = _("%(member)s · %(category)s · loan %(amount)s CNY · contract %(contract)s") % {
        "member": entry.member,
        "category": entry.get_category_display(),
        "amount": entry.loan_amount,
        "contract": entry.contract_no,
    }
    if entry.disputed:
        label = f"{label} · {_('Under dispute')}"
    return label


class IntakeForm(forms.Form):
    """A correction request. Identify the person first ("Find the entries", finding=True, which
    checks only the identifier), then choose the entry and describe the claim."""

    applicant_name = forms.CharField(
        label=_("Applicant's name"), max_length=100,
        help_text=_("The person asking for the correction, or their representative."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    applicant_contact = forms.CharField(
        label=_("Applicant's contact"), max_length=200,
        help_text=_("Phone or postal address: the written decision is sent there."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    id_type = forms.ChoiceField(label=_("ID type"), choices=IdType.choices)
    id_number = forms.CharField(
        label=_("ID number"), max_length=40, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    # Its choices are the person's entries, known once the identifier is checked (clean()).
    entry = forms.CharField(label=_("Which entry is wrong"), widget=forms.RadioSelect)
    claim_type = forms.ChoiceField(label=_("Claim"), choices=ClaimType.choices)
    channel = forms.ChoiceField(
        label=_("Received through"),
        choices=[(c.value, c.label) for c in (IntakeChannel.COUNTER, IntakeChannel.LETTER, IntakeChannel.PLATFORM)],
    )
    description = forms.CharField(
        label=_("What is wrong, in the applicant's words"), max_length=4000, widget=_text
    )
    attachments = MultipleFileField(
        label=_("Attachments"), required=False,
        help_text=_("Proof such as a repayment receipt or a police report: PDF, JPEG or PNG, several at once."),
    )

    IDENTITY_FIELDS = ("id_type", "id_number")

    def __init__(self, *args, user: User, finding: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.finding = finding
        self.subject: Subject | None = None
        self.entries: list[Entry] = []
        self.checked_attachments: list = []
        if user.institution.kind == Institution.Kind.LENDER:
            # A member files on its customer's behalf; the channel is always "member".
            del self.fields["channel"]
        else:
            self.fields["channel"].initial = (
                IntakeChannel.COUNTER if user.has_perm("accounts.serve_counter") else IntakeChannel.PLATFORM
            )
        if finding:
            for name, field in self.fields.items():
                if name not in self.IDENTITY_FIELDS:
                    field.required = False

    def _entries_for(self, subject: Subject) -> list[Entry]:
        qs = entries_visible_for_subject(subject=subject)
        if self.user.institution.kind == Institution.Kind.LENDER:
            # A member sees its own entries only: intake must not become a query without consent.
            qs = qs.filter(member_id=self.user.institution_id)
        return list(qs)

    def clean(self):
        cleaned = super().clean()
        id_type, raw = cleaned.get("id_type"), cleaned.get("id_number")
        if not (id_type and raw):
            return cleaned
        try:
            cleaned["id_number"] = normalize_id_number(id_type, raw)
        except IdentifierError as exc:
            self.add_error("id_number", exc.message)
            return cleaned
        subject = subject_find(id_type=id_type, id_number=cleaned["id_number"])
        if subject is None:
            self.add_error("id_number", _("No one with this ID number is on the register. Check the ID type and the number."))
            return cleaned
        entries = self._entries_for(subject)
        if not entries and not entries_visible_for_subject(subject=subject).exists():
            self.add_error("id_number", _("There is no entry about this person on the register."))
            return cleaned
        self.subject, self.entries = subject, entries
        self.fields["entry"].widget.choices = [
            (NOT_ME_AT_ALL, _("Not me at all: every entry about this person")),
            *[(str(e.pk), entry_label(e)) for e in entries],
        ]
        if self.finding:
            return cleaned
        choice = cleaned.get("entry")
        if choice == NOT_ME_AT_ALL:
            cleaned["entry_obj"] = None
        elif choice and choice in {str(e.pk) for e in entries}:
            cleaned["entry_obj"] = next(e for e in entries if str(e.pk) == choice)
        elif "entry" not in self.errors:
            self.add_error("entry", _("Choose one of the entries listed, or “not me at all”."))
        for f in cleaned.get("attachments") or []:
            try:
                self.checked_attachments.append((f, check_upload(f, allowed=DOCUMENT_KINDS)))
            except UploadRejected as exc:
                self.add_error("attachments", f"{f.name}: {exc.message}")
        return cleaned


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(label=_("Assign to"), queryset=User.objects.none())

    def __init__(self, *args, officers, **kwargs):
        kwargs.setdefault("prefix", "assign")
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = officers


class AnswerForm(forms.Form):
    answer = forms.ChoiceField(
        label=_("Your answer"),
        widget=forms.RadioSelect,
        choices=[(a.value, a.label) for a in (VerificationAnswer.VERIFIED, VerificationAnswer.CORRECTED, VerificationAnswer.DELETE)],
    )
    note = forms.CharField(
        label=_("Note"), max_length=2000, required=False, widget=_text,
        help_text=_("Required when you correct the entry: say what is wrong and what is right."),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "answer")
        super().__init__(*args, **kwargs)


class _ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=2000, widget=_text)


class ExtendForm(_ReasonForm):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "extend")
        super().__init__(*args, **kwargs)
        self.fields["reason"].label = _("Reason for the extension")


class AppealForm(_ReasonForm):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "appeal")
        super().__init__(*args, **kwargs)
        self.fields["reason"].label = _("Grounds of the appeal")


class DecideForm(forms.Form):
    """A decision with its reasons; the corrected values count only for "corrected"."""

    decision = forms.ChoiceField(label=_("Decision"), widget=forms.RadioSelect, choices=Decision.choices)
    reasons = forms.CharField(label=_("Reasons"), max_length=4000, widget=_text)
    loan_amount = forms.CharField(label=_("Corrected loan amount (CNY)"), max_length=30, required=False)
    overdue_amount = forms.CharField(label=_("Corrected overdue amount (CNY)"), max_length=30, required=False)
    delinquent_since = forms.DateField(label=_("Corrected overdue since"), required=False, widget=_date)
    settled_on = forms.DateField(label=_("Corrected settled / behaviour ended on"), required=False, widget=_date)
    category = forms.ChoiceField(
        label=_("Corrected category"), required=False, choices=[("", "—"), *Category.choices]
    )

    CORRECTION_FIELDS = ("loan_amount", "overdue_amount", "delinquent_since", "settled_on", "category")

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "decide")
        super().__init__(*args, **kwargs)

    def corrections(self) -> dict:
        if self.cleaned_data.get("decision") != Decision.CORRECTED:
            return {}
        return {
            name: self.cleaned_data[name]
            for name in self.CORRECTION_FIELDS
            if self.cleaned_data.get(name) not in (None, "")
        }


class ReconsiderForm(DecideForm):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "reconsider")
        super().__init__(*args, **kwargs)
        self.fields["decision"].label = _("Outcome of the reconsideration")
