"""The test suite's shared helpers, in one place: polling, API clients, DICOM copies, model packages
whose outputs a test controls, studies sent through the API, and a real chromium.

Fixtures (personas, the session's Orthanc and Celery worker) are in tests/conftest.py; image
locations in tests/paths.py. Nothing here imports Django at module level, so conftest can import it
before Django is set up.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tests.paths import CHEST_PA_1024, CT_SERIES, REPO, TESTDATA

__all__ = [
    "CHEST_PA_1024",
    "CHROMIUM",
    "CT_RLE_16BIT",
    "CT_SERIES",
    "CXR_1024",
    "CXR_MONO1_10BIT",
    "HAND_12BIT_J2K",
    "HIP_JPEGLS",
    "PAEDIATRIC",
    "PANORAMIC_MODALITY_LUT",
    "REPO",
    "TESTDATA",
    "TIBIA_J2K",
    "TIBIA_UNCOMPRESSED",
    "api_client",
    "build_constant_model",
    "build_slow_model",
    "build_spec_model",
    "chromium",
    "clear_models",
    "broker_kind",
    "database_url",
    "delete_test_queues",
    "dicom_copy",
    "give_totp_device",
    "log_in",
    "login_verified",
    "mark_verified",
    "new_chest",
    "send_chest",
    "malformed_dicoms",
    "send_ct",
    "send_files",
    "totp_code",
    "token_for",
    "wait_for",
    "wrap_jpeg_as_dicom",
]

T = TypeVar("T")

# Images the inference tests name. CXR_1024 is the shared 1024² chest PA, or its portable stand-in
# (tests/paths.py); the others exist only in the shared folder (mark tests using them `testdata`).
CXR_1024 = CHEST_PA_1024
CXR_MONO1_10BIT = TESTDATA / "edge_cases/fo-dicom/CR-MONO1-10-chest"
HIP_JPEGLS = TESTDATA / "real_other/CR_hip_Fuji_WG04-RG2/RG2_JLSL.dcm"
TIBIA_J2K = TESTDATA / "real_other/CR_tibia_Fuji_WG04-RG3/RG3_J2KR.dcm"
TIBIA_UNCOMPRESSED = TESTDATA / "real_other/CR_tibia_Fuji_WG04-RG3/RG3_UNCR.dcm"
HAND_12BIT_J2K = TESTDATA / "real_other/CR_hand_Kodak_gdcm/NM_Kakadu44_SOTmarkerincons.dcm"
PANORAMIC_MODALITY_LUT = TESTDATA / "real_other/CR_dental-panoramic_fo-dicom/CR-ModalitySequenceLUT.dcm"
CT_RLE_16BIT = TESTDATA / "edge_cases/fo-dicom/D_CLUNIE_CT1_RLE_FRAGS.dcm"
PAEDIATRIC = TESTDATA / "real_cxr/pediatric_labelled"


# --- Waiting and processes ----------------------------------------------------------------------
def wait_for(predicate: Callable[[], T], timeout: float = 20, interval: float = 0.2) -> T:
    """Poll until predicate() is truthy; return its value or fail with the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def database_url(db: dict) -> str:
    """DATABASE_URL for a child process (worker, server) that must see the test database."""
    user = db.get("USER") or ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


# --- A real Celery worker ----------------------------------------------------------------------


def worker_command(queue: str, *, pool: str = "solo") -> list[str]:
    """`celery worker` as the tests run it: one queue, one process, no chatter between workers."""
    import sys
    import uuid

    # Its own node name: RabbitMQ gives each node's control queue (<name>.celery.pidbox) to one
    # connection only, and several workers (two on one queue, other sessions') share the machine.
    node = f"{queue.split(',')[0]}-{uuid.uuid4().hex[:6]}@%h"
    return [
        sys.executable, "-m", "celery", "-A", "joliba", "worker", "-Q", queue, "-n", node, f"--pool={pool}",
        "--concurrency=1", "--without-heartbeat", "--without-gossip", "--without-mingle",
        "--loglevel=INFO",
    ]  # fmt: skip


# Every queue a worker of this session consumed: deleted at the session's end (delete_test_queues),
# because RabbitMQ's quorum queues are durable and would otherwise pile up on the machine's broker.
SESSION_QUEUES: set[str] = set()


def broker_kind(url: str) -> str:
    """ "amqp" (RabbitMQ), "redis", or the URL's scheme for anything else (filesystem, memory)."""
    scheme = url.split("://", 1)[0]
    return "amqp" if scheme in {"amqp", "amqps", "pyamqp"} else scheme


def start_worker(queue: str, env: dict[str, str], log_path: Path, *, pool: str = "solo"):
    """Start a worker on `queue` (or "a,b": several) and return its process once it says it is
    ready (60 s at most)."""
    import subprocess

    SESSION_QUEUES.update(queue.split(","))
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            worker_command(queue, pool=pool), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
    deadline = time.monotonic() + 60
    while b" ready." not in log_path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"celery worker did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.2)
    proc.log_path, proc.queues = log_path, queue.split(",")  # for worker_idle()
    return proc


def worker_idle(proc) -> bool:
    """Whether a worker of start_worker() has nothing in hand and nothing waits in its queues:
    every task its log says it received has finished (succeeded, raised, failed or was retried),
    as many times as it was received."""
    import re

    from health.metrics import queue_depths

    text = proc.log_path.read_text(errors="replace")
    task = r"Task [\w.]+\[([0-9a-f-]+)\]"
    received = re.findall(task + r" received", text)
    finished = re.findall(task + r" (?:succeeded|raised|failed|retry)", text)
    if any(received.count(t) > finished.count(t) for t in set(received)):
        return False
    return not any(queue_depths(proc.queues).values())


def wait_worker_idle(proc, timeout: float = 60) -> bool:
    """Wait until worker_idle(proc) (False if it is still busy after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not worker_idle(proc):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def stop_worker(proc) -> None:
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def delete_test_queues(names: Iterable[str], *, url: str | None = None) -> list[str]:
    """Delete these queues (and the exchanges Celery named after them) from the broker; returns
    the names it could not delete. Each deletion on its own channel: RabbitMQ closes a channel
    that names a queue it does not have."""
    from joliba.celery import app

    failed = []
    with app.connection_for_write(url=url) as conn:
        if conn.transport.driver_type == "redis":  # a list per priority step; kombu's queue_delete
            channel = conn.default_channel  # only forgets the bindings this process declared
            keys = [channel._q_for_pri(n, pri) for n in set(names) for pri in channel.priority_steps]
            if keys:
                channel.client.delete(*keys)
            return []
        for name in sorted(set(names)):
            try:
                with conn.channel() as channel:
                    channel.queue_delete(name)
                with conn.channel() as channel:
                    channel.exchange_delete(name)
            except Exception:  # noqa: BLE001 — a queue never declared (no task went there) is fine
                failed.append(name)
    return failed


def queue_exists(name: str) -> bool:
    """Whether the broker has this queue (RabbitMQ: a passive declare; Redis: its list key)."""
    from joliba.celery import app

    with app.connection_for_write() as conn:
        if broker_kind(conn.as_uri()) == "redis":
            return bool(conn.default_channel.client.exists(name))
        try:
            with conn.channel() as channel:
                channel.queue_declare(name, passive=True)
        except Exception:  # noqa: BLE001 — NOT_FOUND
            return False
        return True


# --- The API ------------------------------------------------------------------------------------
def token_for(user, name: str = "tests") -> str:
    """The secret of a new machine token of the user (tokens.service.issue)."""
    from tokens.service import issue

    return issue(user, name=name)[1]


def api_client(user):
    """A DRF test client authenticated with a machine token of the user."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def send_files(user, paths: list[Path], priority: str = "routine", indication: str = "Toux, fièvre"):
    """Upload files through the API as one study; every file must be stored. Returns the Study."""
    from django.urls import reverse

    from studies.models import Study

    files = [open(p, "rb") for p in paths]
    try:
        answer = api_client(user).post(
            reverse("api_upload"),
            {"files": files, "indication": indication, "priority": priority},
            format="multipart",
        )
    finally:
        for f in files:
            f.close()
    assert answer.status_code == 201, answer.content
    verdicts = answer.json()["verdicts"]
    assert all(v["outcome"] == "stored" for v in verdicts), verdicts
    return Study.objects.get(pk=verdicts[0]["study"])


# --- DICOM --------------------------------------------------------------------------------------
def dicom_copy(src: Path, dst: Path, **changes) -> Path:
    """A copy of a real DICOM with some tags changed (new UIDs make a new study)."""
    import pydicom

    ds = pydicom.dcmread(src)
    for key, value in changes.items():
        setattr(ds, key, value)
    ds.save_as(dst)
    return dst


def new_chest(tmp_path: Path, name: str = "cxr", **tags) -> Path:
    """A copy of the 1024² chest radiograph as a new study (new UIDs)."""
    from pydicom.uid import generate_uid

    return dicom_copy(
        CXR_1024,
        tmp_path / f"{name}.dcm",
        StudyInstanceUID=generate_uid(),
        SeriesInstanceUID=generate_uid(),
        SOPInstanceUID=generate_uid(),
        **tags,
    )


def send_chest(user, tmp_path: Path, name: str = "cxr", priority: str = "routine", **tags):
    return send_files(user, [new_chest(tmp_path, name, **tags)], priority=priority)


def ct_study(tmp_path: Path, numbers: Iterable[int]) -> list[Path]:
    """Slices of the CT series (by instance number, wrapping past its 28) copied as one new study,
    under new UIDs: a study of its own in the session's shared Orthanc."""
    from pydicom.uid import generate_uid

    study_uid, series_uid = generate_uid(), generate_uid()
    return [
        dicom_copy(
            CT_SERIES / f"{1 + (n - 1) % 28:02d}.dcm",
            tmp_path / f"ct-{study_uid[-8:]}-{i}.dcm",
            StudyInstanceUID=study_uid,
            SeriesInstanceUID=series_uid,
            SOPInstanceUID=generate_uid(),
        )
        for i, n in enumerate(numbers)
    ]


def ct_study_bytes(tmp_path: Path, numbers: Iterable[int]) -> list[bytes]:
    return [path.read_bytes() for path in ct_study(tmp_path, numbers)]


def manifest_entries(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """What the site agent lists of each file in a study's manifest."""
    import pydicom

    from uploads import spool

    return [
        {
            "sop_instance_uid": str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID),
            "sha256": spool.sha256_of(p),
            "size": p.stat().st_size,
        }
        for p in paths
    ]


def complete_transfer(submission: Any, path: Path, kind: str = "dicom") -> Any:
    """A transfer of `submission` whose bytes have all arrived, as the tus endpoint leaves it for
    the finaliser."""
    from datetime import timedelta

    from django.utils import timezone

    from uploads import spool
    from uploads.models import Transfer

    size = path.stat().st_size
    transfer = Transfer.objects.create(
        submission=submission,
        kind=kind,
        length=size,
        offset=size,
        filename=path.name,
        sha256=spool.sha256_of(path),
        state=Transfer.State.COMPLETE,
        expires_at=timezone.now() + timedelta(days=1),
    )
    shutil.copyfile(path, spool.part_path(transfer.pk))
    return transfer


def in_archive(orthanc_server: Any, uid: str) -> bool:
    """Whether Orthanc knows this UID (any level), asked directly, not through the platform."""
    import requests

    found = requests.post(
        f"{orthanc_server.url}/tools/lookup",
        data=uid,
        timeout=5,
        auth=(orthanc_server.username, orthanc_server.password),
    )
    return bool(found.json())


def send_ct(user, tmp_path: Path, n: int = 2, priority: str = "urgent"):
    """The first n slices of the CT series as a new study."""
    paths = ct_study(tmp_path, range(1, n + 1))
    return send_files(user, paths, priority=priority, indication="Traumatisme crânien")


def wrap_jpeg_as_dicom(jpeg: str | Path, **tags: Any) -> bytes:
    """The JPEG bytes, untouched, as a DICOM Secondary Capture (as a digitised or photographed
    film arrives from a site): JPEG Baseline transfer syntax, a chest CR by default."""
    import pydicom
    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit, SecondaryCaptureImageStorage, generate_uid

    data = Path(jpeg).read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
        mode = img.mode
    if mode not in ("L", "RGB"):
        raise ValueError(f"unsupported JPEG mode {mode}")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = tags.get("SOPInstanceUID") or generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "CR"
    ds.ConversionType = "DF"  # digitised film
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.Rows, ds.Columns = height, width
    ds.SamplesPerPixel = 1 if mode == "L" else 3
    ds.PhotometricInterpretation = "MONOCHROME2" if mode == "L" else "YBR_FULL_422"
    if mode == "RGB":
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    ds.PixelData = encapsulate([data])
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


# --- Model packages whose outputs the test controls --------------------------------------------
def build_constant_model(directory: str | Path, probabilities: Mapping[str, float], **kwargs: Any) -> Path:
    """A demo-format package whose label probabilities are the given constants."""
    from inference.demo import build_demo_model

    return build_demo_model(directory, probabilities=probabilities, **kwargs)


def build_spec_model(
    directory: str | Path, spec: dict[str, Any], logits: Mapping[str, float], *, default: float = -4.0
) -> Path:
    """A package with any specification whose single probabilities output returns constant
    logits (`logits` by label name, `default` for the others): a multi-label model's labels,
    display names and thresholds through the real pipeline, without its weights."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from inference.model_spec import write_model_spec

    out = next(o for o in spec["outputs"] if o["kind"] == "probabilities")
    values = np.asarray([[logits.get(lab["name"], default) for lab in out["labels"]]], np.float32)
    width, height = spec["input"]["size"]
    channels = spec["input"].get("channels", 1)
    shape = (
        [1, channels, height, width]
        if spec["input"].get("layout", "NCHW") == "NCHW"
        else [1, height, width, channels]
    )
    name = spec["input"]["name"]
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", [name], ["mean"], keepdims=0),
            helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
            helper.make_node("Add", ["values", "nothing"], [out["name"]]),
        ],
        "constant",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(out["name"], TensorProto.FLOAT, list(values.shape))],
        initializer=[
            numpy_helper.from_array(values, "values"),
            numpy_helper.from_array(np.asarray(0.0, np.float32), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    package = Path(directory) / spec["name"]
    package.mkdir(parents=True, exist_ok=True)
    (package / "model.onnx").write_bytes(model.SerializeToString())
    write_model_spec(package, spec)
    return package


def clear_models(directory: Path) -> None:
    for child in Path(directory).iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def build_slow_model(directory: Path, *, matmuls: int = 400, side: int = 1024, **kwargs) -> Path:
    """A constant model that also multiplies 1024² matrices `matmuls` times (≈10 ms each on two
    cores) and discards the result: the same outputs, slowly enough to be killed mid-inference."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    from inference.model_spec import write_model_spec

    package = build_constant_model(directory, size=side, **kwargs)
    path = package / "model.onnx"
    model = onnx.load(path)
    graph = model.graph
    for node in graph.node:
        if node.output[0] == "logits":
            node.output[0] = "logits_fast"
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.asarray([side, side], np.int64), "slow_shape"),
            numpy_helper.from_array(np.asarray(1.0 / side, np.float32), "slow_scale"),
            numpy_helper.from_array(np.asarray(0.0, np.float32), "slow_zero"),
        ]
    )
    nodes = [helper.make_node("Reshape", ["image", "slow_shape"], ["x0"])]
    previous = "x0"
    for k in range(matmuls):  # tanh keeps values bounded, so 0 × mean stays 0
        nodes += [
            helper.make_node("MatMul", [previous, "x0"], [f"m{k}"]),
            helper.make_node("Mul", [f"m{k}", "slow_scale"], [f"s{k}"]),
            helper.make_node("Tanh", [f"s{k}"], [f"t{k}"]),
        ]
        previous = f"t{k}"
    nodes += [
        helper.make_node("ReduceMean", [previous], ["slow_mean"], keepdims=0),
        helper.make_node("Mul", ["slow_mean", "slow_zero"], ["slow_nil"]),
        helper.make_node("Add", ["logits_fast", "slow_nil"], ["logits"]),
    ]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    manifest = json.loads((package / "manifest.json").read_text())
    write_model_spec(package, manifest)  # sha256 recomputed from the new model file
    return package


# --- A real browser -----------------------------------------------------------------------------
# Playwright on Debian's chromium (never `playwright install`: it cannot download here).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page, base_url: str, username: str, password: str) -> None:
    """Sign in through the real login page: the password, then (for a user with a TOTP device,
    as the radiologist and admin personas have) the code the persona's phone would show."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_auth-username", username)
    page.fill("#id_auth-password", password)
    page.click("button[type=submit]")
    device = TOTPDevice.objects.filter(user__username=username, confirmed=True).first()
    if device is not None:
        page.fill("#id_token-otp_token", totp_code(device))
        page.click("button[type=submit]")
        page.wait_for_load_state()


# --- Signing in with the second factor ---------------------------------------------------------
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def give_totp_device(user):
    """A confirmed TOTP device for the user: the phone they enrolled."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.create(user=user, name="default", confirmed=True)


def totp_code(device) -> str:
    """The code the device's phone shows now, as django_otp.oath computes it, for a time step the
    device has not accepted yet (a code is good once: two sign-ins within 30 s use the next step,
    still within the device's tolerance; waits for the clock when none is left)."""
    from django_otp.oath import TOTP

    device.refresh_from_db()
    while True:
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        totp.time = time.time()
        now_t = totp.t()
        t = max(now_t, device.last_t + 1)
        if t <= now_t + device.tolerance:
            totp.drift += t - now_t
            return f"{totp.token():0{device.digits}d}"
        time.sleep(device.step - (time.time() - device.t0) % device.step + 0.05)


def mark_verified(client, user) -> None:
    """Mark the client's session as having passed the second factor (django_otp.login does the
    same): with the user's TOTP device, given one if their role needs it and they have none."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from studies import access

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        if not access.needs_second_factor(user):
            return
        device = give_totp_device(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


def login_verified(client, user) -> None:
    """force_login plus a verified second factor where the role requires one (radiologists,
    admins): the state a real sign-in with password and code leaves."""
    client._login(user, MODEL_BACKEND)
    mark_verified(client, user)


# --- Malformed files, made here ------------------------------------------------------------------
def malformed_dicoms(folder: Path, source: Path | None = None) -> dict[str, Path]:
    """Broken files made from one good CT slice, {filename: path}: empty, cut short, not DICOM,
    bad headers, an allocation bomb, a broken codestream, sequences nested 20 000 deep. They need
    no shared corpus, so every clone tests them."""
    import struct

    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless, generate_uid

    source = source or CT_SERIES / "01.dcm"
    folder.mkdir(parents=True, exist_ok=True)
    raw = Path(source).read_bytes()
    made: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        (folder / name).write_bytes(data)
        made[name] = folder / name

    def changed(name: str, edit: Callable[[Any], None]) -> None:
        ds = pydicom.dcmread(source)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        edit(ds)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=False)
        put(name, buffer.getvalue())

    put("empty.dcm", b"")
    put("short.dcm", raw[:100])
    put("text.dcm", b"Compte rendu : RAS.\n" * 50)
    put("garbage-after-dicm.dcm", b"\0" * 128 + b"DICM" + bytes(range(256)) * 8)
    put("cut-in-header.dcm", raw[:400])
    put("cut-in-pixels.dcm", raw[: len(raw) * 6 // 10])

    def drop(*keywords: str) -> Callable[[Any], None]:
        def edit(ds: Any) -> None:
            for keyword in keywords:
                delattr(ds, keyword)

        return edit

    changed("no-sop-uid.dcm", drop("SOPInstanceUID"))
    changed("bad-uid.dcm", lambda ds: setattr(ds, "StudyInstanceUID", "not.a.uid!"))
    changed("no-pixels.dcm", drop("PixelData"))
    changed("not-an-image.dcm", drop("PixelData", "Rows", "Columns"))
    changed("zero-rows.dcm", lambda ds: setattr(ds, "Rows", 0))
    changed("twelve-bits-allocated.dcm", lambda ds: setattr(ds, "BitsAllocated", 12))

    def bomb(ds: Any) -> None:  # 65535² declared, a few bytes given: an allocation bomb
        ds.Rows = ds.Columns = 65535

    changed("allocation-bomb.dcm", bomb)

    def broken_codestream(ds: Any) -> None:
        ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\0" * 60])
        ds["PixelData"].VR = "OB"

    changed("broken-j2k.dcm", broken_codestream)
    # Sequences nested 20 000 deep (undefined lengths): a naive reader recurses until it fails.
    depth = 20_000
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    item_end = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    seq_end = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    sequence = struct.pack("<HH", 0x0008, 0x1115) + b"SQ\0\0" + struct.pack("<I", 0xFFFFFFFF)
    ds = pydicom.dcmread(source, stop_before_pixels=True)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    put("deep-sequence.dcm", buffer.getvalue() + (sequence + item) * depth + (item_end + seq_end) * depth)
    return made
