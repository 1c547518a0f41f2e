"""The sandbox: run a scientist's function on private data in a bubblewrap jail.

``run_python`` runs one function and returns a ``RunResult``; results cross the boundary
only through ``codec`` (Arrow IPC, JSON, npy, safetensors; never pickle). ``read_table`` and
``write_table`` are the private store's on-disk format. Importing this package loads neither
pandas, pyarrow nor torch.

Examples
--------
>>> from rds.sandbox import SandboxLimits, run_python
>>> run = run_python(source, "mean_age", datasets=[store / "patients"],
...                  limits=SandboxLimits(cpu_seconds=60))
>>> run.ok, run.value()
(True, 52.3)
"""

from rds.sandbox.codec import ALLOWED_TYPES_DOC, decode, encode
from rds.sandbox.limits import SandboxLimits
from rds.sandbox.load import read_table, write_table
from rds.sandbox.result import RunResult
from rds.sandbox.runner import bwrap_available, run_python

__all__ = [
    "ALLOWED_TYPES_DOC",
    "RunResult",
    "SandboxLimits",
    "bwrap_available",
    "decode",
    "encode",
    "read_table",
    "run_python",
    "write_table",
]
