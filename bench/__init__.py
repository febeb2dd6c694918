"""ehkit's benchmarks: ``make bench`` (``python -m bench``). Not part of ``make test``.

Each benchmark measures ehkit and its floor side by side in the same run and prints ehkit's
figure, the floor, the ratio, the target and PASS/FAIL. Big demo stores are built once and
cached in ``bench/.cache/`` (keyed by size, seed and the code that makes them).
"""
