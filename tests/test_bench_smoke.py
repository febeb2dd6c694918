"""The benchmarks still run: their smallest configuration, on a tiny cached store.

Only the cheap steps (saving, selection, import, generation) run here; the report, batch
and browser benchmarks are imported, so a renamed ehkit function breaks this test, not
`make bench` weeks later.
"""

from __future__ import annotations

import importlib


def test_bench_quick_run_prints_every_figure_with_a_mark(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EHKIT_BENCH_CACHE", str(tmp_path / "cache"))
    common = importlib.reload(importlib.import_module("bench.common"))
    main = importlib.reload(importlib.import_module("bench.__main__"))
    assert common.CACHE == tmp_path / "cache"
    main.main(["--quick", "--sizes", "120", "--only", "save,select"])
    out = capsys.readouterr().out
    for name in ("save_draft median", "draw a month's selection", "import a 300-row CSV",
                 "generate the 120-episode demo store"):
        line = next(ln for ln in out.splitlines() if name in ln)
        assert line.rstrip().endswith(("PASS", "FAIL", "n/a")) or ")" in line
    # The store is cached: a second run does not build it again.
    main.main(["--quick", "--sizes", "120", "--only", "select"])
    assert "(cached; built in" in capsys.readouterr().out
