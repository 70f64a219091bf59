"""Consents (条例 Art. 18): upload of the borrower's signed authorisation, checked by content and
size, stored privately with its SHA-256; downloads only by the owning member, review officers
and regulators, every download audit-logged. A rejected upload stores nothing."""

import datetime
import hashlib
import os
import struct
import zlib
from html.parser import HTMLParser

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.models import Consent
from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.uploads import check_upload
from registry.models import Subject

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
HTML_AS_PDF = b"<!DOCTYPE html><html><head><title>x</title></head><body>signed</body></html>"
ZHANG = ("11010519491231002X", "张三")
LI = ("110101199003077571", "李四")
TODAY = timezone.localdate()


def make_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


PNG = make_png()


def stored_consent_files() -> set[str]:
    root = default_storage.path("consents")
    found = set()
    for folder, _dirs, files in os.walk(root):
        found.update(os.path.join(folder, name) for name in files)
    return found


def form_data(**overrides) -> dict:
    data = {
        "id_type": "RIC",
        "id_number": ZHANG[0],
        "name": ZHANG[1],
        "purposes": ["loan_approval", "post_loan"],
        "signed_on": (TODAY - datetime.timedelta(days=3)).isoformat(),
        "expires_on": (TODAY + datetime.timedelta(days=180)).isoformat(),
        "file": SimpleUploadedFile("授权书.pdf", PDF, content_type="application/pdf"),
    }
    data.update(overrides)
    return data


class _FieldErrors(HTMLParser):
    """Texts of the error list rendered with each field (<ul id="id_<field>_error">) and of the
    form-wide errors at the top of the form (<div class="form-errors">, keyed "__all__")."""

    def __init__(self):
        super().__init__()
        self.errors: dict[str, list[str]] = {}
        self._current = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "ul" and (attrs.get("id") or "").endswith("_error"):
            self._current = attrs["id"].removeprefix("id_").removesuffix("_error")
        elif tag == "div" and "form-errors" in (attrs.get("class") or "").split():
            self._current = "__all__"
        elif tag in ("li", "p") and self._current:
            self.errors.setdefault(self._current, []).append("")

    def handle_endtag(self, tag):
        if tag in ("ul", "div"):
            self._current = None

    def handle_data(self, data):
        if self._current and self.errors.get(self._current):
            self.errors[self._current][-1] += data


def field_errors(response) -> dict[str, list[str]]:
    parser = _FieldErrors()
    parser.feed(response.content.decode())
    return parser.errors


def upload(
    actor, member, person=ZHANG, purposes=("post_loan",), data=PDF, name="consent.pdf", **dates
):
    f = SimpleUploadedFile(name, data)
    return services.consent_upload(
        actor=actor,
        member=member,
        f=f,
        checked=check_upload(f),
        id_type="RIC",
        id_number=person[0],
        name=person[1],
        purposes=list(purposes),
        signed_on=dates.get("signed_on", TODAY - datetime.timedelta(days=1)),
        expires_on=dates.get("expires_on", TODAY + datetime.timedelta(days=365)),
    )


# --- Upload by form -----------------------------------------------------------------------------


def test_valid_consent_is_stored_privately_with_its_hash(client, login, lender_staff, lender_a):
    login(client, lender_staff)

    response = client.post(reverse("billing:consent_upload"), form_data())

    consent = Consent.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('billing:query_create')}?consent={consent.pk}"
    assert consent.member == lender_a
    assert consent.uploaded_by == lender_staff
    assert consent.subject.id_index == Subject.objects.get().id_index
    assert (
        consent.covers_loan_approval,
        consent.covers_post_loan,
        consent.covers_guarantor_check,
    ) == (
        True,
        True,
        False,
    )
    assert consent.signed_on == TODAY - datetime.timedelta(days=3)
    assert consent.expires_on == TODAY + datetime.timedelta(days=180)
    assert (consent.kind, consent.size, consent.original_name) == ("pdf", len(PDF), "授权书.pdf")
    assert consent.sha256 == hashlib.sha256(PDF).hexdigest()
    # Stored under a random name in private storage, never under the client's name.
    assert consent.file.startswith("consents/") and "授权书" not in consent.file
    with default_storage.open(consent.file, "rb") as stored:
        assert stored.read() == PDF
    event = AuditEvent.objects.get(action="consent.upload")
    assert (event.actor, event.institution, event.target_id) == (
        lender_staff,
        lender_a,
        str(consent.pk),
    )
    assert event.details["sha256"] == consent.sha256


def test_png_photo_of_a_consent_is_accepted(client, login, lender_staff):
    login(client, lender_staff)

    response = client.post(
        reverse("billing:consent_upload"), form_data(file=SimpleUploadedFile("photo.png", PNG))
    )

    assert response.status_code == 302
    assert Consent.objects.get().kind == "png"


def test_html_renamed_pdf_is_refused_next_to_the_file_field(client, login, lender_staff):
    login(client, lender_staff)
    before = stored_consent_files()

    response = client.post(
        reverse("billing:consent_upload"),
        form_data(
            file=SimpleUploadedFile("consent.pdf", HTML_AS_PDF, content_type="application/pdf")
        ),
    )

    assert response.status_code == 200
    errors = field_errors(response)
    assert list(errors) == ["file"]
    assert "HTML" in errors["file"][0]
    assert Consent.objects.count() == 0
    assert Subject.objects.count() == 0
    assert stored_consent_files() == before
    assert not AuditEvent.objects.filter(action="consent.upload").exists()


@override_settings(PORTAL_UPLOAD_MAX_BYTES=1024)
def test_oversized_consent_is_refused_with_the_limit(client, login, lender_staff):
    login(client, lender_staff)
    before = stored_consent_files()
    big = PDF[:-6] + b"%" * 2048 + b"\n%%EOF\n"

    response = client.post(
        reverse("billing:consent_upload"), form_data(file=SimpleUploadedFile("big.pdf", big))
    )

    assert response.status_code == 200
    errors = field_errors(response)
    assert list(errors) == ["file"]
    # The limit (1024 bytes) is stated in MB.
    assert "0.000977" in errors["file"][0]
    assert Consent.objects.count() == 0
    assert stored_consent_files() == before


def test_signing_date_in_the_future_is_refused(client, login, lender_staff, zh):
    login(client, lender_staff)
    before = stored_consent_files()

    response = client.post(
        reverse("billing:consent_upload"),
        form_data(signed_on=(TODAY + datetime.timedelta(days=1)).isoformat()),
    )

    assert field_errors(response) == {
        "signed_on": [zh("The signing date cannot be in the future.")]
    }
    assert Consent.objects.count() == 0
    assert stored_consent_files() == before


def test_expiry_before_signing_is_refused(client, login, lender_staff, zh):
    login(client, lender_staff)

    response = client.post(
        reverse("billing:consent_upload"),
        form_data(
            signed_on=(TODAY - datetime.timedelta(days=3)).isoformat(),
            expires_on=(TODAY - datetime.timedelta(days=4)).isoformat(),
        ),
    )

    assert field_errors(response) == {
        "expires_on": [zh("The consent cannot expire before it was signed.")]
    }
    assert Consent.objects.count() == 0


def test_id_number_with_a_wrong_check_character_is_refused(client, login, lender_staff):
    login(client, lender_staff)
    before = stored_consent_files()

    # 110101199003077571 is valid; changing the check digit breaks it.
    response = client.post(
        reverse("billing:consent_upload"), form_data(id_number="110101199003077572")
    )

    errors = field_errors(response)
    assert list(errors) == ["id_number"]
    assert errors["id_number"][0]
    assert Consent.objects.count() == 0
    assert Subject.objects.count() == 0
    assert stored_consent_files() == before


def test_consent_without_a_purpose_is_refused(client, login, lender_staff, zh):
    login(client, lender_staff)

    response = client.post(reverse("billing:consent_upload"), form_data(purposes=[]))

    assert field_errors(response) == {
        "purposes": [zh("Choose at least one purpose the borrower agreed to.")]
    }
    assert Consent.objects.count() == 0


def test_outsider_without_upload_right_cannot_reach_the_upload_form(
    client, login, other_lender_admin
):
    # A lender admin (of any institution) has no right to upload consents.
    login(client, other_lender_admin)

    assert client.get(reverse("billing:consent_upload")).status_code == 403
    assert client.post(reverse("billing:consent_upload"), form_data()).status_code == 403
    assert Consent.objects.count() == 0


def test_consent_list_shows_only_the_members_own_consents(
    client, login, lender_staff, lender_a, other_lender_staff, lender_b
):
    mine = upload(lender_staff, lender_a)
    theirs = upload(other_lender_staff, lender_b, person=LI)

    login(client, lender_staff)
    listed = list(client.get(reverse("billing:consent_list")).context["page"])
    login(client, other_lender_staff)
    listed_by_outsider = list(client.get(reverse("billing:consent_list")).context["page"])

    assert listed == [mine]
    assert listed_by_outsider == [theirs]


# --- Service rules ------------------------------------------------------------------------------


def test_service_refuses_future_signing_and_early_expiry_and_stores_nothing(lender_staff, lender_a):
    before = stored_consent_files()
    with pytest.raises(ValidationError) as exc:
        upload(
            lender_staff,
            lender_a,
            signed_on=TODAY + datetime.timedelta(days=2),
            expires_on=TODAY + datetime.timedelta(days=1),
        )
    assert set(exc.value.message_dict) == {"signed_on", "expires_on"}
    with pytest.raises(ValidationError) as exc:
        upload(lender_staff, lender_a, purposes=())
    assert set(exc.value.message_dict) == {"purposes"}
    assert Consent.objects.count() == 0
    assert Subject.objects.count() == 0
    assert stored_consent_files() == before


def test_user_without_upload_right_cannot_upload_by_service(lender_admin, lender_a):
    with pytest.raises(PermissionDenied):
        upload(lender_admin, lender_a)
    assert Consent.objects.count() == 0


# --- Download -----------------------------------------------------------------------------------


@pytest.fixture
def consent(lender_staff, lender_a) -> Consent:
    return upload(lender_staff, lender_a, name="张三授权书.pdf")


def downloads(consent):
    return AuditEvent.objects.filter(
        action="consent.download", target_type="billing.consent", target_id=str(consent.pk)
    )


@pytest.mark.parametrize("who", ["lender_staff", "review_officer", "regulator"])
def test_owner_review_officer_and_regulator_can_download_and_each_download_is_logged(
    client, login, consent, who, request
):
    user = request.getfixturevalue(who)
    login(client, user)
    url = reverse("billing:consent_download", args=[consent.pk])

    first = client.get(url)
    second = client.get(url)

    for response in (first, second):
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == PDF
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"].startswith("attachment")
        assert response["X-Content-Type-Options"] == "nosniff"
    assert [e.actor for e in downloads(consent)] == [user, user]


@pytest.mark.parametrize("who", ["other_lender_staff", "other_lender_admin", "counter_clerk"])
def test_it_checks_ownership_of_the_consent_file(client, login, consent, who, request):
    login(client, request.getfixturevalue(who))

    response = client.get(reverse("billing:consent_download", args=[consent.pk]))

    assert response.status_code == 404
    assert not downloads(consent).exists()


def test_unknown_consent_is_404(client, login, lender_staff):
    login(client, lender_staff)

    assert client.get(reverse("billing:consent_download", args=[999999])).status_code == 404


def test_anonymous_download_goes_to_login(client, consent):
    response = client.get(reverse("billing:consent_download", args=[consent.pk]))

    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]
    assert not downloads(consent).exists()
