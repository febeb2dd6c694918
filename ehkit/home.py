"""The council's working folder (its "home"), and where ehkit finds its files.

A working folder, made by ``ehkit init DIR``, holds the council's own copies of what ehkit
ships: ``ehkit.toml`` (its settings), ``templates/`` (the audit tool, letters, the record),
``mappings/`` (its case system's columns) and ``notebooks/`` (the report and form notebooks),
beside ``data/`` and ``reports/``. ehkit uses the folder named by ``EHKIT_HOME``, else the
folder it runs in (or the nearest one above it) that holds an ``ehkit.toml``.

Every file is looked for in the working folder first, then among the packaged defaults, so
a council changes a file by editing its copy, and an upgrade of ehkit never touches it.
``ehkit init`` never overwrites a council's file; it notes what it copied (with each
file's hash) in ``.ehkit-init.json``, so :func:`differences` can tell, after an upgrade,
which files the council changed and which ehkit changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .errors import EhkitError

PACKAGE = Path(__file__).resolve().parent
SETTINGS = "ehkit.toml"  # the council's settings file; its presence marks a working folder
MANIFEST = ".ehkit-init.json"
# What a working folder holds a copy of: its folder -> the packaged files' pattern.
COPIED = {"templates": "*.*", "mappings": "*.toml", "notebooks": "*.ipynb"}
EMPTY = ("data", "reports")


class HomeError(EhkitError):
    pass


def packaged(kind: str) -> Path:
    """The packaged folder of ``kind`` (templates, mappings, notebooks, migrations, ...).

    The notebooks' one source is the repository's top-level ``notebooks/``; the build puts
    them in the wheel as ``ehkit/notebooks``, so a checkout finds them beside the package.
    """
    inside = PACKAGE / kind
    if kind == "notebooks" and not inside.is_dir():
        return PACKAGE.parent / "notebooks"
    return inside


def home() -> Path | None:
    """The working folder in use: ``EHKIT_HOME``, else the nearest folder from here upwards
    holding an ``ehkit.toml``; None where there is none (the packaged defaults only)."""
    named = os.environ.get("EHKIT_HOME")
    if named:
        p = Path(named).resolve()
        if not (p / SETTINGS).is_file():
            raise HomeError(f"EHKIT_HOME names {p}, which is not an ehkit working folder (it "
                            f"has no {SETTINGS}): make one with `ehkit init {p}`, or unset "
                            "EHKIT_HOME")
        return p
    here = Path.cwd().resolve()
    return next((d for d in (here, *here.parents) if (d / SETTINGS).is_file()), None)


def reports_dir(*parts: str) -> Path:
    """Where ehkit writes what people read (reports, letters, records, rejects files): the
    folder ``ehkit serve`` gave its apps (``EHKIT_REPORTS_DIR``), else the working folder's
    ``reports/``, else ``reports/`` in the folder ehkit runs in."""
    named, base = os.environ.get("EHKIT_REPORTS_DIR"), home()
    root = Path(named) if named else base / "reports" if base else Path("reports")
    return root.joinpath(*parts)


def folders(kind: str) -> list[Path]:
    """Where files of ``kind`` are looked for, in order: the working folder's, the package's."""
    h = home()
    return ([h / kind] if h and (h / kind).is_dir() else []) + [packaged(kind)]


def find(kind: str, name: str) -> Path:
    """The file ``name`` of ``kind``: the working folder's copy if it has one, else ehkit's
    (the packaged path, existing or not, so a message can name where it was looked for)."""
    places = folders(kind)
    return next((d / name for d in places if (d / name).is_file()), places[-1] / name)


def names(kind: str, suffix: str) -> list[str]:
    """The names (without ``suffix``) of the files of ``kind`` found in either place."""
    return sorted({p.name[: -len(suffix)] for d in folders(kind) for p in d.glob(f"*{suffix}")})


def settings_file() -> Path | None:
    h = home()
    return h / SETTINGS if h else None


@contextlib.contextmanager
def pinned() -> Iterator[None]:
    """Name the working folder in ``EHKIT_HOME`` for the block, so the kernels started in it
    (which run in the notebook's folder, maybe the package's) use the same one."""
    h, before = home(), os.environ.get("EHKIT_HOME")
    if h:
        os.environ["EHKIT_HOME"] = str(h)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("EHKIT_HOME", None)
        else:
            os.environ["EHKIT_HOME"] = before


def environment() -> dict[str, str]:
    """The variables a kernel needs to use this working folder."""
    h = home()
    return {"EHKIT_HOME": str(h)} if h else {}


# -- ehkit init ----------------------------------------------------------------------------
def shipped() -> dict[str, Path]:
    """Every file a working folder gets a copy of: {its path in the folder: packaged file}."""
    out = {SETTINGS: packaged("settings.toml")}
    for kind, pattern in COPIED.items():
        for f in sorted(packaged(kind).glob(pattern)):
            out[f"{kind}/{f.name}"] = f
    out["README.md"] = PACKAGE / "home_readme.md"
    return out


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"files": {}}
    except (ValueError, OSError) as e:
        raise HomeError(f"{folder / MANIFEST} cannot be read ({e}): delete it and run "
                        f"`ehkit init {folder}` again (no file of yours is overwritten)") from None


def init(folder: str | os.PathLike) -> list[str]:
    """Make (or complete) a working folder; returns the files it added.

    A file already there is the council's and is left as it is, whatever it holds.
    """
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise HomeError(f"{root} is a file: give a folder for the working folder")
    manifest = _manifest(root)
    added = []
    try:
        for d in (*COPIED, *EMPTY):
            (root / d).mkdir(parents=True, exist_ok=True)
        for rel, source in shipped().items():
            target = root / rel
            if target.exists():
                continue
            shutil.copyfile(source, target)
            manifest["files"][rel] = _sha256(source)
            added.append(rel)
        manifest["version"] = __version__
        (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n",
                                     encoding="utf-8")
    except OSError as e:
        raise HomeError(f"cannot make the working folder {root} ({e.strerror}): choose a "
                        "folder you may write to") from None
    return added


@dataclass(frozen=True)
class Difference:
    path: str  # in the working folder
    why: str


def differences(folder: str | os.PathLike) -> list[Difference]:
    """The working folder's files that differ from ehkit's, and why (for ``init --check``)."""
    root = Path(folder)
    if not (root / SETTINGS).is_file():
        raise HomeError(f"{root} is not an ehkit working folder (no {SETTINGS}): make one with "
                        f"`ehkit init {root}`")
    copied = _manifest(root)["files"]
    out = []
    for rel, source in shipped().items():
        mine = root / rel
        if not mine.is_file():
            out.append(Difference(rel, "missing here (ehkit's own is used; `ehkit init` "
                                  "copies it)"))
            continue
        ours, theirs, then = _sha256(mine), _sha256(source), copied.get(rel)
        if ours == theirs:
            continue
        if then == ours:
            why = "ehkit's changed since it was copied here (an upgrade): compare and update"
        elif then == theirs:
            why = "changed here"
        elif then:
            why = "changed here, and ehkit's changed too (an upgrade): compare and merge"
        else:
            why = "differs from ehkit's (not copied by `ehkit init`)"
        out.append(Difference(rel, why))
    return out
