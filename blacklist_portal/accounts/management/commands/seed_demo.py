"""Demo institutions and one user per role. Idempotent: running it again changes nothing
and prints the same logins (TOTP secrets included)."""

import base64

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from blacklist_portal.accounts.models import Institution, User
from blacklist_portal.accounts.roles import ROLES_REQUIRING_2FA, Role

DEMO_PASSWORD = "Demo-2026-portal"

INSTITUTIONS = [
    # (key, name, kind, region, uscc)
    ("operator", "小额贷款黑名单平台运营中心", Institution.Kind.OPERATOR, "北京市", "91110000MA01DEMO0X"),
    ("regulator", "地方金融监督管理局", Institution.Kind.REGULATOR, "北京市", "11110000MB0DEMO01X"),
    ("lender_a", "北京示例小额贷款有限公司", Institution.Kind.LENDER, "北京市", "91110105MA0DEMOA1X"),
    ("lender_b", "上海示范小额贷款股份有限公司", Institution.Kind.LENDER, "上海市", "91310000MA0DEMOB2X"),
    ("lender_c", "深圳样例网络小额贷款有限公司", Institution.Kind.LENDER, "广东省", "91440300MA0DEMOC3X"),
]

USERS = [
    # (username, full name, institution key, role)
    ("platform_admin", "平台管理员", "operator", Role.PLATFORM_ADMIN),
    ("reviewer", "审核员 王芳", "operator", Role.REVIEW_OFFICER),
    ("senior_reviewer", "复核员 李强", "operator", Role.SENIOR_REVIEW_OFFICER),
    ("counter", "柜台查询员 赵敏", "operator", Role.COUNTER_CLERK),
    ("regulator", "监管人员 陈静", "regulator", Role.REGULATOR),
    ("lender_a_staff", "业务员 张伟", "lender_a", Role.LENDER_STAFF),
    ("lender_a_admin", "管理员 刘洋", "lender_a", Role.LENDER_ADMIN),
    ("lender_b_staff", "业务员 杨光", "lender_b", Role.LENDER_STAFF),
    ("lender_b_admin", "管理员 黄磊", "lender_b", Role.LENDER_ADMIN),
    ("lender_c_staff", "业务员 周婷", "lender_c", Role.LENDER_STAFF),
    ("lender_c_admin", "管理员 吴昊", "lender_c", Role.LENDER_ADMIN),
]


class Command(BaseCommand):
    help = "Load demo institutions and users (idempotent) and print their logins."

    def add_arguments(self, parser):
        parser.add_argument("--quiet", action="store_true", help="Do not print the logins.")

    def handle(self, *args, quiet=False, **options):
        if not settings.PORTAL_DEMO_DATA_ALLOWED:
            raise CommandError("Demo data is disabled in these settings (production).")
        rows = self._seed()
        from registry.demo import seed_registry_demo

        seed_registry_demo(reviewer=User.objects.get(username="reviewer"))
        from billing.demo import seed_billing_demo

        seed_billing_demo()
        if quiet:
            return
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD})\n")
        self.stdout.write(f"{'role':<24}{'username':<18}{'TOTP secret (base32)'}")
        for username, role, secret in rows:
            self.stdout.write(f"{role.label!s:<24}{username:<18}{secret or '-'}")
        self.stdout.write(
            "\nTOTP: add the secret to any authenticator app, or print the current code with "
            "`make totp USER=<username>`.\n"
        )

    @transaction.atomic
    def _seed(self):
        institutions = {}
        for key, name, kind, region, uscc in INSTITUTIONS:
            inst, _ = Institution.objects.get_or_create(
                uscc=uscc, defaults={"name": name, "kind": kind, "region": region}
            )
            institutions[key] = inst
        rows = []
        for username, full_name, inst_key, role in USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User(
                    username=username,
                    full_name=full_name,
                    email=f"{username}@demo.invalid",
                    institution=institutions[inst_key],
                )
                user.set_password(DEMO_PASSWORD)
                user.save()
                user.groups.add(Group.objects.get(name=role.value))
            secret = None
            if role in ROLES_REQUIRING_2FA:
                device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
                if device is None:
                    device = TOTPDevice.objects.create(user=user, name="demo", confirmed=True)
                secret = base64.b32encode(device.bin_key).decode().rstrip("=")
            rows.append((username, role, secret))
        return rows
