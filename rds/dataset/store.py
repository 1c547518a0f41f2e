"""The domain's private data: Parquet for DuckDB plus a memory-mappable Arrow file.

Private data never enters syft (DESIGN.md invariant 2). Each dataset is a directory
``private/<name>/`` holding ``data.parquet`` (for SQL) and ``data.arrow`` (an uncompressed
Arrow IPC file the sandbox maps zero-copy), and nothing else, so the directory can be
mounted read-only into a sandbox as it is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rds.errors import InvalidInput
from rds.sandbox.load import read_table, write_table
from rds.sandbox.sql import TABLE_NAME


def check_name(name: str) -> str:
    """Dataset names double as SQL table names: letters, digits and ``_``."""
    if not isinstance(name, str) or not TABLE_NAME.fullmatch(name):
        raise InvalidInput(
            f"Invalid dataset name {name!r}: use 1-63 letters, digits or underscores, "
            "starting with a letter (it becomes the SQL table name)."
        )
    return name


class PrivateStore:
    """Read and write private datasets under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def directory(self, name: str) -> Path:
        return self.root / check_name(name)

    def put(self, name: str, data: pd.DataFrame) -> Path:
        """Store ``data`` (replacing any earlier version) and return its directory."""
        final = self.directory(name)
        staging = self.root / f".{name}.staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700, parents=True)
        # write_table refuses columns Arrow cannot hold, with a message for the owner.
        write_table(data.reset_index(drop=True), staging / "data.arrow")
        pq.write_table(pa.Table.from_pandas(data, preserve_index=False), staging / "data.parquet")
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
        return final

    def read(self, name: str) -> pd.DataFrame:
        return read_table(self.directory(name) / "data.arrow")

    def names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and TABLE_NAME.fullmatch(p.name)
        )
