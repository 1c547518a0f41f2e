"""Whether a syft server answers at an address: the one place outside syft that knows its
metadata route. Plain ``urllib``, no syft import: the panel probes many domains cheaply.

Examples
--------
>>> probe("http://127.0.0.1:8081", timeout=3)["syft_version"]
'0.9.5'
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from rds.errors import DomainUnreachable

#: syft 0.9.5's unauthenticated metadata route (mounted by ``rds._syft.http_main``).
METADATA_ROUTE = "/api/v2/metadata"


def probe(url: str, *, timeout: float) -> dict[str, Any]:
    """syft's metadata at ``url`` (it names ``syft_version``).

    Raises
    ------
    DomainUnreachable
        When nothing answers within ``timeout`` seconds, or the answer is not syft's.
    """
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}{METADATA_ROUTE}", timeout=timeout) as resp:  # noqa: S310
            body = json.loads(resp.read())
    except (OSError, ValueError) as exc:  # URLError and timeouts are OSErrors
        reason = getattr(exc, "reason", exc)
        raise DomainUnreachable(f"no answer from {url}: {reason}") from None
    if not isinstance(body, dict):
        raise DomainUnreachable(f"no syft server at {url}: its metadata is not a JSON object")
    return body


def answers(url: str, *, timeout: float) -> bool:
    """Whether a syft server answers at ``url`` within ``timeout`` seconds."""
    try:
        probe(url, timeout=timeout)
    except DomainUnreachable:
        return False
    return True
