from django.forms.renderers import TemplatesSetting


class PortalFormRenderer(TemplatesSetting):
    """Every form renders its fields with templates/forms/field.html: label, control, help
    text and the field's errors directly beneath it (linked with aria-describedby)."""

    form_template_name = "forms/form.html"
    field_template_name = "forms/field.html"
