"""What crosses from owner to scientist through syft: a small self-describing envelope.

``MAGIC | 4-byte header length | JSON header | payload``. The header says whether the run
succeeded, the safe failure summary, any logs the owner chose to release, the check report
as the scientist may see it (verdicts and explanations, no figures), and for differentially
private answers the ε spent and noise scales; the payload is the sandbox codec's bytes,
passed on untouched (never pickle).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from rds.errors import DomainError

MAGIC = b"RDSREL1\n"


@dataclass(frozen=True)
class Release:
    ok: bool
    payload: bytes
    summary: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    checks: dict[str, Any] | None = None
    privacy: dict[str, Any] | None = None

    def pack(self) -> bytes:
        header = json.dumps(
            {
                "ok": self.ok,
                "summary": self.summary,
                "stdout": self.stdout,
                "stderr": self.stderr,
                "checks": self.checks,
                "privacy": self.privacy,
            }
        ).encode()
        return MAGIC + struct.pack(">I", len(header)) + header + self.payload

    @classmethod
    def unpack(cls, data: bytes) -> Release:
        if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
            raise DomainError(
                "The released result is not an rds release (was it deposited by rds?)."
            )
        (size,) = struct.unpack(">I", data[len(MAGIC) : len(MAGIC) + 4])
        start = len(MAGIC) + 4
        try:
            header = json.loads(data[start : start + size])
        except ValueError:
            raise DomainError("The released result's header is corrupt.") from None
        return cls(
            ok=bool(header.get("ok")),
            payload=data[start + size :],
            summary=header.get("summary"),
            stdout=header.get("stdout"),
            stderr=header.get("stderr"),
            checks=header.get("checks"),
            privacy=header.get("privacy"),
        )
