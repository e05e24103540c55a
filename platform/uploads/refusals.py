"""Why the server will not honour a request about a transfer or a manifest."""

from __future__ import annotations

from ingest.verdicts import describe


class UploadRefused(Exception):
    """`status` is the HTTP answer, `code` says why (ingest.verdicts renders it, in the language
    of whoever asked)."""

    retry_after: int | None = None

    def __init__(self, status: int, code: str, **params: object) -> None:
        super().__init__(code)
        self.status, self.code, self.params = status, code, params

    @property
    def reason(self) -> str:
        return describe(self.code, self.params)
