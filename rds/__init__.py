"""rds — remote data science for Jupyter.

A data owner runs a ``Domain``; a data scientist ``connect``s to it, browses metadata and
mock data, and sends requests that run in a sandbox and come back only when released.
``import rds`` does not import syft (that happens on first connection). In IPython and
Jupyter, rds's errors show their message first, compactly; ``%tb`` shows the traceback.
"""

from rds.checks.report import Check, CheckReport
from rds.domain import Credentials, Domain, OwnerRequest, Policy, RunPreview
from rds.dp.budget import Budget
from rds.embedded import connect
from rds.errors import (
    AuthenticationFailed,
    BudgetExceeded,
    DatasetNotFound,
    DomainError,
    DomainUnreachable,
    EpsilonTooSmall,
    InvalidInput,
    LedgerError,
    LimitExceeded,
    MockRunFailed,
    ProfileNotFound,
    QueryRefused,
    RDSError,
    RequestDenied,
    RequestError,
    RequestFailed,
    RequestStateError,
    RequestTimeout,
    ResultTypeRefused,
    SandboxError,
    SandboxUnavailable,
)
from rds.ledger import Ledger
from rds.sandbox.limits import SandboxLimits, WorkerLimits
from rds.scientist import RemoteDataset, Request, Session
from rds.widgets.errors import install as _show_errors_compactly

__version__ = "0.1.0"

# In IPython and Jupyter, an rds error shows its message first; %tb shows the traceback.
_show_errors_compactly()


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The Remote Data panel's routes (``rds.panel``); Jupyter imports them, ``rds`` does not."""
    return [{"module": "rds.panel"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt Remote Data panel, for ``jupyter labextension develop``."""
    return [{"src": "labextension", "dest": "rds-jupyterlab"}]


__all__ = [
    "AuthenticationFailed",
    "Budget",
    "BudgetExceeded",
    "Check",
    "CheckReport",
    "Credentials",
    "DatasetNotFound",
    "Domain",
    "DomainError",
    "DomainUnreachable",
    "EpsilonTooSmall",
    "InvalidInput",
    "Ledger",
    "LedgerError",
    "LimitExceeded",
    "MockRunFailed",
    "OwnerRequest",
    "Policy",
    "ProfileNotFound",
    "QueryRefused",
    "RDSError",
    "RemoteDataset",
    "Request",
    "RequestDenied",
    "RequestError",
    "RequestFailed",
    "RequestStateError",
    "RequestTimeout",
    "ResultTypeRefused",
    "RunPreview",
    "SandboxError",
    "SandboxLimits",
    "SandboxUnavailable",
    "Session",
    "WorkerLimits",
    "connect",
]
