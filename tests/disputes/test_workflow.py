"""The dispute workflow's transition table (disputes/workflow.py), tested exhaustively: every
status × every action either leads exactly where the issue says, or is refused.

The expected table is written out here from the issue ("Workflow", issue 5) rather than read
from the module, so a change to the module's table has to be a deliberate change here too.
No database: the module is pure (pytest-django would refuse any query)."""

import itertools
import re

import pytest
from django.utils import translation

from disputes.workflow import (
    FLAGGED_STATUSES,
    OPEN_STATUSES,
    TRANSITIONS,
    Action,
    Status,
    TransitionRefused,
    allowed_actions,
    next_status,
)

S, A = Status, Action

EXPECTED = {
    # received → assigned; officers may reassign until the decision (and an appeal goes to a
    # senior officer by assignment).
    (S.RECEIVED, A.ASSIGN): S.ASSIGNED,
    (S.ASSIGNED, A.ASSIGN): S.ASSIGNED,
    (S.AWAITING_VERIFICATION, A.ASSIGN): S.AWAITING_VERIFICATION,
    (S.VERIFIED, A.ASSIGN): S.VERIFIED,
    (S.APPEALED, A.ASSIGN): S.APPEALED,
    # assigned → awaiting the member's verification → answered (or no answer = unverifiable)
    (S.ASSIGNED, A.REQUEST_VERIFICATION): S.AWAITING_VERIFICATION,
    (S.AWAITING_VERIFICATION, A.ANSWER_VERIFICATION): S.VERIFIED,
    (S.AWAITING_VERIFICATION, A.VERIFICATION_TIMEOUT): S.VERIFIED,
    # one extension, any time before the decision; the status does not change
    (S.RECEIVED, A.EXTEND): S.RECEIVED,
    (S.ASSIGNED, A.EXTEND): S.ASSIGNED,
    (S.AWAITING_VERIFICATION, A.EXTEND): S.AWAITING_VERIFICATION,
    (S.VERIFIED, A.EXTEND): S.VERIFIED,
    # decided by the assigned officer, with or without asking the member first
    (S.ASSIGNED, A.DECIDE): S.DECIDED,
    (S.VERIFIED, A.DECIDE): S.DECIDED,
    # decided → appealed → reconsidered (closed); or decided → closed after the window
    (S.DECIDED, A.APPEAL): S.APPEALED,
    (S.APPEALED, A.RECONSIDER): S.CLOSED,
    (S.DECIDED, A.CLOSE): S.CLOSED,
}

ALL_PAIRS = list(itertools.product(Status, Action))


def test_the_table_is_the_one_the_issue_describes():
    assert {(S(s), A(a)): S(t) for (s, a), t in TRANSITIONS.items()} == EXPECTED


def test_the_table_only_names_known_statuses_and_actions():
    for (status, action), target in TRANSITIONS.items():
        assert status in Status.values
        assert action in Action.values
        assert target in Status.values


@pytest.mark.parametrize(
    ("status", "action"), ALL_PAIRS, ids=[f"{s.value}-{a.value}" for s, a in ALL_PAIRS]
)
def test_every_status_and_action_moves_as_the_table_says_or_is_refused(status, action):
    if (status, action) in EXPECTED:
        assert next_status(status, action) == EXPECTED[(status, action)]
        # Plain strings (what the database holds) work the same as the enum members.
        assert next_status(status.value, action.value) == EXPECTED[(status, action)]
    else:
        with pytest.raises(TransitionRefused) as refused:
            next_status(status.value, action.value)
        assert (refused.value.status, refused.value.action) == (status.value, action.value)


def test_there_are_both_allowed_and_refused_pairs():
    # Guards the parametrisation above against an accidentally empty or full product.
    assert len(ALL_PAIRS) == len(Status) * len(Action) == 63
    assert len(EXPECTED) == 17
    assert len([p for p in ALL_PAIRS if p not in EXPECTED]) == 46


@pytest.mark.parametrize("status", list(Status), ids=[s.value for s in Status])
def test_allowed_actions_match_the_table(status):
    expected = {a for (s, a) in EXPECTED if s == status}
    actions = allowed_actions(status)
    assert set(actions) == expected
    assert len(actions) == len(set(actions))  # no duplicates
    for action in actions:
        next_status(status, action)  # never raises for an allowed action


def test_every_status_is_reachable_from_received():
    reached, frontier = {S.RECEIVED}, [S.RECEIVED]
    while frontier:
        status = frontier.pop()
        for action in allowed_actions(status):
            target = S(next_status(status, action))
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(Status)


def test_every_status_can_still_end_closed():
    """No dead end: from any status some sequence of actions reaches closed."""
    can_close = {S.CLOSED}
    changed = True
    while changed:
        changed = False
        for (status, _action), target in EXPECTED.items():
            if target in can_close and status not in can_close:
                can_close.add(status)
                changed = True
    assert can_close == set(Status)


def test_closed_is_final():
    assert allowed_actions(S.CLOSED) == []
    for action in Action:
        with pytest.raises(TransitionRefused):
            next_status(S.CLOSED, action)


def test_every_action_is_possible_somewhere():
    assert {a for (_s, a) in EXPECTED} == set(Action)


def test_only_undecided_disputes_count_as_open_and_an_appeal_reflags():
    assert {S.RECEIVED, S.ASSIGNED, S.AWAITING_VERIFICATION, S.VERIFIED} == OPEN_STATUSES
    assert {*OPEN_STATUSES, S.APPEALED} == FLAGGED_STATUSES
    assert S.DECIDED not in FLAGGED_STATUSES
    assert S.CLOSED not in FLAGGED_STATUSES
    # Extension and decision are exactly the open statuses' business.
    assert {s for (s, a) in EXPECTED if a == A.EXTEND} == OPEN_STATUSES
    assert {s for (s, a) in EXPECTED if a == A.DECIDE} < OPEN_STATUSES


REFUSED = [p for p in ALL_PAIRS if p not in EXPECTED]


@pytest.mark.parametrize(
    ("status", "action"), REFUSED, ids=[f"{s.value}-{a.value}" for s, a in REFUSED]
)
def test_a_refusal_explains_itself_in_a_sentence(status, action):
    with translation.override("en"):
        with pytest.raises(TransitionRefused) as refused:
            next_status(status.value, action.value)
        message = refused.value.message
        action_label, status_label = str(action.label), str(status.label)
    # The labels people see, not the codes stored in the database.
    assert action_label in message
    assert status_label in message
    assert not re.search(r"\b[a-z]+_[a-z_]+\b", message), message
    assert message[0].isupper() or message[0] == "“"
    assert message.endswith(".")


def test_a_refusal_message_reads_naturally():
    with translation.override("en"):
        message = TransitionRefused(S.CLOSED, A.APPEAL).message
    assert message == "“Appeal” is not possible while the dispute is “Closed”."


def test_the_refusal_is_also_a_plain_exception_message():
    error = TransitionRefused(S.RECEIVED.value, A.DECIDE.value)
    assert "decide" in str(error)
    assert "received" in str(error)


def test_the_refusal_is_in_the_page_language():
    # Chinese is the default language of the portal's pages.
    with translation.override("zh-hans"):
        message = TransitionRefused(S.CLOSED, A.APPEAL).message
        expected_labels = (str(A.APPEAL.label), str(S.CLOSED.label))
    assert all(label in message for label in expected_labels)
    assert "Appeal" not in message
    assert message.endswith("。")
