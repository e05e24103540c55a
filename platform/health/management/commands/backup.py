"""manage.py backup: one backup into BACKUP_DIR, then the rotation (docs/backup.md)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from health.backup import BackupError, make_backup, rotate


class Command(BaseCommand):
    help = "Back up the database, the spool folders and Orthanc's instances; then rotate."

    def add_arguments(self, parser):
        parser.add_argument("--dir", type=Path, help="instead of BACKUP_DIR")
        parser.add_argument("--no-rotate", action="store_true", help="keep every earlier backup")

    def handle(self, *args, **options):
        try:
            folder = make_backup(options["dir"])
            removed = [] if options["no_rotate"] else rotate(options["dir"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(str(folder))
        for path in removed:
            self.stderr.write(f"rotated out: {path.name}")
