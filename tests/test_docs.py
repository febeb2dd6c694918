"""The README says what exists: every command and option, every setting, every module."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import pytest

from ehkit import settings
from ehkit.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(parser: argparse.ArgumentParser, prefix: str = "ehkit"):
    """(command, its options) for every command and sub-command, e.g. ('ehkit sample request',
    ['--db', '--reason', ...])."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                options = [o for a in sub._actions for o in a.option_strings
                           if o.startswith("--") and o != "--help"]
                yield f"{prefix} {name}", options
                yield from _commands(sub, f"{prefix} {name}")


COMMANDS = list(_commands(build_parser()))


def _settings(defaults: dict):
    """Every setting as `section.key`; a section of tables (the audiences) as
    `section.NAME.key`. A key's value may itself be a table (the labels of `began_as`)."""
    for section, table in defaults.items():
        if all(isinstance(v, dict) for v in table.values()):
            table = {f"NAME.{k}": v for inner in table.values() for k, v in inner.items()}
        yield from (f"{section}.{key}" for key in table)


SETTINGS = sorted(set(_settings(tomllib.loads(settings.DEFAULTS.read_text(encoding="utf-8")))))


def _where_things_are() -> str:
    start = README.index("## Where things are")
    return README[start:README.index("\n## ", start + 1)]


def _module_names(path: Path) -> str:
    """How the README names a module: its path, a package by its folder."""
    relative = path.relative_to(ROOT)
    return f"{relative.parent}/" if path.name == "__init__.py" else str(relative)


MODULES = sorted(_module_names(p) for p in (ROOT / "ehkit").rglob("*.py")
                 if p.parent != ROOT / "ehkit" or p.name != "__init__.py")


def test_the_lists_are_not_empty():  # a renamed parser or file would make the rest vacuous
    assert len(COMMANDS) > 10 and "sampling.due_days" in SETTINGS
    assert "ehkit/audits.py" in MODULES and "ehkit/rules/" in MODULES


@pytest.mark.parametrize(("command", "options"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_every_command_and_its_options_are_in_the_readme(command, options):
    assert command in README, f"{command} is not in the README"
    missing = [o for o in options if f"{o} " not in README and f"{o}`" not in README
               and f"{o}]" not in README]
    assert not missing, f"{command}: {missing} not in the README"


@pytest.mark.parametrize("key", SETTINGS)
def test_every_setting_is_in_the_readme(key):
    assert f"`{key}`" in README, f"setting {key} is not in the README's Settings table"


def test_every_audience_is_named_in_the_readme():
    for name in settings.get("audiences"):
        assert f"`{name}`" in README


@pytest.mark.parametrize("module", MODULES)
def test_every_module_is_in_where_things_are(module):
    assert f"`{module}`" in _where_things_are(), f"{module} is missing from 'Where things are'"
