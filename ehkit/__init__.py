__version__ = '0.2.0'


def _sqlite_utils_without_pandas() -> None:
    """Import sqlite-utils without the pandas it imports if it can (a quarter of a second,
    in every kernel: each form and report). It wants pandas only to map ``pd.Timestamp`` when
    it creates tables from Python values; ehkit's tables come from its SQL migrations, and
    code that needs pandas still imports it as usual afterwards."""
    import sys

    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        return
    sys.modules["pandas"] = None  # makes `import pandas` raise ImportError, for this import
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["pandas"]


_sqlite_utils_without_pandas()
