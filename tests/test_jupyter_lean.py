"""ehkit's processes leave out jsonschema's IRI parsers (:mod:`ehkit.jupyter_lean`): a report's
process and the Voila server's, each a real one, still validate notebooks, and jsonschema still
checks its other formats."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from voila_harness import VoilaServer, copy_db

# Run in the process under test, once its Jupyter stack is imported: what it left out, and
# whether nbformat and jsonschema still do their checks there.
PROBE = """
import json, sys
import nbformat
from jsonschema import FormatChecker

def probe(notebook):
    good = nbformat.read(notebook, as_version=4)
    nbformat.validate(good)  # raises if it is not a valid notebook
    bad = nbformat.from_dict(json.loads(json.dumps(good)))
    bad.cells[0]["cell_type"] = "spreadsheet"
    try:
        nbformat.validate(bad)
        refused = False
    except nbformat.ValidationError:
        refused = True
    check = FormatChecker()
    return {"iri_parsers": "rfc3987_syntax" in sys.modules
                           and sys.modules["rfc3987_syntax"] is not None,
            "jsonschema": "jsonschema" in sys.modules, "bad_refused": refused,
            "formats": [check.conforms("2026-12-03", "date"), check.conforms("2026-13-45", "date"),
                        check.conforms("a@example.org", "email"), check.conforms("nobody", "email")]}
"""
EXPECTED = {"iri_parsers": False, "jsonschema": True, "bad_refused": True,
            "formats": [True, False, True, False]}


def test_a_reports_process_leaves_out_jsonschemas_iri_parsers(demo_db_path, tmp_path):
    """jsonschema, imported by nbformat, builds rfc3987_syntax's 38 parsers (1.1 s of CPU)
    for format checks nbformat, papermill and nbconvert never make: a report's process
    (fresh, as `ehkit report`'s) makes the report without them."""
    from ehkit import home

    code = (f"from ehkit import reports\nr = reports.run('quarterly', db={str(demo_db_path)!r}, "
            f"period='2026Q3', out_dir={str(tmp_path)!r})\n{PROBE}\n"
            f"print(json.dumps({{'html': r.html.stat().st_size > 0, "
            f"**probe({str(home.find('notebooks', 'quarterly_report.ipynb'))!r})}}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=tmp_path)
    assert json.loads(done.stdout.splitlines()[-1]) == {"html": True, **EXPECTED}, \
        done.stderr[-2000:]


def test_the_voila_servers_process_leaves_out_jsonschemas_iri_parsers(demo_db_path, tmp_path):
    """`ehkit serve` as it is, its process asked (by a sitecustomize hook, on a thread once
    Voila's app is imported and serving) what it holds: Voila's start is 1.3 s of CPU less."""
    import os

    hooks, answer = tmp_path / "hooks", tmp_path / "answer.json"
    hooks.mkdir()
    (hooks / "lean_probe.py").write_text(PROBE)  # imported late: it imports nbformat
    (hooks / "sitecustomize.py").write_text(
        "import json, sys, threading, time\n"
        "def _ask():\n"
        "    while 'voila.app' not in sys.modules:\n"  # only the server, not its kernels
        "        time.sleep(0.1)\n"
        "    time.sleep(2)\n"
        "    import lean_probe\n"
        "    notebook = sys.modules['ehkit.home'].find('notebooks', 'audit.ipynb')\n"
        f"    open({str(answer)!r}, 'w').write(json.dumps(lean_probe.probe(notebook)))\n"
        "threading.Thread(target=_ask, daemon=True).start()\n")
    db = copy_db(demo_db_path, tmp_path / "ehkit.db")
    path = os.pathsep.join(filter(None, [str(hooks), os.environ.get("PYTHONPATH")]))
    with VoilaServer(db, cwd=tmp_path, preheat=False, env={"PYTHONPATH": path}) as server:
        for _ in range(300):
            if answer.exists() and answer.read_text():
                break
            time.sleep(0.1)
        assert answer.exists(), server.log()[-2000:]
        assert json.loads(answer.read_text()) == EXPECTED
