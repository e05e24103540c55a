from functools import lru_cache

from django.conf import settings

from orthanc.client import OrthancClient


@lru_cache(maxsize=4)
def _client(url: str, username: str, password: str) -> OrthancClient:
    return OrthancClient(url, username, password)


def get_archive() -> OrthancClient:
    """The central Orthanc archive, as the settings name it."""
    return _client(settings.ORTHANC_URL, settings.ORTHANC_USERNAME, settings.ORTHANC_PASSWORD)
