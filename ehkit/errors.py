"""The one base class for errors meant for a person (the CLI prints them as one line)."""


class EhkitError(Exception):
    """Something a person can fix: the message says what was wrong, where, and what to do."""
