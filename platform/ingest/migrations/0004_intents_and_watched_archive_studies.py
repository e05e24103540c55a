"""Verdicts store a code and its parameters, not a French sentence; the sender's intent per
instance and the archive studies the changes feed watches get tables of their own."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [("ingest", "0003_verdict_codes")]

    operations = [
        migrations.RemoveField(model_name="fileverdict", name="reason"),
        migrations.CreateModel(
            name="InstanceIntent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("study_instance_uid", models.CharField(db_index=True, max_length=64)),
                ("sop_instance_uid", models.CharField(db_index=True, max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("recorded_by_feed_at", models.DateTimeField(blank=True, null=True)),
                ("submission", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                 related_name="intents", to="ingest.submission")),
            ],
            options={"ordering": ["pk"]},
        ),
        migrations.AddConstraint(
            model_name="instanceintent",
            constraint=models.UniqueConstraint(fields=("submission", "sop_instance_uid"),
                                               name="one_intent_per_file"),
        ),
        migrations.CreateModel(
            name="ArrivingArchiveStudy",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("orthanc_study_id", models.CharField(max_length=64, unique=True)),
                ("study_instance_uid", models.CharField(blank=True, max_length=64)),
                ("first_seen_at", models.DateTimeField(auto_now_add=True)),
                ("checked_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={"ordering": ["first_seen_at"]},
        ),
    ]
