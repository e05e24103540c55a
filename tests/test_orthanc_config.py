"""The archive's Orthanc follows its security guidance; checked on the files Orthanc really reads."""

import base64
import http.client
import json
from pathlib import Path

import pytest

from orthanc.config import archive_config
from tests.paths import REPO

HARDENED = {
    "AuthenticationEnabled": True,
    "RemoteAccessAllowed": False,
    "OrthancExplorerEnabled": False,
    "WebDavEnabled": False,
    "ExecuteLuaEnabled": False,
    "RestApiWriteToFileSystemEnabled": False,
    "MaximumStorageSize": 0,
    "MaximumPatientCount": 0,
    "DicomAlwaysAllowStore": False,
    "DicomAlwaysAllowEcho": False,
    "DicomAlwaysAllowFind": False,
    "DicomAlwaysAllowFindWorklist": False,
    "DicomAlwaysAllowGet": False,
    "DicomAlwaysAllowMove": False,
    "DicomCheckModalityHost": True,
    "DicomCheckCalledAet": True,
    "DicomModalitiesInDatabase": False,
    "HttpDescribeErrors": False,
    "OverwriteInstances": False,
}


def _assert_hardened(config: dict, *, remote_ok: bool = False) -> None:
    for key, value in HARDENED.items():
        if key == "RemoteAccessAllowed" and remote_ok:
            continue
        assert config[key] == value, key
    assert 0 < config["LimitFindResults"] <= 1000
    assert 0 < config["LimitFindInstances"] <= 1000
    assert config["LuaScripts"] == []
    users = config["RegisteredUsers"]
    assert users and "orthanc" not in users and "orthanc" not in users.values()
    assert config["DicomWeb"]["Enable"] is True and config["Gdcm"]["Enable"] is True


def test_the_session_archive_runs_hardened(orthanc_server):
    config = json.loads(orthanc_server.config_path.read_text())
    _assert_hardened(config)
    assert {p.rsplit("/", 1)[-1] for p in config["Plugins"]} == {"libOrthancDicomWeb.so", "libOrthancGdcm.so"}
    assert orthanc_server.config_path.stat().st_mode & 0o077 == 0


def test_the_running_archive_refuses_anonymous_and_default_credentials(orthanc_server):
    import requests

    assert requests.get(f"{orthanc_server.url}/system", timeout=5).status_code == 401
    default = requests.get(f"{orthanc_server.url}/system", auth=("orthanc", "orthanc"), timeout=5)
    assert default.status_code == 401
    # Explorer is off: its page is not served.
    explorer = requests.get(
        f"{orthanc_server.url}/app/explorer.html",
        auth=(orthanc_server.username, orthanc_server.password),
        timeout=5,
    )
    assert explorer.status_code == 404
    loaded = orthanc_server.client().system()
    assert loaded["Version"].startswith("1.")


def test_the_deploy_configuration_is_hardened_too():
    config = json.loads((REPO / "deploy" / "orthanc" / "orthanc.json").read_text())
    _assert_hardened(config)  # loopback by default; a private network is a deliberate change
    assert config["DicomModalities"] == {}  # each deployment declares its own modalities


def test_the_deploy_configuration_is_the_generators():
    """deploy/orthanc/orthanc.json is what orthanc.config.archive_config writes (no drift)."""
    config = json.loads((REPO / "deploy" / "orthanc" / "orthanc.json").read_text())
    generated = archive_config(
        storage_dir=Path("/var/lib/orthanc/db"),
        http_port=8042,
        dicom_port=4242,
        username="joliba",
        password="${ORTHANC_PASSWORD}",
        stable_age_s=30,
    )
    generated["Plugins"] = config["Plugins"]  # present or not on the machine that runs the test
    assert config == generated


def test_a_storage_cap_is_only_ever_in_reject_mode(tmp_path):
    config = archive_config(
        storage_dir=tmp_path,
        http_port=1,
        dicom_port=2,
        username="joliba",
        password="s3cret!",
        max_storage_mb=500,
    )
    assert (config["MaximumStorageSize"], config["MaximumStorageMode"]) == (500, "Reject")
    with pytest.raises(ValueError):
        archive_config(
            storage_dir=tmp_path,
            http_port=1,
            dicom_port=2,
            username="joliba",
            password="s3cret!",
            max_storage_mb=-1,
        )


def _get_from(source: str, server, path: str = "/system") -> int:
    """An HTTP request to the archive (on 127.0.0.1) from another loopback address."""
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=5, source_address=(source, 0))
    try:
        token = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
        conn.request("GET", path, headers={"Authorization": f"Basic {token}"})
        return conn.getresponse().status
    finally:
        conn.close()


def test_the_archives_http_answers_127_0_0_1_only(orthanc_server):
    assert _get_from("127.0.0.1", orthanc_server) == 200
    # 127.0.0.2 is this machine too, but not 127.0.0.1: for Orthanc a remote client, refused even
    # with the right credentials (Orthanc 1.10 answers 401, later versions 403).
    assert _get_from("127.0.0.2", orthanc_server) in (401, 403)


def _echo(server, calling_aet: str, source: str = "127.0.0.1") -> int | None:
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title=calling_aet)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="JOLIBA", bind_address=(source, 0))
    if not assoc.is_established:
        return None
    try:
        status = assoc.send_c_echo()
        return getattr(status, "Status", None)
    finally:
        assoc.release()


def test_the_dicom_port_answers_declared_modalities_only(orthanc_server):
    assert _echo(orthanc_server, "KAYES_CR") == 0x0000  # declared (conftest: site_a's modality)
    assert _echo(orthanc_server, "STRANGER") is None  # undeclared: association refused
    assert _echo(orthanc_server, "KAYES_CR", source="127.0.0.2") is None  # declared AET, wrong host


def test_default_credentials_are_refused(tmp_path):
    with pytest.raises(ValueError):
        archive_config(
            storage_dir=tmp_path, http_port=1, dicom_port=2, username="orthanc", password="orthanc"
        )


def test_two_clients_keep_their_own_archive(orthanc_server):
    from orthanc.client import OrthancClient, OrthancError

    good = orthanc_server.client()
    dead = OrthancClient("http://127.0.0.1:9", "joliba", "x")
    assert good.system()["Version"]  # the second client did not repoint the first
    with pytest.raises(OrthancError):
        dead.system()
    assert good.system()["Version"]
