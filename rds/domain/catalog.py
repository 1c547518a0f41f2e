"""A domain's datasets over time: publish, replace with a new version, unpublish.

Every change is in the ledger (``published``, ``replaced``, ``unpublished``) and nothing is
thrown away: a replaced or unpublished dataset's private files move to
``private/.archive/<name>/v<version>/`` (owner-only, never mounted into a run), and syft
keeps the old assets, so requests made against them and results already released stay
readable.

What happens to the requests already made:

- after ``replace`` they keep working: a request waiting for a decision runs on the new
  version. A preview made on the old version cannot be approved (the run names the version
  it read); run it again. ε spent on the dataset stays spent: the new version holds the
  same people, so the scientist's budget goes on across versions.
- after ``unpublish`` every request still waiting on the dataset is denied, with a reason
  that says so (ε reserved for it is given back).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rds.dataset.mock import synthesize_mock
from rds.dataset.publish import Bounds, Categories, load_data, schema
from rds.dataset.publish import privacy_unit as _privacy_unit
from rds.errors import DatasetNotFound, InvalidInput
from rds.worker.layout import write_private
from rds.worker.policy import Policy

if TYPE_CHECKING:
    from rds.domain.domain import Domain

#: ``Domain.replace``'s default for what the earlier version declared: keep it.
KEEP: Any = object()


@dataclass(frozen=True)
class Prepared:
    """A dataset checked and described, before anything is written."""

    frame: pd.DataFrame
    columns: list[dict[str, Any]]
    unit: dict[str, Any]
    capped: dict[str, int]
    policy: Policy
    mock: pd.DataFrame
    dates: list[str]
    contact: str


def prepare(
    domain: Domain,
    data: pd.DataFrame | str | Path,
    *,
    mock: pd.DataFrame | None,
    policy: Policy | None,
    bounds: Bounds | None,
    categories: Categories | None,
    privacy_unit: str | None,
    max_contributions: int,
    contact: str | None,
    mock_rows: int | None,
    parse_dates: bool | Sequence[str] | Mapping[str, str | None] | None,
    dtypes: Mapping[str, str] | None,
    carried: Collection[str] = (),
) -> Prepared:
    """Read and check everything ``publish`` and ``replace`` are given; write nothing.

    ``carried`` names the declarations (``"bounds"``, ``"categories"``) an earlier version
    made: those of columns the new data no longer has are dropped, not refused.
    """
    frame, dates = load_data(data, parse_dates=parse_dates, dtypes=dtypes)
    present = set(frame.columns)
    if "bounds" in carried and bounds:
        bounds = {c: v for c, v in bounds.items() if c in present}
    if "categories" in carried and categories:
        categories = {c: v for c, v in categories.items() if c in present}
    columns = schema(frame, bounds, categories)
    unit, capped = _privacy_unit(frame, privacy_unit, max_contributions)
    policy = policy or Policy()
    if not isinstance(policy, Policy):
        raise InvalidInput(f"policy= takes an rds.Policy, not {type(policy).__name__}.")
    policy.check_columns(frame.columns)
    if mock is None:
        mock = synthesize_mock(frame, rows=mock_rows)
    elif list(mock.columns) != list(frame.columns):
        raise InvalidInput(
            f"The mock's columns {list(mock.columns)} differ from the data's {list(frame.columns)}."
        )
    return Prepared(frame, columns, unit, capped, policy, mock, dates, contact or domain.owner)


def commit(
    domain: Domain, name: str, ready: Prepared, *, description: str, event: str, **extra: Any
) -> dict[str, Any]:
    """Write a prepared dataset: private store, owner's files, syft, then the ledger."""
    meta = {
        "rows": len(ready.frame),
        "schema": ready.columns,
        "privacy_unit": ready.unit,
        "policy": ready.policy.describe(),
        "contact": ready.contact,
    }
    version = int(extra.get("version", 1))
    directory = domain.store.put(name, ready.frame)
    write_private(domain._policy_file(name), json.dumps(ready.policy.describe()))
    private = {
        "description": description,
        **meta,
        "needs_cap": ready.capped["capped"] > 0,
        "version": version,
    }
    write_private(domain._meta_file(name), json.dumps(private))
    domain._conn.upload_dataset(name, description=description, mock=ready.mock, meta=meta)
    domain.ledger.append(
        event,
        actor=domain.owner,
        dataset=name,
        rows=len(ready.frame),
        columns=len(ready.columns),
        policy=ready.policy.describe(),
        directory=directory.name,
        capped=ready.capped,
        dates=ready.dates,
        **extra,
    )
    return {
        "name": name,
        "description": description,
        **meta,
        "capped": ready.capped,
        "dates": ready.dates,
        "version": version,
    }


def version(domain: Domain, name: str) -> int:
    """The dataset's version: 1 when published, one more with each ``replace``."""
    return int(domain.dataset_info(name).get("version", 1))


def replace(
    domain: Domain,
    name: str,
    data: pd.DataFrame | str | Path,
    *,
    note: str | None,
    given: dict[str, Any],
) -> dict[str, Any]:
    """Publish ``data`` as the next version of ``name``; see ``Domain.replace``."""
    old = domain.dataset_info(name)
    kept = _declared(old)
    options: dict[str, Any] = {k: (kept.get(k) if v is KEEP else v) for k, v in given.items()}
    description = str(options.pop("description") or "")
    if options.get("policy") is None:
        options["policy"] = domain.policy(name)
    carried = {k for k in ("bounds", "categories") if given[k] is KEEP}
    ready = prepare(domain, data, carried=carried, **options)
    before = version(domain, name)
    published = {r.name: r for r in domain._conn.datasets()}.get(name)
    old_mock = published.mock() if published is not None else ready.mock.head(0)
    archived = _archive(domain, name, before)
    domain._conn.remove_dataset(name)
    try:
        return commit(
            domain,
            name,
            ready,
            description=description,
            event="replaced",
            version=before + 1,
            previous_rows=old.get("rows"),
            archived=str(archived.relative_to(domain.layout.root)),
            note=(note or "").strip() or None,
        )
    except Exception:
        _restore(domain, name, archived)
        public = {k: old[k] for k in ("rows", "schema", "privacy_unit", "policy", "contact")}
        domain._conn.remove_dataset(name)  # whatever half of the new version got there
        domain._conn.upload_dataset(name, description=description, mock=old_mock, meta=public)
        raise


def unpublish(domain: Domain, name: str, *, note: str | None) -> list[str]:
    """Withdraw ``name``; see ``Domain.unpublish``. Returns the requests it denied."""
    info = domain.dataset_info(name)  # DatasetNotFound if it is not published
    reason = f"The data owner withdrew the dataset {name!r}; this request can no longer run."
    if note and note.strip():
        reason += f" ({note.strip()})"
    denied = domain.requests.waiting.where(dataset=name).deny(reason)
    domain._conn.remove_dataset(name)
    archived = _archive(domain, name, int(info.get("version", 1)))
    domain.ledger.append(
        "unpublished",
        actor=domain.owner,
        dataset=name,
        version=int(info.get("version", 1)),
        denied=denied,
        archived=str(archived.relative_to(domain.layout.root)),
        note=(note or "").strip() or None,
    )
    return denied


def _declared(info: dict[str, Any]) -> dict[str, Any]:
    """What the owner declared when publishing, from the owner's record of the dataset."""
    columns = info.get("schema", [])
    unit = info.get("privacy_unit") or {}
    return {
        "description": info.get("description", ""),
        "bounds": {c["name"]: tuple(c["bounds"]) for c in columns if c.get("bounds")} or None,
        "categories": {c["name"]: c["categories"] for c in columns if c.get("categories")} or None,
        "privacy_unit": unit.get("column"),
        "max_contributions": int(unit.get("max_contributions") or 1),
        "contact": info.get("contact"),
    }


def _archive(domain: Domain, name: str, number: int) -> Path:
    """Move the dataset's private files to ``private/.archive/<name>/v<number>/``."""
    root = domain.layout.private / ".archive" / name
    target = root / f"v{number}"
    suffix = 1
    while target.exists():  # a name published again after an unpublish starts at v1 again
        suffix += 1
        target = root / f"v{number}.{suffix}"
    target.mkdir(mode=0o700, parents=True)
    sources = [
        domain.store.directory(name),
        domain._meta_file(name),
        domain._policy_file(name),
    ]
    if not sources[0].exists():
        raise DatasetNotFound(name, domain.store.names())
    for source in sources:
        if source.is_dir():
            shutil.copytree(source, target / source.name)
        elif source.exists():
            shutil.copy2(source, target / source.name)
    shutil.rmtree(domain.store.directory(name))
    for path in sources[1:]:
        path.unlink(missing_ok=True)
    return target


def _restore(domain: Domain, name: str, archived: Path) -> None:
    """Put an archived version back after a replace that failed half-way."""
    directory = domain.store.directory(name)
    if directory.exists():
        shutil.rmtree(directory)
    shutil.copytree(archived / name, directory)
    for path in (domain._meta_file(name), domain._policy_file(name)):
        if (archived / path.name).exists():
            shutil.copy2(archived / path.name, path)
