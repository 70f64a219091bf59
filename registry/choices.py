"""The registry's enumerations. Values are the English aliases of import-format.md (stable,
published to members); labels are translated (Chinese first)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class SubjectType(models.TextChoices):
    PERSON = "person", _("Person")
    ENTERPRISE = "enterprise", _("Enterprise")


class IdType(models.TextChoices):
    RIC = "RIC", _("Resident identity card")
    USCC = "USCC", _("Unified social credit code")
    PASSPORT = "PASSPORT", _("Passport")
    HKMO = "HKMO", _("Mainland travel permit for Hong Kong and Macao residents")
    TW = "TW", _("Mainland travel permit for Taiwan residents")
    FPR = "FPR", _("Foreign permanent resident ID card")


class SubjectRole(models.TextChoices):
    BORROWER = "borrower", _("Borrower")
    GUARANTOR = "guarantor", _("Guarantor")


class Category(models.TextChoices):
    OVERDUE = "overdue", _("Overdue")
    FRAUD = "fraud", _("Loan fraud")
    MALICIOUS_DEFAULT = "malicious_default", _("Malicious default")
    GUARANTOR_DEFAULT = "guarantor_default", _("Guarantor liability")
    COURT_JUDGMENT = "court_judgment", _("Unexecuted court judgment")


class NoticeMethod(models.TextChoices):
    SMS = "sms", _("SMS")
    LETTER = "letter", _("Letter")
    PHONE = "phone", _("Phone call")
    IN_PERSON = "in_person", _("In person")
    EMAIL = "email", _("E-mail")


# Categories that need an overdue amount / a delinquency start date / court fields.
NEEDS_OVERDUE_AMOUNT = frozenset(
    {Category.OVERDUE, Category.MALICIOUS_DEFAULT, Category.GUARANTOR_DEFAULT}
)
NEEDS_DELINQUENT_SINCE = frozenset({Category.OVERDUE, Category.MALICIOUS_DEFAULT})
NEEDS_COURT_FIELDS = frozenset({Category.COURT_JUDGMENT})
