"""Fixed characters for every test: one user per role, and an outsider from another lender.

lender_a is "our" institution: `lender_staff` (alice) and `lender_admin` (anna) work there.
lender_b is the outsider's: `other_lender_staff` (charlie) and `other_lender_admin` (chris).
The operator employs the review officers, the counter clerk and the platform admin; the
regulator has its own institution.

Test modules have unique basenames across tests/ (no __init__.py files): with pytest's default
import mode a `tests/registry/__init__.py` would shadow the real `registry` app.
"""

import pytest
from django.contrib.auth.models import Group
from django.utils import translation
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from blacklist_portal.accounts.models import Institution, User
from blacklist_portal.accounts.roles import ROLES_REQUIRING_2FA, Role

# Passes every validator in settings.AUTH_PASSWORD_VALIDATORS.
PASSWORD = "Lamp-orbit-2931"


def make_institution(name: str, kind: str, uscc: str, region: str = "北京市") -> Institution:
    return Institution.objects.create(name=name, kind=kind, uscc=uscc, region=region)


def make_user(username: str, institution: Institution, *roles: Role, two_factor=None) -> User:
    """A user with the given roles and PASSWORD. Users whose role requires two-factor get a
    confirmed TOTP device unless two_factor=False."""
    user = User(
        username=username,
        full_name=username.title(),
        email=f"{username}@example.com",
        institution=institution,
    )
    user.set_password(PASSWORD)
    user.save()
    user.groups.set(Group.objects.filter(name__in=[r.value for r in roles]))
    if two_factor is None:
        two_factor = any(r in ROLES_REQUIRING_2FA for r in roles)
    if two_factor:
        TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user


def totp_code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows now (or `steps_ahead` periods later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def zh(text) -> str:
    """`text` as a page shows it by default (zh-hans). Tests that look for a message in a page
    use this, so they hold whether or not the message has been translated yet."""
    with translation.override("zh-hans"):
        return translation.gettext(text) if isinstance(text, str) else str(text)


def sign_in(client, user: User) -> None:
    """Sign the user in; users whose role requires it are also two-factor verified."""
    client.force_login(user)
    if user.requires_two_factor:
        device = TOTPDevice.objects.get(user=user, confirmed=True)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()


# The helpers are also offered as fixtures, so that test modules need no imports from here.
@pytest.fixture
def login():
    """login(client, user): signed in, and two-factor verified where the role requires it."""
    return sign_in


@pytest.fixture
def totp():
    return totp_code


@pytest.fixture(name="zh")
def zh_fixture():
    """zh(text): the text as the default (Chinese) page shows it."""
    return zh


@pytest.fixture
def user_factory(lender_a):
    def factory(username: str, *roles: Role, institution=None, **kwargs) -> User:
        return make_user(username, institution or lender_a, *roles, **kwargs)

    return factory


# --- Institutions ----------------------------------------------------------------------------


@pytest.fixture
def lender_a(db):
    return make_institution("甲小额贷款有限公司", Institution.Kind.LENDER, "91110105MA0TESTA1X")


@pytest.fixture
def lender_b(db):
    return make_institution(
        "乙小额贷款有限公司", Institution.Kind.LENDER, "91310000MA0TESTB2X", region="上海市"
    )


@pytest.fixture
def operator(db):
    return make_institution("黑名单平台运营中心", Institution.Kind.OPERATOR, "91110000MA0TESTOPX")


@pytest.fixture
def regulator_inst(db):
    return make_institution("地方金融监督管理局", Institution.Kind.REGULATOR, "11110000MB0TESTRGX")


# --- One user per role -----------------------------------------------------------------------


@pytest.fixture
def lender_staff(lender_a):
    return make_user("alice", lender_a, Role.LENDER_STAFF)


@pytest.fixture
def lender_admin(lender_a):
    return make_user("anna", lender_a, Role.LENDER_ADMIN)


@pytest.fixture
def other_lender_staff(lender_b):
    """The outsider: staff of another lender."""
    return make_user("charlie", lender_b, Role.LENDER_STAFF)


@pytest.fixture
def other_lender_admin(lender_b):
    """The outsider's administrator."""
    return make_user("chris", lender_b, Role.LENDER_ADMIN)


@pytest.fixture
def review_officer(operator):
    return make_user("rita", operator, Role.REVIEW_OFFICER)


@pytest.fixture
def senior_review_officer(operator):
    return make_user("sam", operator, Role.SENIOR_REVIEW_OFFICER)


@pytest.fixture
def counter_clerk(operator):
    return make_user("cora", operator, Role.COUNTER_CLERK)


@pytest.fixture
def regulator(regulator_inst):
    return make_user("reggie", regulator_inst, Role.REGULATOR)


@pytest.fixture
def platform_admin(operator):
    return make_user("pat", operator, Role.PLATFORM_ADMIN)


def pytest_collection_modifyitems(config, items):
    """Every transactional test must also use serialized_rollback=True. A transactional test
    without it re-creates content types when its database is flushed, and the next serialized
    test then fails to restore them (duplicate key) — an order-dependent failure."""
    for item in items:
        for marker in item.iter_markers("django_db"):
            if marker.kwargs.get("transaction") and not marker.kwargs.get("serialized_rollback"):
                raise pytest.UsageError(
                    f"{item.nodeid}: use @pytest.mark.django_db(transaction=True, serialized_rollback=True)"
                )
