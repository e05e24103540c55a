"""Create demo sites and users for the quickstart; passwords are printed once, at creation."""

import secrets

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Site, User, read_everything

SITES = [
    ("kayes", "Hôpital Fousseyni Daou de Kayes", "Kayes", "+22321520000", "radio@kayes.example"),
    ("sikasso", "Hôpital de Sikasso", "Sikasso", "+22321620000", "radio@sikasso.example"),
]
USERS = [
    ("tech.kayes", "Aminata", "Keita", User.Role.TECHNICIAN, "kayes"),
    ("tech.sikasso", "Moussa", "Sanogo", User.Role.TECHNICIAN, "sikasso"),
    ("dr.traore", "Fatoumata", "Traoré", User.Role.RADIOLOGIST, None),
    ("dr.diallo", "Ibrahim", "Diallo", User.Role.RADIOLOGIST, None),
    ("admin", "Coordination", "Bamako", User.Role.ADMIN, None),
]


class Command(BaseCommand):
    help = "Create demo sites and users (passwords printed once)."

    @transaction.atomic
    def handle(self, *args, **options):
        sites = {}
        for code, name, region, phone, email in SITES:
            sites[code], _ = Site.objects.get_or_create(
                code=code, defaults={"name": name, "region": region, "phone": phone, "email": email}
            )
        created = []
        for username, first, last, role, site in USERS:
            if User.objects.filter(username=username).exists():
                continue
            password = secrets.token_urlsafe(9)
            User.objects.create_user(
                username=username,
                password=password,
                first_name=first,
                last_name=last,
                role=role,
                site=sites.get(site),
                is_staff=role == User.Role.ADMIN,
                is_superuser=role == User.Role.ADMIN,
            )
            created.append((username, role, password))
        # Demo radiologists read every modality for every site (a radiologist without a
        # profile reads nothing): an admin narrows it in the admin pages.
        for user in User.objects.filter(username__in=[u[0] for u in USERS], role=User.Role.RADIOLOGIST):
            read_everything(user)
        if created:
            self.stdout.write("Comptes de démonstration (mots de passe affichés une seule fois) :")
            for username, role, password in created:
                self.stdout.write(f"  {username:14} {role:12} {password}")
        else:
            self.stdout.write(
                "Comptes de démonstration déjà créés (mots de passe affichés au premier lancement)."
            )
