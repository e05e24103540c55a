"""The agent as a DICOM archive on the site's network (C-STORE SCP, pynetdicom): a CR reader or
a CT console sends to it as to any PACS.

An instance is answered Success only once it is on disk (spool.py: written, fsynced, renamed,
folder fsynced); if it cannot be stored the answer is a failure status and the modality keeps it
and retries. Only the configured calling AE titles (optionally from a given host) may associate.
Verification (C-ECHO) is supported; every storage SOP class is accepted in every transfer syntax
the modality proposes, compressed ones kept as they are (the agent recompresses for the link).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, _config, evt
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from .spool import BadInstance, Spool, SpoolFull

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # Storage: Refused, out of resources (the modality retries later)
CANNOT_UNDERSTAND = 0xC000  # Storage: Error, cannot understand (no usable UIDs)
NOT_AUTHORIZED = 0x0124  # Refused: not authorized (an allowed AE title from a foreign host)


@dataclass(frozen=True)
class Allowed:
    """One entry of the allow-list: "AET" (from any host) or "AET@host"."""

    aet: str
    host: str | None = None

    @classmethod
    def parse(cls, text: str) -> Allowed:
        aet, _, host = text.partition("@")
        if not aet.strip() or len(aet.strip()) > 16:
            raise ValueError(f"titre AE invalide : {text!r}")
        return cls(aet.strip(), host.strip() or None)

    def admits(self, aet: str, host: str) -> bool:
        return aet.strip() == self.aet and (self.host is None or self.host == host)


class Receiver:
    def __init__(
        self,
        spool: Spool,
        *,
        aet: str,
        allowed: Iterable[Allowed],
        say: Callable[[str], None] = print,
    ) -> None:
        self.spool, self.allowed, self.say = spool, list(allowed), say
        if not self.allowed:
            raise ValueError("aucun appelant autorisé (--allow AET ou AET@hôte)")
        self.ae = AE(ae_title=aet)
        self.ae.require_called_aet = True  # a console configured for another archive is told so
        self.ae.add_supported_context(Verification)
        for context in AllStoragePresentationContexts:
            assert context.abstract_syntax is not None  # built from a UID
            self.ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        self.ae.maximum_associations = 8
        self.ae.network_timeout = 60
        self.ae.dimse_timeout = 120
        self.stored = 0
        self._count = threading.Lock()
        self._server: Any = None

    def stream_to_disk(self) -> None:
        """For the service's own process (global pynetdicom and tempfile settings): each dataset
        is written to spool/tmp as it arrives and renamed into place, never held in memory whole
        (a 300 MB mammography tomosynthesis, eight associations at once)."""
        import tempfile

        _config.STORE_RECV_CHUNKED_DATASET = True
        tempfile.tempdir = str(self.spool.tmp)

    def start(self, host: str, port: int) -> None:
        handlers: list[Any] = [
            (evt.EVT_REQUESTED, self._on_request),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
        ]
        self._server = self.ae.start_server((host, port), block=False, evt_handlers=handlers)
        self.say(f"Réception DICOM : {self.ae.ae_title} sur le port {port}")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _admitted(self, event: evt.Event) -> bool:
        requestor = event.assoc.requestor
        return any(a.admits(requestor.ae_title, requestor.address) for a in self.allowed)

    def _on_request(self, event: evt.Event) -> None:
        requestor = event.assoc.requestor
        assert requestor.primitive is not None  # EVT_REQUESTED comes with the request
        aet, host = requestor.primitive.calling_ae_title, requestor.address
        requestor.ae_title = aet
        if not self._admitted(event):
            self.say(f"Association refusée : {aet.strip()!r} depuis {host} n'est pas autorisé")
            # Rejected permanent, by the service user: calling AE title not recognised.
            event.assoc.acse.send_reject(0x01, 0x01, 0x03)
            event.assoc.kill()  # as pynetdicom's own rejections do: the PDU goes out, then the socket closes

    def _on_echo(self, event: evt.Event) -> int:
        return SUCCESS if self._admitted(event) else NOT_AUTHORIZED

    def _on_store(self, event: evt.Event) -> int | Dataset:
        if not self._admitted(event):
            return NOT_AUTHORIZED
        try:
            self.spool.check_room()  # before decoding anything: a full spool answers at once
            if _config.STORE_RECV_CHUNKED_DATASET:  # serve.py: streamed to a file in spool/tmp
                path = event.dataset_path
                head: Dataset = dcmread(path, stop_before_pixels=True)
                self.spool.adopt(path, head.get("StudyInstanceUID", ""), head.get("SOPInstanceUID", ""))
            else:
                ds = event.dataset
                data = event.encoded_dataset()  # the bytes as sent: compressed pixel data untouched
                self.spool.store_bytes(data, ds.get("StudyInstanceUID", ""), ds.get("SOPInstanceUID", ""))
        except SpoolFull as exc:
            self.say(f"Instance refusée (place) : {exc}")
            return _status(OUT_OF_RESOURCES, str(exc))
        except BadInstance as exc:
            self.say(f"Instance refusée : {exc}")
            return _status(CANNOT_UNDERSTAND, str(exc))
        except OSError as exc:  # disk error, read-only file system...: not stored, so not Success
            self.say(f"Instance non enregistrée : {exc}")
            return _status(OUT_OF_RESOURCES, f"écriture impossible : {exc.strerror or exc}")
        except Exception as exc:  # a dataset pydicom cannot parse
            self.say(f"Instance illisible : {exc}")
            return _status(CANNOT_UNDERSTAND, f"illisible : {str(exc)[:60]}")
        with self._count:
            self.stored += 1
        return SUCCESS


def _status(code: int, comment: str) -> Dataset:
    status = Dataset()
    status.Status = code
    status.ErrorComment = comment.encode("ascii", "replace").decode()[:64]
    return status
