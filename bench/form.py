"""Benchmark 3: the audit form in headless Chromium vs a one-button Voila notebook.

Both notebooks are served by Voila with the options ``ehkit serve`` uses (``ehkit.serve``
builds the command line; only the notebook differs), once with plain kernels and once with
preheated ones. The time is from asking Chromium for the page to the first grade choice
(for the floor: the button) being clickable - Playwright's actionability check (visible,
stable, enabled, receiving events) via ``click(trial=True)``. Each load uses a fresh browser
context. Floor and form servers run side by side and their loads take turns; the figure is
the ratio of each side's least time (``common.steady``), with a sanity ceiling of 15 s on the
median (a person waits for it). On
a busy machine ``wait_quiet`` gives up after 10 s: the turns keep the ratio fair.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import BENCH, Figure, Run, in_turns, ratio_figure, say
from .local_hub import free_port

MAX_RATIO = 1.5
CEILING_S = 15  # a person waits for the form: a sanity ceiling, not the target
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
FORM_TARGET = ".ehkit-grade-pre_eha button"
FLOOR_TARGET = ".floor-button"


class Server:
    """Voila serving one notebook, configured exactly as ``ehkit serve`` configures it."""

    def __init__(self, db: Path, notebook: Path, *, preheat: bool, workdir: Path):
        from ehkit import serve

        cfg = serve.configure(db, notebook="audit", port=free_port(), preheat=preheat,
                              reports_dir=workdir / "reports")
        argv = [str(notebook)] + [
            f"--Voila.root_dir={notebook.parent}" if a.startswith("--Voila.root_dir=") else a
            for a in cfg.argv()[1:]]
        env = {**os.environ, **cfg.environment(), "PYTHONUNBUFFERED": "1",
               "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
        self.url = cfg.url
        self.preheat = preheat
        self.log_path = workdir / f"voila-{cfg.port}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        code = "import sys; from voila.app import Voila; Voila.launch_instance(argv=sys.argv[1:])"
        self.proc = subprocess.Popen([sys.executable, "-c", code, *argv], cwd=workdir, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.wait_ready()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120) -> None:
        """Listening, and with preheat the kernel pool full again."""
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"voila exited:\n{self.log()[-3000:]}")
            fills = len(re.findall(r"is filled with", self.log()))
            if not self.preheat or fills > getattr(self, "_fills", 0):
                try:
                    urllib.request.urlopen(self.url.split("?")[0] + "api", timeout=2)
                except OSError as e:  # 404/403 still means it answers
                    if not hasattr(e, "code"):
                        time.sleep(0.2)
                        continue
                self._fills = fills
                return
            time.sleep(0.2)
        raise TimeoutError(f"voila not ready after {timeout}s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    return cpu[3] + cpu[4], sum(cpu)  # idle + iowait, all


def wait_quiet(idle: float = 0.85, timeout: float = 10) -> None:
    """Until the machine is quiet: Voila logs a preheated pool as full once the new kernel
    has started, while it is still running the notebook ahead of the next request. The
    next page must not be timed against that work (on the floor it is almost nothing)."""
    deadline, calm = time.monotonic() + timeout, 0
    while time.monotonic() < deadline and calm < 2:
        i0, t0 = _cpu_times()
        time.sleep(0.25)
        i1, t1 = _cpu_times()
        calm = calm + 1 if (i1 - i0) / max(1, t1 - t0) >= idle else 0


def _load(browser, url: str, target: str) -> float:
    context = browser.new_context()
    try:
        page = context.new_page()
        t = time.perf_counter()
        page.goto(url, wait_until="commit")
        page.locator(target).first.click(trial=True, timeout=120_000)
        return time.perf_counter() - t
    finally:
        context.close()


def _measure(browser, db: Path, form: Path, preheat: bool, repeats: int, work: Path
             ) -> tuple[list[float], list[float]]:
    """(floor loads, form loads): both servers up at once, their loads taking turns."""
    floor_server = Server(db, BENCH / "floor_form.ipynb", preheat=preheat, workdir=work)
    try:
        form_server = Server(db, form, preheat=preheat, workdir=work)
    except Exception:
        floor_server.stop()
        raise

    def loads(server: Server, target: str):
        def one() -> float:
            wait_quiet()
            t = _load(browser, server.url, target)
            server.wait_ready()  # preheated: wait for the pool to be full again
            time.sleep(1)
            return t
        return one

    try:
        floor, mine = loads(floor_server, FLOOR_TARGET), loads(form_server, FORM_TARGET)
        floor(), mine()  # warm-up: first-ever import caches, browser
        return in_turns(floor, mine, repeats)
    finally:
        form_server.stop()
        floor_server.stop()


def run(run: Run, db: Path, repeats: int = 5) -> None:
    say("\n3. Audit form in headless Chromium vs one-button Voila notebook")
    form = Path(__file__).resolve().parent.parent / "notebooks" / "audit.ipynb"
    name = "form: open URL -> first grade clickable"
    try:
        from playwright.sync_api import sync_playwright

        from ehkit import serve  # noqa: F401
    except ImportError as e:
        run.add(Figure(name, None, "s", f"<= {MAX_RATIO}x floor", None,
                       note=f"not measurable yet: {e}"))
        return
    if not form.exists():
        run.add(Figure(name, None, "s", f"<= {MAX_RATIO}x floor", None,
                       note="not measurable yet: notebooks/audit.ipynb missing"))
        return
    with tempfile.TemporaryDirectory(prefix="ehkit-form-") as d, sync_playwright() as p:
        work = Path(d)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for preheat in (False, True):
                kind = "preheated" if preheat else "plain"
                floor, mine = _measure(browser, db, form, preheat, repeats, work)
                run.add(ratio_figure(f"{name}, {kind} kernels (least of {repeats})", mine,
                                     floor, "s", MAX_RATIO, ceiling=CEILING_S))
        finally:
            browser.close()
