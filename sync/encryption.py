"""Secrets at rest: Fernet-encrypted model fields for credentials and worker cost rates.

The key is `settings.FIELD_ENCRYPTION_KEY`. Several comma-separated keys may be given for
rotation: the first encrypts, all decrypt (cryptography's MultiFernet).

Ciphertext is not deterministic, so these columns cannot be filtered, ordered or joined on;
only `isnull` makes sense. simple-history copies the field class into history models, so
history rows hold the same ciphertext and never the plain value.
"""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django import forms
from django.conf import settings
from django.core import validators
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models

from sync.errors import DomainError


class DecryptionFailed(DomainError):
    """A stored value could not be decrypted with any configured key (wrong or rotated-out key)."""


@functools.lru_cache(maxsize=4)
def _fernet_for(keys: str) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.strip()) for key in keys.split(",") if key.strip()])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be one or more comma-separated Fernet keys"
        ) from exc


def fernet() -> MultiFernet:
    """The MultiFernet for the current settings (cached per key string, so tests may override)."""
    return _fernet_for(settings.FIELD_ENCRYPTION_KEY)


def encrypt_text(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt_text(token: str) -> str:
    """Plain text of `token`. Raises DecryptionFailed when no configured key opens it."""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionFailed(
            "stored value cannot be decrypted with FIELD_ENCRYPTION_KEY"
        ) from None


class EncryptedTextField(models.TextField):
    """Text stored as Fernet ciphertext (connection credentials, tokens). Reads return plain str."""

    def from_db_value(self, value, expression, connection):
        if value is None:
            return value
        return decrypt_text(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None:
            return None
        return encrypt_text(str(value))


class EncryptedDecimalField(models.TextField):
    """A Decimal stored as Fernet ciphertext text; reads return Decimal. Float is refused.

    `max_digits`/`decimal_places` are checked by the field's validator (full_clean), as for
    DecimalField; the stored text is the exact Decimal given, never rounded silently.
    """

    description = "Decimal stored encrypted"

    def __init__(self, *args, max_digits: int = 18, decimal_places: int = 4, **kwargs) -> None:
        self.max_digits = max_digits
        self.decimal_places = decimal_places
        super().__init__(*args, **kwargs)

    @functools.cached_property
    def validators(self):
        return [
            *super().validators,
            validators.DecimalValidator(self.max_digits, self.decimal_places),
        ]

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["max_digits"] = self.max_digits
        kwargs["decimal_places"] = self.decimal_places
        return name, path, args, kwargs

    def to_python(self, value):
        if value is None or isinstance(value, Decimal):
            return value
        if isinstance(value, float):
            raise ValidationError(
                f"{self.name}: float {value!r} refused; pass a Decimal or a string",
                code="float",
            )
        if isinstance(value, bool):
            raise ValidationError(f"{self.name}: {value!r} is not a decimal", code="invalid")
        try:
            result = Decimal(value.strip() if isinstance(value, str) else value)
        except (InvalidOperation, TypeError, ValueError):
            raise ValidationError(
                f"{self.name}: {value!r} is not a decimal", code="invalid"
            ) from None
        if not result.is_finite():
            raise ValidationError(f"{self.name}: {value!r} is not finite", code="invalid")
        return result

    def from_db_value(self, value, expression, connection):
        if value is None:
            return value
        return Decimal(decrypt_text(value))

    def get_prep_value(self, value):
        if isinstance(value, float):
            raise TypeError(f"{self.name}: float {value!r} refused; pass a Decimal or a string")
        value = self.to_python(value)
        if value is None:
            return None
        return encrypt_text(str(value))

    def value_to_string(self, obj):
        value = self.value_from_object(obj)
        return "" if value is None else str(value)

    def formfield(self, **kwargs):
        return super(models.TextField, self).formfield(
            form_class=forms.DecimalField,
            max_digits=self.max_digits,
            decimal_places=self.decimal_places,
            **kwargs,
        )
