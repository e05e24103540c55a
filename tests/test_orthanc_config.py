"""The archive's Orthanc follows its security guidance; checked on the files Orthanc really reads."""

import json

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
    _assert_hardened(config, remote_ok=True)  # compose: private network, behind the platform


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
