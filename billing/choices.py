from django.db import models
from django.utils.translation import gettext_lazy as _


class Purpose(models.TextChoices):
    LOAN_APPROVAL = "loan_approval", _("Loan approval")
    POST_LOAN = "post_loan", _("Post-loan management")
    GUARANTOR_CHECK = "guarantor_check", _("Guarantor check")
    SELF = "self", _("Self-query")


MEMBER_PURPOSES = (Purpose.LOAN_APPROVAL, Purpose.POST_LOAN, Purpose.GUARANTOR_CHECK)


class Channel(models.TextChoices):
    WEB = "web", _("Web portal")
    COUNTER = "counter", _("Offline counter")
    API = "api", _("API")
    BATCH = "batch", _("Batch screening")


class LoanType(models.TextChoices):
    CONSUMER = "consumer", _("Consumer loan")
    BUSINESS = "business", _("Business loan")
    MORTGAGE = "mortgage", _("Secured loan")
    OTHER = "other", _("Other")


class RefusalReason(models.TextChoices):
    """Why a query was refused. Codes are part of the API contract."""

    NO_CONSENT = "consent_missing", _("No consent was given.")
    CONSENT_NOT_FOUND = "consent_not_found", _("The consent does not exist or belongs to another institution.")
    CONSENT_EXPIRED = "consent_expired", _("The consent has expired.")
    CONSENT_NOT_YET = "consent_not_yet_valid", _("The consent is not valid yet.")
    CONSENT_OTHER_SUBJECT = "consent_other_subject", _("The consent was given by another person.")
    CONSENT_PURPOSE = "consent_purpose", _("The consent does not cover this purpose.")
    MEMBER_SUSPENDED = "member_suspended", _("Your institution is suspended and cannot query.")
    ID_NOT_CHECKED = "id_not_checked", _("The ID card must be checked in person before a self-query.")
