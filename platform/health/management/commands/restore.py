"""manage.py restore <backup folder>: into this installation's (empty) database, Orthanc and
folders, after verifying every checksum (docs/backup.md). `--verify-only` checks and stops."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from health.backup import BackupError, restore_backup, verify


class Command(BaseCommand):
    help = "Restore a backup into a fresh database and a fresh Orthanc."

    def add_arguments(self, parser):
        parser.add_argument("backup", type=Path)
        parser.add_argument("--create-database", action="store_true", help="createdb the target first")
        parser.add_argument("--force-folders", action="store_true", help="unpack over non-empty folders")
        parser.add_argument("--verify-only", action="store_true")

    def handle(self, *args, **options):
        try:
            if options["verify_only"]:
                manifest = verify(options["backup"])
                self.stdout.write(f"ok: {manifest['orthanc']['count']} instances, checksums verified")
                return
            done = restore_backup(
                options["backup"],
                create_database=options["create_database"],
                force_folders=options["force_folders"],
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(done))
