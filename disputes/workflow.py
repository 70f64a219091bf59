"""The dispute workflow as a transition table: (status, action) → next status. Pure: no
database, no clock. Services ask `next_status` before changing anything; every pair missing
from the table is refused. Who may take an action and when (deadlines, the decider not
reconsidering) is checked by the services."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    RECEIVED = "received", _("Received")
    ASSIGNED = "assigned", _("Assigned")
    AWAITING_VERIFICATION = "awaiting_verification", _("Awaiting the member's verification")
    VERIFIED = "verified", _("Verification answered")
    DECIDED = "decided", _("Decided")
    APPEALED = "appealed", _("Appealed")
    CLOSED = "closed", _("Closed")


class Action(models.TextChoices):
    ASSIGN = "assign", _("Assign")
    REQUEST_VERIFICATION = "request_verification", _("Ask the member to verify")
    ANSWER_VERIFICATION = "answer_verification", _("Answer the verification request")
    VERIFICATION_TIMEOUT = "verification_timeout", _("No answer in time (unverifiable)")
    EXTEND = "extend", _("Extend the deadline")
    DECIDE = "decide", _("Decide")
    APPEAL = "appeal", _("Appeal")
    RECONSIDER = "reconsider", _("Reconsider")
    CLOSE = "close", _("Close")


S, A = Status, Action

TRANSITIONS: dict[tuple[str, str], str] = {
    (S.RECEIVED, A.ASSIGN): S.ASSIGNED,
    (S.ASSIGNED, A.ASSIGN): S.ASSIGNED,  # reassignment
    (S.AWAITING_VERIFICATION, A.ASSIGN): S.AWAITING_VERIFICATION,
    (S.VERIFIED, A.ASSIGN): S.VERIFIED,
    (S.ASSIGNED, A.REQUEST_VERIFICATION): S.AWAITING_VERIFICATION,
    (S.AWAITING_VERIFICATION, A.ANSWER_VERIFICATION): S.VERIFIED,
    (S.AWAITING_VERIFICATION, A.VERIFICATION_TIMEOUT): S.VERIFIED,
    (S.RECEIVED, A.EXTEND): S.RECEIVED,
    (S.ASSIGNED, A.EXTEND): S.ASSIGNED,
    (S.AWAITING_VERIFICATION, A.EXTEND): S.AWAITING_VERIFICATION,
    (S.VERIFIED, A.EXTEND): S.VERIFIED,
    (S.ASSIGNED, A.DECIDE): S.DECIDED,
    (S.VERIFIED, A.DECIDE): S.DECIDED,
    (S.DECIDED, A.APPEAL): S.APPEALED,
    (S.APPEALED, A.ASSIGN): S.APPEALED,
    (S.APPEALED, A.RECONSIDER): S.CLOSED,
    (S.DECIDED, A.CLOSE): S.CLOSED,
}

# Before a decision, the entry shows 存在异议 and the decision deadline runs.
OPEN_STATUSES = frozenset({S.RECEIVED, S.ASSIGNED, S.AWAITING_VERIFICATION, S.VERIFIED})
# Statuses in which an entry counts as under dispute (an appeal re-opens the question).
FLAGGED_STATUSES = OPEN_STATUSES | {S.APPEALED}


class TransitionRefused(Exception):
    def __init__(self, status: str, action: str):
        self.status, self.action = status, action
        super().__init__(f"{action} is not possible in status {status}")

    @property
    def message(self) -> str:
        return str(
            _("“%(action)s” is not possible while the dispute is “%(status)s”.")
            % {"action": Action(self.action).label, "status": Status(self.status).label}
        )


def next_status(status: str, action: str) -> str:
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise TransitionRefused(status, action) from None


def allowed_actions(status: str) -> list[str]:
    return [a for (s, a) in TRANSITIONS if s == status]
