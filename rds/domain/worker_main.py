"""The served domain's worker process: ``python -m rds.domain.worker_main DIR --url URL``.

The loop, the fair queue and the queue cap are ``rds.worker.process``; this entry point,
on the owner's side, only says how to open the ``Domain`` it serves.
"""

from __future__ import annotations

from rds.domain.domain import Domain
from rds.worker import process


def main(argv: list[str] | None = None) -> None:
    process.main(argv, open_domain=lambda layout, conn: Domain(layout, conn=conn))


if __name__ == "__main__":
    main()
