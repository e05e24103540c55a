"""Deprecated: moved to tests/helpers.py. Kept so that branches in flight still import; remove
once they have merged (`from tests.helpers import ...`)."""

from tests.helpers import *  # noqa: F403
from tests.helpers import __all__  # noqa: F401
