import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class CharacterClassValidator:
    """A password must mix letters with digits or symbols."""

    def validate(self, password, user=None):
        has_letter = re.search(r"[A-Za-z]", password)
        has_other = re.search(r"[^A-Za-z]", password)
        if not (has_letter and has_other):
            raise ValidationError(
                _("The password must contain letters and at least one digit or symbol."),
                code="password_too_simple",
            )

    def get_help_text(self):
        return _("Your password must contain letters and at least one digit or symbol.")
