"""The bubblewrap command line for one jail, and the uid map that makes its limits bite.

The jail sees, read-only: ``/usr`` (and the ``/bin``, ``/lib*`` links into it), the Python
installation and the virtualenv at their own paths, and ``rds.errors`` and ``rds.sandbox``
under ``/opt/rds``. No dataset is mounted: each run's data files arrive as open descriptors,
so the command line does not depend on the run and a jail can be started before its run
is known (see ``_warm``). It writes only ``/scratch``
(a size-limited tmpfs, also its cwd, HOME and ``/tmp``: no run can fill the host's disk).
There is no ``/etc``, ``/home``, ``/root``, host ``/tmp``, network, or view of host
processes.

The kernel exempts uid 0 from ``RLIMIT_NPROC`` even inside a user namespace, so when the
host runs as root a fork bomb would not be stopped. Then bwrap is told to wait
(``--userns-block-fd``) while we write the new namespace's uid map ourselves: uid 0 maps
to root for bwrap's own setup (binding root-only paths such as ``/root/.pyenv``), and
``JAIL_UID`` maps to the host's ``nobody``. ``setpriv`` then drops to ``JAIL_UID`` with no
capabilities before Python starts, so every process of the scientist's code counts against
``RLIMIT_NPROC``. A non-root host needs none of this: bwrap maps the caller's own uid.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from rds.errors import SandboxError, SandboxUnavailable

JAIL_UID = 65534
LIB = "/opt/rds"
SCRATCH = "/scratch"
_SYSTEM_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def needs_uid_map() -> bool:
    """True when the host runs as root and the jail must drop to ``JAIL_UID`` itself."""
    return os.geteuid() == 0


def command(
    bwrap: str,
    *,
    python: Sequence[str],
    env: Mapping[str, str],
    scratch_bytes: int,
    package: Path,
    init_file: Path,
    handshake: tuple[int, int] | None,
) -> list[str]:
    """The full ``bwrap ... -- python ...`` argv.

    ``package`` is the host's ``rds`` directory and ``init_file`` an empty file standing in
    for its ``__init__.py``, so that importing ``rds.sandbox`` in the jail does not import
    the rest of rds. ``handshake`` is ``(block_fd, info_fd)`` when ``needs_uid_map()``.
    """
    argv = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc"]
    argv += ["--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    argv += ["--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    if handshake is not None:
        block_fd, info_fd = handshake
        argv += ["--userns-block-fd", str(block_fd), "--info-fd", str(info_fd)]
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    for name, value in env.items():
        argv += ["--setenv", name, value]

    binds: list[tuple[str, str]] = [("/usr", "/usr")]
    for root in _python_roots():
        binds.append((root, root))
    binds.append((str(init_file), f"{LIB}/rds/__init__.py"))
    binds.append((str(package / "errors.py"), f"{LIB}/rds/errors.py"))
    binds.append((str(package / "sandbox"), f"{LIB}/rds/sandbox"))

    # Left to itself, bwrap (0.8) creates the missing parents of a bind mount with mode 0700,
    # which the unprivileged jail user could not traverse.
    for parent in _parents([dest for _, dest in binds] + [SCRATCH]):
        argv += ["--dir", parent]
    argv += system_links()
    for source, dest in binds:
        argv += ["--ro-bind", source, dest]
    argv += ["--size", str(scratch_bytes), "--perms", "1777", "--tmpfs", SCRATCH]
    # /tmp leads to scratch too, unless the Python installation itself lives under /tmp (a
    # checkout there, as CI may use): then /tmp holds that read-only bind, and TMPDIR
    # (set to scratch) is what tempfile uses.
    if not any(dest == "/tmp" or dest.startswith("/tmp/") for _, dest in binds):  # noqa: S108
        argv += ["--symlink", SCRATCH, "/tmp"]  # noqa: S108
    argv += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/", "--chdir", SCRATCH, "--"]
    if handshake is not None:
        argv += drop_to(JAIL_UID, what="Running the sandbox")
    return argv + list(python)


def system_links() -> list[str]:
    """bwrap arguments recreating ``/bin``, ``/lib*`` (links into ``/usr``, or read-only dirs)."""
    argv: list[str] = []
    for name in _SYSTEM_LINKS:
        host = Path("/") / name
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), f"/{name}"]
    return argv


def drop_to(uid: int, *, what: str) -> list[str]:
    """The ``setpriv ... --`` prefix that drops to ``uid`` with no capabilities at all."""
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin")
    if setpriv is None:
        raise SandboxUnavailable(
            f"{what} as root needs setpriv (Debian package util-linux) to drop to an "
            "unprivileged user; install it."
        )
    ids = [f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    return [setpriv, *ids, "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--"]


def map_uids(block_fd: int, info_fd: int, *, timeout: float, uid: int = JAIL_UID) -> None:
    """Write the jail's uid/gid maps once bwrap reports its child, then let it go on.

    uid 0 maps to root (for bwrap's own setup) and ``uid`` to the same host uid.

    Raises
    ------
    SandboxError
        If bwrap exits or stays silent before reporting its child.
    """
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([info_fd], [], [], max(remaining, 0))
        if not ready:
            raise SandboxError("bubblewrap did not report its sandbox process in time.")
        chunk = os.read(info_fd, 4096)
        if not chunk:
            break
        data += chunk
    try:
        pid = int(json.loads(data)["child-pid"])
    except (ValueError, KeyError, TypeError):
        raise SandboxError("bubblewrap exited before starting the sandbox.") from None
    mapping = f"0 0 1\n{uid} {uid} 1\n"
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{name}", "w") as handle:
            handle.write(mapping)
    os.write(block_fd, b"1")


def interpreter() -> str:
    """This Python, by a path that also names it inside a jail.

    ``sys.executable`` is the path Python was started by, made absolute but not cleaned: an
    owner who ran ``../rds/.venv/bin/python owner.py`` gets ``/home/me/work/../rds/...``,
    and ``/home/me/work`` is not mounted in the jail, so the run ended with no report (exit
    status 127) and looked like the scientist's failure. The directory is resolved; the
    file's own link is kept, so a virtualenv's interpreter still finds its virtualenv.
    """
    executable = Path(sys.executable)
    return str(executable.parent.resolve() / executable.name)


def _python_roots() -> list[str]:
    """The interpreter's and the virtualenv's directories, outside ``/usr``."""
    roots: list[str] = []
    for raw in (sys.base_prefix, sys.prefix):
        for path in (Path(raw), Path(raw).resolve()):
            text = str(path)
            if not any(text == r or text.startswith(r.rstrip("/") + "/") for r in ["/usr", *roots]):
                roots.append(text)
    return roots


def _parents(paths: Sequence[str]) -> list[str]:
    seen: list[str] = []
    for path in paths:
        for parent in reversed(Path(path).parents):
            text = str(parent)
            if text != "/" and text not in seen:
                seen.append(text)
    return seen
