from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from blacklist_portal.accounts.models import Institution
from blacklist_portal.uploads import DOCUMENT_KINDS, UploadRejected, check_upload
from registry.choices import IdType
from registry.identifiers import IdentifierError, normalize_id_number, normalize_name
from registry.importing.rows import FieldError, parse_amount

from .choices import MEMBER_PURPOSES, LoanType, Purpose

_date = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class IdentityFields(forms.Form):
    """Identifier and name, normalised and validated with a message next to the field."""

    id_type = forms.ChoiceField(label=_("ID type"), choices=IdType.choices)
    id_number = forms.CharField(label=_("ID number"), max_length=40, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    name = forms.CharField(label=_("Name"), max_length=100, widget=forms.TextInput(attrs={"autocomplete": "off"}))

    def clean(self):
        cleaned = super().clean()
        if "id_type" in cleaned and "id_number" in cleaned:
            try:
                cleaned["id_number"] = normalize_id_number(cleaned["id_type"], cleaned["id_number"])
            except IdentifierError as exc:
                self.add_error("id_number", exc.message)
        if "name" in cleaned:
            try:
                cleaned["name"] = normalize_name(cleaned["name"])
            except IdentifierError as exc:
                self.add_error("name", exc.message)
        return cleaned


class ConsentForm(IdentityFields):
    purposes = forms.MultipleChoiceField(
        label=_("Purposes the borrower agreed to"),
        choices=[(p.value, p.label) for p in MEMBER_PURPOSES],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one purpose the borrower agreed to.")},
    )
    signed_on = forms.DateField(label=_("Signed on"), widget=_date)
    expires_on = forms.DateField(label=_("Expires on"), widget=_date)
    file = forms.FileField(label=_("Signed authorisation"), help_text=_("Scan or photo: PDF, JPEG or PNG."))

    def clean(self):
        cleaned = super().clean()
        self.checked_file = None
        if cleaned.get("file"):
            try:
                self.checked_file = check_upload(cleaned["file"], allowed=DOCUMENT_KINDS)
            except UploadRejected as exc:
                self.add_error("file", exc.message)
        today = timezone.localdate()
        if cleaned.get("signed_on") and cleaned["signed_on"] > today:
            self.add_error("signed_on", _("The signing date cannot be in the future."))
        if cleaned.get("expires_on") and cleaned.get("signed_on") and cleaned["expires_on"] < cleaned["signed_on"]:
            self.add_error("expires_on", _("The consent cannot expire before it was signed."))
        return cleaned


class QueryForm(IdentityFields):
    purpose = forms.ChoiceField(label=_("Purpose"), choices=[(p.value, p.label) for p in MEMBER_PURPOSES])
    consent = forms.IntegerField(
        label=_("Consent number"), required=False,
        help_text=_("The number shown when the consent was uploaded."),
        error_messages={"invalid": _("Enter the consent's number (digits only).")},
    )
    amount = forms.CharField(label=_("Applied amount (CNY)"), max_length=30, required=False,
                             help_text=_("Loan approval only."))
    loan_type = forms.ChoiceField(label=_("Loan type"), choices=[("", "—"), *LoanType.choices], required=False)
    applied_on = forms.DateField(label=_("Application date"), required=False, widget=_date)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("purpose") == Purpose.LOAN_APPROVAL:
            for name, message in (
                ("amount", _("Enter the applied amount for a loan-approval query.")),
                ("loan_type", _("Choose the loan type for a loan-approval query.")),
                ("applied_on", _("Enter the application date for a loan-approval query.")),
            ):
                if not cleaned.get(name):
                    self.add_error(name, message)
            if cleaned.get("amount"):
                try:
                    cleaned["amount"] = parse_amount(cleaned["amount"])
                except FieldError as exc:
                    self.add_error("amount", exc.message)
                else:
                    if cleaned["amount"] <= 0:
                        self.add_error("amount", _("The applied amount must be more than zero."))
        return cleaned


class RepresentativeQueryForm(QueryForm):
    """A member's representative at the counter with a paper consent, scanned in."""

    member = forms.ModelChoiceField(
        label=_("Institution represented"),
        queryset=Institution.objects.filter(kind=Institution.Kind.LENDER).order_by("name"),
    )
    representative = forms.CharField(label=_("Representative's name"), max_length=100)
    consent = None
    consent_file = forms.FileField(label=_("Scanned consent"), help_text=_("PDF, JPEG or PNG."))
    consent_signed_on = forms.DateField(label=_("Consent signed on"), widget=_date)
    consent_expires_on = forms.DateField(label=_("Consent expires on"), widget=_date)

    field_order = ["member", "representative", "id_type", "id_number", "name", "purpose",
                   "consent_file", "consent_signed_on", "consent_expires_on", "amount", "loan_type", "applied_on"]

    def clean(self):
        cleaned = super().clean()
        self.checked_file = None
        if cleaned.get("consent_file"):
            try:
                self.checked_file = check_upload(cleaned["consent_file"], allowed=DOCUMENT_KINDS)
            except UploadRejected as exc:
                self.add_error("consent_file", exc.message)
        return cleaned


class SelfQueryForm(IdentityFields):
    identity_check = forms.ChoiceField(
        label=_("ID card checked in person"),
        choices=[("", "—"),
                 ("ric_original", _("Resident ID card, original, photo compared")),
                 ("ric_reader", _("Resident ID card, chip read with the card reader")),
                 ("passport_original", _("Passport, original, photo compared")),
                 ("permit_original", _("Travel or residence permit, original, photo compared"))],
        error_messages={"required": _("Check the ID card in person and record how.")},
    )


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=_("Key name"), max_length=100, help_text=_("e.g. the loan system that uses it"))


class StatementGenerateForm(forms.Form):
    month = forms.DateField(label=_("Month"), widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
                            input_formats=["%Y-%m", "%Y-%m-%d"])
