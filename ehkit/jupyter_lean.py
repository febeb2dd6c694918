"""What ehkit's processes leave out of the Jupyter stack they import (papermill, nbconvert,
Voila), set once before any of it is imported.

jsonschema (nbformat, jupyter_events and jupyter_server import it) checks the "iri" and
"iri-reference" formats with ``rfc3987_syntax`` where that is installed (Jupyter installs it:
jupyter-events asks for ``jsonschema[format-nongpl]``), and that builds 38 Lark parsers as it
is imported: 1.1-1.3 s of CPU in every report's process, 1.3 s of Voila's start. No schema
those packages check uses either format (nbformat, papermill and nbconvert check none at
all), so ehkit's processes do without it: jsonschema takes it as not installed and checks
every other format as before. Upstream: python-jsonschema/jsonschema#1392 and #1428 (import
it lazily), opendatahub-io/notebooks#3532.
"""

from __future__ import annotations

import sys


def leave_out_iri_parsers() -> None:
    """Before jsonschema is first imported; a process that has it already keeps it as it is
    (its format checkers are made once, at import)."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)
