"""What a data owner decides about a dataset when publishing it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rds.sandbox.limits import SandboxLimits


@dataclass(frozen=True, kw_only=True)
class Policy:
    """Release rules for one dataset; shown to scientists as part of its metadata.

    Parameters
    ----------
    limits
        Sandbox limits for runs on this dataset; the domain's defaults when ``None``.

    Every result is released by a human decision (``Request.approve``) recorded in the
    ledger with the owner's name.

    Examples
    --------
    >>> Policy(limits=SandboxLimits(wall_seconds=60)).describe()["release"]
    'manual review by the data owner'
    """

    limits: SandboxLimits | None = None

    def describe(self) -> dict[str, Any]:
        """A JSON-safe summary for the dataset's public metadata."""
        summary: dict[str, Any] = {"release": "manual review by the data owner"}
        if self.limits is not None:
            summary["limits"] = {
                "cpu_seconds": self.limits.cpu_seconds,
                "memory_mb": self.limits.memory_mb,
                "wall_seconds": self.limits.wall_seconds,
                "output_mb": self.limits.output_mb,
            }
        return summary

    @classmethod
    def from_description(cls, summary: dict[str, Any]) -> Policy:
        """Rebuild the policy from ``describe()``'s output (kept in the domain directory)."""
        limits = summary.get("limits")
        return cls(limits=SandboxLimits(**limits) if limits else None)
