"""Every rule once: its code, the message a person reads, the fields it concerns, its check.

The pattern of data-to-insight's ``lac_validator``: each rule is declared once, with a
code, and a duplicate code is an error as soon as the declaring module is imported. The
audit form, the importers, the action tracker and ``ehkit check`` all ask these
definitions; ``ehkit rules`` lists them.

Where a rule is declared:

- the audit and action rules, which the form, the tracker and ``ehkit check`` share, in
  :mod:`ehkit.rules.audit`, each a small function;
- the codes every import checks in :mod:`ehkit.importing` (the import frame), those of
  case-system exports in :mod:`ehkit.cases`, the service-user feedback codes in
  :mod:`ehkit.service_user_feedback`, the store's own codes (``DB-``, ``LOG-``, ``DQ-``, ``FS-``) in
  :mod:`ehkit.check`;
- a council's own rules in the modules its settings name (``[rules] modules``): each module
  declares audit rules with :func:`audit_rule`; the form refuses to submit an audit that
  breaks one and ``ehkit check`` finds submitted audits that break one.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import EhkitError
from ..settings import settings

# What a rule applies to, in the order `ehkit rules` lists them.
KINDS = {
    "audit": "the audit form (checked again at every save and submit) and ehkit check",
    "action": "an audit's actions: the form, the action tracker and ehkit check",
    "import": "a row of an imported file (episodes, practitioners, agencies, feedback)",
    "feedback": "a piece of service-user feedback: the form and its import",
    "check": "ehkit check: the store, its change log and its data",
    "council": "the council's own rules (settings [rules] modules)",
}
# Modules that declare rules: importing them fills the registry.
DECLARING = ("ehkit.rules.audit", "ehkit.importing", "ehkit.cases",
             "ehkit.service_user_feedback", "ehkit.check")


class DuplicateRule(EhkitError):
    """Two rules were declared with one code."""


class RulesNotLoaded(EhkitError):
    """A council's rules module named in the settings cannot be loaded."""


class CouncilRuleFailed(EhkitError):
    """A council's own rule raised instead of answering."""


@dataclass(frozen=True)
class Rule:
    code: str
    kind: str
    message: str
    fields: tuple[str, ...] = ()
    check: Callable | None = None

    def __str__(self) -> str:
        return f"{self.code}\t{self.kind}\t{self.message}"


_REGISTRY: dict[str, Rule] = {}


def register(code: str, message: str, *, kind: str, fields: Iterable[str] = (),
             check: Callable | None = None) -> Rule:
    """Declare one rule; DuplicateRule if its code is taken."""
    if kind not in KINDS:
        raise ValueError(f"rule {code}: kind {kind!r} is not one of {', '.join(KINDS)}")
    if not code or not message or "|" in message:
        raise ValueError(f"rule {code!r}: give a code and a message (no '|': it is a table)")
    if code in _REGISTRY:
        raise DuplicateRule(f"rule code {code} is declared twice ({_REGISTRY[code].message!r} "
                            f"and {message!r}): give the new rule a code of its own")
    rule = Rule(code, kind, message, tuple(fields), check)
    _REGISTRY[code] = rule
    return rule


def register_all(messages: Mapping[str, str], *, kind: str) -> None:
    """Declare rules that are only a code and a message (a table of codes kept elsewhere)."""
    for code, message in messages.items():
        register(code, message, kind=kind)


def rule_definition(code: str, message: str, *, kind: str, fields: Iterable[str] = ()):
    """Decorator: declare the decorated function as the check of rule ``code``.

    An audit or action rule's function returns None when the rule is kept, else what a person
    reads about this case of breaking it (the place is added by whoever shows it). An import
    rule's function answers for whole columns at once (an export has 200,000 rows): for each
    field it names, which rows break it (:mod:`ehkit.cases`).
    """
    def declare(check: Callable) -> Callable:
        register(code, message, kind=kind, fields=fields, check=check)
        check.rule = _REGISTRY[code]
        return check
    return declare


def audit_rule(code: str, message: str, *, fields: Iterable[str] = ("overall_reasons",)):
    """Decorator for a council's own rule on a whole audit.

    The function gets the audit as :func:`ehkit.audits.load` gives it and returns None when
    the rule is kept, else what the auditor reads. The first field names where the form
    shows it (a field key: 'summary', 'overall', 'overall_reasons', a section key, ...).
    """
    return rule_definition(code, message, kind="council", fields=fields)


def get(code: str) -> Rule:
    """The rule with this code (KeyError if none is declared: a bug, not a person's input)."""
    if code not in _REGISTRY:
        _load_all()
    return _REGISTRY[code]


def all_rules() -> list[Rule]:
    """Every rule: ehkit's and the council's (its settings' now), by kind, then code."""
    _load_all()
    order = list(KINDS)
    mine = [r for r in _REGISTRY.values() if r.kind != "council"] + council_rules()
    return sorted(mine, key=lambda r: (order.index(r.kind), r.code))


def council_rules() -> list[Rule]:
    """The council's own audit rules, from the modules its settings name now."""
    modules = _load_council()
    return [r for r in _REGISTRY.values() if r.kind == "council"
            and r.check.__module__ in modules]


def council_problems(audit: Mapping) -> list[tuple[Rule, str]]:
    """The council's rules this audit breaks, each with what the auditor reads.

    The form and ``ehkit check`` both ask this. A rule that raises is the council's code
    failing: say which rule, and where it is, in words.
    """
    found = []
    for r in council_rules():
        try:
            why = r.check(audit)
        except Exception as e:
            raise CouncilRuleFailed(
                f"the council's rule {r.code} (in {r.check.__code__.co_filename}) failed on "
                f"this audit ({type(e).__name__}: {e}): correct it, or remove its module from "
                "the settings ([rules] modules)") from None
        if why:
            found.append((r, str(why)))
    return found


def markdown() -> str:
    """The README's list of what each kind of rule applies to, and its table of every rule."""
    lines = [f"- *{kind}*: {what}" for kind, what in KINDS.items()]
    lines += ["", "| code | applies to | message |", "|---|---|---|"]
    lines += [f"| `{r.code}` | {r.kind} | {r.message} |" for r in all_rules()]
    return "\n".join(lines)


def _load_all() -> None:
    for name in DECLARING:
        importlib.import_module(name)
    _load_council()


def _module_key(name: str) -> str:
    """A module name, or for a file, a name of its own per path (two councils' files on one
    machine may share a file name)."""
    if not name.endswith(".py"):
        return name
    path = str(Path(name).resolve())
    return f"ehkit_council_rules.{Path(name).stem}_{hashlib.sha1(path.encode()).hexdigest()[:12]}"


def _load_council() -> set[str]:
    """Import each module named by the settings' ``[rules] modules`` (once); their names.

    An entry is a module name on the Python path (``eastshire_rules``) or the path of a
    ``.py`` file (relative to the folder ehkit runs in).
    """
    names = settings().get("rules", {}).get("modules", [])
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise RulesNotLoaded("settings [rules] modules should be a list of module names or "
                             "file paths, like modules = [\"eastshire_rules\"]")
    keys = set()
    for name in names:
        key = _module_key(name)
        keys.add(key)
        if key not in sys.modules:
            _import_council_module(name, key)
    return keys


def _import_council_module(name: str, key: str) -> None:
    """Import one council module; if it fails, none of its rules stays declared."""
    try:
        if name.endswith(".py"):
            spec = importlib.util.spec_from_file_location(key, name)
            if spec is None or not Path(name).is_file():
                raise FileNotFoundError(f"no file {name}")
            sys.modules[key] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(sys.modules[key])
        else:
            importlib.import_module(name)
    except Exception as e:
        sys.modules.pop(key, None)
        for code in [c for c, r in _REGISTRY.items() if r.check and r.check.__module__ == key]:
            del _REGISTRY[code]
        if isinstance(e, DuplicateRule):
            raise
        # the council's code: say which module, and why, in words
        raise RulesNotLoaded(
            f"the rules module {name!r} named in the settings ([rules] modules) could not "
            f"be loaded ({type(e).__name__}: {e}): correct it, or remove it from the "
            "settings") from None
