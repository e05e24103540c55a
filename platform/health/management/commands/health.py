"""manage.py health: the readiness checks of /health/ready, in-process; exit 1 when unhealthy
(for compose and systemd healthchecks). `--json` prints the same JSON as the endpoint."""

import json

from django.core.management.base import BaseCommand, CommandError

from health.checks import CHECKS, run_checks


class Command(BaseCommand):
    help = "Check the platform's components; exit non-zero when a required one is unhealthy."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the JSON of /health/ready")
        parser.add_argument("components", nargs="*", help=f"only these checks ({', '.join(CHECKS)})")

    def handle(self, *args, **options):
        names = options["components"] or None
        unknown = set(names or ()) - set(CHECKS)
        if unknown:
            raise CommandError(f"unknown check(s): {', '.join(sorted(unknown))}; known: {', '.join(CHECKS)}")
        report = run_checks(names)
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            for name, result in report["components"].items():
                extra = ", ".join(f"{k}={v}" for k, v in result.items() if k != "status")
                self.stdout.write(f"{name:9} {result['status']:15} {extra}")
            self.stdout.write(f"overall   {report['status']} ({report['seconds']} s)")
        if report["status"] != "ok":
            raise CommandError("unhealthy", returncode=1)
