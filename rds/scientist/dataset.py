"""A dataset on a domain, as a scientist sees it: metadata and mock, never private rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from rds.errors import InvalidInput
from rds.scientist.local import run_on_mock, source_of
from rds.scientist.request import Request

if TYPE_CHECKING:
    from rds._syft.client import DatasetRecord
    from rds.scientist.session import Session


class RemoteDataset:
    """Metadata and mock of one published dataset.

    Examples
    --------
    >>> ds = session.dataset("patients")
    >>> ds.schema
    >>> ds.mock.head()
    >>> def mean_age(df):
    ...     return df["age"].mean()
    >>> req = ds.request(mean_age, reason="why I need it")
    """

    def __init__(self, session: Session, record: DatasetRecord) -> None:
        self._session = session
        self._record = record
        self.name = record.name
        self.description = record.description
        self._mock: pd.DataFrame | None = None

    @property
    def rows(self) -> int | None:
        """Row count of the private data."""
        return self._record.meta.get("rows")

    @property
    def schema(self) -> pd.DataFrame:
        """Columns with dtype, nullability and the owner's declared numeric bounds."""
        columns = ["name", "dtype", "nullable", "bounds"]
        return pd.DataFrame(self._record.meta.get("schema", []), columns=columns)

    @property
    def policy(self) -> dict[str, Any]:
        """How results from this dataset are released."""
        return dict(self._record.meta.get("policy", {}))

    @property
    def contact(self) -> str | None:
        """Who to ask about this dataset."""
        return self._record.meta.get("contact")

    @property
    def mock(self) -> pd.DataFrame:
        """Synthetic rows with the private data's schema (a copy each time)."""
        if self._mock is None:
            self._mock = self._record.mock()
        return self._mock.copy()

    def request(self, fn: Callable[[pd.DataFrame], Any], *, reason: str) -> Request:
        """Run ``fn`` on the mock, then ask the owner to run it on the private data.

        ``fn`` takes the dataset as a DataFrame and must be self-contained (import inside
        it; ``pd`` and ``np`` are provided). If it fails on the mock it is not submitted.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("Say why you need this result (reason=...); the owner reads it.")
        source, name = source_of(fn)
        mock_result = run_on_mock(source, name, self.mock)
        meta = {
            "v": 1,
            "kind": "python",
            "dataset": self.name,
            "function": name,
            "reason": reason.strip(),
        }
        conn = self._session._conn
        request_id = conn.submit(source=source, dataset=self._record, meta=meta)
        domain = self._session._domain
        if domain is not None:
            domain.note_submission(conn.request(request_id))
        return Request(
            self._session, request_id, dataset=self.name, function=name, mock_result=mock_result
        )

    def __repr__(self) -> str:
        return f"<rds.RemoteDataset {self.name!r}: {self.rows} rows, {len(self.schema)} columns>"
