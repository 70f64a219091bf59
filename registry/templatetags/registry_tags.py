from django import template

register = template.Library()


@register.filter
def dpd_band(entry, today):
    """Days-past-due band of an entry as of `today`, e.g. "31–60"; empty when not overdue."""
    return entry.dpd_band(today)
