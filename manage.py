#!/usr/bin/env python
import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # Works before `pip install -e .` too: platform/ holds the Django packages.
    sys.path.insert(0, str(Path(__file__).resolve().parent / "platform"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "joliba.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
