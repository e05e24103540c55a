"""The one place that speaks Orthanc's REST API, through orthanc-rest-client.

The rest of Joliba sees plain dataclasses and bytes, never the library's shape, so the
library can be swapped without touching callers.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import requests
from apiron.client import Timeout
from orthanc_rest_client import Orthanc
from requests.auth import HTTPBasicAuth

QUICK = Timeout(connection_timeout=3, read_timeout=15)
SLOW = Timeout(connection_timeout=3, read_timeout=120)  # storing or rendering a large image


class OrthancError(RuntimeError):
    """Orthanc refused a request or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class StoredInstance:
    orthanc_id: str
    study_id: str
    series_id: str
    already_stored: bool


@dataclass(frozen=True)
class Change:
    seq: int
    change_type: str
    resource_type: str
    resource_id: str


@dataclass(frozen=True)
class ChangesPage:
    changes: list[Change]
    last: int
    done: bool


class OrthancClient:
    """A small typed client for the archive."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url.rstrip("/")
        self._session = requests.Session()
        self._session.auth = HTTPBasicAuth(username, password)
        with warnings.catch_warnings():
            # Loopback or a private network; TLS is terminated in front of the platform.
            warnings.simplefilter("ignore")
            self._api = Orthanc(self.url, auth=self._session.auth, warn_insecure=False)
        # orthanc-rest-client sets the address on class-level services shared by every client:
        # give this client subclasses of its own, so a second client never repoints the first.
        for name in ("instances", "modalities", "patients", "queries", "series", "server", "studies"):
            base = getattr(self._api, name)
            setattr(self._api, name, type(base.__name__, (base,), {"domain": self.url}))

    def _call(self, method: Callable[..., Any], *args: Any, timeout: Timeout = QUICK, **kwargs: Any) -> Any:
        try:
            return method(*args, session=self._session, timeout_spec=timeout, **kwargs)
        except requests.RequestException as exc:
            status = exc.response.status_code if exc.response is not None else None
            raise OrthancError(f"Orthanc: {exc.__class__.__name__}: {exc}", status) from exc

    def system(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._call(self._api.get_system))

    def store_instance(self, data: bytes) -> StoredInstance:
        """Store one DICOM file; storing the same SOP instance twice is not an error."""
        answer = self._call(
            self._api.add_instance,
            data,
            headers={"Content-Type": "application/dicom"},
            timeout=SLOW,
        )
        return StoredInstance(
            orthanc_id=answer["ID"],
            study_id=answer["ParentStudy"],
            series_id=answer["ParentSeries"],
            already_stored=answer.get("Status") == "AlreadyStored",
        )

    def study(self, study_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._call(self._api.get_study, study_id))

    def study_instances(self, study_id: str) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call(self._api.get_study_instances, study_id))

    def study_series(self, study_id: str) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call(self._api.get_study_series, study_id))

    def instance_metadata(self, instance_id: str) -> dict[str, Any]:
        """Orthanc's own metadata of an instance (RemoteAET, ReceptionDate, Origin...)."""
        return cast(
            dict[str, Any],
            self._call(self._api.instances.list_metadata, id_=instance_id, params={"expand": ""}),
        )

    def instance(self, instance_id: str) -> dict[str, Any]:
        """Orthanc's record of an instance (FileSize, ParentSeries, MainDicomTags...)."""
        return cast(dict[str, Any], self._call(self._api.get_instance, instance_id))

    def delete_instance(self, instance_id: str) -> None:
        self._call(self._api.delete_instance, instance_id)

    def instance_tags(self, instance_id: str) -> dict[str, Any]:
        """Simplified tags (name → value) of one instance."""
        return cast(dict[str, Any], self._call(self._api.get_instance_simplified_tags, instance_id))

    def instance_file(self, instance_id: str) -> bytes:
        return b"".join(self._call(self._api.get_instance_file, instance_id, timeout=SLOW))

    def instance_file_chunks(self, instance_id: str) -> Iterator[bytes]:
        """The file as it comes off the wire, for a download that must not hold it whole. The
        request is made here: Orthanc's refusal raises OrthancError before the first chunk."""
        chunks = iter(self._call(self._api.get_instance_file, instance_id, timeout=SLOW))
        try:
            first = next(chunks, b"")
        except requests.RequestException as exc:
            status = exc.response.status_code if exc.response is not None else None
            raise OrthancError(f"Orthanc: {exc.__class__.__name__}: {exc}", status) from exc
        return itertools.chain([first], chunks)

    def changes(self, since: int, limit: int = 100) -> ChangesPage:
        page = self._call(self._api.get_changes, since=since, limit=limit)
        return ChangesPage(
            changes=[
                Change(
                    seq=c["Seq"],
                    change_type=c["ChangeType"],
                    resource_type=c["ResourceType"],
                    resource_id=c["ID"],
                )
                for c in page["Changes"]
            ],
            last=page["Last"],
            done=page["Done"],
        )

    def iter_changes(self, since: int, limit: int = 100) -> Iterator[Change]:
        """Every change after `since`, page by page, until Orthanc says it is done."""
        while True:
            page = self.changes(since, limit)
            yield from page.changes
            if page.done or not page.changes:
                return
            since = page.last
