import shutil
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from studies.models import Study

from ... import exports


class Command(BaseCommand):
    help = "Write the de-identified ZIP of a study (PS3.15 Basic Profile, dates retained)."

    def add_arguments(self, parser):
        parser.add_argument("study", type=int, help="the study's number")
        parser.add_argument("--out", type=Path, help="where to copy the ZIP (default: PRIVACY_EXPORT_DIR)")
        parser.add_argument(
            "--confirm-burned-in",
            action="store_true",
            help="export a study flagged as possibly carrying burned-in annotations (you looked)",
        )

    def handle(self, *args, **options):
        study = Study.objects.filter(pk=options["study"]).first()
        if study is None:
            raise CommandError(f"no study {options['study']}")
        try:
            export = exports.export_study(study, confirm_burned_in=options["confirm_burned_in"])
        except exports.BurnedInRefused:
            raise CommandError(
                "this study may carry burned-in annotations: look at the images, then add --confirm-burned-in"
            ) from None
        except exports.ArchiveUnavailable as exc:
            raise CommandError(f"the archive does not answer: {exc}") from None
        path = export.path
        if options["out"]:
            path = Path(shutil.copyfile(export.path, options["out"]))
        self.stdout.write(f"{path} ({export.files} files, {len(export.refused)} left out)")
