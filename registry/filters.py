import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from blacklist_portal.accounts.models import Institution

from .choices import Category
from .models import Entry

_date = forms.DateInput(attrs={"type": "date"})


class ReviewQueueFilter(django_filters.FilterSet):
    category = django_filters.ChoiceFilter(label=_("Category"), choices=Category.choices)
    member = django_filters.ModelChoiceFilter(
        label=_("Reporting institution"),
        queryset=Institution.objects.filter(kind__in=["lender", "court_source", "bureau"]),
    )
    submitted_from = django_filters.DateFilter(
        label=_("Submitted from"), field_name="submitted_at", lookup_expr="date__gte", widget=_date
    )
    submitted_to = django_filters.DateFilter(
        label=_("Submitted until"), field_name="submitted_at", lookup_expr="date__lte", widget=_date
    )
    amount_min = django_filters.NumberFilter(
        label=_("Loan amount from (CNY)"), field_name="loan_amount", lookup_expr="gte"
    )
    amount_max = django_filters.NumberFilter(
        label=_("Loan amount up to (CNY)"), field_name="loan_amount", lookup_expr="lte"
    )

    class Meta:
        model = Entry
        fields = []


class MemberEntryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(label=_("Status"), choices=Entry.Status.choices)
    category = django_filters.ChoiceFilter(label=_("Category"), choices=Category.choices)
    contract_no = django_filters.CharFilter(label=_("Contract number"), lookup_expr="exact")
    submitted_from = django_filters.DateFilter(
        label=_("Submitted from"), field_name="submitted_at", lookup_expr="date__gte", widget=_date
    )
    submitted_to = django_filters.DateFilter(
        label=_("Submitted until"), field_name="submitted_at", lookup_expr="date__lte", widget=_date
    )

    class Meta:
        model = Entry
        fields = []
