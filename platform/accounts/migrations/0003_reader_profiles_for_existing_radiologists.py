"""Radiologists who existed before reading rights did read everything: they keep doing so (a
profile for every modality and every site) until an admin narrows it. New radiologists start
with no profile, so with no rights to read."""

from django.db import migrations

EVERY_MODALITY = ["CR", "DX", "CT", "MR", "US", "MG", "XA", "RF", "NM", "PT", "OT"]


def give_profiles(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    ReaderProfile = apps.get_model("accounts", "ReaderProfile")
    for user in User.objects.filter(role="radiologist", reader_profile__isnull=True):
        ReaderProfile.objects.create(user=user, modalities=EVERY_MODALITY, all_sites=True)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_reader_profile")]

    operations = [migrations.RunPython(give_profiles, migrations.RunPython.noop)]
