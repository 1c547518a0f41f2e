"""Looking at processes through /proc: a jail's processes, zombies left behind."""

from __future__ import annotations

from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, children before their own children."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in _read_ints(task / "children"):
            found += [child, *descendants(child)]
    return found


def _read_ints(path: Path) -> list[int]:
    try:
        return [int(word) for word in path.read_text().split()]
    except OSError:
        return []


def zombie_children() -> list[int]:
    """This process's children that have ended and not been reaped."""
    zombies = []
    children = [c for t in Path("/proc/self/task").glob("*") for c in _read_ints(t / "children")]
    for child in children:
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            zombies.append(child)
    return zombies


def is_bwrap(pid: int) -> bool:
    """Whether ``pid`` is a running bubblewrap process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    name, state = stat.split("(", 1)[1].rsplit(")", 1)
    return name == "bwrap" and state.split()[0] != "Z"  # a zombie has ended
