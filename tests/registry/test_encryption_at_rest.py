"""Personal identifiers at rest: encrypted tokens and a blind index in the database, masked on
screen, never in clear in a dump; keys rotate with a resumable command (issue 3, item 2)."""

import dataclasses
import datetime
import secrets
from unittest import mock

import pytest
from django.core.exceptions import FieldError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone, translation

from blacklist_portal.uploads import SPREADSHEET_KINDS, check_upload
from registry import bulk, crypto, services
from registry.importing.rows import parse_row, row_fingerprint
from registry.models import Entry, ImportBatch, Subject

TODAY = timezone.localdate()

# Three people, each reaching the database by another path. The first is reported with its
# legacy 15-digit number, the second with a lower-case x.
LEGACY_15 = "110105491231002"
RIC_1 = "11010519491231002X"
RIC_2 = "31010419750612009X"
RIC_3 = "44030519880214007X"
NAME_1, NAME_2, NAME_3 = "张三丰", "欧阳娜娜", "买买提·艾力"
PHONE_1, PHONE_2, PHONE_3 = "13812345678", "15900001111", "18677778888"


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def row_values(id_number, name, phone, contract_no, **overrides) -> dict:
    values = {
        "subject_type": "person",
        "id_type": "RIC",
        "id_number": id_number,
        "name": name,
        "phone": phone,
        "role": "borrower",
        "contract_no": contract_no,
        "category": "court_judgment",
        "loan_amount": "5000.00",
        "court_name": "北京市海淀区人民法院",
        "case_number": "(2022)京0108执77号",
        "judgment_date": "2022-06-01",
        "notified_on": "2022-07-01",
        "notice_method": "letter",
    }
    values.update(overrides)
    return values


def report(actor, member, **values):
    result = parse_row(row_values(**values), today=TODAY)
    assert result.ok, result.errors
    entry, _ = services.entry_report(actor=actor, member=member, row=result.data)
    return entry


def raw_subject_columns() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, id_number, name, phone FROM registry_subject ORDER BY id")
        return cursor.fetchall()


def dump_database() -> str:
    """Every value of every table, as text: what a leaked database dump would show."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, memoryview):
                        value = bytes(value)
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", errors="replace")
                    chunks.append(str(value))
    return "\n".join(chunks)


# --- The dump ----------------------------------------------------------------------------------


def test_a_database_dump_contains_no_identifier_in_clear(
    client, login, lender_staff, lender_a, review_officer, django_capture_on_commit_callbacks
):
    # 1. the web form, with the legacy 15-digit number
    login(client, lender_staff)
    response = client.post(
        reverse("registry:entry_create"),
        row_values(LEGACY_15, NAME_1, PHONE_1, "WEB-1"),
    )
    assert response.status_code == 302
    # 2. the service, with a lower-case x and spaces
    entry_2 = report(
        lender_staff,
        lender_a,
        id_number=" " + RIC_2[:-1] + "x ",
        name=NAME_2,
        phone=PHONE_2,
        contract_no="SVC-1",
    )
    services.entry_approve(entry=entry_2, actor=review_officer)
    # 3. a bulk file
    header = ",".join(row_values("", "", "", "").keys())
    line = ",".join(row_values(RIC_3, NAME_3, PHONE_3, "BULK-1").values())
    f = SimpleUploadedFile("batch.csv", f"{header}\n{line}\n".encode())
    with django_capture_on_commit_callbacks(execute=True):
        batch = bulk.batch_create(
            actor=lender_staff,
            member=lender_a,
            f=f,
            checked=check_upload(f, allowed=SPREADSHEET_KINDS),
        )
    with django_capture_on_commit_callbacks(execute=True):
        bulk.batch_start_load(batch=batch, actor=lender_staff, mode=ImportBatch.Mode.ALL_OR_NOTHING)
    # Reading and revealing leave audit rows too.
    client.logout()
    login(client, review_officer)
    for entry in Entry.objects.all():
        client.get(reverse("registry:entry_detail", args=[entry.pk]))
        client.post(reverse("registry:subject_reveal", args=[entry.subject_id]))
    assert Subject.objects.count() == 3
    assert Entry.objects.count() == 3

    dump = dump_database()

    forbidden = [
        RIC_1,
        RIC_1.lower(),
        LEGACY_15,
        RIC_2,
        RIC_2.lower(),
        RIC_3,
        RIC_3.lower(),
        NAME_1,
        NAME_2,
        NAME_3,
        "买买提",
        "艾力",
        PHONE_1,
        PHONE_2,
        PHONE_3,
    ]
    leaked = [value for value in forbidden if value in dump]
    assert leaked == []
    # The masked forms are what the database may show.
    for masked in ("110105********002X", "310104********009X", "张**", "欧***", "138****5678"):
        assert masked in dump


def test_identifiers_are_stored_as_authenticated_tokens(lender_staff, lender_a):
    report(lender_staff, lender_a, id_number=RIC_1, name=NAME_1, phone=PHONE_1, contract_no="C-1")

    [(pk, id_token, name_token, phone_token)] = raw_subject_columns()

    kid = crypto.current_key_id()
    for token in (id_token, name_token, phone_token):
        assert token.startswith(f"v1.{kid}.")
    subject = Subject.objects.get(pk=pk)
    assert (subject.id_number, subject.name, subject.phone) == (RIC_1, NAME_1, PHONE_1)
    assert (subject.id_masked, subject.name_masked, subject.phone_masked) == (
        "110105********002X",
        "张**",
        "138****5678",
    )
    # A token copied to another column does not decrypt there.
    with pytest.raises(crypto.CipherError):
        crypto.decrypt(id_token, aad="registry.subject.name")


def test_subjects_are_found_by_blind_index_not_by_the_encrypted_column(lender_staff, lender_a):
    entry = report(
        lender_staff, lender_a, id_number=RIC_1, name=NAME_1, phone=PHONE_1, contract_no="C-1"
    )

    assert services.subject_find(id_type="RIC", id_number=LEGACY_15) == entry.subject
    assert services.subject_find(id_type="RIC", id_number=RIC_1.lower()) == entry.subject
    assert services.subject_find(id_type="RIC", id_number=RIC_2) is None
    assert entry.subject.id_index == crypto.blind_index(RIC_1, domain="id:RIC")
    assert RIC_1 not in entry.subject.id_index
    with pytest.raises(FieldError):
        Subject.objects.filter(id_number=RIC_1).exists()


def test_history_of_a_subject_keeps_only_masked_copies(lender_staff, lender_a):
    entry = report(
        lender_staff, lender_a, id_number=RIC_1, name=NAME_1, phone=PHONE_1, contract_no="C-1"
    )

    record = entry.subject.history.get()
    assert record.id_masked == "110105********002X"
    assert not hasattr(record, "id_number")
    assert not hasattr(record, "name")


def test_the_stored_fingerprint_does_not_reveal_the_id_number(lender_staff, lender_a):
    entry = report(
        lender_staff, lender_a, id_number=RIC_1, name=NAME_1, phone="", contract_no="C-1"
    )

    # What a dump shows: the masked ID number (region and the last 4), the entry's fields,
    # the fingerprint. Knowing the person's name, only the 8 digits of the birth date are
    # hidden: an unkeyed hash would give them away to anyone trying the dates around it.
    masked = entry.subject.id_masked
    known = parse_row(row_values(RIC_1, NAME_1, "", "C-1"), today=TODAY).data
    assert entry.fingerprint != row_fingerprint(known)
    recovered = None
    day = datetime.date(1940, 1, 1)
    while day <= datetime.date(1960, 1, 1) and recovered is None:
        guess = masked[:6] + day.strftime("%Y%m%d") + masked[-4:]
        if row_fingerprint(dataclasses.replace(known, id_number=guess)) == entry.fingerprint:
            recovered = guess
        day += datetime.timedelta(days=1)

    assert recovered is None


# --- Key rotation ------------------------------------------------------------------------------


OLD_KEY = secrets.token_urlsafe(32)
NEW_KEY = secrets.token_urlsafe(32)
PEOPLE = [
    (RIC_1, NAME_1, PHONE_1),
    (RIC_2, NAME_2, PHONE_2),
    (RIC_3, NAME_3, ""),
]


@pytest.fixture
def subjects_under_old_key(db):
    with override_settings(FIELD_ENCRYPTION_KEYS=f"old:{OLD_KEY}"):
        crypto.reload_keys()
        for id_number, name, phone in PEOPLE:
            services.subject_get_or_create(
                subject_type="person", id_type="RIC", id_number=id_number, name=name, phone=phone
            )
        assert {t[1].split(".")[1] for t in raw_subject_columns()} == {"old"}
    crypto.reload_keys()


def _key_ids() -> list[set[str]]:
    return [{token.split(".")[1] for token in row[1:]} for row in raw_subject_columns()]


def _decrypted() -> list[tuple[str, str, str]]:
    return [(s.id_number, s.name, s.phone) for s in Subject.objects.order_by("pk")]


@override_settings(FIELD_ENCRYPTION_KEYS=f"new:{NEW_KEY},old:{OLD_KEY}")
def test_rotate_keys_moves_every_token_to_the_new_key(subjects_under_old_key):
    call_command("rotate_keys", stdout=mock.MagicMock())

    for row in raw_subject_columns():
        assert all(token.startswith("v1.new.") for token in row[1:])
    with override_settings(FIELD_ENCRYPTION_KEYS=f"new:{NEW_KEY}"):  # the old key retired
        assert _decrypted() == PEOPLE
        assert services.subject_find(id_type="RIC", id_number=RIC_2).name == NAME_2


@override_settings(FIELD_ENCRYPTION_KEYS=f"new:{NEW_KEY},old:{OLD_KEY}")
def test_rotating_again_changes_nothing(subjects_under_old_key):
    call_command("rotate_keys", stdout=mock.MagicMock())
    before = raw_subject_columns()

    call_command("rotate_keys", stdout=mock.MagicMock())

    assert raw_subject_columns() == before


@override_settings(FIELD_ENCRYPTION_KEYS=f"new:{NEW_KEY},old:{OLD_KEY}")
def test_an_interrupted_rotation_resumes_where_it_stopped(subjects_under_old_key):
    real = crypto.reencrypt_token
    calls = {"n": 0}

    def crash_after_first_subject(token, *, aad):
        calls["n"] += 1
        if calls["n"] > 3:  # three columns per subject: the first batch of one completes
            raise RuntimeError("worker killed")
        return real(token, aad=aad)

    with (
        mock.patch.object(crypto, "reencrypt_token", side_effect=crash_after_first_subject),
        pytest.raises(RuntimeError),
    ):
        call_command("rotate_keys", batch_size=1, stdout=mock.MagicMock())

    assert _key_ids() == [{"new"}, {"old"}, {"old"}]
    assert _decrypted() == PEOPLE

    call_command("rotate_keys", batch_size=1, stdout=mock.MagicMock())

    assert _key_ids() == [{"new"}, {"new"}, {"new"}]
    with override_settings(FIELD_ENCRYPTION_KEYS=f"new:{NEW_KEY}"):
        assert _decrypted() == PEOPLE
