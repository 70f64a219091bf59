import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse

from blacklist_portal.accounts.models import User

PASSWORD = "Lamp-orbit-2931"  # conftest.PASSWORD


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("password", "password_too_short"),
        ("short1", "password_too_short"),
        ("123456789012", "password_entirely_numeric"),
        ("abcdefghijkl", "password_too_simple"),
        ("password1234", "password_too_common"),
    ],
)
def test_weak_passwords_are_rejected(password, code):
    with pytest.raises(ValidationError) as excinfo:
        validate_password(password)

    assert code in {e.code for e in excinfo.value.error_list}


def test_a_password_like_the_username_is_rejected(lender_staff):
    lender_staff.username = "zhangwei.lender"

    with pytest.raises(ValidationError) as excinfo:
        validate_password("zhangwei.lender1", user=lender_staff)

    assert "password_too_similar" in {e.code for e in excinfo.value.error_list}


def test_a_long_mixed_password_is_accepted(lender_staff):
    assert validate_password("Tea-kettle-river-58", user=lender_staff) is None


def test_password_change_refuses_a_weak_password_next_to_the_field(client, login, lender_staff):
    login(client, lender_staff)

    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "abcdefghijkl",
            "new_password2": "abcdefghijkl",
        },
    )

    assert response.status_code == 200
    assert 'id="id_new_password2_error"' in response.content.decode()
    lender_staff.refresh_from_db()
    assert lender_staff.check_password(PASSWORD)


def test_password_change_keeps_the_user_signed_in(client, login, lender_staff):
    login(client, lender_staff)

    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "Tea-kettle-river-58",
            "new_password2": "Tea-kettle-river-58",
        },
    )

    assert response["Location"] == reverse("accounts:home")
    assert User.objects.get(pk=lender_staff.pk).check_password("Tea-kettle-river-58")
    assert client.get(reverse("accounts:home")).status_code == 302
    assert client.session["_auth_user_id"] == str(lender_staff.pk)
