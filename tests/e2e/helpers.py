"""What the browser journeys share: the browser's launch options, the people's documents, a
`Person` at a browser (sign in, go, submit, type, screenshot) that checks the form labels of
every page it reaches, and database set-up through the services (what happened before the
journey starts).

Playwright is imported lazily so that this module, and the test modules importing it, load
(and are then skipped by conftest.py) where Playwright is not installed.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.utils import timezone, translation

CHROMIUM = "/usr/bin/chromium"
# Chromium draws its own controls (date fields, "choose file") in the language of its
# environment: Chinese, like the users' PCs (needs Debian's chromium-l10n; English without).
BROWSER_ENV = {"LANGUAGE": "zh_CN:zh"}
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The people and their documents. ID numbers carry a correct check character.
ZHANG = ("11010519491231002X", "张三")
LI = ("110101199003077571", "李四")
WANG = ("310101198507150018", "王五")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TODAY = timezone.localdate


def with_wrong_check_character(ric: str) -> str:
    """The ID number a person types with the last character wrong."""
    return ric[:-1] + ("1" if ric[-1] != "1" else "2")


def word_document() -> bytes:
    """A .docx (a ZIP archive): what people upload when a PDF is asked for."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def upload(name: str, content: bytes, mime: str = "application/pdf") -> dict:
    """A file for Playwright's set_input_files (no file dialog, no click)."""
    return {"name": name, "mimeType": mime, "buffer": content}


def zh(text: str) -> str:
    """The text as the Chinese (default) page shows it."""
    with translation.override("zh-hans"):
        return translation.gettext(text)


# --- The browser ------------------------------------------------------------------------------

# Every visible input, select and textarea needs a label: a <label> (for= or wrapping), an
# aria-label or an aria-labelledby with text. Returns how many were checked and the culprits.
_LABEL_CHECK = """() => {
  const skip = new Set(["hidden", "submit", "button", "reset", "image"]);
  const text = (nodes) => nodes.map((n) => (n.innerText || n.textContent || "").trim()).join(" ").trim();
  let count = 0;
  const unlabelled = [];
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.tagName === "INPUT" && skip.has((el.getAttribute("type") || "text").toLowerCase())) continue;
    const style = getComputedStyle(el);
    if (!el.getClientRects().length || style.visibility === "hidden") continue;
    count += 1;
    const byLabel = text(Array.from(el.labels || []));
    const byAria = (el.getAttribute("aria-label") || "").trim();
    const ids = (el.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean);
    const byLabelledby = text(ids.map((id) => document.getElementById(id)).filter(Boolean));
    if (!byLabel && !byAria && !byLabelledby) {
      unlabelled.push(`<${el.tagName.toLowerCase()} name="${el.name || ""}" id="${el.id || ""}">`);
    }
  }
  return {count, unlabelled};
}"""


@dataclass
class Shots:
    """Numbered screenshots of one journey: 01-login-zh.png, 02-…; shared by every person of
    the journey so that the numbers follow the story."""

    folder: Path
    taken: list[str] = field(default_factory=list)

    def path(self, name: str, lang: str) -> Path:
        filename = f"{len(self.taken) + 1:02d}-{name}-{lang}.png"
        self.taken.append(filename)
        return self.folder / filename


@dataclass
class LabelCheck:
    url: str
    controls: int


class Person:
    """One person at their own browser (a Playwright context). Every way of reaching a page
    (goto, submit, follow, keyboard Enter) waits for it and checks its form labels, so no page
    of a journey escapes the check."""

    def __init__(self, context, base_url: str, shots: Shots):
        self.context = context
        self.page = context.new_page()
        self.base_url = base_url.rstrip("/")
        self.shots = shots
        self.checked: list[LabelCheck] = []
        self._cdp = None

    # -- where we are

    @property
    def lang(self) -> str:
        lang = (self.page.locator("html").get_attribute("lang") or "zh").lower()
        return "zh" if lang.startswith("zh") else lang

    @property
    def path(self) -> str:
        """Path and query of the page, without the #fragment the skip link adds."""
        return self.page.url.removeprefix(self.base_url).split("#")[0]

    def main_text(self) -> str:
        return self.page.locator("body").inner_text()

    # -- getting to pages

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)
        self._arrived()

    def reload(self) -> None:
        self.page.reload()
        self._arrived()

    def back(self) -> None:
        self.page.go_back()
        self._arrived()

    def submit(self, locator) -> None:
        """Click a submit button (or link) and wait for the page it leads to."""
        with self.page.expect_navigation():
            locator.click()
        self._arrived()

    follow = submit

    def press_and_arrive(self, key: str = "Enter") -> None:
        """Keyboard only: press the key on whatever has the focus and wait for the new page."""
        with self.page.expect_navigation():
            self.page.keyboard.press(key)
        self._arrived()

    def access_key_and_arrive(self, key: str) -> None:
        """Alt+key, the way Chromium on Linux receives it from a keyboard, and wait for the page
        the access key leads to. (Playwright's own "Alt+1" sends the key without its text, so
        the page's accesskey never fires; the DevTools protocol sends both.)"""
        if self._cdp is None:
            self._cdp = self.context.new_cdp_session(self.page)
        event = {
            "modifiers": 1,  # Alt
            "key": key,
            "code": f"Digit{key}" if key.isdigit() else f"Key{key.upper()}",
            "windowsVirtualKeyCode": ord(key.upper()),
        }
        with self.page.expect_navigation():
            self._cdp.send(
                "Input.dispatchKeyEvent",
                {**event, "type": "keyDown", "text": key, "unmodifiedText": key},
            )
            self._cdp.send("Input.dispatchKeyEvent", {**event, "type": "keyUp"})
        self._arrived()

    def _arrived(self) -> None:
        self.page.wait_for_load_state("load")
        assert "Server Error" not in self.page.title(), f"server error at {self.page.url}"
        self.check_labels()

    def check_labels(self) -> None:
        result = self.page.evaluate(_LABEL_CHECK)
        assert result["unlabelled"] == [], (
            f"form controls without a label on {self.path}: {result['unlabelled']}"
        )
        self.checked.append(LabelCheck(self.path, result["count"]))

    def shot(self, name: str) -> Path:
        path = self.shots.path(name, self.lang)
        self.page.screenshot(path=str(path), full_page=True)
        return path

    # -- forms

    def main_form_button(self, text: str | None = None):
        """A submit button inside <main> (the header has the language and sign-out buttons)."""
        buttons = self.page.locator("main button[type=submit]")
        return buttons.filter(has_text=text) if text else buttons

    def field_error(self, name: str) -> str:
        """The error list rendered right beneath a field (forms/field.html), as text."""
        errors = self.page.locator(f"#id_{name}_error")
        return errors.inner_text() if errors.count() else ""

    # -- signing in

    def sign_in(self, user, password: str, *, shot_as: str | None = None) -> None:
        self.goto("/accounts/login/")
        self.page.fill("#id_username", user.username)
        self.page.fill("#id_password", password)
        if shot_as:
            self.shot(shot_as)
        self.submit(self.main_form_button())
        if "/accounts/two-factor/" in self.page.url:
            self.page.fill("#id_token", next_totp(user))
            if shot_as:
                self.shot(f"{shot_as}-two-factor")
            self.submit(self.main_form_button())
        assert "/accounts/login/" not in self.page.url, self.main_text()
        assert "/accounts/two-factor/" not in self.page.url, self.main_text()

    def sign_out(self) -> None:
        self.submit(self.page.locator("header form[action$='/accounts/logout/'] button"))

    def switch_language(self, code: str) -> None:
        """The header's language button ("en", "zh-hans"); the page comes back in it."""
        self.submit(self.page.locator(f"header form.lang-switch button[value='{code}']"))

    # -- keyboard

    def focused(self) -> dict:
        return self.page.evaluate(
            "() => { const e = document.activeElement;"
            " return {tag: e.tagName.toLowerCase(), id: e.id || '', name: e.getAttribute('name') || '',"
            " href: e.getAttribute('href') || '', text: (e.innerText || '').trim()}; }"
        )

    def tab_to(self, predicate, *, limit: int = 40, describe: str = "") -> list[dict]:
        """Press Tab until `predicate(focused)` holds; returns the stops on the way."""
        stops = []
        for _ in range(limit):
            self.page.keyboard.press("Tab")
            now = self.focused()
            stops.append(now)
            if predicate(now):
                return stops
        raise AssertionError(f"Tab never reached {describe or predicate}: {stops}")

    def tab_to_field(self, name: str) -> list[dict]:
        return self.tab_to(lambda f: f["name"] == name, describe=f"field {name!r}")


def next_totp(user) -> str:
    """The code the user's authenticator shows, moved one period on if the current one was
    used already (a TOTP code is accepted once)."""
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user=user, confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    ahead = 0 if device.last_t is None else device.last_t - totp.t() + 1
    if ahead > device.tolerance:
        # Both this period's and the next one's codes are spent: wait for a fresh period.
        time.sleep(device.step - (time.time() - device.t0) % device.step + 0.5)
        return next_totp(user)
    totp.time = totp.time + max(ahead, 0) * device.step
    return f"{totp.token():0{device.digits}d}"


# --- What happened before the journey (through the services) --------------------------------


def demo_prices():
    """billing/demo.py's price list, in force since last year."""
    from billing.demo import DEMO_PRICES
    from billing.models import PriceRule, PriceSchedule

    start = timezone.now().replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    schedule = PriceSchedule.objects.create(
        name="标准价目", effective_from=start - timedelta(days=365)
    )
    PriceRule.objects.bulk_create(
        PriceRule(schedule=schedule, channel=c, purpose=p, hit=h, tier_from=t, price=Decimal(x))
        for c, p, h, t, x in DEMO_PRICES
    )
    return schedule


def _pdf_upload(name: str = "scan.pdf"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from blacklist_portal.uploads import check_upload

    f = SimpleUploadedFile(name, PDF, content_type="application/pdf")
    return f, check_upload(f)


def reported_entry(staff, member, person=ZHANG, *, contract: str, approve_by=None, **overrides):
    """An overdue entry reported with PDF evidence; approved if `approve_by` is given."""
    from registry import services
    from registry.importing.rows import parse_row

    today = TODAY()
    values = {
        "subject_type": "person",
        "id_type": "RIC",
        "id_number": person[0],
        "name": person[1],
        "phone": "13912345678",
        "role": "borrower",
        "contract_no": contract,
        "category": "overdue",
        "loan_amount": "8000.00",
        "overdue_amount": "3000.00",
        "delinquent_since": (today - timedelta(days=120)).isoformat(),
        "notified_on": (today - timedelta(days=100)).isoformat(),
        "notice_method": "sms",
    }
    values.update(overrides)
    result = parse_row(values, today=today)
    assert result.ok, result.errors
    entry, _outcome = services.entry_report(
        actor=staff, member=member, row=result.data, evidence=[_pdf_upload("contract.pdf")]
    )
    if approve_by is not None:
        entry = services.entry_approve(entry=entry, actor=approve_by)
    return entry


def consent(
    staff,
    person=ZHANG,
    *,
    purposes=("loan_approval", "post_loan"),
    signed_days_ago=3,
    valid_days=180,
):
    from billing import services

    f, checked = _pdf_upload("consent.pdf")
    today = TODAY()
    signed = today - timedelta(days=signed_days_ago)
    return services.consent_upload(
        actor=staff,
        member=staff.institution,
        f=f,
        checked=checked,
        id_type="RIC",
        id_number=person[0],
        name=person[1],
        purposes=list(purposes),
        signed_on=signed,
        expires_on=signed + timedelta(days=valid_days),
    )


def loan_approval_query(staff, person=ZHANG, *, consent_obj=None, amount="20000"):
    """A member's loan-approval query through the web channel, with its own consent."""
    from billing import services
    from billing.choices import Channel

    consent_obj = consent_obj or consent(staff, person)
    return services.query_run(
        member=staff.institution,
        channel=Channel.WEB,
        user=staff,
        req=services.QueryRequest(
            id_type="RIC",
            id_number=person[0],
            name=person[1],
            purpose="loan_approval",
            consent_id=consent_obj.pk,
            application=services.Application(
                amount=Decimal(amount), loan_type="consumer", applied_on=TODAY()
            ),
        ),
    )


def counter_dispute(clerk, entry, applicant: str, *, days_ago: int, claim="wrong_amount"):
    """A correction request taken at the counter `days_ago` days ago."""
    from disputes import services

    return services.dispute_receive(
        actor=clerk,
        subject=entry.subject,
        entry=entry,
        claim_type=claim,
        description="借款人称逾期金额有误，已部分还款。",
        applicant_name=applicant,
        applicant_contact="13800001111",
        channel="counter",
        attachments=[_pdf_upload("receipt.pdf")],
        now=timezone.now() - timedelta(days=days_ago),
    )


def texts(locator) -> list[str]:
    return [re.sub(r"\s+", " ", t).strip() for t in locator.all_inner_texts()]
