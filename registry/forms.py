from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from blacklist_portal.uploads import DOCUMENT_KINDS, SPREADSHEET_KINDS, UploadRejected, check_upload

from .choices import Category, IdType, NoticeMethod, SubjectRole, SubjectType
from .importing.rows import parse_row
from .models import ImportBatch

_date = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data if d]
        return [single(data, initial)] if data else []


def _checked_files(form: forms.Form, field: str, allowed) -> list:
    checked = []
    for f in form.cleaned_data.get(field) or []:
        try:
            checked.append((f, check_upload(f, allowed=allowed)))
        except UploadRejected as exc:
            form.add_error(field, f"{f.name}: {exc.message}")
    return checked


class EntryForm(forms.Form):
    """The web form for one entry. Field names are the column aliases of import-format.md,
    and the values go through the same row parser as a bulk file, so the rules are one."""

    subject_type = forms.ChoiceField(label=_("Subject type"), choices=SubjectType.choices)
    id_type = forms.ChoiceField(label=_("ID type"), choices=IdType.choices)
    id_number = forms.CharField(label=_("ID number"), max_length=40)
    name = forms.CharField(label=_("Name"), max_length=100)
    phone = forms.CharField(label=_("Mobile phone"), max_length=20, required=False)
    role = forms.ChoiceField(label=_("Subject's role"), choices=SubjectRole.choices)
    contract_no = forms.CharField(label=_("Contract number"), max_length=64)
    category = forms.ChoiceField(label=_("Category"), choices=Category.choices)
    loan_amount = forms.CharField(label=_("Loan amount (CNY)"), max_length=30)
    overdue_amount = forms.CharField(
        label=_("Overdue amount (CNY)"),
        max_length=30,
        required=False,
        help_text=_("Required for overdue, malicious default and guarantor liability."),
    )
    delinquent_since = forms.DateField(
        label=_("Overdue since"), required=False, widget=_date,
        help_text=_("Required for overdue and malicious default."),
    )
    court_name = forms.CharField(label=_("Court"), max_length=100, required=False)
    case_number = forms.CharField(
        label=_("Case number"), max_length=64, required=False,
        help_text=_("For a court judgment, e.g. (2023)京0105执1234号"),
    )
    judgment_date = forms.DateField(label=_("Judgment date"), required=False, widget=_date)
    notified_on = forms.DateField(
        label=_("Subject notified on"), widget=_date,
        help_text=_("Prior notice (条例 Art. 15): the date the subject was told."),
    )
    notice_method = forms.ChoiceField(label=_("Notice method"), choices=NoticeMethod.choices)
    settled_on = forms.DateField(
        label=_("Settled / behaviour ended on"), required=False, widget=_date
    )
    remarks = forms.CharField(
        label=_("Remarks"), max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    evidence = MultipleFileField(
        label=_("Evidence"),
        required=False,
        help_text=_("PDF, JPEG or PNG. Required unless a court case number is given."),
    )

    IDENTITY_FIELDS = ("subject_type", "id_type", "id_number", "name", "phone", "contract_no")

    def __init__(self, *args, fixed: dict | None = None, **kwargs):
        """`fixed`: identity values of an entry being edited; their fields are removed so the
        clear values never reach the page, and they are merged back before validation."""
        self.today = kwargs.pop("today", None) or timezone.localdate()
        super().__init__(*args, **kwargs)
        self.fixed = fixed or {}
        for name in self.fixed:
            self.fields.pop(name, None)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        values = {
            key: ("" if value is None else value.isoformat() if hasattr(value, "isoformat") else value)
            for key, value in {**cleaned, **self.fixed}.items()
            if key != "evidence"
        }
        result = parse_row(values, today=self.today)
        for column, message in result.errors:
            self.add_error(column if column in self.fields else None, message)
        self.parsed = result.data
        self.checked_evidence = _checked_files(self, "evidence", DOCUMENT_KINDS)
        return cleaned


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), max_length=1000, widget=forms.Textarea(attrs={"rows": 3})
    )


class SettleForm(forms.Form):
    settled_on = forms.DateField(label=_("Settled / behaviour ended on"), widget=_date)


class StatementForm(forms.Form):
    statement = forms.CharField(
        label=_("Subject's statement (本人声明)"),
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class UploadForm(forms.Form):
    file = forms.FileField(
        label=_("Bulk file"), help_text=_(".xlsx, or .csv in UTF-8 or GBK (as Excel saves it).")
    )
    evidence = forms.FileField(
        label=_("Evidence for all rows"),
        required=False,
        help_text=_("One PDF, JPEG or PNG shared by every row, e.g. the loan ledger extract."),
    )

    def clean(self):
        cleaned = super().clean()
        self.checked_file = None
        self.checked_evidence = None
        if cleaned.get("file"):
            try:
                self.checked_file = check_upload(
                    cleaned["file"], allowed=SPREADSHEET_KINDS,
                    max_bytes=_import_max_bytes(),
                )
            except UploadRejected as exc:
                self.add_error("file", exc.message)
        if cleaned.get("evidence"):
            try:
                self.checked_evidence = check_upload(cleaned["evidence"], allowed=DOCUMENT_KINDS)
            except UploadRejected as exc:
                self.add_error("evidence", exc.message)
        return cleaned


def _import_max_bytes() -> int:
    from django.conf import settings

    return settings.PORTAL_IMPORT_MAX_BYTES


class LoadForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("What to load"), choices=ImportBatch.Mode.choices, widget=forms.RadioSelect
    )
