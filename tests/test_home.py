"""A council's working folder: `ehkit init` makes it, its files are used before ehkit's, and
nothing in it is ever overwritten."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from voila_harness import free_port

import ehkit
from ehkit import db as store
from ehkit import home, reports, serve, settings
from ehkit import template as templates
from ehkit.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A working folder made by `ehkit init`, with ehkit run inside it."""
    monkeypatch.delenv("EHKIT_HOME", raising=False)
    monkeypatch.delenv("EHKIT_SETTINGS", raising=False)
    assert main(["init", str(tmp_path / "council")]) == 0
    monkeypatch.chdir(tmp_path / "council")
    return tmp_path / "council"


def test_init_makes_a_working_folder_with_copies_of_what_ehkit_ships(folder):
    for rel, source in home.shipped().items():
        assert (folder / rel).read_bytes() == source.read_bytes(), rel
    assert {"ehkit.toml", "README.md"} <= {p.name for p in folder.iterdir()}
    for name in ("quarterly_report", "audit"):
        assert (folder / "notebooks" / f"{name}.ipynb").is_file()
    assert (folder / "templates" / "darlington.toml").is_file()
    assert (folder / "mappings" / "default.toml").is_file()
    assert (folder / "data").is_dir() and (folder / "reports").is_dir()


def test_init_never_overwrites_a_councils_file(folder, capsys):
    own = folder / "templates" / "darlington.toml"
    own.write_text("# our own tool\n", encoding="utf-8")
    (folder / "mappings" / "default.toml").unlink()
    assert main(["init", str(folder)]) == 0
    assert own.read_text(encoding="utf-8") == "# our own tool\n"
    assert "added mappings/default.toml" in capsys.readouterr().out
    assert (folder / "mappings" / "default.toml").is_file()


def test_init_check_says_which_files_differ_and_who_changed_them(folder, capsys):
    assert main(["init", "--check", str(folder)]) == 0
    assert "every file is as ehkit" in capsys.readouterr().out
    ours = folder / "ehkit.toml"
    ours.write_text(ours.read_text(encoding="utf-8") + "\n# ours\n", encoding="utf-8")
    # An upgrade of ehkit changed its letter since it was copied: the copy's recorded hash
    # is the one the earlier ehkit shipped.
    manifest = json.loads((folder / home.MANIFEST).read_text(encoding="utf-8"))
    letter = folder / "templates" / "letter.txt.j2"
    letter.write_text("an earlier ehkit's letter\n", encoding="utf-8")
    manifest["files"]["templates/letter.txt.j2"] = home._sha256(letter)
    (folder / home.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    (folder / "notebooks" / "sampling.ipynb").unlink()
    assert main(["init", "--check", str(folder)]) == 1
    out = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert out == {
        "ehkit.toml": "changed here",
        "templates/letter.txt.j2": "ehkit's changed since it was copied here (an upgrade): "
                                   "compare and update",
        "notebooks/sampling.ipynb": "missing here (ehkit's own is used; `ehkit init` copies it)",
    }


def test_upgrade_in_a_working_folder_says_which_files_to_look_at(folder, capsys):
    assert main(["demo", "--episodes", "30", "--until", "2026-10-31"]) == 0
    (folder / "templates" / "letter.txt.j2").write_text("ours\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["upgrade"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{folder / 'data' / 'ehkit.db'} is up to date")
    assert out[1] == (f"1 file(s) in the working folder {folder} differ from ehkit "
                      f"{ehkit.__version__}'s: `ehkit init --check {folder}` lists them")


def test_the_working_folders_settings_are_used_there_and_below(folder, monkeypatch):
    assert settings.get("sampling", "council_cases") == 12  # ehkit's own
    text = (folder / "ehkit.toml").read_text(encoding="utf-8")
    (folder / "ehkit.toml").write_text(
        re.sub(r"(?m)^council_cases = 12", "council_cases = 7", text), encoding="utf-8")
    assert settings.get("sampling", "council_cases") == 7
    monkeypatch.chdir(folder / "reports")
    assert settings.get("sampling", "council_cases") == 7
    monkeypatch.chdir(folder.parent)  # outside it: ehkit's own again
    assert settings.get("sampling", "council_cases") == 12
    monkeypatch.setenv("EHKIT_HOME", str(folder))
    assert settings.get("sampling", "council_cases") == 7


def test_the_store_is_the_working_folders_from_anywhere_inside_it(folder, monkeypatch, capsys):
    monkeypatch.chdir(folder / "notebooks")
    assert main(["demo", "--episodes", "30", "--until", "2026-10-31"]) == 0
    assert capsys.readouterr().out.startswith(f"{folder / 'data' / 'ehkit.db'}: ")
    assert not (folder / "notebooks" / "data").exists()


def test_a_wrong_setting_is_named_in_the_working_folders_file(folder, capsys):
    (folder / "ehkit.toml").write_text("[serve]\nmax_kernels = 0\n", encoding="utf-8")
    store.connect(folder / "data" / "x.db").close()
    assert main(["serve", "--db", "data/x.db"]) == 2
    assert f"max_kernels = 0 (in {(folder / 'ehkit.toml').resolve()}) must be" in \
        capsys.readouterr().err


def test_a_key_left_out_of_the_working_folders_settings_takes_ehkits_default(folder):
    (folder / "ehkit.toml").write_text("[sampling]\npartner_cases = 5\n", encoding="utf-8")
    assert settings.get("sampling", "partner_cases") == 5
    assert settings.get("sampling", "council_cases") == 12


def test_the_working_folders_audit_tool_and_mapping_are_used(folder):
    tool = folder / "templates" / "darlington.toml"
    tool.write_text(tool.read_text(encoding="utf-8").replace(
        'title = "', 'title = "Our council: ', 1), encoding="utf-8")
    assert templates.load("darlington").title.startswith("Our council: ")
    assert templates.template_path("darlington") == tool.resolve()
    from ehkit import cases

    (folder / "mappings" / "ours.toml").write_bytes(
        (folder / "mappings" / "example_ehm.toml").read_bytes())
    assert cases.load_mapping("ours")  # found only in the working folder


def test_what_ehkit_writes_goes_to_the_working_folders_reports_from_anywhere(
        folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EHKIT_HOME", str(folder))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["demo", "--episodes", "30", "--until", "2026-10-31"]) == 0
    capsys.readouterr()
    assert main(["audit", "print", "1"]) == 0
    printed = Path(capsys.readouterr().out.splitlines()[0])
    assert printed.parent == folder / "reports" / "audits" and printed.is_file()
    assert not (elsewhere / "reports").exists()
    port = free_port()
    assert serve.configure(port=port).reports_dir == (folder / "reports").resolve()


def test_report_and_serve_use_the_working_folders_notebooks(folder, tmp_path):
    assert reports.notebook_for("quarterly") == folder / "notebooks" / "quarterly_report.ipynb"
    store.connect(tmp_path / "x.db").close()
    port = free_port()
    cfg = serve.configure(tmp_path / "x.db", port=port)
    assert cfg.notebook_path == folder / "notebooks" / "audit.ipynb"
    assert f"--Voila.root_dir={folder / 'notebooks'}" in cfg.argv()
    assert cfg.environment()["EHKIT_HOME"] == str(folder)  # the kernels use it too
    (folder / "notebooks" / "audit.ipynb").unlink()  # deleted: ehkit's own is served
    assert serve.configure(tmp_path / "x.db", port=port).notebook_path == \
        home.packaged("notebooks") / "audit.ipynb"


def test_ehkit_home_naming_a_folder_that_is_not_one_is_refused_in_one_line(tmp_path, monkeypatch,
                                                                            capsys):
    monkeypatch.setenv("EHKIT_HOME", str(tmp_path))
    assert main(["report", "quarterly", "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ehkit: error: EHKIT_HOME names {tmp_path}, which is not an ehkit working "
                   f"folder (it has no ehkit.toml): make one with `ehkit init {tmp_path}`, or "
                   "unset EHKIT_HOME"]


def test_a_settings_file_that_is_not_toml_is_named_in_one_line(folder, capsys):
    (folder / "ehkit.toml").write_text("[sampling\n", encoding="utf-8")
    assert main(["sample", "--db", str(folder / "data" / "none.db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ehkit: error: {(folder / 'ehkit.toml').resolve()}: not a readable "
                          "settings file")
    assert "Traceback" not in err


def test_init_into_a_file_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("x", encoding="utf-8")
    assert main(["init", str(tmp_path / "f")]) == 2
    assert capsys.readouterr().err == (f"ehkit: error: {tmp_path / 'f'} is a file: give a "
                                       "folder for the working folder\n")


def test_no_c_library_only_strftime_codes_in_what_ships():
    # %-d and the like are glibc's: on Windows strftime raises on them.
    shipped = [*ROOT.joinpath("ehkit").rglob("*.py"), *ROOT.joinpath("ehkit").rglob("*.j2"),
               *ROOT.joinpath("notebooks").glob("*.ipynb")]
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in shipped
             for m in re.finditer(r"%-[a-zA-Z]|%#[a-zA-Z]", p.read_text(encoding="utf-8"))]
    assert found == []


@pytest.mark.slow
def test_a_report_from_ehkits_own_notebook_uses_the_working_folders_settings(folder, demo_db_path,
                                                                            monkeypatch):
    # The kernel runs in the packaged notebook's folder, outside the working folder: it finds
    # the working folder only through the EHKIT_HOME the report hands it.
    (folder / "notebooks" / "quarterly_report.ipynb").unlink()
    (folder / "ehkit.toml").write_text('[service]\nname = "Invented Borough Early Help"\n',
                                       encoding="utf-8")
    result = reports.run("quarterly", db=demo_db_path, period="2026Q3", out_dir=folder / "out")
    assert "Invented Borough Early Help" in result.html.read_text(encoding="utf-8")
    assert "EHKIT_HOME" not in os.environ  # handed to the kernel, not kept


def test_ehkit_settings_naming_a_missing_file_is_refused_in_one_line(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EHKIT_SETTINGS", str(tmp_path / "gone.toml"))
    assert main(["sample", "--db", str(tmp_path / "none.db")]) == 2
    assert capsys.readouterr().err == (f"ehkit: error: EHKIT_SETTINGS names {tmp_path / 'gone.toml'}"
                                       ", which does not exist: correct it or unset it\n")
