from django.core.management.base import BaseCommand, CommandError

from blacklist_portal.audit.services import audit_verify_chain


class Command(BaseCommand):
    help = "Verify the audit log's hash chain and print its head hash."

    def handle(self, *args, **options):
        report = audit_verify_chain()
        if not report.ok:
            raise CommandError(
                f"Audit chain BROKEN at seq {report.broken_at}: {report.reason} "
                f"({report.count} events verified before it; last good hash {report.head_hash})"
            )
        self.stdout.write(f"Audit chain OK: {report.count} events, head hash {report.head_hash}")
