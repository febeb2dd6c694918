__version__ = '0.2.0'


def _sqlite_utils_without_numpy() -> None:
    """Import sqlite-utils without the pandas and numpy it imports if it can (a quarter and a
    tenth of a second of CPU, in every kernel: each form and report). It wants them only to
    map ``pd.Timestamp`` and numpy's number types when it creates tables from Python values;
    ehkit's tables come from its SQL migrations, and code that needs pandas or numpy still
    imports them as usual afterwards."""
    import sys

    if "sqlite_utils" in sys.modules:
        return
    blocked = [m for m in ("pandas", "numpy") if m not in sys.modules]
    for m in blocked:
        sys.modules[m] = None  # makes `import m` raise ImportError, for this import
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for m in blocked:
            del sys.modules[m]


_sqlite_utils_without_numpy()
