"""The sandbox: run a scientist's function or SQL query on private data in a bubblewrap jail.

``run_python`` runs one function and ``run_sql`` one DuckDB query, each returning a
``RunResult``; results cross the boundary only through ``codec`` (Arrow IPC, JSON, npy,
safetensors; never pickle). ``execute_sql`` is the locked-down DuckDB query that ``run_sql``
runs in the jail, for running the same query on mock frames. ``read_table``, ``read_arrow``
and ``write_table`` are the private store's on-disk format. Importing this package loads
neither pandas, pyarrow, duckdb nor torch.

Examples
--------
>>> from rds.sandbox import SandboxLimits, run_python, run_sql
>>> run = run_python(source, "mean_age", datasets=[store / "patients"],
...                  limits=SandboxLimits(cpu_seconds=60))
>>> run.ok, run.value()
(True, 52.3)
>>> run_sql("SELECT ward, count(*) AS n FROM patients GROUP BY ward",
...         tables={"patients": store / "patients"}).value()
     ward  n
0  cardio  2
1    onco  3
"""

from rds.errors import SQLError
from rds.sandbox.codec import ALLOWED_TYPES_DOC, decode, encode
from rds.sandbox.limits import SandboxLimits
from rds.sandbox.load import read_arrow, read_table, write_table
from rds.sandbox.result import RunResult
from rds.sandbox.runner import bwrap_available, run_python, run_sql
from rds.sandbox.sql import execute as execute_sql

__all__ = [
    "ALLOWED_TYPES_DOC",
    "RunResult",
    "SQLError",
    "SandboxLimits",
    "bwrap_available",
    "decode",
    "encode",
    "execute_sql",
    "read_arrow",
    "read_table",
    "run_python",
    "run_sql",
    "write_table",
]
