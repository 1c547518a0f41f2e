"""Static notes on submitted code, for the owner who reviews it.

Nothing here runs the code: Python is read with :mod:`ast`, SQL with sqlglot (DuckDB
dialect). The notes point the owner at what deserves a close look — imports, file, network
and process use, code built at run time — and summarise the rest. They are a reading aid,
not a gate: the sandbox is what stops code from doing harm, and a determined author can
hide intent from any static reading (which is why "dynamic" notes are warnings).
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

# Two tables the owner can read: a header line, then the names it covers, indented.
#: Top-level modules that reach outside a pure computation, by what they reach.
_MODULE_TABLE = """
files, processes and the environment
    os posix nt
interpreter internals
    sys inspect gc
runs programs
    subprocess pty
files
    shutil pathlib io glob tempfile fileinput fcntl zipfile tarfile gzip bz2 lzma sqlite3 dbm
    duckdb h5py
network
    socket ssl http urllib urllib3 requests httpx aiohttp ftplib smtplib poplib imaplib
    telnetlib xmlrpc websocket websockets paramiko webbrowser asyncio
native code
    ctypes cffi mmap
loads code
    importlib pkgutil runpy zipimport code codeop
eval, exec and open
    builtins
deserialisation that can run code
    pickle _pickle marshal shelve dill cloudpickle joblib
processes
    multiprocessing concurrent signal resource
threads
    threading _thread
system accounts
    pwd grp getpass
"""
#: Calls by resolved dotted name, as "kind: what" and fnmatch patterns; first match wins.
_CALL_TABLE = """
process: runs a program
    subprocess.* os.system os.popen os.exec* os.spawn* os.posix_spawn* pty.*
    asyncio.create_subprocess_*
process: controls processes
    os.fork* os.kill* os._exit signal.* multiprocessing.* concurrent.futures.ProcessPoolExecutor
process: uses environment variables
    os.getenv os.putenv os.unsetenv
network: uses the network
    socket.* ssl.* http.* urllib.* urllib3.* requests.* httpx.* aiohttp.* ftplib.* smtplib.*
    poplib.* imaplib.* telnetlib.* xmlrpc.* websocket.* websockets.* paramiko.* webbrowser.*
    asyncio.open_connection asyncio.start_server
dynamic: unpickles data (can run code)
    pickle.load* _pickle.load* marshal.load* dill.load* cloudpickle.load* joblib.load shelve.open
dynamic: loads or builds code at run time
    importlib.* runpy.* pkgutil.* zipimport.* code.* codeop.* types.CodeType types.FunctionType
dynamic: uses native code or raw memory
    ctypes.* cffi.* mmap.*
dynamic: reaches interpreter internals
    sys._getframe sys.settrace sys.setprofile inspect.currentframe inspect.stack
    gc.get_objects gc.get_referrers gc.get_referents
file: opens files
    open io.open io.FileIO os.open os.fdopen gzip.open bz2.open lzma.open tarfile.* zipfile.*
    sqlite3.connect fileinput.* tempfile.* dbm.open h5py.File
file: changes files
    os.remove os.unlink os.rename* os.replace os.mkdir os.makedirs os.rmdir os.removedirs
    os.ch* os.lch* os.link os.symlink os.truncate os.utime os.mkfifo os.mknod os.write shutil.*
file: looks at files
    os.path.* os.listdir os.scandir os.walk os.fwalk os.stat os.lstat os.readlink os.access
    os.getcwd os.read glob.*
file: reads files
    pandas.read_* polars.read_* polars.scan_* pyarrow.*read_* pyarrow.dataset.* numpy.load*
    numpy.genfromtxt numpy.fromfile numpy.memmap torch.load scipy.io.* duckdb.*
file: writes files
    numpy.save* torch.save joblib.dump pandas.ExcelWriter pandas.HDFStore
"""


def _table(text: str) -> list[tuple[str, list[str]]]:
    """``_MODULE_TABLE``/``_CALL_TABLE`` as (header, names) pairs."""
    rows: list[tuple[str, list[str]]] = []
    for line in text.strip().splitlines():
        if line.startswith(" "):
            rows[-1][1].extend(line.split())
        else:
            rows.append((line, []))
    return rows


_RISKY_MODULES = {name: reason for reason, names in _table(_MODULE_TABLE) for name in names}
_CALLS = _table(_CALL_TABLE)
_PURE_OS_PATH = {"join", "basename", "dirname", "split", "splitext", "normpath", "isabs"}

#: Methods that touch files whatever object they are called on. Writers marked True only
#: write when given a destination (``df.to_csv()`` alone returns a string).
_FILE_METHODS = {
    **dict.fromkeys(["read_text", "read_bytes", "open", "iterdir", "rglob"], False),
    **dict.fromkeys(["write_text", "write_bytes", "touch", "unlink", "mkdir", "rmdir"], False),
    **dict.fromkeys(["to_parquet", "to_pickle", "to_feather", "to_excel", "to_hdf"], False),
    **dict.fromkeys(["to_stata", "to_orc", "to_sql", "savefig", "tofile", "symlink_to"], False),
    **dict.fromkeys(["to_csv", "to_json", "to_html", "to_xml", "to_latex", "to_markdown"], True),
}
_DESTINATION_KWARGS = {"path", "path_or_buf", "buf", "excel_writer"}

#: Names that evaluate or reach code (builtins, possibly reached via ``builtins.``).
_DYNAMIC_NAMES = {
    "eval": "evaluates a string as code",
    "exec": "runs a string as code",
    "compile": "compiles code",
    "__import__": "imports a module by name",
    "__builtins__": "reaches the builtins",
    "globals": "reaches module globals",
    "breakpoint": "starts a debugger",
}
_ATTRIBUTES = {
    "os.environ": ("process", "reads environment variables"),
    "os.environb": ("process", "reads environment variables"),
    "sys.modules": ("dynamic", "reaches loaded modules"),
}
_HARMLESS_DUNDERS = {
    "__name__", "__qualname__", "__doc__", "__module__", "__version__", "__init__",
    "__class__", "__len__", "__annotations__", "__main__", "__file__",
}  # fmt: skip
#: Frame, traceback and code attributes: the usual way out of a restricted namespace.
_INTERNAL_ATTRIBUTES = {
    "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "tb_frame", "tb_next",
    "gi_frame", "gi_code", "cr_frame", "ag_frame", "co_code", "func_globals",
}  # fmt: skip
_DUNDER = re.compile(r"^__\w+__$")
_URL = re.compile(r"^\s*(?:https?|ftps?|wss?|s3|gs)://", re.IGNORECASE)
_MAX_CALLS_SHOWN = 24


@dataclass(frozen=True)
class CodeNote:
    """One thing the owner may want to know about submitted code.

    Parameters
    ----------
    kind
        ``"import"``, ``"file"``, ``"network"``, ``"process"``, ``"dynamic"``, ``"call"``
        or ``"sql"``.
    severity
        ``"warn"`` when the owner should look closely, else ``"info"``.
    text
        One line for the owner, e.g. ``"imports subprocess (runs programs)"``.
    line
        The line of the source it is about, when there is one.
    """

    kind: str
    severity: str
    text: str
    line: int | None = None


def python_notes(source: str) -> list[CodeNote]:
    """Notes on Python source, in source order, without running it.

    Import aliases are followed (``import subprocess as sp; sp.run(...)`` is process use).
    Source that does not parse gives a single warning instead of an exception.

    Examples
    --------
    >>> for note in python_notes("import subprocess as sp\\nsp.run(['ls'])"):
    ...     print(note.severity, note.kind, note.line, note.text)
    warn import 1 imports subprocess as sp (runs programs)
    warn process 2 runs a program: sp.run (subprocess.run)
    info call None calls: sp.run
    """
    try:
        tree = ast.parse(textwrap.dedent(source))
        reader = _Reader(tree)
        reader.visit(tree)
    except SyntaxError as exc:
        text = f"does not parse: {exc.msg} (line {exc.lineno})"
        return [CodeNote("dynamic", "warn", text, exc.lineno)]
    except (ValueError, RecursionError) as exc:
        return [CodeNote("dynamic", "warn", f"cannot be analysed: {exc}")]
    notes = sorted(reader.notes, key=lambda n: n.line if n.line is not None else float("inf"))
    if reader.calls:
        shown = sorted(reader.calls)
        more = len(shown) - _MAX_CALLS_SHOWN
        text = ", ".join(shown[:_MAX_CALLS_SHOWN]) + (f", … (+{more} more)" if more > 0 else "")
        notes.append(CodeNote("call", "info", f"calls: {text}"))
    return list(dict.fromkeys(notes))


class _Reader(ast.NodeVisitor):
    """Walks a module in source order, gathering notes and the names it calls."""

    def __init__(self, tree: ast.Module) -> None:
        self.notes: list[CodeNote] = []
        self.calls: set[str] = set()
        # Bind aliases up front: a function may use a name imported further down.
        self.aliases: dict[str, str] = {}
        self.star_modules: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.aliases[a.asname] = a.name
                    else:
                        top = a.name.split(".")[0]
                        self.aliases[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    if a.name == "*":
                        self.star_modules.append(node.module)
                    else:
                        self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"

    def note(self, node: ast.AST | None, kind: str, text: str, severity: str = "warn") -> None:
        self.notes.append(CodeNote(kind, severity, text, getattr(node, "lineno", None)))

    def resolve(self, dotted: str) -> str:
        """``dotted`` with its first name replaced by what was imported under it."""
        head, _, rest = dotted.partition(".")
        full = self.aliases.get(head, head) + (f".{rest}" if rest else "")
        return full.removeprefix("builtins.")

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            shown = f"{a.name} as {a.asname}" if a.asname else a.name
            self._import_note(node, a.name, f"imports {shown}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")
        names = ", ".join(a.name if not a.asname else f"{a.name} as {a.asname}" for a in node.names)
        self._import_note(node, module, f"imports {names} from {module}")

    def _import_note(self, node: ast.AST, module: str, text: str) -> None:
        reason = _RISKY_MODULES.get(module.split(".")[0])
        if reason:
            self.note(node, "import", f"{text} ({reason})")
        else:
            self.note(node, "import", text, "info")

    def visit_Call(self, node: ast.Call) -> None:
        dotted = _dotted(node.func)
        noted = False
        if dotted:
            self.calls.add(dotted)
            noted = self._call_note(node, dotted)
        elif isinstance(node.func, ast.Attribute):
            self.calls.add(node.func.attr)
        if not noted and isinstance(node.func, ast.Attribute) and node.func.attr in _FILE_METHODS:
            needs_destination = _FILE_METHODS[node.func.attr]
            kwargs = {k.arg for k in node.keywords}
            if not needs_destination or node.args or kwargs & _DESTINATION_KWARGS:
                self.note(node, "file", f"uses files: .{node.func.attr}()")
        self.generic_visit(node)

    def _call_note(self, node: ast.Call, dotted: str) -> bool:
        """Note a call by what its name resolves to; whether it was noted."""
        resolved = self.resolve(dotted)
        if resolved in {"getattr", "setattr", "delattr"}:
            attr = node.args[1] if len(node.args) > 1 else None
            if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str)):
                self.note(node, "dynamic", f"uses an attribute by computed name: {dotted}")
                return True
            return False
        candidates = [resolved]
        if "." not in dotted and dotted not in self.aliases:
            candidates += [f"{m}.{dotted}" for m in self.star_modules]
        for name in candidates:
            head, _, last = name.rpartition(".")
            if head == "os.path" and last in _PURE_OS_PATH:
                return False
            for header, patterns in _CALLS:
                if any(fnmatchcase(name, p) for p in patterns):
                    kind, _, what = header.partition(": ")
                    shown = dotted if name == dotted else f"{dotted} ({name})"
                    self.note(node, kind, f"{what}: {shown}")
                    return True
        return False

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dunder = _DUNDER.match(node.attr) and node.attr not in _HARMLESS_DUNDERS
        if dunder or node.attr in _INTERNAL_ATTRIBUTES:
            self.note(node, "dynamic", f"reaches interpreter internals: .{node.attr}")
        dotted = _dotted(node)
        if dotted:
            self._name_note(node, dotted)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._name_note(node, node.id)

    def _name_note(self, node: ast.AST, dotted: str) -> None:
        resolved = self.resolve(dotted)
        shown = dotted if resolved == dotted else f"{dotted} ({resolved})"
        if resolved in _DYNAMIC_NAMES:
            self.note(node, "dynamic", f"{_DYNAMIC_NAMES[resolved]}: {shown}")
        elif resolved in _ATTRIBUTES:
            kind, what = _ATTRIBUTES[resolved]
            self.note(node, kind, f"{what}: {shown}")

    def visit_Expr(self, node: ast.Expr) -> None:
        # A bare string statement is a docstring or a comment: its URLs are not used.
        if not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if not isinstance(node.value, str):
            return
        if _URL.match(node.value):
            self.note(node, "network", f"mentions a URL: {_shorten(node.value.strip(), 60)}")
        elif _DUNDER.match(node.value) and node.value not in _HARMLESS_DUNDERS:
            self.note(node, "dynamic", f"names interpreter internals: {node.value!r}")


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of names and attributes, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def sql_notes(sql: str) -> list[CodeNote]:
    """Notes on a DuckDB query: tables, aggregates, record-level output, joins, filters.

    SQL that does not parse gives a single warning instead of an exception.

    Examples
    --------
    >>> for note in sql_notes("SELECT ward, avg(age) FROM patients GROUP BY ward"):
    ...     print(note.severity, note.text)
    info reads tables: patients
    info aggregate functions: AVG
    info returns aggregated rows, grouped by ward
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, SqlglotError

    if not sql.strip():
        return [CodeNote("sql", "warn", "is empty")]
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except SqlglotError as exc:
        first = exc.errors[0] if isinstance(exc, ParseError) and exc.errors else {}
        # sqlglot names its own classes in messages: "missing for <class '….core.Mul'>".
        message = re.sub(r"<class '(?:\w+\.)*(\w+)'>", r"\1", first.get("description") or "")
        message = message or str(exc).splitlines()[0]
        line, near = first.get("line"), first.get("highlight")
        where = (f" near {near!r}" if near else "") + (f" (line {line})" if line else "")
        return [CodeNote("sql", "warn", f"does not parse: {message}{where}", line)]
    notes: list[CodeNote] = []
    if len(statements) != 1:
        notes.append(CodeNote("sql", "warn", f"contains {len(statements)} statements"))
    for tree in statements:
        if not isinstance(tree, exp.Query):
            kind = type(tree).__name__.upper()
            notes.append(CodeNote("sql", "warn", f"is not a query: {kind} statement"))
        notes += _query_notes(tree)
    return list(dict.fromkeys(notes))


def _query_notes(tree: Any) -> Iterable[CodeNote]:
    from sqlglot import exp

    ctes = {cte.alias_or_name: cte.this for cte in tree.find_all(exp.CTE)}
    tables = set()
    for table in tree.find_all(exp.Table):
        # DuckDB reads a quoted path in FROM ('data.csv') as a file; "Ward" is only a name.
        if not isinstance(table.this, exp.Identifier) or (
            table.this.quoted and re.search(r"[./\\]", table.name)
        ):
            yield CodeNote("file", "warn", f"reads a file or table function: {table.sql()}")
        elif table.name not in ctes:
            tables.add(".".join(part.name for part in table.parts))
    if tables:
        label = "reads tables" if isinstance(tree, exp.Query) else "names tables"
        yield CodeNote("sql", "info", f"{label}: " + ", ".join(sorted(tables)))
    aggregates = {f.sql_name() for f in tree.find_all(exp.AggFunc)}
    if aggregates:
        yield CodeNote("sql", "info", "aggregate functions: " + ", ".join(sorted(aggregates)))
    if isinstance(tree, exp.Query) and (tables or tree.find(exp.Table)):
        if not _aggregated(tree, ctes):
            text = "returns individual records: the top-level SELECT does not aggregate"
            yield CodeNote("sql", "warn", text)
        elif isinstance(tree, exp.Select) and tree.args.get("group"):
            groups = ", ".join(g.sql(dialect="duckdb") for g in tree.args["group"].expressions)
            yield CodeNote("sql", "info", f"returns aggregated rows, grouped by {groups}")
        else:
            yield CodeNote("sql", "info", "returns aggregated rows")
    for join in tree.find_all(exp.Join):
        kind = " ".join(filter(None, [join.side, join.kind, "JOIN"])).upper()
        target = join.this.sql(dialect="duckdb")
        on = join.args.get("on") or join.args.get("using")
        if on:
            condition = on.sql(dialect="duckdb") if isinstance(on, exp.Expression) else ""
            text = f"{kind} {target}" + (f" ON {condition}" if condition else " USING …")
        else:
            text = f"{kind} {target} without a condition (every pair of rows)"
        yield CodeNote("sql", "info", _shorten(f"joins: {text}", 160))
    wheres = tree.find_all(exp.Where)
    filtered = {c.sql(dialect="duckdb") for w in wheres for c in w.find_all(exp.Column)}
    if filtered:
        yield CodeNote("sql", "info", "filters on: " + ", ".join(sorted(filtered)))


def _aggregated(query: Any, ctes: dict[str, Any]) -> bool:
    """Whether every row ``query`` returns is an aggregate rather than a record."""
    from sqlglot import exp

    if isinstance(query, exp.Subquery):
        return _aggregated(query.this, ctes)
    if isinstance(query, exp.SetOperation):
        return _aggregated(query.this, ctes) and _aggregated(query.expression, ctes)
    if not isinstance(query, exp.Select):
        return False
    if query.args.get("group"):
        return True
    for agg in query.find_all(exp.AggFunc):
        # An aggregate counts if it belongs to this SELECT, not to a window or a subquery.
        if agg.find_ancestor(exp.Select, exp.Window) is query:
            return True
    source = query.args.get("from_") or query.args.get("from")
    if source is None:
        return True  # SELECT 1: no table, no records
    if query.args.get("joins"):
        return False
    inner = source.this
    if isinstance(inner, exp.Table) and inner.name in ctes:
        return _aggregated(ctes[inner.name], ctes)
    return isinstance(inner, exp.Subquery) and _aggregated(inner, ctes)
