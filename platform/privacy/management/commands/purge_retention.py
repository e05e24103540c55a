from django.core.management.base import BaseCommand

from ...retention import purge


class Command(BaseCommand):
    help = "Delete what the retention rules (RETENTION_* settings) say is due, now."

    def handle(self, *args, **options):
        for what, count in purge().items():
            self.stdout.write(f"{what}: {count}")
