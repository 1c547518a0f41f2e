"""Every error rds raises, under one root.

The tree::

    RDSError
    ├── InvalidInput            bad arguments or data given to rds (malformed CSV, bad name, …)
    │   ├── SQLError            DuckDB refused or could not run a query (its message, owner-only)
    │   ├── QueryRefused        the DP planner refuses the query (from the public schema alone)
    │   └── ProfileNotFound     no saved connection profile of that name
    ├── DomainError             a domain could not be created, opened or reached
    │   ├── DomainUnreachable   nothing answers at that URL / the server is not running
    │   └── AuthenticationFailed  wrong email or password
    ├── DatasetNotFound         no dataset of that name on the domain (``.available`` lists them)
    ├── RequestError            a computation request did not produce a released result
    │   ├── MockRunFailed       the function failed on the mock; it was not submitted
    │   ├── RequestDenied       the owner denied it (``.reason``)
    │   ├── RequestFailed       it failed on the private data (``.summary`` is safe to show)
    │   ├── RequestTimeout      no decision within the time asked for
    │   └── BudgetExceeded      a DP request would spend more ε than remains (``.remaining``)
    │       └── EpsilonTooSmall  it asks for less ε than the owner's minimum per request
    ├── RequestStateError       the owner's action does not fit the request's state (decided
    │                           already, not run yet, its stored result changed, checks
    │                           failed and no justification given)
    ├── SandboxError            the sandbox could not run the code or refused its output
    │   ├── SandboxUnavailable  bubblewrap is missing and unsandboxed runs were not allowed
    │   ├── LimitExceeded       CPU, memory, process, wall-clock or output limit hit (``.limit``)
    │   └── ResultTypeRefused   the result is not a type that may cross the boundary
    └── LedgerError             the audit log is unreadable or its hash chain is broken

Messages say what happened and what to do next.
"""

from __future__ import annotations


class RDSError(Exception):
    """Root of every error raised by rds."""


class InvalidInput(RDSError, ValueError):
    """Arguments or data given to rds are not usable."""


class QueryRefused(InvalidInput):
    """The differentially private planner refuses the query, judged on the public schema."""


class ProfileNotFound(InvalidInput):
    """No saved connection profile has that name (the message lists the saved ones)."""


class SQLError(InvalidInput):
    """DuckDB refused or failed to run the query; the message is DuckDB's, for the owner."""


class DomainError(RDSError):
    """A domain could not be created, opened or reached."""


class DomainUnreachable(DomainError):
    """Nothing answers at the domain's address."""


class AuthenticationFailed(DomainError):
    """The domain refused the email and password."""


class DatasetNotFound(RDSError, KeyError):
    """No dataset of that name is published on the domain."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = available
        shown = ", ".join(repr(a) for a in available) or "none"
        super().__init__(f"No dataset named {name!r} on this domain. Published datasets: {shown}.")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class RequestError(RDSError):
    """A computation request did not produce a released result."""


class MockRunFailed(RequestError):
    """The function raised when run on the dataset's mock, so it was not submitted."""


class RequestDenied(RequestError):
    """The data owner denied the request."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"The data owner denied this request: {reason}")


class RequestFailed(RequestError):
    """The request failed when it ran on the private data.

    ``summary`` is a safe description (the exception type only); the private traceback
    stays with the owner unless they release it.
    """

    def __init__(self, summary: str) -> None:
        self.summary = summary
        if summary.startswith("LimitExceeded:"):
            limit = summary.split(":", 1)[1]
            todo = (
                f"Your code hit the domain's {limit} limit on the private data (which may be "
                "larger than the mock). Make it lighter (fewer copies of the data, no "
                "endless loops, a smaller result), or ask the data owner about the limit."
            )
        elif summary == "ResultTypeRefused":
            todo = (
                "Its result is not a type that may leave the sandbox: return a number, "
                "string, list, dict, numpy array or pandas DataFrame/Series."
            )
        else:
            todo = "Run it on the mock to reproduce, fix it, and submit a new request."
        super().__init__(f"The request failed on the private data: {summary}. {todo}")


class RequestTimeout(RequestError, TimeoutError):
    """No decision arrived within the requested time."""


class BudgetExceeded(RequestError):
    """A differentially private request would exceed the owner's privacy budget.

    ``requested`` and ``remaining`` are in ε; nothing was run and nothing was spent.
    """

    def __init__(
        self, *, dataset: str, requested: float, remaining: float, unit: str = "ε"
    ) -> None:
        self.dataset = dataset
        self.requested = requested
        self.remaining = remaining
        self.unit = unit
        super().__init__(
            f"This request would spend {unit}={requested:g} on {dataset!r}, but only "
            f"{unit}={remaining:g} of your budget remains. Ask for less, or ask the data "
            "owner to raise the budget."
        )


class EpsilonTooSmall(BudgetExceeded):
    """A differentially private request asks for less ε than the owner's ``min_epsilon``."""

    def __init__(self, *, dataset: str, requested: float, minimum: float) -> None:
        self.minimum = minimum
        RequestError.__init__(
            self,
            f"This request asks for ε={requested:g} on {dataset!r}, below the data owner's "
            f"minimum of ε={minimum:g} per request. Ask for at least that much.",
        )
        self.dataset, self.requested, self.remaining, self.unit = dataset, requested, 0.0, "ε"


class RequestStateError(RDSError):
    """The owner's action does not fit the request's state: it is decided already, has not
    run yet, its stored result changed since the owner saw it, or its checks failed and
    approving it needs a written justification."""


class SandboxError(RDSError):
    """The sandbox could not run the code, or refused what it returned."""


class SandboxUnavailable(SandboxError):
    """bubblewrap is not installed and the owner has not allowed unsandboxed runs."""


class LimitExceeded(SandboxError):
    """A sandbox limit was hit; ``limit`` names which (cpu, memory, processes, wall, output)."""

    def __init__(self, limit: str, message: str) -> None:
        self.limit = limit
        super().__init__(message)


class ResultTypeRefused(SandboxError, TypeError):
    """The result is not a type that may leave the sandbox."""


class LedgerError(RDSError):
    """The audit log is unreadable or its hash chain does not verify."""
