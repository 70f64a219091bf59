"""Model fields for personal data encrypted at rest (see `registry.crypto`)."""

from django.core import checks
from django.core.exceptions import FieldError
from django.db import models
from django.db.models.lookups import Exact
from django.utils.translation import gettext_lazy as _

from registry import crypto

_NO_LOOKUPS = (
    "{field} is encrypted with a random nonce, so the database cannot compare its values: only "
    "`isnull` (and `=None`) lookups work. Look values up through their blind index column "
    "(registry.crypto.blind_index) instead of `{lookup}`."
)


class _NullOnlyExact(Exact):
    """`field=None` becomes `field__isnull=True` as usual; any other value is refused, because
    preparing it would encrypt it and silently match nothing."""

    def __init__(self, lhs, rhs):
        if rhs is not None:
            raise FieldError(_NO_LOOKUPS.format(field=_describe(lhs), lookup="exact"))
        super().__init__(lhs, rhs)


def _describe(lhs) -> str:
    field = getattr(lhs, "output_field", lhs)
    model = getattr(field, "model", None)
    if model is not None:
        return f"{model._meta.label}.{field.name}"
    return "This field"


class EncryptedTextField(models.TextField):
    """Text stored as an AES-256-GCM token (`registry.crypto.encrypt`); the Python value is the
    plaintext str (or None when null=True).

    The associated data is ``"<app_label>.<model>.<attname>"``, so a token copied into another
    column or table does not decrypt. Consequence: renaming the model or the field (or moving
    it to another app) needs a data migration that re-encrypts the column under the new name.

    Lookups other than `isnull` are refused: the stored value differs on every save. Keep a
    blind index column (`crypto.blind_index`) next to it for exact lookups.
    """

    description = _("Text encrypted at rest")

    @property
    def aad(self) -> str:
        """Associated data binding this column's tokens to it (also used by key rotation)."""
        model = getattr(self, "model", None)
        if model is None:
            raise FieldError(
                "EncryptedTextField must be attached to a model before it can encrypt or "
                "decrypt: its key context is the model label and the field's attname."
            )
        return f"{model._meta.label_lower}.{self.attname}"

    def get_prep_value(self, value):
        # The Python value is always plaintext (from_db_value decrypts), so every value is
        # encrypted; a value that merely looks like a token is data, not something to pass through.
        value = super().get_prep_value(value)
        if value is None:
            return None
        return crypto.encrypt(value, aad=self.aad)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return crypto.decrypt(value, aad=self.aad)

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        if lookup_name == "exact":
            return _NullOnlyExact
        raise FieldError(_NO_LOOKUPS.format(field=_describe(self), lookup=lookup_name))

    def get_transform(self, lookup_name):
        raise FieldError(_NO_LOOKUPS.format(field=_describe(self), lookup=lookup_name))

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        if self.primary_key or self._unique:
            errors.append(
                checks.Error(
                    "EncryptedTextField cannot be unique or a primary key: every save produces "
                    "a different ciphertext.",
                    hint="Put the uniqueness constraint on the blind index column.",
                    obj=self,
                    id="registry.crypto.E002",
                )
            )
        if self.has_db_default():
            errors.append(
                checks.Error(
                    "EncryptedTextField cannot have db_default: the database would store it "
                    "unencrypted.",
                    hint="Use default= instead; it is encrypted like any other value.",
                    obj=self,
                    id="registry.crypto.E003",
                )
            )
        if self.db_index:
            errors.append(
                checks.Warning(
                    "An index on an EncryptedTextField is useless: it cannot be looked up.",
                    hint="Index the blind index column instead.",
                    obj=self,
                    id="registry.crypto.W001",
                )
            )
        return errors
