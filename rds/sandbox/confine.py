"""Confine a long-running service (the domain's syft server) in a bubblewrap jail.

The confined process sees, read-only, ``/usr`` (and the ``/bin``, ``/lib*`` links into it),
the Python installation and virtualenv, and the ``rds`` package; ``/etc/hosts`` (so that
``localhost`` resolves); a private ``/tmp`` (a size-limited tmpfs); and one writable
directory, its own state, at ``/state``. Nothing else of the host exists in it: no domain
directory, no private store, no secrets, no ledger, no home directory, no view of host
processes. Unlike a sandbox run it keeps the host's network (it serves a port).

When the host runs as root it drops to ``SERVER_UID`` (a uid of its own, not the sandbox's)
with no capabilities before Python starts; its state directory is handed to that uid. A
non-root host runs it as the caller's uid, which in the jail can reach only ``/state``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from rds.errors import SandboxUnavailable
from rds.sandbox import _jail

SERVER_UID = 65533
STATE = "/state"
TMP_BYTES = 256 * 1024 * 1024
_PACKAGE = Path(__file__).resolve().parent.parent


def hand_over(state_dir: Path) -> None:
    """Give ``state_dir`` (recursively) to the confined uid, mode 0700; root only chowns.

    A confined service that was compromised may have left traps in its state for whoever
    touches it next with more privilege: a symlink (``x.tmp`` -> ``/etc/passwd``, which a
    root writer would follow), a hard link to a file it should not own (which the chown
    below would hand over), a FIFO that blocks a reader. Nothing but plain files with one
    link and directories belongs there, so anything else is removed first (a name only:
    the file it pointed to is untouched). Call it while the service is not running.
    """
    os.chmod(state_dir, 0o700)
    for root, dirs, files in os.walk(state_dir):
        for name in [*dirs, *files]:
            path = os.path.join(root, name)
            info = os.lstat(path)
            plain = stat.S_ISDIR(info.st_mode) or (
                stat.S_ISREG(info.st_mode) and info.st_nlink == 1
            )
            if not plain:
                os.unlink(path)
            elif _jail.needs_uid_map():
                os.lchown(path, SERVER_UID, SERVER_UID)
    if _jail.needs_uid_map():
        os.chown(state_dir, SERVER_UID, SERVER_UID)


def command(
    bwrap: str, python: Sequence[str], *, env: Mapping[str, str], state_dir: Path
) -> tuple[list[str], bool]:
    """The ``bwrap ... -- python ...`` argv, and whether it needs the uid-map handshake.

    The handshake's descriptors are the placeholders ``{block}`` and ``{info}`` in the argv
    (``start`` fills them in).
    """
    root = _jail.needs_uid_map()
    argv = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    argv += ["--unshare-cgroup-try", "--hostname", "rds-server", "--die-with-parent"]
    argv += ["--new-session", "--cap-drop", "ALL", "--clearenv"]
    if root:
        argv += ["--userns-block-fd", "{block}", "--info-fd", "{info}"]
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    for name, value in env.items():
        argv += ["--setenv", name, value]
    binds = [("/usr", "/usr")] + [(r, r) for r in _jail._python_roots()]
    binds.append((str(_PACKAGE), str(_PACKAGE)))
    # A private /tmp first: the Python installation may itself live under /tmp (a CI
    # checkout), and its binds then go on top of the tmpfs.
    argv += ["--size", str(TMP_BYTES), "--perms", "1777", "--tmpfs", "/tmp"]  # noqa: S108
    # The directories created only to hold a bind (``/root`` above an interpreter in
    # ``/root/.pyenv``, say) can be passed through, not listed; the ones on ``sys.path``
    # stay listable, as imports need.
    importable = {os.path.normpath(entry) for entry in sys.path if entry}
    for parent in _jail._parents([dest for _, dest in binds] + [STATE, "/etc/hosts"]):
        argv += [] if parent in importable else ["--perms", "0111"]
        argv += ["--dir", parent]
    argv += _jail.system_links()
    for source, dest in binds:
        argv += ["--ro-bind", source, dest]
    argv += ["--ro-bind-try", "/etc/hosts", "/etc/hosts"]
    argv += ["--bind", str(state_dir), STATE]
    argv += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/", "--chdir", "/tmp", "--"]  # noqa: S108
    if root:
        argv += _jail.drop_to(SERVER_UID, what="Confining the domain server")
    return argv + list(python), root


def start(
    python_args: Sequence[str], *, state_dir: Path, log: IO[bytes], bwrap: str | None = None
) -> subprocess.Popen[bytes]:
    """Start ``python <python_args>`` confined, with ``state_dir`` as its ``/state``.

    ``python_args`` (``["-m", module, ...]``) may refer to the state directory as ``/state``.
    The process dies with the thread that started it (``--die-with-parent``): start it from
    a thread that lives as long as the service should.

    Raises
    ------
    SandboxUnavailable
        If bubblewrap is not installed.
    """
    bwrap = bwrap or shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(
            "Serving a domain needs bubblewrap to confine its network-facing server "
            "(Debian package bubblewrap): install it."
        )
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}  # noqa: S108
    env |= {"PYTHONNOUSERSITE": "1", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    python = [_jail.interpreter(), "-B", *python_args]
    argv, handshake = command(bwrap, python, env=env, state_dir=state_dir)
    fds: list[int] = []
    if handshake:
        block_r, block_w = os.pipe2(os.O_CLOEXEC)
        info_r, info_w = os.pipe2(os.O_CLOEXEC)
        fds = [block_r, block_w, info_r, info_w]
        argv = [a.replace("{block}", str(block_r)).replace("{info}", str(info_w)) for a in argv]
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=fds[0::3],
            start_new_session=True,
        )
        if handshake:
            os.close(fds[0])
            os.close(fds[3])
            fds = [fds[1], fds[2]]
            try:
                _jail.map_uids(fds[0], fds[1], timeout=10.0, uid=SERVER_UID)
            except BaseException:
                process.kill()
                process.wait()
                raise
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
    return process


def service_pid(process: subprocess.Popen[bytes]) -> int | None:
    """The host pid of the confined command itself, once it runs; None if there is none.

    ``process`` is bwrap; its child is the jail's init (pid 1 inside), whose child runs
    ``setpriv`` and then the command. The first descendant that is neither is the command.
    """
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        head, _, tail = stat.rpartition(")")
        names[int(entry.name)] = head.split("(", 1)[1]
        children.setdefault(int(tail.split()[1]), []).append(int(entry.name))
    level = [process.pid]
    while level:
        level = [child for pid in level for child in children.get(pid, [])]
        for pid in sorted(level):
            if names[pid] not in {"bwrap", "setpriv"}:
                return pid
    return None
