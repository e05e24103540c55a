"""The archive's Orthanc configuration, hardened as Orthanc's security guide asks.

One function builds it so the quickstart, the tests and deploy/ all run the same flags,
and a test reads the generated file back and checks each of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PLUGIN_DIR = Path("/usr/share/orthanc/plugins")
PLUGINS = ("libOrthancDicomWeb.so", "libOrthancGdcm.so")


def archive_config(
    *,
    storage_dir: Path,
    http_port: int,
    dicom_port: int,
    username: str,
    password: str,
    remote_access: bool = False,
    stable_age_s: int = 10,
    aet: str = "JOLIBA",
    plugin_dir: Path = PLUGIN_DIR,
    modalities: dict[str, tuple[str, str, int]] | None = None,
    max_storage_mb: int = 0,
) -> dict[str, Any]:
    """Return the Orthanc configuration of the central archive as a dict.

    `modalities` maps a name to (AE title, host, port) of each modality or gateway allowed to
    C-STORE into the archive (or C-ECHO it); nobody else may, and a declared AE title calling
    from another host is refused too.

    HTTP: Orthanc (1.10 as 1.12) has no option to choose the interface it listens on; with
    `RemoteAccessAllowed` false it refuses every HTTP client but 127.0.0.1 (tests/
    test_orthanc_config.py calls it from 127.0.0.2 and gets 403). `remote_access=True` is for an
    Orthanc on a private network whose port is published nowhere else (deploy/ says how).

    `max_storage_mb` > 0 caps the archive with `MaximumStorageMode: Reject` (new instances
    refused when full, never old ones recycled). Only for Orthanc ≥ 1.11.2: 1.10 ignores the mode
    and would delete the oldest patients to make room, so the default is 0 (no cap).
    """
    if max_storage_mb < 0:
        raise ValueError("max_storage_mb must be 0 (no cap) or positive")
    if not password or password == "orthanc" or username == "orthanc":
        raise ValueError("the archive needs non-default Orthanc credentials")
    return {
        "Name": "Joliba archive",
        "StorageDirectory": str(storage_dir / "storage"),
        "IndexDirectory": str(storage_dir / "index"),
        "Plugins": [str(plugin_dir / p) for p in PLUGINS if (plugin_dir / p).exists()],
        # Only the platform talks to Orthanc: loopback (or a private network in compose), a user.
        "HttpPort": http_port,
        "RemoteAccessAllowed": remote_access,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {username: password},
        "HttpDescribeErrors": False,
        "OrthancExplorerEnabled": False,
        "WebDavEnabled": False,
        "WebDavUploadAllowed": False,
        "WebDavDeleteAllowed": False,
        "ExecuteLuaEnabled": False,
        "RestApiWriteToFileSystemEnabled": False,  # honoured from Orthanc 1.12; off everywhere
        "LuaScripts": [],
        "LimitFindResults": 200,
        "LimitFindInstances": 200,
        # Never recycle: a study in the archive is a patient record, not a cache entry.
        "MaximumStorageSize": max_storage_mb,
        "MaximumPatientCount": 0,
        "MaximumStorageMode": "Reject",
        "OverwriteInstances": False,
        "StorageCompression": False,
        "DeidentifyLogs": True,
        "StableAge": stable_age_s,
        "SaveJobs": False,
        "MetricsEnabled": True,
        "KeepAlive": True,
        "DicomServerEnabled": True,
        "DicomAet": aet,
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": True,
        # Modalities and peers that may C-STORE are declared; unknown callers are refused,
        # even a C-ECHO (an open echo tells a scanner of the network that an archive is here).
        "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowFindWorklist": False,
        "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False,
        "DicomCheckModalityHost": True,
        "DicomModalities": {name: list(m) for name, m in (modalities or {}).items()},
        "DicomModalitiesInDatabase": False,  # the REST API cannot declare a new sender
        "DicomScpTimeout": 30,  # an idle association is closed
        "DicomThreadsCount": 4,  # associations served at once
        "UnknownSopClassAccepted": False,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
        "Gdcm": {"Enable": True, "Throttling": 2},
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)  # holds the Orthanc password
    return path
