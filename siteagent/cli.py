"""joliba-push: send studies from a site to the centre, over whatever link there is.

    joliba-push --server https://joliba.example --token TOKEN [--policy lossless|lossy]
                [--lossy-first never|urgent|always]
                [--priority routine|urgent|stat] [--indication TEXT] PATH...

The token (or JOLIBA_TOKEN) is the site agent's own, shown once when it is issued: by the site's
admin on the page « Jetons des agents » (/tokens/), or by the agent's technician account with
    curl -d username=TECH -d password=... -d name="Kayes poste 1" https://joliba.example/api/v1/auth/token/
It expires (a year by default) and can be revoked; the centre then answers 401 and the agent
stops with « Le centre refuse » until it is given a new one (docs/tokens.md).

At a site whose modalities send DICOM (C-STORE) or export files to a folder, the agent runs as
a service instead: `joliba-push serve|receive|watch --help` (siteagent/serve.py, docs/siteagent.md).

Progress goes to stderr; the last line on stdout is a JSON summary. Run it again after a
power cut (with or without the paths): it picks the queue up where it was.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from . import linkrate
from .compression import SitePolicy, lossy_first_applies
from .manifest import announce, enqueue
from .pipeline import Producer, log_event
from .queue import Queue
from .sender import Backoff, Sender
from .tus_client import LinkDown, Refused, TusClient


def _say(message: str) -> None:
    sys.stderr.write(message + ("\n" if not message.startswith("\r") else ""))
    sys.stderr.flush()


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(os.environ.get("JOLIBA_PUSH_STATE", Path(base) / "joliba-push"))


def _lock(path: Path, blocking: bool) -> TextIO | None:
    """An exclusive lock on `path`, held while the returned file stays open; None if another
    agent holds it and `blocking` is False."""
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        handle.close()
        return None
    return handle


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="joliba-push", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--server", required=True, help="adresse du centre, ex. https://joliba.example")
    p.add_argument(
        "--token",
        default=os.environ.get("JOLIBA_TOKEN"),
        help="jeton de l'agent de site (ou JOLIBA_TOKEN) : voir plus haut",
    )
    p.add_argument("--policy", choices=["lossless", "lossy"], default="lossless")
    p.add_argument(
        "--no-jpegxl",
        dest="jpegxl",
        action="store_false",
        help="ne pas envoyer en JPEG XL (JPEG-LS / JPEG 2000 seulement)",
    )
    p.add_argument(
        "--lossy-first",
        choices=["never", "urgent", "always"],
        default=os.environ.get("JOLIBA_LOSSY_FIRST", "never"),
        help="envoyer d'abord une version avec perte (taux des recommandations), puis la version "
        "sans perte qui la remplace : jamais, pour les examens urgents, toujours",
    )
    p.add_argument(
        "--no-pipeline",
        dest="pipeline",
        action="store_false",
        help="compresser tout l'examen avant de l'envoyer (par défaut : compression pendant l'envoi)",
    )
    p.add_argument("--priority", choices=["routine", "urgent", "stat"], default="routine")
    p.add_argument("--indication", default="")
    p.add_argument("--state-dir", type=Path, default=_default_state_dir())
    p.add_argument("--chunk-size", type=int, default=2 * 1024**2)
    p.add_argument("--max-time", type=float, default=None, help="abandonner après N secondes")
    p.add_argument("--wait", type=float, default=300, help="attente de la confirmation du centre (s)")
    p.add_argument(
        "--retry-base",
        type=float,
        default=0.25,
        help="premier délai (s) avant un nouvel essai quand la liaison tombe ; doublé à "
        "chaque échec, 1 s au plus pendant les 30 premiers essais, puis 30 s au plus",
    )
    p.add_argument("paths", nargs="*", type=Path)
    args = p.parse_args(argv)
    if not args.token:
        p.error("--token (ou JOLIBA_TOKEN) est requis")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("serve", "receive", "watch"):  # the long-running agent (serve.py)
        from .serve import main as serve

        return serve(argv)
    args = parse_args(argv)
    started = time.monotonic()
    args.state_dir.mkdir(parents=True, exist_ok=True)
    queue = Queue(args.state_dir)
    open_before = set(queue.open_manifests()) | {
        r[0] for r in queue.db.execute("SELECT id FROM manifests WHERE posted<1")
    }
    # Encode while sending (siteagent/pipeline.py): lossless only, since a lossy image (or a
    # lossy-first stand-in) gets a new SOP Instance UID that its announced manifest could not list.
    pipelined = args.pipeline and args.policy == "lossless"
    policy = SitePolicy(
        mode=args.policy,
        jpegxl=args.jpegxl,
        link_bytes_per_s=linkrate.estimate(queue.db),
        lossy_first=args.lossy_first,
    )
    pipelined = pipelined and not lossy_first_applies(policy, args.priority)
    policy = dataclasses.replace(policy, encode_while_sending=pipelined)
    if args.paths:
        enqueue_lock = _lock(args.state_dir / "enqueue.lock", blocking=True)
        assert enqueue_lock is not None  # a blocking lock waits instead of failing
        with enqueue_lock:
            found = (announce if pipelined else enqueue)(
                queue,
                args.paths,
                policy=policy,
                priority=args.priority,
                indication=args.indication,
                say=_say,
            )
        if found["skipped"]:
            _say(f"{len(found['skipped'])} fichier(s) non DICOM ignoré(s)")
    # Members announced but not compressed yet (this run's, or a killed run's): compressed in the
    # background while the sender sends, or first, without the pipeline.
    producer = Producer(args.state_dir, policy, say=_say) if queue.planned_pending() else None
    if producer is not None and pipelined:
        producer.start()
    elif producer is not None:
        producer.run()  # here, under the same lock: never two producers on the same members
        producer = None
    sender_lock = _lock(args.state_dir / "sender.lock", blocking=False)
    if sender_lock is None and producer is not None:
        producer.join()  # the running sender sends them, by urgency...
        # ...unless it finished while they were compressed: then this agent sends them.
        sender_lock = _lock(args.state_dir / "sender.lock", blocking=False)
        producer = None
    if sender_lock is None:
        _say("Un envoi est déjà en cours : ces examens sont dans sa file, par ordre d'urgence.")
        print(json.dumps({"queued": True, "pending_items": queue.pending_count()}))
        return 0
    client = TusClient(args.server, args.token, chunk_size=args.chunk_size)
    deadline = started + args.max_time if args.max_time else None
    sender = Sender(
        queue,
        client,
        say=_say,
        backoff=Backoff(base=args.retry_base),
        more_coming=producer.more_coming if producer is not None else None,
        events=lambda event, **fields: log_event(args.state_dir, event, **fields),
    )
    try:
        stats = sender.run(deadline)
        ours = sorted(open_before | set(queue.open_manifests()))
        studies = _confirm(queue, client, ours, started, args, deadline)
    except Refused as exc:
        if exc.status == 401:
            exc.reason = "jeton refusé (inconnu, expiré ou révoqué) ; les examens restent dans la file"
        _say(f"Le centre refuse : {exc.reason or exc.code}")
        print(json.dumps({"error": exc.code, "status": exc.status}))
        return 2
    totals = queue.totals(ours)
    summary = {
        "files": sum(t["items"] for k, t in totals.items() if k != "preview"),
        "instances": queue.db.execute(
            f"SELECT count(*) FROM instances WHERE manifest_id IN ({','.join('?' * len(ours))})", ours
        ).fetchone()[0]
        if ours
        else 0,
        "bytes_raw": sum(t["raw"] for t in totals.values()),
        "bytes_payload": sum(t["bytes"] for k, t in totals.items() if k != "preview"),
        "preview_bytes": totals.get("preview", {}).get("bytes", 0),
        # What really crossed: file bytes the centre acknowledged (its Upload-Offset moved), and
        # every byte written to the sockets (headers, manifests, retries, what cuts lost).
        "bytes_sent": client.bytes_acknowledged,
        "bytes_acknowledged": client.bytes_acknowledged,
        "bytes_written": client.bytes_written,
        **queue.skipped(ours),
        "duration_s": round(time.monotonic() - started, 2),
        "link_errors": stats.link_errors,
        "refused": stats.refused,
        "pending_items": queue.pending_count(),
        "studies": studies,
    }
    print(json.dumps(summary, ensure_ascii=False))
    if summary["pending_items"] or not all(s["complete"] for s in studies):
        return 4
    return 3 if stats.refused else 0


def _confirm(
    queue: Queue,
    client: TusClient,
    manifest_ids: list[str],
    started: float,
    args: argparse.Namespace,
    deadline: float | None,
) -> list[dict[str, Any]]:
    """Ask the centre until each study is confirmed complete (every instance acknowledged)."""
    results: dict[str, dict[str, Any]] = {}
    until = time.monotonic() + args.wait
    backoff = Backoff(base=args.retry_base)
    pending = list(manifest_ids)
    while pending and time.monotonic() < until and (deadline is None or time.monotonic() < deadline):
        for mid in list(pending):
            try:
                status = client.manifest_status(mid)
            except LinkDown:
                backoff.wait()
                break
            except Refused:
                pending.remove(mid)
                continue
            results[mid] = {
                "manifest": mid,
                "complete": status["complete"],
                "missing": len(status["missing"]),
                "outcomes": sorted({v["outcome"] for v in status["verdicts"]}),
            }
            if status["complete"]:
                queue.mark_complete(mid)
                pending.remove(mid)
        if pending:
            time.sleep(0.5)
    for mid in pending:
        results.setdefault(mid, {"manifest": mid, "complete": False, "missing": None, "outcomes": []})
    return [results[m] for m in manifest_ids if m in results]


if __name__ == "__main__":
    sys.exit(main())
