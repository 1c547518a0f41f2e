"""A dataset on a domain, as a scientist sees it: metadata and mock, never private rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

import pandas as pd

from rds._syft.submission import sql_function
from rds.errors import InvalidInput, MockRunFailed, SQLError
from rds.scientist.local import run_in_kernel, source_of
from rds.scientist.request import Request

if TYPE_CHECKING:
    from rds._syft.client import DatasetRecord
    from rds.dp.mechanism import DPPreview
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
        """Columns with dtype, nullability, declared numeric bounds and public categories."""
        columns = ["name", "dtype", "nullable", "bounds", "categories"]
        return pd.DataFrame(self._record.meta.get("schema", []), columns=columns)

    @property
    def policy(self) -> DatasetPolicy:
        """How results from this dataset are released (a dict; a table in a notebook)."""
        return DatasetPolicy(self._record.meta.get("policy", {}))

    @property
    def privacy_unit(self) -> dict[str, Any]:
        """Who a record belongs to: ``{"column": ..., "max_contributions": k}``.

        Differentially private answers protect each such individual (each row when the
        column is ``None``), counting at most ``k`` of their rows.
        """
        return dict(
            self._record.meta.get("privacy_unit") or {"column": None, "max_contributions": 1}
        )

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
        reason = _reason(reason)
        source, name = source_of(fn)
        mock_result = run_in_kernel(source, name, self.mock)
        meta = {"kind": "python", "function": name, "datasets": [self.name]}
        return self._submit(source, [self], meta, reason=reason, mock_result=mock_result)

    @overload
    def sql(
        self,
        query: str,
        *,
        reason: str,
        epsilon: float | None = None,
        delta: float | None = None,
        dry_run: Literal[False] = False,
    ) -> Request: ...

    @overload
    def sql(
        self,
        query: str,
        *,
        reason: str | None = None,
        epsilon: float,
        delta: float | None = None,
        dry_run: Literal[True],
    ) -> DPPreview: ...

    def sql(
        self,
        query: str,
        *,
        reason: str | None = None,
        epsilon: float | None = None,
        delta: float | None = None,
        dry_run: bool = False,
    ) -> Request | DPPreview:
        """Ask for the result of a SQL query (DuckDB dialect) over the domain's datasets.

        Tables are addressed by dataset name; this dataset's name is ``self.name``. The
        query runs on the mock first (``req.mock_result``), so mistakes show before anything
        is sent. Without ``epsilon`` the exact result goes through the owner's disclosure
        checks (each output cell needs enough people, no dominant contributor, no
        individual rows) and always waits for the owner's decision. With ``epsilon`` it is
        answered with differential privacy (released at once under ``auto_release="dp"``):
        COUNT/SUM/AVG, grouped only by columns with public categories, noise calibrated to
        the owner's declared bounds, ε taken from your budget (``session.budget(name)``).

        ``dry_run=True`` (with ``epsilon``) plans the DP query exactly as a submission would
        and returns its expected error instead (a ``DPPreview``: noise mechanism and scale,
        and each measure's 95% half-width; an AVG's by the group's count): nothing is
        submitted, no ε is spent, no data is read, and ``reason`` is not needed. An ε under
        the owner's minimum, or beyond what is left of the budget, is refused as it would be
        on submission.

        Examples
        --------
        >>> ds.sql("SELECT ward, COUNT(*) AS n FROM patients GROUP BY ward", reason="...")
        >>> ds.sql("SELECT ward, AVG(age) FROM patients GROUP BY ward", epsilon=0.5, reason="...")
        >>> ds.sql("SELECT ward, AVG(age) FROM patients GROUP BY ward", epsilon=0.5, dry_run=True)
        """
        from rds.checks.sql import check_query

        session = self._session
        if dry_run:
            if epsilon is None:
                raise InvalidInput(
                    "dry_run=True previews the error of a differentially private query; "
                    "pass epsilon= too."
                )
            session.budget(self.name).check(epsilon, delta or 0.0)  # as a submission would
            return self._preview_dp(query, epsilon, delta)
        reason = _reason(reason or "")
        checked = check_query(query, datasets=session.dataset_names())
        tables = {name: session.dataset(name) for name in checked.datasets}
        meta: dict[str, Any] = {"sql": query.strip(), "datasets": list(checked.datasets)}
        if epsilon is None:
            if delta is not None:
                raise InvalidInput(
                    "delta= applies to differentially private queries; pass epsilon= too."
                )
            mock_result = _on_mock(checked.sql, tables)
            meta["kind"] = "sql"
        else:
            # The budget first (a minimum ε per request, exact sums): no plan for ε=1e-300.
            session.budget(self.name).check(epsilon, delta or 0.0)
            plan, mock_result = self._plan_dp(checked.sql, checked.datasets, epsilon, delta)
            session.budget(self.name).check(epsilon, plan.delta)
            meta.update(kind="dp", epsilon=float(epsilon), delta=plan.delta)
        source = sql_function(checked.datasets)
        datasets = [tables[name] for name in checked.datasets]
        return self._submit(source, datasets, meta, reason=reason, mock_result=mock_result)

    def _plan_dp(
        self, sql: str, names: tuple[str, ...], epsilon: float, delta: float | None
    ) -> tuple[Any, Any]:
        from rds.dp.mechanism import release_dp

        plan = self._dp_plan(sql, names, epsilon, delta)
        exact = _on_mock(plan.sql, {self.name: self})
        return plan, release_dp(plan, exact).frame

    def _dp_plan(
        self, sql: str, names: tuple[str, ...], epsilon: float, delta: float | None
    ) -> Any:
        """The DP plan of ``sql`` from this dataset's public metadata alone."""
        from rds.dataset.publish import schema_for_dp
        from rds.dp.mechanism import plan_dp_query

        if names != (self.name,):
            raise InvalidInput(
                f"A differentially private query reads one dataset, {self.name!r}; this one "
                f"reads {list(names)}."
            )
        # The scientist cannot know whether capping is needed; planning as if it were
        # checks the same query shapes and gives the same noise (the cap changes only
        # which rows count).
        unit = (self._record.meta.get("privacy_unit") or {}).get("column")
        schema = schema_for_dp(self.name, self._record.meta, needs_cap=unit is not None)
        return plan_dp_query(sql, schema, epsilon=epsilon, delta=delta)

    def _preview_dp(self, query: str, epsilon: float, delta: float | None) -> DPPreview:
        """``sql(..., dry_run=True)``: the expected error, from public metadata only."""
        from rds.checks.sql import check_query
        from rds.dp.mechanism import preview_error

        checked = check_query(query, datasets=self._session.dataset_names())
        return preview_error(self._dp_plan(checked.sql, checked.datasets, epsilon, delta))

    def _submit(
        self,
        source: str,
        datasets: list[RemoteDataset],
        meta: dict[str, Any],
        *,
        reason: str,
        mock_result: Any,
    ) -> Request:
        meta = {"v": 1, "dataset": datasets[0].name, "reason": reason, **meta}
        conn = self._session._conn
        request_id = conn.submit(source=source, datasets=[d._record for d in datasets], meta=meta)
        if self._session._on_submit is not None:  # embedded: the owner's policy, now
            self._session._on_submit(request_id)
        return Request(self._session, request_id, meta=meta, mock_result=mock_result)

    def __repr__(self) -> str:
        return f"<rds.RemoteDataset {self.name!r}: {self.rows} rows, {len(self.schema)} columns>"

    def _repr_html_(self) -> str:
        from rds.scientist.views import dataset_html

        return dataset_html(self)


class DatasetPolicy(dict[str, Any]):
    """A dataset's release policy as the owner set it: release path, disclosure-check
    thresholds, ε budget, sandbox limits. A dict; in a notebook, a table that says what
    each setting means."""

    def _repr_html_(self) -> str:
        from rds.scientist.views import policy_html

        return policy_html(self)


class DatasetList(list[RemoteDataset]):
    """The datasets of a domain; index by position or by name, or see them as a table.

    Examples
    --------
    >>> session.datasets["patients"].mock.head()
    >>> session.datasets.to_frame()
    """

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            for dataset in self:
                if dataset.name == key:
                    return dataset
            from rds.errors import DatasetNotFound

            raise DatasetNotFound(key, self.names)
        return super().__getitem__(key)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self]

    def to_frame(self) -> pd.DataFrame:
        """Name, description, rows, columns, release policy and contact of each dataset."""
        rows = [
            {
                "name": d.name,
                "description": d.description,
                "rows": d.rows,
                "columns": len(d._record.meta.get("schema", [])),
                "policy": d.policy.get("release"),
                "contact": d.contact,
            }
            for d in self
        ]
        columns = ["name", "description", "rows", "columns", "policy", "contact"]
        return pd.DataFrame(rows, columns=columns)

    def _repr_html_(self) -> str:
        from rds.scientist.views import datasets_html

        return datasets_html(self)


def _reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("Say why you need this result (reason=...); the owner reads it.")
    return reason.strip()


def _on_mock(sql: str, tables: dict[str, RemoteDataset]) -> Any:
    """Run ``sql`` on the datasets' mocks; a failure means nothing is submitted."""
    from rds.sandbox.sql import execute

    try:
        return execute(sql, {name: ds.mock for name, ds in tables.items()})
    except Exception as exc:
        if isinstance(exc, InvalidInput) and not isinstance(exc, SQLError):
            raise  # a bad table or argument, not a query that failed on the mock
        raise MockRunFailed(
            f"The query failed on the mock data, so it was not submitted: {exc}"
        ) from exc
