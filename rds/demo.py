"""``make demo``: a local demo domain over HTTP with real data, and JupyterLab on notebooks/.

Seeds (once) scikit-learn's bundled breast-cancer and diabetes tables and a seeded
synthetic ``transactions`` table of 1,000,000 rows — with declared bounds, public categories,
a privacy unit and policies, so SQL and differentially private requests work and are
released by policy — creates a scientist account, serves the domain on 127.0.0.1 and
starts JupyterLab. Ctrl-C, or SIGTERM to this process or to its parent (``make demo``),
stops both (JupyterLab runs in a session of its own, so that one Ctrl-C reaches the demo,
which stops it, instead of Lab's "Shutdown this Jupyter server (y/[n])?" prompt).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rds.domain import serve
from rds.domain.domain import Domain
from rds.profiles import Profile, ProfileStore
from rds.worker.layout import Layout, write_private
from rds.worker.policy import Policy

SCIENTIST_EMAIL = "scientist@demo.example.org"
TRANSACTION_ROWS = 1_000_000
REGIONS = ("north", "south", "east", "west", "central")
CATEGORIES = ("grocery", "fuel", "travel", "dining", "health", "online", "other")
LAB_STOP_SECONDS = 20.0


class _Stopped(BaseException):
    """SIGTERM or SIGINT arrived: unwind, stopping JupyterLab and the domain."""


def _stop_on_signals() -> None:
    def stop(signum: int, _frame: object) -> None:
        raise _Stopped(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _term_when_parent_dies()


def _term_when_parent_dies() -> None:
    """Ask Linux for a SIGTERM when the parent dies: ``make demo`` killed by SIGTERM does not
    pass the signal on, and the demo (and so the domain) would outlive it."""
    import ctypes
    import ctypes.util

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: only direct signals stop the demo
        return
    if os.getppid() != parent:  # it died before the request took effect
        raise _Stopped(signal.SIGTERM)


def transactions(rows: int = TRANSACTION_ROWS, seed: int = 2024) -> pd.DataFrame:
    """A seeded synthetic card-transactions table for SQL and group-by work."""
    rng = np.random.default_rng(seed)
    regions, categories = np.array(REGIONS), np.array(CATEGORIES)
    return pd.DataFrame(
        {
            "customer_id": rng.integers(1, 200_001, rows),
            "region": pd.Categorical(rng.choice(regions, rows, p=[0.25, 0.2, 0.2, 0.2, 0.15])),
            "category": pd.Categorical(rng.choice(categories, rows)),
            "amount": np.round(rng.lognormal(3.2, 0.9, rows).clip(0.5, 5000), 2),
            "age": rng.integers(18, 91, rows),
            "day": rng.integers(0, 365, rows),
        }
    )


def seed(path: Path) -> Path:
    """Create and fill the demo domain unless it exists; return the scientist's credential file."""
    from sklearn.datasets import load_breast_cancer, load_diabetes

    layout = Layout(path.resolve())
    creds_file = layout.root / "scientist.json"
    if layout.config.exists():
        return creds_file
    print("Creating the demo domain (first run only)…", flush=True)
    with Domain.create("Demo Hospital", path=path) as domain:
        steps = [
            (
                "breast_cancer",
                load_breast_cancer(as_frame=True).frame,
                "Wisconsin diagnostic breast cancer (569 patients)",
                {
                    "bounds": {"mean radius": (0, 40), "mean area": (0, 3000)},
                    "categories": {"target": [0, 1]},
                    "policy": Policy(epsilon_budget=3.0, auto_release="dp"),
                },
            ),
            (
                "diabetes",
                load_diabetes(as_frame=True, scaled=False).frame,
                "Diabetes progression after one year (442 patients)",
                {
                    "bounds": {
                        "age": (0, 120),
                        "bmi": (10, 70),
                        "bp": (40, 160),
                        "target": (0, 400),
                    },
                    "categories": {"sex": [1.0, 2.0]},
                    "policy": Policy(epsilon_budget=3.0, auto_release="dp"),
                },
            ),
            (
                "transactions",
                transactions(),
                "Synthetic card transactions (1,000,000 rows, ~5 per customer)",
                {
                    "bounds": {"amount": (0, 5000), "age": (18, 100), "day": (0, 364)},
                    "categories": {
                        "region": list(REGIONS),
                        "category": list(CATEGORIES),
                    },
                    "privacy_unit": "customer_id",
                    "max_contributions": 10,
                    "policy": Policy(
                        identifying=["customer_id"],
                        on_fail="suppress",
                        epsilon_budget=5.0,
                        auto_release="dp",
                    ),
                },
            ),
        ]
        for i, (name, frame, description, options) in enumerate(steps, 1):
            started = time.monotonic()
            domain.publish(name, frame, description=description, **options)  # type: ignore[arg-type]
            took = time.monotonic() - started
            print(f"  [{i}/{len(steps)}] {name}: {len(frame):,} rows ({took:.1f}s)", flush=True)
        creds = domain.add_scientist(SCIENTIST_EMAIL, name="Demo Scientist")
        write_private(creds_file, json.dumps({"email": creds.email, "password": creds.password}))
    return creds_file


def save_profiles(url: str, creds_file: Path, root: Path) -> ProfileStore:
    """Save the demo as profiles "demo" (scientist) and "demo-owner" (its directory)."""
    creds = json.loads(creds_file.read_text())
    store = ProfileStore()
    store.save(
        Profile("demo", kind="scientist", url=url, email=creds["email"], password=creds["password"])
    )
    store.save(Profile("demo-owner", kind="owner", path=str(root)))
    return store


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rds.demo")
    parser.add_argument("--path", type=Path, default=Path(".rds-demo"))
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--lab-port", type=int, default=8888)
    parser.add_argument("--no-lab", action="store_true", help="seed and serve only")
    args = parser.parse_args(argv)

    _stop_on_signals()
    lab: subprocess.Popen[bytes] | None = None
    keep_serving = False
    try:
        creds_file = seed(args.path)
        url = serve.start(args.path, port=args.port)
        layout = Layout(args.path.resolve())
        store = save_profiles(url, creds_file, layout.root)
        print(
            f"\nDemo domain 'Demo Hospital' serving at {url}\n"
            f"  scientist login: {creds_file} (email {SCIENTIST_EMAIL}; password inside, "
            "mode 0600)\n"
            f"  owner login:     {layout.admin} (mode 0600); Domain.open({str(args.path)!r}) "
            "uses it\n"
            f"  audit log:       {layout.ledger}  (check: rds ledger verify {args.path})\n"
            f"  profiles:        'demo' (scientist) and 'demo-owner' in {store.path}; in a "
            f'notebook: rds.connect(profile="demo"); in JupyterLab: the Remote Data panel\n',
            flush=True,
        )
        if args.no_lab:
            keep_serving = True  # seed and serve only: `rds domain stop` ends it
            return
        notebooks = Path(__file__).resolve().parents[1] / "notebooks"
        env = {
            **os.environ,
            "RDS_DEMO_URL": url,
            "RDS_DEMO_DIR": str(layout.root),
            "RDS_DEMO_CREDENTIALS": str(creds_file.resolve()),
        }
        argv_lab = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1",
            "--port", str(args.lab_port), f"--ServerApp.root_dir={notebooks}",
        ]  # fmt: skip
        if os.geteuid() == 0:  # containers and CI machines often run as root
            argv_lab.append("--allow-root")
        print(
            f"Starting JupyterLab on http://127.0.0.1:{args.lab_port}/lab "
            "(the URL with its token follows). Ctrl-C stops the demo.",
            flush=True,
        )
        lab = subprocess.Popen(argv_lab, env=env, start_new_session=True)
        lab.wait()
    except _Stopped:
        pass
    finally:
        # A second signal while stopping must not cut the stop short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if lab is not None:
            _stop_lab(lab)
        if not keep_serving:
            serve.stop(args.path)
            print("Demo stopped; the domain's state stays in", args.path.resolve(), flush=True)


def _stop_lab(lab: subprocess.Popen[bytes]) -> None:
    """SIGTERM JupyterLab (it shuts its kernels down), then SIGKILL its session if it lingers."""
    if lab.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(LAB_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()


if __name__ == "__main__":
    main()
