import django_filters
from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from blacklist_portal.accounts.models import Institution

from .access import about_member
from .models import ClaimType, Dispute
from .services import end_of_day_after
from .workflow import FLAGGED_STATUSES, OPEN_STATUSES, Status


class DisputeQueueFilter(django_filters.FilterSet):
    """The officers' queue. Without a status it shows the work to do: open and appealed."""

    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=Status.choices, empty_label=_("To do (open and appealed)"),
        method="filter_status",
    )
    due_within = django_filters.NumberFilter(
        label=_("Due within (days)"), method="filter_due_within", min_value=0, max_value=366,
        widget=forms.NumberInput(attrs={"min": 0, "max": 366}),
    )
    overdue = django_filters.BooleanFilter(
        label=_("Overdue only"), method="filter_overdue", widget=forms.CheckboxInput
    )
    claim_type = django_filters.ChoiceFilter(label=_("Claim"), choices=ClaimType.choices)
    member = django_filters.ModelChoiceFilter(
        label=_("Reporting institution"),
        queryset=Institution.objects.filter(kind__in=["lender", "court_source", "bureau"]).order_by("name"),
        method="filter_member",
    )
    mine = django_filters.BooleanFilter(
        label=_("Assigned to me"), method="filter_mine", widget=forms.CheckboxInput
    )
    receipt_no = django_filters.CharFilter(label=_("Receipt number"), method="filter_receipt_no")

    class Meta:
        model = Dispute
        fields = []

    def __init__(self, *args, now=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = now or timezone.now()

    def filter_queryset(self, queryset):
        if not self.form.cleaned_data.get("status"):
            queryset = queryset.filter(status__in=FLAGGED_STATUSES)
        return super().filter_queryset(queryset)

    def filter_status(self, queryset, name, value):
        return queryset.filter(status=value)

    def filter_due_within(self, queryset, name, value):
        # Not yet overdue, due by the end of the N-th Asia/Shanghai day from today.
        return queryset.filter(
            status__in=OPEN_STATUSES,
            decision_due_at__gte=self.now,
            decision_due_at__lte=end_of_day_after(self.now, int(value)),
        )

    def filter_overdue(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(status__in=OPEN_STATUSES, decision_due_at__lt=self.now)

    def filter_member(self, queryset, name, value):
        return queryset.filter(about_member(value.pk))

    def filter_mine(self, queryset, name, value):
        if not value or self.request is None:
            return queryset
        return queryset.filter(assignee=self.request.user)

    def filter_receipt_no(self, queryset, name, value):
        return queryset.filter(receipt_no=value.strip().upper())
