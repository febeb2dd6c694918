"""Who is acting, and what they may do (issue 17): the one place every domain function asks.

Identity comes from the login only: ``EHKIT_LOGIN``, which the server that started this
process sets (on JupyterHub, to the login the hub authenticated), else the operating-system
account this process runs as (by effective uid). Nothing a page sends is asked: not a
widget's value, not a header, not ``JUPYTERHUB_USER`` (any local user can set that). A form
the hub's server starts ahead of anyone asking (a preheated kernel, marked ``AWAITING``) is
nobody, every act refused, until the server hands it a login (:func:`take_login`, called by
:func:`ehkit.forms.common.hand_over` over the server's own channel to the kernel).

Logins map to a practitioner and roles in the ``users`` table (``ehkit users``); what each
role may do is the settings' ``[roles]`` table, which a council may change. Domain functions
call :func:`require` (or :func:`acting`, which also names the person in the change log) and
a refusal is :class:`NotAllowed`, saying which role is needed. With no users defined (one
person on their own machine) that person is admin and may do everything, as before logins.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import pwd
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from . import db as store
from . import settings
from .errors import EhkitError

# Each permission a role in settings [roles] may list, in words for a refusal.
PERMISSIONS = {
    "audit": "starting and editing your own audits",
    "see_own_cases": "seeing the children's names and dates of birth on your own cases",
    "print_own_records": "printing the record of your own audits",
    "moderate": "moderating audits you did not write",
    "draw_lists": "drawing or redrawing a month's audit list",
    "import": "importing case-system exports",
    "actions": "changing actions in the action tracker",
    "letters": "writing letters and feedback to workers",
    "service_user_feedback": "recording service-user feedback",
    "self_assessments": "recording self-assessments",
    "see_all_cases": "seeing the children's names and dates of birth on every case",
    "print_any_record": "printing any audit's record",
    "reports_with_names": "the monthly report with names (for the Head of Service)",
    "board_reports": "board and LSCB reports",
    "users": "adding and removing users",
    "backup": "making backups",
    "check": "checking the store",
}
ADMIN = "admin"
NOT_ON_LIST = "(not on your list)"  # shown instead of a child's name or date of birth


class NotAllowed(EhkitError):
    """The logged-in person may not do this; the message names the role that may."""


class UsersError(EhkitError):
    """A user cannot be added, imported or removed as asked; ``problems`` lists each."""

    def __init__(self, message: str, problems: Iterable[str] = ()):
        self.problems = list(problems)
        super().__init__(message + "".join(f"\n  {p}" for p in self.problems))


# Set by `ehkit serve --hub` on a kernel started before anyone asked for it (serve_hub).
AWAITING = "EHKIT_LOGIN_AWAITED"
NOBODY_YET = ("This form has not been given to a login yet, so it can do nothing: reload the "
              "page to open a form of your own.")


def login() -> str:
    """Who is acting: the login the server set (``EHKIT_LOGIN``), else this process's OS
    account; on the hub, a kernel still waiting for its login is nobody (NotAllowed)."""
    if given := os.environ.get("EHKIT_LOGIN"):
        return given
    if os.environ.get(AWAITING):  # never the service account's own login
        raise NotAllowed(NOBODY_YET)
    return _account(os.geteuid())


def awaiting_login() -> bool:
    """Is this a hub kernel that has not been handed its login yet?"""
    return bool(os.environ.get(AWAITING)) and not os.environ.get("EHKIT_LOGIN")


def take_login(login_name: str) -> None:
    """Become ``login_name``: once, in a kernel the hub's server started awaiting a login."""
    if not awaiting_login():
        raise NotAllowed("This form's login is given once, by the server, and it has one.")
    if not login_name:
        raise NotAllowed("The server handed this form no login.")
    os.environ["EHKIT_LOGIN"] = login_name


@functools.cache  # asked for every change-log row
def _account(uid: int) -> str:
    return pwd.getpwuid(uid).pw_name


def roles() -> dict[str, list[str]]:
    """The roles table (settings ``[roles]``): role -> the permissions it gives."""
    table = settings.get("roles")
    for role, perms in table.items():
        unknown = [p for p in perms if p not in PERMISSIONS] if isinstance(perms, list) else [perms]
        if unknown:
            raise settings.SettingsError(
                f"{settings.source('roles', role)}: [roles] {role} lists {unknown!r}, which "
                f"ehkit does not know: choose from {', '.join(PERMISSIONS)}")
    if ADMIN not in table:
        raise settings.SettingsError("the settings' [roles] table has no admin role: put it "
                                     "back (ehkit's own settings.toml shows it)")
    return table


@dataclass(frozen=True)
class Person:
    login: str
    practitioner_id: int | None
    name: str | None  # the practitioner's name
    roles: frozenset[str]
    one_person: bool = False  # no users defined: this person is admin and may do everything

    def may(self, permission: str) -> bool:
        table = roles()
        return self.one_person or any(permission in table.get(r, ()) for r in self.roles)

    @property
    def actor(self) -> str:
        """How the change log names them: their practitioner's name, else the login."""
        return self.name or self.login


def _users_defined(db: sqlite_utils.Database) -> bool:
    try:
        return db.execute("SELECT EXISTS (SELECT 1 FROM users WHERE active = 1)").fetchone()[0]
    except sqlite3.OperationalError:  # a store from before logins (read as it is)
        return False


def person(db: sqlite_utils.Database, login_name: str | None = None) -> Person:
    """The logged-in person (or ``login_name``'s, for the server that starts their page):
    their practitioner and roles (everything when no users are defined)."""
    me = login_name or login()
    if not _users_defined(db):
        return Person(me, None, None, frozenset(roles()), one_person=True)
    row = db.execute("SELECT u.practitioner_id, p.name, u.roles FROM users u LEFT JOIN"
                     " practitioners p ON p.id = u.practitioner_id WHERE u.login = ? AND"
                     " u.active = 1", [me]).fetchone()
    if row is None:
        return Person(me, None, None, frozenset())
    return Person(me, row[0], row[1], frozenset(row[2].split()))


def require(db: sqlite_utils.Database, permission: str) -> Person:
    """The logged-in person, if they may do ``permission``; else NotAllowed naming the role
    that may."""
    me = person(db)
    if me.may(permission):
        return me
    raise NotAllowed(refusal(me, permission))


def require_any(db: sqlite_utils.Database, what: str, *permissions: str) -> Person:
    """The logged-in person, if they may do any of ``permissions``; else NotAllowed saying
    that ``what`` needs the roles giving them."""
    me = person(db)
    if any(me.may(p) for p in permissions):
        return me
    raise NotAllowed(refusal_for(me, what, roles_with(*permissions)))


def require_report(db: sqlite_utils.Database, names: bool) -> Person:
    """The logged-in person, if they may have a report for an audience with (``names``) or
    without workers' names: the one check for ``ehkit report`` and for a report notebook
    run by hand."""
    return require(db, "reports_with_names" if names else "board_reports")


def roles_with(*permissions: str) -> list[str]:
    """The roles (as people name them: "head of service") that give any of ``permissions``."""
    return [r.replace("_", " ") for r, perms in roles().items() if set(permissions) & set(perms)]


def refusal(me: Person, permission: str) -> str:
    return refusal_for(me, PERMISSIONS[permission], roles_with(permission))


def refusal_for(me: Person, what: str, needed: list[str]) -> str:
    """Doing ``what`` is refused: it needs one of the roles ``needed``."""
    need = (f"needs the {' or '.join(needed)} role" if needed
            else "is given to no role in the settings' [roles] table")
    if not me.roles:
        return f"{what[0].upper()}{what[1:]} {need}, and {not_a_user(me.login)}"
    held = ", ".join(sorted(r.replace("_", " ") for r in me.roles))
    return (f"{what[0].upper()}{what[1:]} {need}; your login '{me.login}' has {held}: ask an "
            "ehkit admin if you need it")


def not_a_user(login_name: str) -> str:
    """What a login that is not an ehkit user is told."""
    return (f"your login '{login_name}' is not an ehkit user: ask an ehkit admin to add you "
            f"(ehkit users add {login_name} --practitioner ID --role ROLE)")


def is_stranger(me: Person) -> bool:
    """A login that may do nothing: users are defined and it is not one of them."""
    return not (me.one_person or me.roles)


@contextlib.contextmanager
def acting(db: sqlite_utils.Database, permission: str, *, label: str | None = None,
           reason: str | None = None) -> Iterator[Person]:
    """:func:`require`, then name the person in the change log for the block: their
    practitioner (one person on their own machine: ``label``, as before logins)."""
    me = require(db, permission)
    with store.acting_as(actor=actor_name(me, label), reason=reason):
        yield me


def actor_name(me: Person, label: str | None) -> str | None:
    """Who the change log names as acting: the login's practitioner (one person on their own
    machine: ``label``, the name a caller gives, as before logins)."""
    return label if me.one_person else me.actor


def refuse_unless_own(me: Person, auditor_ids: Iterable[int | None], doing: str) -> None:
    """An auditor acts only on audits where they are auditor 1 or 2."""
    if not me.one_person and me.practitioner_id not in set(auditor_ids):
        raise NotAllowed(f"{doing.capitalize()} is for the audit's own auditors; your login "
                         f"'{me.login}' is not auditor 1 or 2 on it")


# -- case details --------------------------------------------------------------------------
def cases_seen(me: Person) -> tuple[str, dict]:
    """The cases whose children's names and dates of birth this person may see, as a query
    of their episode ids and its parameters (the one rule for :func:`may_see_case` and the
    form's case numbers).

    Every case for those who see all (coordinator, Head of Service); an auditor's or a
    moderator's own cases: one they audit or moderate, one on their list, or (a moderator)
    one with a submitted audit they did not write.
    """
    if me.may("see_all_cases"):
        return "SELECT id FROM episodes", {}
    if me.practitioner_id is None or not me.may("see_own_cases"):
        return "SELECT CAST(NULL AS INTEGER) WHERE FALSE", {}  # typed: PostgreSQL compares ids
    return ("SELECT episode_id FROM selections WHERE auditor_id = :me"
            " UNION SELECT episode_id FROM audits WHERE auditor1_id = :me OR auditor2_id = :me"
            " OR (:moderating AND status != 'draft' AND auditor1_id <> :me AND"
            " (auditor2_id IS NULL OR auditor2_id <> :me))"
            " UNION SELECT a.episode_id FROM moderations m JOIN audits a ON a.id = m.audit_id"
            " WHERE m.moderator_id = :me",
            {"me": me.practitioner_id, "moderating": me.may("moderate")})


def may_see_case(db: sqlite_utils.Database, episode_id: int | None,
                 me: Person | None = None) -> bool:
    """May the logged-in person see this case's children's names and dates of birth
    (:func:`cases_seen`)?"""
    me = me or person(db)
    if me.may("see_all_cases"):
        return True
    if episode_id is None:
        return False
    seen, params = cases_seen(me)
    return bool(db.execute(f"SELECT :episode IN ({seen})",
                           {**params, "episode": episode_id}).fetchone()[0])


# Who may find and open a saved audit: the one rule for audits.find and audits.load.
SEES_AUDITS = ("audit", "moderate", "see_own_cases", "see_all_cases")


def audits_seen(me: Person) -> tuple[str, str, dict]:
    """The saved audits this person may find and open: in words, as an SQL condition on
    ``audits a``, and its parameters.

    Every audit for those who see every case; else an auditor's own (auditor 1 or 2), those
    of the cases on their list, a moderator's to moderate (submitted, not written by them),
    and those anyone has moderated."""
    if me.may("see_all_cases"):
        return "every saved audit", "TRUE", {}
    p = me.practitioner_id
    if p is None or not any(me.may(k) for k in SEES_AUDITS):
        return "no saved audit (your login acts as no practitioner)", "FALSE", {}
    # The audits that are theirs, gathered once (``a.id IN``), not asked again of every row.
    words, theirs = [], ["SELECT audit_id FROM moderations WHERE moderator_id = :me"]
    if me.may("audit"):
        words.append("your audits")
        theirs += ["SELECT id FROM audits WHERE auditor1_id = :me",
                   "SELECT id FROM audits WHERE auditor2_id = :me"]
    if me.may("see_own_cases"):
        words.append("your list's cases")
        theirs.append("SELECT l.id FROM selections s JOIN audits l ON l.episode_id ="
                      " s.episode_id WHERE s.auditor_id = :me")
    where = f"(a.id IN ({' UNION '.join(theirs)})"
    if me.may("moderate"):
        words.append("audits you may moderate")
        where += (" OR (a.status != 'draft' AND a.auditor1_id <> :me AND"
                  " (a.auditor2_id IS NULL OR a.auditor2_id <> :me))")
    said = (", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1
            else (words or ["audits you moderated"])[0])
    return said, where + ")", {"me": p}


def may_see_audit(db: sqlite_utils.Database, audit_id: int, me: Person | None = None) -> bool:
    """May this person open the audit (:func:`audits_seen`)?"""
    _, where, params = audits_seen(me or person(db))
    return bool(db.execute(f"SELECT EXISTS (SELECT 1 FROM audits a WHERE a.id = :audit AND"
                           f" {where})", {**params, "audit": audit_id}).fetchone()[0])


def require_audit(db: sqlite_utils.Database, audit_id: int, what: str) -> Person:
    """The logged-in person, if they may open the audit (those who see every case: even one
    since deleted, whose history stays); else NotAllowed: ``what`` is for those who may."""
    me = person(db)
    if me.may("see_all_cases") or may_see_audit(db, audit_id, me):
        return me
    everyone = " or ".join(roles_with("see_all_cases"))
    who = (not_a_user(me.login) if is_stranger(me)
           else f"your login '{me.login}' is none of these for it")
    raise NotAllowed(f"{what} is for its auditors and moderators, the auditor whose list its "
                     f"case is on, and those with the {everyone} role; {who}")


def case_details(db: sqlite_utils.Database, info: dict | None,
                 me: Person | None = None) -> dict | None:
    """Case information as this person may see it: the children's names and dates of birth
    replaced by "(not on your list)" on a case that is not theirs."""
    if not info or may_see_case(db, info.get("episode_id"), me):
        return info
    children = [{"name": NOT_ON_LIST, "date_of_birth": NOT_ON_LIST} for _ in info["children"]]
    return {**info, "children": children, "child_names": NOT_ON_LIST,
            "date_of_birth": NOT_ON_LIST}


# -- users ---------------------------------------------------------------------------------
def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _problems(db, login_name: str, practitioner_id, role_names: list[str]) -> list[str]:
    """What is wrong with one user's login, practitioner and roles (empty: nothing)."""
    found = []
    if not login_name or any(c.isspace() for c in login_name):
        found.append(f"login {login_name!r}: give the login as the hub knows it, with no "
                     "spaces")
    known = roles()
    bad = [r for r in role_names if r not in known]
    if bad or not role_names:
        found.append(f"role {', '.join(bad) or '(none)'}: choose from {', '.join(known)}")
    if practitioner_id is not None:
        if isinstance(practitioner_id, bool) or not isinstance(practitioner_id, int):
            found.append(f"practitioner {practitioner_id!r}: give the practitioner's number")
        elif not db.execute("SELECT 1 FROM practitioners WHERE id = ?",
                            [practitioner_id]).fetchone():
            found.append(f"practitioner {practitioner_id}: there is no such practitioner "
                         "(import the practitioners first)")
    elif {"audit", "moderate"} & {p for r in role_names for p in known.get(r, ())}:
        found.append(f"practitioner: an {' or '.join(role_names)} acts as a practitioner: "
                     "give --practitioner ID")
    return found


def _write_users(db, rows: list[tuple[str, int | None, list[str]]]) -> None:
    """Add or update users (admin only; the first must be an admin), one transaction."""
    with store.transaction(db):
        if _users_defined(db):
            me = require(db, "users")
        else:
            me = person(db)
            if not any(ADMIN in r for _, _, r in rows):
                raise UsersError("the first user must be an admin (who then adds the rest): "
                                 "give --role admin")
        with store.acting_as(actor=me.actor):
            db["users"].upsert_all(
                [{"login": lg, "practitioner_id": p, "roles": " ".join(dict.fromkeys(r)),
                  "active": 1, "changed_at": _now()} for lg, p, r in rows], pk="login")
        if not _admins(db):  # undone with the transaction
            raise UsersError("that would leave no admin: keep the admin role on one login, "
                             "or give it to another first")


def _admins(db) -> int:
    return db.execute("SELECT count(*) FROM users WHERE active = 1 AND ' ' || roles || ' '"
                      " LIKE '% admin %'").fetchone()[0]


def add_user(db: sqlite_utils.Database, login_name: str, *, roles: Iterable[str],
             practitioner_id: int | None = None) -> None:
    """Give a login its practitioner and roles (adding it again changes them)."""
    role_names = list(roles)
    found = _problems(db, login_name, practitioner_id, role_names)
    if found:
        raise UsersError(f"{login_name} was not added:", found)
    _write_users(db, [(login_name, practitioner_id, role_names)])


def import_users(db: sqlite_utils.Database, path: str | Path) -> int:
    """Add or update the users in a CSV or .xlsx file (columns login, practitioner, roles:
    roles separated by spaces). Every row is checked first; one bad row and none is written."""
    from .importing import Columns, by_field, cell_text, open_file

    path = Path(path)
    if not path.is_file():
        raise UsersError(f"{path}: no such file: give the users file's path")
    # The import frame's reading and header matching; unlike the case imports, one bad row
    # stops the whole file (who may do what is not imported in part).
    f = open_file(path, Columns("users", {"login": ("login",),
                                          "practitioner": ("practitioner", "practitioner id"),
                                          "roles": ("roles", "role")},
                                ("login", "roles"), "the headings are login, practitioner, roles"))
    found = [f"{path.name} row {p.row}: {p.value} beyond the {p.detail}" for p in f.refused]
    users, seen = [], set()
    for n, cells in f.rows:
        text = {k: cell_text(v) for k, v in by_field(f, cells).items()}
        lg, pid, rs = text["login"], text.get("practitioner") or "", text["roles"]
        pid = int(pid) if pid.isdigit() else (pid or None)
        problems = _problems(db, lg, pid, rs.split())
        if lg in seen:
            problems.append(f"login {lg}: already on an earlier row")
        seen.add(lg)
        found += [f"{path.name} row {n}, {p}" for p in problems]
        users.append((lg, pid, rs.split()))
    if found:
        raise UsersError(f"{path.name}: no user was imported; put these right and import "
                         "again:", found)
    if users:
        _write_users(db, users)
    return len(users)


def remove_user(db: sqlite_utils.Database, login_name: str) -> None:
    """Stop a login using ehkit (kept, inactive, so the change log's history names it)."""
    with store.transaction(db):
        me = require(db, "users")
        row = db.execute("SELECT roles FROM users WHERE login = ? AND active = 1",
                         [login_name]).fetchone()
        if row is None:
            raise UsersError(f"{login_name} is not an active ehkit user: `ehkit users list` "
                             "shows who is")
        if ADMIN in row[0].split() and _admins(db) == 1:
            raise UsersError(f"{login_name} is the only admin: add another admin first, or "
                             "nobody could manage users")
        with store.acting_as(actor=me.actor):
            db["users"].update(login_name, {"active": 0, "changed_at": _now()})


def list_users(db: sqlite_utils.Database) -> list[dict]:
    """Every login, active first, with its practitioner's name."""
    require(db, "users")
    return [dict(r) for r in db.query(
        "SELECT u.login, u.practitioner_id, p.name AS practitioner, u.roles, u.active,"
        " u.changed_at FROM users u LEFT JOIN practitioners p ON p.id = u.practitioner_id"
        " ORDER BY u.active DESC, u.login")]
