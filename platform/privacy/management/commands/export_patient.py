from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ... import patient_export


class Command(BaseCommand):
    help = "Write everything held about one patient (by Patient ID) as a ZIP of JSON and report PDFs."

    def add_arguments(self, parser):
        parser.add_argument("patient_id")
        parser.add_argument("--site", type=int, help="only the studies of this site (its number)")
        parser.add_argument("--out", type=Path, required=True)

    def handle(self, *args, **options):
        if not patient_export.studies_of(options["patient_id"], options["site"]).exists():
            raise CommandError("no study for this patient")
        data, count = patient_export.export_patient(options["patient_id"], site_id=options["site"])
        options["out"].write_bytes(data)
        self.stdout.write(f"{options['out']} ({count} studies)")
