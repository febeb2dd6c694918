"""A council installs ehkit: the package's metadata, safe upgrades of the store, one schema
for new and old stores, nbconvert's ehkit_report exporter, and the wheel itself installed
outside the repository."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.request
from pathlib import Path

import nbformat
import pytest
from voila_harness import free_port

import ehkit
from ehkit import db as store
from ehkit.cli import main

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


# -- the package ------------------------------------------------------------------------------
def test_version_is_in_one_place_and_ehkit_version_prints_it(capsys):
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "ehkit.__version__"}
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"ehkit {ehkit.__version__}\n"


def test_license_is_an_spdx_string_not_the_deprecated_table():
    assert PYPROJECT["project"]["license"] == "MIT"


def test_changelog_says_what_this_version_changed_for_a_council():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    section = text.split(f"## {ehkit.__version__}", 1)[1].split("\n## ", 1)[0]
    assert "ehkit init" in section and "ehkit upgrade" in section


def test_the_package_lists_every_folder_and_data_file_of_ehkit():
    tool = PYPROJECT["tool"]["setuptools"]
    package = ROOT / "ehkit"
    folders = [p for p in package.rglob("*") if p.is_dir() and "__pycache__" not in p.parts]
    assert {".".join(("ehkit", *p.relative_to(package).parts)) for p in folders} <= \
        set(tool["packages"]), "a folder of ehkit/ is missing from pyproject's packages"
    globs = tool["package-data"]["ehkit"]
    data = [p.relative_to(package) for p in package.rglob("*") if p.is_file()
            and p.suffix not in (".py", ".pyc")]
    unmatched = [str(p) for p in data if not any(p.match(g) and len(p.parts) ==
                                                 len(Path(g).parts) for g in globs)]
    assert unmatched == [], "files of ehkit/ that pyproject's package-data leaves out"


# -- nbconvert's exporter ---------------------------------------------------------------------
def _notebook_with_code_and_a_script():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Quarterly report"),
                nbformat.v4.new_code_cell("secret_code = 1", outputs=[nbformat.v4.new_output(
                    "display_data", data={"text/html": "<p>Figures</p><script>alert(1)</script>"})])]
    return nb


def test_the_ehkit_report_exporter_is_registered_and_gives_board_safe_html():
    ref = PYPROJECT["project"]["entry-points"]["nbconvert.exporters"]["ehkit_report"]
    module, _, name = ref.partition(":")
    exporter = getattr(importlib.import_module(module), name)
    from nbconvert import HTMLExporter

    plain, _ = HTMLExporter().from_notebook_node(_notebook_with_code_and_a_script())
    assert "<script" in plain and "secret_code" in plain  # what a plain export gives
    html, _ = exporter().from_notebook_node(_notebook_with_code_and_a_script())
    assert "Figures" in html and "Quarterly report" in html
    assert "<script" not in html and "secret_code" not in html


# -- upgrades -----------------------------------------------------------------------------------
def _old_store(path: Path, upto: int) -> Path:
    """A store as an earlier ehkit (whose last migration was ``upto``) made it."""
    database = store.connect(path, migrate=False)
    store.apply_migrations(database, upto=upto, baseline=False)
    database.close()
    return path


def _recorded(path: Path) -> set[int]:
    con = sqlite3.connect(path)
    try:
        return store.recorded_migrations(con)
    finally:
        con.close()


def test_an_old_store_is_backed_up_before_it_is_upgraded_and_ehkit_says_what_changed(tmp_path,
                                                                                      capsys):
    numbers = [n for n, _, _ in store.migrations()]
    path = _old_store(tmp_path / "ehkit.db", upto=numbers[-2])
    assert main(["upgrade", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    last, name, file = store.migrations()[-1]
    assert f"{last:04d} {name}: {store.describe(file)}" in out
    (kept,) = (tmp_path / "backups").glob("ehkit-*.db")
    assert f"kept in {kept}" in out
    assert _recorded(kept) == set(numbers[:-1])  # the store as it was
    assert _recorded(path) == set(numbers)
    assert main(["upgrade", "--db", str(path)]) == 0
    assert f"is up to date (ehkit {ehkit.__version__}, migration {last:04d})" in \
        capsys.readouterr().out


def test_the_first_command_after_an_upgrade_backs_up_and_says_what_changed(tmp_path, capsys):
    numbers = [n for n, _, _ in store.migrations()]
    path = _old_store(tmp_path / "ehkit.db", upto=numbers[-2])
    assert main(["actions", "overdue", "--db", str(path), "--on", "2026-11-01"]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"ehkit: upgraded {path} for ehkit {ehkit.__version__}")
    assert len(list((tmp_path / "backups").glob("ehkit-*.db"))) == 1
    assert main(["actions", "overdue", "--db", str(path), "--on", "2026-11-01"]) == 0
    assert capsys.readouterr().err == ""  # said once


def test_an_upgrade_whose_backup_fails_changes_nothing(tmp_path, capsys):
    numbers = [n for n, _, _ in store.migrations()]
    path = _old_store(tmp_path / "ehkit.db", upto=numbers[-2])
    (tmp_path / "backups").write_text("a file where the backups folder goes", encoding="utf-8")
    assert main(["upgrade", "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ehkit: error: {path} needs upgrading for ehkit")
    assert "Nothing was changed" in err and "Traceback" not in err
    assert _recorded(path) == set(numbers[:-1])


def test_upgrade_refuses_a_store_written_by_a_newer_ehkit(tmp_path, capsys):
    path = tmp_path / "ehkit.db"
    store.connect(path).close()
    con = sqlite3.connect(path)
    con.execute("INSERT INTO schema_migrations VALUES (9990, 'from_the_future', "
                "'2027-01-01T00:00:00Z')")
    con.commit()
    con.close()
    assert main(["upgrade", "--db", str(path)]) == 2
    assert "this store was written by a newer ehkit (migration 9990); upgrade ehkit" in \
        capsys.readouterr().err


# -- one schema, two ways -------------------------------------------------------------------------
def _schema(path: Path) -> set[tuple]:
    con = sqlite3.connect(path)
    try:
        return set(con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    finally:
        con.close()


def test_a_new_store_is_made_from_the_baseline_and_records_every_migration_in_it(tmp_path):
    assert store.baseline_number() >= 85  # the 18 migrations of 0.1.0, squashed
    path = tmp_path / "new.db"
    store.connect(path).close()
    assert _recorded(path) == {n for n, _, _ in store.migrations()}


def test_new_and_upgraded_stores_have_the_identical_schema(tmp_path):
    new = tmp_path / "new.db"
    store.connect(new).close()
    from_scratch = _old_store(tmp_path / "numbered.db", upto=10_000)
    first = [n for n, _, _ in store.migrations()][0]
    upgraded = _old_store(tmp_path / "old.db", upto=first)  # the oldest store there is
    store.connect(upgraded).close()
    assert _schema(new) == _schema(from_scratch) == _schema(upgraded)
    assert _recorded(new) == _recorded(from_scratch) == _recorded(upgraded)


def test_the_baseline_file_is_the_schema_the_numbered_migrations_make(tmp_path):
    database = store.connect(":memory:", migrate=False)
    store.apply_migrations(database, upto=store.baseline_number(), baseline=False)
    assert store.BASELINE.read_text(encoding="utf-8") == store.baseline_sql(database), \
        "the baseline is out of date: `make baseline` writes it"
    database.close()


# -- the wheel, installed outside the repository ---------------------------------------------------
def _copy_project(dest: Path) -> Path:
    """What a build reads: no checkout leftovers (build/, egg-info, stores) go in."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for name in ("ehkit", "notebooks"):
        shutil.copytree(ROOT / name, dest / name, ignore=skip)
    return dest


def _venv_with_the_wheel(tmp: Path) -> Path:
    """A fresh venv whose only extra is a .pth naming this environment's site-packages, for
    the dependencies; ehkit itself is the wheel's files and console script."""
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist),
                    str(_copy_project(tmp / "src"))], check=True, timeout=600, env=_clean_env())
    (wheel,) = dist.glob("ehkit-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], check=True, capture_output=True, text=True,
                             ).stdout.strip()
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n",
                                                 encoding="utf-8")
    _install(python, wheel)
    return venv


def _install(python: Path, wheel: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-deps", "--force-reinstall", str(wheel)], check=True, timeout=300,
                   env=_clean_env())


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH (the checkout must not be importable) and no ehkit variables. The
    dependencies' data files (nbconvert's and Voila's templates) are this environment's,
    as their code is: JUPYTER_PATH names them."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("EHKIT_")}
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    return env


def _ehkit(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([venv / "bin" / "ehkit", *args], cwd=cwd, env=_clean_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"ehkit {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_a_council_installs_the_wheel_outside_the_repo_and_runs_it(tmp_path):
    venv = _venv_with_the_wheel(tmp_path)
    python = venv / "bin" / "python"
    where = subprocess.run([python, "-c", "import ehkit; print(ehkit.__file__)"], cwd=tmp_path,
                           env=_clean_env(), capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(venv)  # the wheel's, not the checkout's
    assert _ehkit(venv, "--version", cwd=tmp_path).stdout == f"ehkit {ehkit.__version__}\n"

    _ehkit(venv, "init", "council", cwd=tmp_path)
    council = tmp_path / "council"
    # The council's own: a note for its board in the report, its tool's title, its quota.
    book = council / "notebooks" / "quarterly_report.ipynb"
    nb = nbformat.read(book, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("Our board asked for this note."))
    nbformat.write(nb, book)
    tool = council / "templates" / "darlington.toml"
    tool.write_text(tool.read_text(encoding="utf-8").replace('title = "', 'title = "Ours: ', 1),
                    encoding="utf-8")
    ours = council / "ehkit.toml"
    text = re.sub(r"(?m)^council_cases = \d+", "council_cases = 7", ours.read_text(
        encoding="utf-8"))
    ours.write_text(text.replace('name = "Early Help service"', 'name = "Invented Borough'
                                 ' Early Help"'), encoding="utf-8")

    _ehkit(venv, "demo", "--db", "data/demo.db", "--episodes", "300", "--until", "2026-10-31",
           cwd=council)
    _ehkit(venv, "report", "quarterly", "--db", "data/demo.db", "--audience", "board",
           cwd=council)
    html = (council / "reports" / "quarterly-2026Q3-board.html").read_text(encoding="utf-8")
    assert "data:image/svg+xml;base64," in html  # a chart
    assert "Our board asked for this note." in html
    assert "Invented Borough Early Help" in html  # the service's name, from its settings
    assert "<script" not in html

    # nbconvert --to ehkit_report, from the wheel's entry point
    out = tmp_path / "exported"
    subprocess.run([python, "-m", "nbconvert", "--to", "ehkit_report", "--output-dir", str(out),
                    str(book)], cwd=tmp_path, env=_clean_env(), check=True, capture_output=True,
                   timeout=300)
    exported = (out / "quarterly_report.html").read_text(encoding="utf-8")
    assert "Our board asked for this note." in exported
    assert "<script" not in exported and "blocks.headline" not in exported

    # Reinstalling ehkit leaves the council's files as they were, and they are still used.
    before = {p: p.read_bytes() for p in council.rglob("*") if p.is_file()
              and "data" not in p.parts and "reports" not in p.parts}
    _install(python, next((tmp_path / "dist").glob("ehkit-*.whl")))
    assert {p: p.read_bytes() for p in before} == before
    used = subprocess.run([python, "-c", "from ehkit import db, settings, template; print(db."
                           "baseline_number(), settings.get('sampling', 'council_cases'), "
                           "template.load().title)"],
                          cwd=council, env=_clean_env(), capture_output=True, text=True,
                          check=True).stdout
    assert used.startswith(f"{store.baseline_number()} 7 Ours: ")  # the wheel has the baseline

    _serves_the_form(venv, council)


def _serves_the_form(venv: Path, council: Path) -> None:
    port = free_port()
    log = (council / "serve.log").open("w", encoding="utf-8")
    server = subprocess.Popen([venv / "bin" / "ehkit", "serve", "--db", "data/demo.db",
                               "--port", str(port)], cwd=council, env=_clean_env(),
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        url = _printed_url(council / "serve.log", port, server)
        deadline, page = time.monotonic() + 120, None
        while page is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=60) as r:
                    status, page = r.status, r.read().decode("utf-8")
            except OSError:
                time.sleep(1)
        log.flush()
        assert page is not None, (council / "serve.log").read_text(encoding="utf-8")
        assert status == 200
        assert "<title>Early Help case audit</title>" in page  # the form's title
        assert "application/vnd.jupyter.widget-view+json" in page  # the form, built
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def _printed_url(log: Path, port: int, server: subprocess.Popen) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(rf"http://127\.0\.0\.1:{port}/\?token=\S+",
                          log.read_text(encoding="utf-8"))
        if found:
            return found.group(0)
        assert server.poll() is None, log.read_text(encoding="utf-8")
        time.sleep(0.5)
    raise AssertionError(f"ehkit serve printed no URL: {log.read_text(encoding='utf-8')}")



