"""Encryption at rest: registry.crypto (tokens, rotation, blind index, key configuration) and
registry.fields.EncryptedTextField."""

import base64
import hashlib
import hmac
import re
import secrets

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import connection, models
from django.db.migrations.writer import MigrationWriter
from django.test import override_settings
from django.test.utils import isolate_apps
from django.utils.functional import lazy as lazy_str
from hypothesis import given
from hypothesis import strategies as st

from registry import crypto
from registry.crypto import (
    CipherError,
    blind_index,
    current_key_id,
    decrypt,
    encrypt,
    reencrypt_token,
    reload_keys,
    token_key_id,
)
from registry.fields import EncryptedTextField

AAD = "registry.subject.name"
NAME = "张三丰"
RIC = "11010519491231002X"
TOKEN_RE = re.compile(r"v1\.[A-Za-z0-9-]{1,32}\.[A-Za-z0-9_-]+")


def new_key() -> str:
    return secrets.token_urlsafe(32)  # unpadded, like the test settings


def padded_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def payload(token: str) -> bytes:
    data = token.split(".")[2]
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def with_payload(token: str, raw: bytes) -> str:
    version, kid, _ = token.split(".")
    return f"{version}.{kid}." + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def flip_byte(raw: bytes, index: int) -> bytes:
    mutable = bytearray(raw)
    mutable[index] ^= 0x01
    return bytes(mutable)


@pytest.fixture(autouse=True)
def _fresh_keys():
    # Every test starts and ends on the keys of the settings module.
    reload_keys()
    yield
    reload_keys()


# --- Round trip and token format ------------------------------------------------------------


@pytest.mark.parametrize(
    "plaintext",
    [NAME, RIC, "13812345678", "", "欧阳 娜娜·买买提 😀\n\x00end", "x" * 10_000],
)
def test_round_trip(plaintext):
    assert decrypt(encrypt(plaintext, aad=AAD), aad=AAD) == plaintext


def test_token_is_versioned_ascii_with_current_key_id_and_no_padding():
    token = encrypt(NAME, aad=AAD)

    assert TOKEN_RE.fullmatch(token)
    assert token.isascii()
    assert "=" not in token
    assert token.startswith(f"v1.{current_key_id()}.")
    assert token_key_id(token) == current_key_id()
    # nonce (12) + UTF-8 ciphertext (3 bytes per character here) + tag (16)
    assert len(payload(token)) == 12 + len(NAME.encode()) + 16


def test_token_does_not_contain_the_plaintext():
    for value in (NAME, RIC, "13812345678"):
        token = encrypt(value, aad=AAD)
        assert value not in token
        assert value.encode() not in payload(token)
        assert base64.urlsafe_b64encode(value.encode()).decode().rstrip("=") not in token


def test_same_plaintext_gives_different_tokens_and_nonces():
    tokens = [encrypt(RIC, aad=AAD) for _ in range(200)]

    assert len(set(tokens)) == 200
    assert len({payload(t)[:12] for t in tokens}) == 200
    assert {decrypt(t, aad=AAD) for t in tokens} == {RIC}


def test_arguments_are_checked():
    with pytest.raises(TypeError):
        encrypt(b"bytes", aad=AAD)
    with pytest.raises(ValueError, match="aad"):
        encrypt(NAME, aad="")
    with pytest.raises(ValueError, match="aad"):
        decrypt(encrypt(NAME, aad=AAD), aad="")


# --- Authentication: wrong context, tampering, malformed tokens -----------------------------


def test_wrong_aad_fails():
    token = encrypt(NAME, aad="registry.subject.name")

    with pytest.raises(CipherError, match="failed authentication"):
        decrypt(token, aad="registry.subject.phone")
    with pytest.raises(CipherError):
        decrypt(token, aad="registry.historicalsubject.name")


@pytest.mark.parametrize(
    ("part", "index"),
    [
        ("nonce", 0),
        ("nonce", 11),
        ("ciphertext", 12),
        ("ciphertext", -17),
        ("tag", -16),
        ("tag", -1),
    ],
)
def test_tampered_token_fails(part, index):
    token = encrypt(NAME, aad=AAD)
    tampered = with_payload(token, flip_byte(payload(token), index))

    assert tampered != token
    with pytest.raises(CipherError, match="failed authentication"):
        decrypt(tampered, aad=AAD)


def test_truncated_or_extended_payload_fails():
    token = encrypt(NAME, aad=AAD)
    raw = payload(token)

    with pytest.raises(CipherError):
        decrypt(with_payload(token, raw[:-1]), aad=AAD)
    with pytest.raises(CipherError):
        decrypt(with_payload(token, raw + b"\x00"), aad=AAD)
    with pytest.raises(CipherError, match="too short"):
        decrypt(with_payload(token, raw[:27]), aad=AAD)


def test_non_canonical_base64_spelling_of_a_valid_token_is_refused():
    # 1 byte of plaintext -> 29-byte payload -> the last base64 character carries 2 spare bits.
    token = encrypt("a", aad=AAD)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    respelled = token[:-1] + alphabet[last ^ 0b01]

    assert respelled != token
    assert payload(respelled) == payload(token)  # base64 alone would accept it
    with pytest.raises(CipherError, match="non-canonical"):
        decrypt(respelled, aad=AAD)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1",
        "v1.t1",
        "v1..AAAA",
        "v2.t1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.t1.AAAA.AAAA",
        "v1.t1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
        "v1.t1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/AAA",
        "v1.t1.AAAAA",
        "v1.t 1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "张三",
        None,
        b"v1.t1.AAAA",
    ],
)
def test_malformed_tokens_raise_cipher_error(token):
    with pytest.raises(CipherError):
        decrypt(token, aad=AAD)
    with pytest.raises(CipherError):
        token_key_id(token)


# --- Key ids and rotation -------------------------------------------------------------------


def test_unknown_key_id_fails():
    with override_settings(FIELD_ENCRYPTION_KEYS=f"k1:{new_key()}"):
        token = encrypt(NAME, aad=AAD)
    with override_settings(FIELD_ENCRYPTION_KEYS=f"k2:{new_key()}"):
        with pytest.raises(CipherError, match="Unknown key id 'k1'"):
            decrypt(token, aad=AAD)
        with pytest.raises(CipherError, match="Unknown key id 'k1'"):
            reencrypt_token(token, aad=AAD)


def test_tampered_key_id_fails_even_when_it_names_a_configured_key():
    with override_settings(FIELD_ENCRYPTION_KEYS=f"k2:{new_key()},k1:{new_key()}"):
        token = encrypt(NAME, aad=AAD)
        assert token_key_id(token) == "k2"
        with pytest.raises(CipherError, match="failed authentication"):
            decrypt(token.replace("v1.k2.", "v1.k1.", 1), aad=AAD)
        with pytest.raises(CipherError, match="Unknown key id"):
            decrypt(token.replace("v1.k2.", "v1.k3.", 1), aad=AAD)


def test_key_id_is_authenticated_even_under_identical_key_material():
    key = new_key()
    with override_settings(FIELD_ENCRYPTION_KEYS=f"a:{key},b:{key}"):
        token = encrypt(NAME, aad=AAD)
        with pytest.raises(CipherError, match="failed authentication"):
            decrypt(token.replace("v1.a.", "v1.b.", 1), aad=AAD)


def test_rotation_old_tokens_decrypt_and_reencrypt_moves_them_to_the_new_key():
    k1, k2 = new_key(), padded_key()
    with override_settings(FIELD_ENCRYPTION_KEYS=f"k1:{k1}"):
        old = encrypt(NAME, aad=AAD)
    assert token_key_id(old) == "k1"

    with override_settings(FIELD_ENCRYPTION_KEYS=f"k2:{k2},k1:{k1}"):
        assert current_key_id() == "k2"
        assert decrypt(old, aad=AAD) == NAME
        assert token_key_id(encrypt(NAME, aad=AAD)) == "k2"

        moved = reencrypt_token(old, aad=AAD)
        assert moved != old
        assert token_key_id(moved) == "k2"
        assert decrypt(moved, aad=AAD) == NAME
        # Idempotent: a token on the current key comes back unchanged.
        assert reencrypt_token(moved, aad=AAD) == moved
        # The context stays bound through re-encryption.
        with pytest.raises(CipherError):
            reencrypt_token(old, aad="registry.subject.phone")

    with override_settings(FIELD_ENCRYPTION_KEYS=f"k2:{k2}"):  # k1 retired
        assert decrypt(moved, aad=AAD) == NAME
        with pytest.raises(CipherError, match="Unknown key id 'k1'"):
            decrypt(old, aad=AAD)


def test_reencrypt_verifies_tokens_already_on_the_current_key():
    token = encrypt(NAME, aad=AAD)
    tampered = with_payload(token, flip_byte(payload(token), -1))

    with pytest.raises(CipherError):
        reencrypt_token(tampered, aad=AAD)


# --- Blind index ----------------------------------------------------------------------------


def test_blind_index_is_deterministic_hex_hmac_sha256_of_domain_and_value():
    key = bytes(range(32))
    with override_settings(BLIND_INDEX_KEY=base64.urlsafe_b64encode(key).decode()):
        digest = blind_index(RIC, domain="id:RIC")
        assert digest == blind_index(RIC, domain="id:RIC")

    expected = hmac.new(key, f"id:RIC\x1f{RIC}".encode(), hashlib.sha256).hexdigest()
    assert digest == expected
    assert re.fullmatch(r"[0-9a-f]{64}", digest)


def test_blind_index_is_domain_separated():
    assert blind_index("13812345678", domain="phone") != blind_index(
        "13812345678", domain="id:PASSPORT"
    )
    assert blind_index(RIC, domain="id:RIC") != blind_index(RIC, domain="id:USCC")
    # Moving characters between domain and value changes the digest.
    assert blind_index("b", domain="a") != blind_index("", domain="ab")


def test_blind_index_is_value_sensitive_and_does_not_normalise():
    assert blind_index(RIC, domain="id:RIC") != blind_index(RIC.lower(), domain="id:RIC")
    assert blind_index("张三", domain="name") != blind_index("张 三", domain="name")


def test_blind_index_depends_on_its_key_and_not_on_the_encryption_keys():
    before = blind_index(RIC, domain="id:RIC")

    with override_settings(BLIND_INDEX_KEY=new_key()):
        assert blind_index(RIC, domain="id:RIC") != before
    with override_settings(FIELD_ENCRYPTION_KEYS=f"k9:{new_key()}"):
        assert blind_index(RIC, domain="id:RIC") == before
    assert blind_index(RIC, domain="id:RIC") == before


@pytest.mark.parametrize("domain", ["", "id\x1fRIC"])
def test_blind_index_rejects_ambiguous_domains(domain):
    with pytest.raises(ValueError, match="domain"):
        blind_index(RIC, domain=domain)


def test_blind_index_rejects_non_text_values():
    with pytest.raises(TypeError):
        blind_index(13812345678, domain="phone")


# --- Key configuration ----------------------------------------------------------------------

SHORT_KEY = base64.urlsafe_b64encode(b"\x07" * 16).decode()
STANDARD_B64_KEY = base64.standard_b64encode(b"\xfb" * 32).decode()  # has "+" and "/"


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("", "FIELD_ENCRYPTION_KEYS is not set"),
        ("   ", "FIELD_ENCRYPTION_KEYS is not set"),
        (["k1:x"], "must be a string"),
        ("k1:" + SHORT_KEY, "decodes to 16 bytes.*exactly 32"),
        ("k1:" + STANDARD_B64_KEY, "'k1'.*not URL-safe base64"),
        ("k1:not*base64*at*all!", "not URL-safe base64"),
        ("k1:", "not URL-safe base64"),
        ("k1:{a},k1:{b}", "key id 'k1' twice"),
        ("k.1:{a}", r"invalid key id 'k\.1'.*no '\.' or ','"),
        ("k,1:{a}", 'entry 1 is not of the form "kid:base64key"'),
        ("{a}", 'entry 1 is not of the form "kid:base64key"'),
        (":{a}", "invalid key id ''"),
        ("k1:{a},", "entry 2 is empty"),
        ("k1:{a},,k2:{b}", "entry 2 is empty"),
        ("ключ:{a}", "invalid key id"),
        ("k_1:{a}", "invalid key id 'k_1'"),
    ],
)
def test_bad_encryption_key_configuration_is_refused_clearly(keys, message):
    a, b = new_key(), new_key()
    if isinstance(keys, str):
        keys = keys.format(a=a, b=b)
    with override_settings(FIELD_ENCRYPTION_KEYS=keys):
        with pytest.raises(ImproperlyConfigured, match=message) as excinfo:
            current_key_id()
        with pytest.raises(ImproperlyConfigured):
            encrypt(NAME, aad=AAD)
    # Messages are logged: they must never contain key material.
    for secret in (a, b, SHORT_KEY, STANDARD_B64_KEY):
        assert secret not in str(excinfo.value)


@pytest.mark.parametrize(
    ("blind_key", "message"),
    [
        ("", "BLIND_INDEX_KEY is not set"),
        (None, "BLIND_INDEX_KEY is not set"),
        (base64.urlsafe_b64encode(b"\x01" * 31).decode(), "decodes to 31 bytes"),
        ("===", "not URL-safe base64"),
        ("SAME", "must differ from every key in FIELD_ENCRYPTION_KEYS"),
    ],
)
def test_bad_blind_index_key_is_refused_clearly(blind_key, message):
    encryption_key = new_key()
    if blind_key == "SAME":
        blind_key = encryption_key
    overrides = {"FIELD_ENCRYPTION_KEYS": f"k1:{encryption_key}", "BLIND_INDEX_KEY": blind_key}
    with (
        override_settings(**overrides),
        pytest.raises(ImproperlyConfigured, match=message) as excinfo,
    ):
        blind_index(RIC, domain="id:RIC")
    assert encryption_key not in str(excinfo.value)


def test_missing_setting_is_refused(settings):
    del settings.FIELD_ENCRYPTION_KEYS

    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS is not set"):
        current_key_id()


def test_padded_unpadded_keys_and_spaces_around_entries_are_accepted():
    with override_settings(
        FIELD_ENCRYPTION_KEYS=f" k2:{padded_key()} ,\nk1:{new_key()}\n",
        BLIND_INDEX_KEY=padded_key(),
    ):
        assert current_key_id() == "k2"
        assert decrypt(encrypt(NAME, aad=AAD), aad=AAD) == NAME
        assert len(blind_index(RIC, domain="id:RIC")) == 64


def test_keys_are_cached_until_reload_keys():
    original = django_settings.FIELD_ENCRYPTION_KEYS
    before = current_key_id()
    try:
        # Plain assignment sends no setting_changed signal, so the cache must survive it.
        django_settings.FIELD_ENCRYPTION_KEYS = f"cached:{new_key()}"
        assert current_key_id() == before
        reload_keys()
        assert current_key_id() == "cached"
    finally:
        django_settings.FIELD_ENCRYPTION_KEYS = original
        reload_keys()
    assert current_key_id() == before


def test_override_settings_reloads_keys_on_enter_and_exit():
    before = current_key_id()
    assert before != "ovr"

    with override_settings(FIELD_ENCRYPTION_KEYS=f"ovr:{new_key()}"):
        assert current_key_id() == "ovr"
    assert current_key_id() == before


def test_system_check_reports_a_bad_configuration():
    assert crypto.check_encryption_settings() == []

    with override_settings(FIELD_ENCRYPTION_KEYS=f"k1:{SHORT_KEY}"):
        errors = crypto.check_encryption_settings()
    assert [e.id for e in errors] == ["registry.crypto.E001"]
    assert "decodes to 16 bytes" in errors[0].msg


# --- Properties -----------------------------------------------------------------------------

contexts = st.text(min_size=1, max_size=60)


@given(plaintext=st.text(), aad=contexts)
def test_property_round_trip_over_arbitrary_text(plaintext, aad):
    token = encrypt(plaintext, aad=aad)

    assert TOKEN_RE.fullmatch(token)
    assert decrypt(token, aad=aad) == plaintext


@given(plaintext=st.text(), aad=contexts, other=contexts)
def test_property_a_token_only_decrypts_in_its_own_context(plaintext, aad, other):
    token = encrypt(plaintext, aad=aad)

    if other == aad:
        assert decrypt(token, aad=other) == plaintext
    else:
        with pytest.raises(CipherError):
            decrypt(token, aad=other)


domains = st.text(min_size=1, max_size=20).filter(lambda d: "\x1f" not in d)


@given(first=st.tuples(domains, st.text()), second=st.tuples(domains, st.text()))
def test_property_blind_index_separates_distinct_domain_value_pairs(first, second):
    same = blind_index(first[1], domain=first[0]) == blind_index(second[1], domain=second[0])

    assert same == (first == second)


# --- EncryptedTextField ---------------------------------------------------------------------


@pytest.fixture
def probe_models():
    """Two throw-away models in an isolated registry (no migrations, no real app models)."""
    with isolate_apps("registry"):

        class CryptoProbe(models.Model):  # noqa: DJ008
            name = EncryptedTextField()
            phone = EncryptedTextField(null=True, blank=True)

            class Meta:
                app_label = "registry"

        class OtherProbe(models.Model):  # noqa: DJ008
            name = EncryptedTextField()

            class Meta:
                app_label = "registry"

        yield CryptoProbe, OtherProbe


def test_field_context_is_model_label_and_attname(probe_models):
    probe, other = probe_models

    assert probe._meta.get_field("name").aad == "registry.cryptoprobe.name"
    assert probe._meta.get_field("phone").aad == "registry.cryptoprobe.phone"
    assert other._meta.get_field("name").aad == "registry.otherprobe.name"


def test_field_stores_a_token_and_reads_back_the_plaintext(probe_models):
    field = probe_models[0]._meta.get_field("name")

    stored = field.get_prep_value(NAME)

    assert stored != NAME
    assert NAME not in stored
    assert TOKEN_RE.fullmatch(stored)
    assert decrypt(stored, aad="registry.cryptoprobe.name") == NAME
    assert field.from_db_value(stored, None, connection) == NAME
    assert field.get_db_prep_save(NAME, connection) != stored  # fresh nonce on every save


def test_field_passes_null_through(probe_models):
    field = probe_models[0]._meta.get_field("phone")

    assert field.get_prep_value(None) is None
    assert field.from_db_value(None, None, connection) is None


def test_field_encrypts_the_empty_string_and_coerces_non_text(probe_models):
    field = probe_models[0]._meta.get_field("phone")

    empty = field.get_prep_value("")
    assert empty != ""
    assert field.from_db_value(empty, None, connection) == ""
    number = field.get_prep_value(13812345678)
    assert field.from_db_value(number, None, connection) == "13812345678"
    lazy = field.get_prep_value(lazy_str(lambda: "未知")())
    assert field.from_db_value(lazy, None, connection) == "未知"


def test_field_never_passes_a_token_looking_value_through(probe_models):
    field = probe_models[0]._meta.get_field("name")
    looks_like_a_token = encrypt(NAME, aad=field.aad)

    stored = field.get_prep_value(looks_like_a_token)

    assert stored != looks_like_a_token
    assert field.from_db_value(stored, None, connection) == looks_like_a_token


def test_token_copied_to_another_column_or_table_does_not_decrypt(probe_models):
    probe, other = probe_models
    stored = probe._meta.get_field("name").get_prep_value(NAME)

    with pytest.raises(CipherError):
        probe._meta.get_field("phone").from_db_value(stored, None, connection)
    with pytest.raises(CipherError):
        other._meta.get_field("name").from_db_value(stored, None, connection)


def test_field_not_attached_to_a_model_refuses_to_encrypt():
    with pytest.raises(FieldError, match="attached to a model"):
        EncryptedTextField().get_prep_value(NAME)


@pytest.mark.parametrize(
    "lookup",
    [
        {"name": NAME},
        {"name__exact": NAME},
        {"name__iexact": NAME},
        {"name__contains": "张"},
        {"name__icontains": "张"},
        {"name__startswith": "张"},
        {"name__in": [NAME]},
        {"name__gt": "a"},
        {"name__regex": "."},
        {"name__lower": "x"},
        {"name__lower__exact": "x"},
        {"phone": ""},
    ],
)
def test_lookups_other_than_isnull_raise(probe_models, lookup):
    probe = probe_models[0]

    with pytest.raises(FieldError, match="blind index"):
        probe.objects.filter(**lookup)


def test_isnull_and_equals_none_lookups_work(probe_models):
    probe = probe_models[0]

    is_null = str(probe.objects.filter(phone__isnull=True).query)
    where = is_null.split(" WHERE ")[1]
    assert where == '"registry_cryptoprobe"."phone" IS NULL'
    assert str(probe.objects.filter(phone=None).query) == is_null
    assert str(probe.objects.exclude(phone=None).query).endswith(f" WHERE NOT ({where})")


def test_field_deconstructs_for_migrations(probe_models):
    field = probe_models[0]._meta.get_field("phone")

    name, path, args, kwargs = field.deconstruct()

    assert (name, path, args) == ("phone", "registry.fields.EncryptedTextField", [])
    assert kwargs == {"null": True, "blank": True}
    rebuilt = EncryptedTextField(*args, **kwargs)
    assert (rebuilt.null, rebuilt.blank) == (True, True)
    source, imports = MigrationWriter.serialize(field)
    assert source == "registry.fields.EncryptedTextField(blank=True, null=True)"
    assert imports == {"import registry.fields"}


def test_field_checks_refuse_unique_and_db_default():
    with isolate_apps("registry"):

        class BadProbe(models.Model):  # noqa: DJ008
            plain = EncryptedTextField()
            unique = EncryptedTextField(unique=True)
            defaulted = EncryptedTextField(db_default="x")
            indexed = EncryptedTextField(db_index=True)

            class Meta:
                app_label = "registry"

        def ids(field_name):
            return [m.id for m in BadProbe._meta.get_field(field_name).check()]

        assert ids("plain") == []
        assert ids("unique") == ["registry.crypto.E002"]
        assert ids("defaulted") == ["registry.crypto.E003"]
        assert ids("indexed") == ["registry.crypto.W001"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_database_holds_only_tokens_and_the_orm_sees_plaintext(probe_models):
    probe, _ = probe_models
    table = connection.ops.quote_name(probe._meta.db_table)
    with connection.schema_editor() as editor:
        editor.create_model(probe)
    try:
        row = probe.objects.create(name=NAME, phone="13812345678")
        probe.objects.create(name=RIC)

        with connection.cursor() as cursor:
            cursor.execute(f"SELECT name, phone FROM {table} ORDER BY id")
            raw = cursor.fetchall()
        assert raw[1][1] is None
        for value in (raw[0][0], raw[0][1], raw[1][0]):
            assert TOKEN_RE.fullmatch(value)
        dump = repr(raw)
        assert NAME not in dump and "13812345678" not in dump and RIC not in dump

        fetched = probe.objects.get(pk=row.pk)
        assert (fetched.name, fetched.phone) == (NAME, "13812345678")
        assert list(probe.objects.order_by("id").values_list("name", flat=True)) == [NAME, RIC]
        assert probe.objects.filter(phone__isnull=True).get().name == RIC

        fetched.phone = "13900000000"
        probe.objects.bulk_update([fetched], ["phone"])
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT phone FROM {table} WHERE id = %s", [row.pk])
            (phone_token,) = cursor.fetchone()
        assert "13900000000" not in phone_token
        assert probe.objects.get(pk=row.pk).phone == "13900000000"

        # A token moved into another column is refused on read.
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET phone = name WHERE id = %s", [row.pk])
        with pytest.raises(CipherError):
            probe.objects.get(pk=row.pk)
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(probe)
