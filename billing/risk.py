"""The explainable risk grade: points per factor, summed, mapped to a grade A (lowest risk)
to E. Pure functions over the result snapshot, so the grade can be recomputed and explained
from the query log alone."""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from registry.choices import Category

# Points of one live entry by category; overdue entries by their days-past-due band.
CATEGORY_POINTS = {
    Category.FRAUD: 40,
    Category.COURT_JUDGMENT: 35,
    Category.MALICIOUS_DEFAULT: 30,
    Category.GUARANTOR_DEFAULT: 15,
}
DPD_POINTS = {"": 5, "1–30": 5, "31–60": 10, "61–90": 15, "91–180": 20, "180+": 25}
SETTLED_FACTOR = 0.5  # a settled entry weighs half: the debt is paid, the behaviour remains

# (window in days, threshold of distinct institutions, points)
MULTI_LENDING_RULES = [(30, 6, 20), (30, 3, 10)]
# (window in days, threshold of queries, points)
QUERY_BURST_RULES = [(7, 5, 10)]

# No points at all is "A"; otherwise the first grade whose bound the total stays below, else "E".
GRADE_BOUNDS = [(15, "B"), (30, "C"), (50, "D")]
GRADE_LABELS = {
    "A": _("A · no negative information"),
    "B": _("B · low risk"),
    "C": _("C · medium risk"),
    "D": _("D · high risk"),
    "E": _("E · very high risk"),
}


@dataclass(frozen=True)
class Factor:
    code: str
    points: int
    text: str


def assess(*, entries: list[dict], multi_lending: dict) -> tuple[str, list[Factor]]:
    factors: list[Factor] = []
    for e in entries:
        if e["category"] == Category.OVERDUE:
            base = DPD_POINTS.get(e.get("dpd_band", ""), 5)
        else:
            base = CATEGORY_POINTS.get(e["category"], 10)
        points = round(base * (SETTLED_FACTOR if e["status"] == "settled" else 1))
        parts = [
            _("%(category)s (settled)") % {"category": e["category_label"]}
            if e["status"] == "settled"
            else e["category_label"]
        ]
        if e.get("dpd_band"):
            parts.append(_("days past due %(band)s") % {"band": e["dpd_band"]})
        if e.get("disputed"):
            parts.append(str(_("under dispute")))
        text = " · ".join(str(p) for p in parts)
        factors.append(Factor("entry", points, text))
    for window, threshold, points in MULTI_LENDING_RULES:
        n = multi_lending[str(window)]["institutions"]
        if n >= threshold:
            factors.append(Factor("multi_lending", points, str(_("%(n)s institutions queried in %(d)s days")) % {"n": n, "d": window}))
            break
    for window, threshold, points in QUERY_BURST_RULES:
        n = multi_lending[str(window)]["queries"]
        if n >= threshold:
            factors.append(Factor("query_burst", points, str(_("%(n)s queries in %(d)s days")) % {"n": n, "d": window}))
    return _grade(sum(f.points for f in factors)), factors


def _grade(total: int) -> str:
    if total == 0:
        return "A"
    return next((letter for bound, letter in GRADE_BOUNDS if total < bound), "E")
