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
) -> dict[str, Any]:
    """Return the Orthanc configuration of the central archive as a dict.

    `modalities` maps a name to (AE title, host, port) of each modality or gateway allowed to
    C-STORE into the archive; nobody else may.
    """
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
        "MaximumStorageSize": 0,
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
        # Modalities and peers that may C-STORE are declared; unknown callers are refused.
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False,
        "DicomCheckModalityHost": True,
        "DicomModalities": {name: list(m) for name, m in (modalities or {}).items()},
        "UnknownSopClassAccepted": False,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
        "Gdcm": {"Enable": True, "Throttling": 2},
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)  # holds the Orthanc password
    return path
