import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "joliba.settings")

app = Celery("joliba")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
