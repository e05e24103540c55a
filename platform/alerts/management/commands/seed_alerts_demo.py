"""The quickstart's on-call chain: the demo radiologists on call, the demo admin as coordinator,
each with a demo phone number and address, so a STAT case or a critical finding reaches someone
(the quickstart's SMS land in var/sms-outbox.txt, its emails on the console)."""

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from alerts.models import OnCallEntry

CHAIN = [  # username, role, demo phone (Mali's +223, a number no operator gives), address
    ("dr.traore", OnCallEntry.Role.RADIOLOGIST, "+22370000001", "dr.traore@joliba.example"),
    ("dr.diallo", OnCallEntry.Role.RADIOLOGIST, "+22370000002", "dr.diallo@joliba.example"),
    ("admin", OnCallEntry.Role.COORDINATOR, "+22370000009", "coordination@joliba.example"),
]


class Command(BaseCommand):
    help = "Put the demo users on the on-call chain (quickstart)."

    @transaction.atomic
    def handle(self, *args, **options):
        for position, (username, role, phone, email) in enumerate(CHAIN):
            user = User.objects.filter(username=username).first()
            if user is None:
                continue
            if not user.phone or not user.email:
                user.phone, user.email = user.phone or phone, user.email or email
                user.save(update_fields=["phone", "email"])
            OnCallEntry.objects.get_or_create(user=user, role=role, defaults={"position": position})
