"""The one base class for errors meant for a person (the CLI prints them as one line), and
the errors two modules share."""

from __future__ import annotations

from collections.abc import Mapping


class EhkitError(Exception):
    """Something a person can fix: the message says what was wrong, where, and what to do."""


class AuditNotFound(EhkitError):
    """No such audit (or none at that time): the audits and their history both raise it."""


class FeedbackError(EhkitError):
    """Feedback (after an audit, or from a service user) cannot be recorded as asked;
    ``problems`` maps field to reason."""

    def __init__(self, message: str, problems: Mapping[str, str] | None = None):
        self.problems = dict(problems or {})
        super().__init__(message)
