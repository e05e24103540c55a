"""joliba-push serve / receive / watch: the agent as a long-running service at the site.

    joliba-push receive --aet KAYES_AGENT --port 11112 --allow CR_KAYES@192.168.1.20 --allow CT_KAYES \\
                        --server https://joliba.example --token TOKEN
    joliba-push watch --watch /srv/export --server https://joliba.example --token TOKEN
    joliba-push serve --aet ... --port ... --allow ... --watch ... --server ... --token ...

`receive` runs the DICOM receiver, `watch` the watched folder, `serve` both (each part when its
options are given); all three group what arrives into studies, queue each study once it has been
quiet for --quiet seconds, and send the queue (when --server is given; without it they only
queue, and a later `joliba-push --server ...` sends). Options can come from a TOML file
(--config agent.toml, keys spelled like the options: aet = "KAYES_AGENT", allow = ["CT_KAYES"]);
the command line wins. Stop with SIGTERM or Ctrl-C; after a kill or a power cut, start it again:
what was acknowledged is in the spool or the queue and goes on from there.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

from .compression import SitePolicy
from .grouping import Grouper
from .queue import Queue
from .receiver import Allowed, Receiver
from .sender import Backoff, Sender
from .spool import Spool
from .tus_client import LinkDown, Refused, TusClient
from .watch import FolderWatcher

COMMANDS = ("serve", "receive", "watch")


def _say(message: str) -> None:
    sys.stderr.write(message.lstrip("\r") + "\n")
    sys.stderr.flush()


def parse_args(argv: list[str]) -> argparse.Namespace:
    from .cli import _default_state_dir

    command, rest = argv[0], argv[1:]
    p = argparse.ArgumentParser(
        prog=f"joliba-push {command}",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help="fichier TOML d'options (clés = noms des options)")
    p.add_argument("--server", help="adresse du centre ; sans elle, les examens restent dans la file")
    p.add_argument("--token", default=os.environ.get("JOLIBA_TOKEN"))
    p.add_argument("--state-dir", type=Path, default=_default_state_dir())
    p.add_argument("--aet", default="JOLIBA_AGENT", help="titre AE de l'agent (appelé)")
    p.add_argument("--host", default="0.0.0.0", help="adresse d'écoute du récepteur DICOM")
    p.add_argument("--port", type=int, help="port du récepteur DICOM (C-STORE, C-ECHO)")
    p.add_argument(
        "--allow", action="append", default=None, help="appelant autorisé : AET ou AET@hôte (répétable)"
    )
    p.add_argument("--watch", type=Path, help="dossier surveillé (appareils qui exportent des fichiers)")
    p.add_argument("--refused-dir", type=Path, help="où vont les fichiers refusés (défaut : STATE/refused)")
    p.add_argument("--quiet", type=float, default=30.0, help="un examen est complet après N s sans image")
    p.add_argument("--poll", type=float, default=2.0, help="intervalle de lecture du dossier surveillé (s)")
    p.add_argument("--max-spool-mb", type=int, default=20_000, help="au-delà, « plus de place » (0xA700)")
    p.add_argument("--min-free-mb", type=int, default=500, help="place à laisser libre sur le disque")
    p.add_argument("--policy", choices=["lossless", "lossy"], default="lossless")
    p.add_argument("--priority", choices=["routine", "urgent", "stat"], default="routine")
    p.add_argument(
        "--priority-rule",
        action="append",
        default=None,
        help="règle du site MODALITÉ=priorité, ex. CT=urgent",
    )
    p.add_argument("--indication", default="")
    p.add_argument("--chunk-size", type=int, default=2 * 1024**2)
    p.add_argument("--retry-base", type=float, default=0.5)
    pre, _ = p.parse_known_args(rest)
    if pre.config:
        with pre.config.open("rb") as f:
            options: dict[str, Any] = {k.replace("-", "_"): v for k, v in tomllib.load(f).items()}
        for key in ("state_dir", "watch", "refused_dir"):
            if key in options:
                options[key] = Path(options[key])
        p.set_defaults(**options)
    args = p.parse_args(rest)
    args.command = command
    args.allow = args.allow or []
    if command == "receive" and args.port is None:
        p.error("--port est requis")
    if command == "watch" and not args.watch:
        p.error("--watch est requis")
    if command == "serve" and args.port is None and not args.watch:
        p.error("--port (récepteur DICOM) ou --watch (dossier surveillé), ou les deux")
    if args.port is not None and command != "watch" and not args.allow:
        p.error("--allow AET[@hôte] : au moins un appelant autorisé")
    if args.server and not args.token:
        p.error("--token (ou JOLIBA_TOKEN) est requis avec --server")
    try:
        args.rules = dict(_rule(r) for r in args.priority_rule or [])
        args.allowed = [Allowed.parse(a) for a in args.allow]
    except ValueError as exc:
        p.error(str(exc))
    return args


def _rule(text: str) -> tuple[str, str]:
    modality, _, priority = text.partition("=")
    if priority not in ("routine", "urgent", "stat") or not modality:
        raise ValueError(f"règle invalide : {text!r} (ex. CT=urgent)")
    return modality.strip().upper(), priority


def main(argv: list[str]) -> int:
    from .cli import _lock

    args = parse_args(argv)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    spool = Spool(
        args.state_dir / "spool", max_bytes=args.max_spool_mb * 2**20, min_free_bytes=args.min_free_mb * 2**20
    )
    refused = args.refused_dir or args.state_dir / "refused"
    grouper = Grouper(
        spool,
        quiet_s=args.quiet,
        policy=SitePolicy(mode=args.policy),
        priority=args.priority,
        rules=args.rules,
        indication=args.indication,
        lock_path=args.state_dir / "enqueue.lock",
        refused_dir=refused,
        say=_say,
    )
    watcher = None
    if args.watch and args.command != "receive":
        watcher = FolderWatcher(args.watch, spool, refused_dir=refused, quiet_s=args.quiet, say=_say)
    receiver = None
    if args.port is not None and args.command != "watch":
        receiver = Receiver(spool, aet=args.aet, allowed=args.allowed, say=_say)
        receiver.stream_to_disk()
        receiver.start(args.host, args.port)
    grouping = threading.Thread(target=_group_loop, args=(args, grouper, watcher, stop), daemon=True)
    grouping.start()
    try:
        if args.server:
            _send_loop(args, stop, _lock)
        else:
            stop.wait()
    finally:
        stop.set()
        if receiver:
            receiver.stop()
        grouping.join(timeout=30)
    return 0


def _group_loop(
    args: argparse.Namespace, grouper: Grouper, watcher: FolderWatcher | None, stop: threading.Event
) -> None:
    queue = Queue(args.state_dir)  # its own SQLite connection: this thread's
    while not stop.is_set():
        try:
            if watcher:
                watcher.tick()
            grouper.tick(queue)
        except Exception as exc:  # a bad disk moment: said, and tried again; the spool keeps all
            _say(f"Regroupement interrompu : {exc!r}")
        stop.wait(min(args.poll, max(args.quiet / 4, 0.2)))


def _send_loop(args: argparse.Namespace, stop: threading.Event, lock: Any) -> None:
    queue = Queue(args.state_dir)
    client = TusClient(args.server, args.token, chunk_size=args.chunk_size)
    sender_lock = None
    last_check = 0.0
    while not stop.is_set():
        if sender_lock is None:
            sender_lock = lock(args.state_dir / "sender.lock", blocking=False)
            if sender_lock is None:  # a `joliba-push PATH` is sending this queue: it will finish it
                stop.wait(5)
                continue
        try:
            Sender(queue, client, say=_say, backoff=Backoff(base=args.retry_base)).run(time.monotonic() + 60)
            if time.monotonic() - last_check > 5:
                last_check = time.monotonic()
                for mid in queue.open_manifests():
                    if client.manifest_status(mid)["complete"]:
                        queue.mark_complete(mid)
                        _say(f"Examen {mid[:8]} : complet au centre")
        except LinkDown as exc:
            _say(f"Liaison interrompue ({exc})")
        except Refused as exc:  # the token, most often: keep receiving, say it, try again later
            _say(f"Le centre refuse : {exc.reason or exc.code} ; nouvel essai dans une minute")
            stop.wait(60)
        stop.wait(1.0)
