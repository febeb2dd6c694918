"""Benchmark 3: the audit form in headless Chromium vs a one-button Voila notebook.

Both notebooks are served by Voila with the options ``ehkit serve`` uses (``ehkit.serve``
builds the command line; only the notebook differs), once with plain kernels and once with
preheated ones. A page runs from asking Chromium for it to the first grade choice (for the
floor: the button) being clickable - Playwright's actionability check (visible, stable,
enabled, receiving events) via ``click(trial=True)``. Each load uses a fresh browser
context. Floor and form servers run side by side and their loads take turns.

The figure is the ratio of CPU seconds, each side's least over the rounds (``common.steady``),
as every other figure of the bench: a page's CPU is its side's Voila server's, the kernel
that serves the page's (born on the page's clock with plain kernels; with preheated ones,
run before it, and the replacement the pool starts meanwhile not counted) and Chromium's
(:mod:`bench.form_cpu`). A neighbour on a shared machine stretches a page's wall time by as
much as it waits for a core, and the form's page more than the floor's (bench/RESULTS.md,
2026-12-03: 1.30x quiet, 1.58x busy); its CPU far less, once the page's animations are
stilled (:data:`STILL`: Voila's spinner costs Chromium CPU for every second the page waits).
The wall times are printed beside, and a person waits for them: a median over 15 s fails
the figure, marked so.

Before each page is timed (off its clock) both servers must be ready for a person: with
preheated kernels, each one's pool holds a kernel whose page is rendered (``wait_pool``; the
server says so in its log, ``bench.form_server``), so neither side's page is timed against
its own pool still refilling, nor against the other's; a pool that is not ready within
``POOL_READY_S`` fails the figure saying why, as does a page whose kernel cannot be found.
Then ``wait_quiet`` (giving up after 10 s on a busy machine, where the turns keep the ratio
fair).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import BENCH, ROOT, Clock, Figure, Run, cpu_figure, in_turns, median, say
from .form_cpu import PageCPU, PageMeter, Uncounted, new_browser
from .form_server import FAILED, READY
from .local_hub import free_port

MAX_RATIO = 1.5
CEILING_S = 15  # a person waits for the form: a sanity ceiling, not the target
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
FORM_TARGET = ".ehkit-grade-pre_eha button"
FLOOR_TARGET = ".floor-button"
# The page still while it waits: Voila's spinner turns at 60 frames a second, Chromium's CPU
# rising with every second the page waits (0.2 s a second, measured), so a neighbour that
# stretches the wait would add to the page's CPU too. The wait is the wall time's to count.
STILL = """(() => {
  const css = '*, *::before, *::after { animation: none !important; transition: none !important; }';
  const add = () => {
    const style = document.createElement('style');
    style.textContent = css;
    document.documentElement.appendChild(style);
  };
  if (document.documentElement) add();
  else new MutationObserver((_, seen) => {
    if (document.documentElement) { seen.disconnect(); add(); }
  }).observe(document, {childList: true});
})();"""
# A preheated kernel runs the audit notebook in a few seconds, tens on a busy machine; a pool
# not ready in two minutes (ehkit serve's own start_seconds) is broken, not slow.
POOL_READY_S = 120
_READY = re.compile(re.escape(READY).replace(r"\{\}", r"(\S+)"))
_FAILED = re.compile(re.escape(FAILED).replace(r"\{\}", r"(.+?)", 1).replace(r"\{\}", r"(.*)"))
_GONE = re.compile(r"(?:Using pre-heated kernel: |Kernel shutdown: )(\S+)")


class PoolNotReady(RuntimeError):
    """A preheated pool that holds no ready kernel in time: the figure cannot be measured."""


class Server:
    """Voila serving one notebook, configured exactly as ``ehkit serve`` configures it and
    launched as it launches it (:mod:`bench.form_server`); ``side`` names it in errors."""

    def __init__(self, db: Path, notebook: Path, *, preheat: bool, workdir: Path,
                 side: str = "audit form"):
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
        self.side = side
        self.log_path = workdir / f"voila-{cfg.port}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                "from bench.form_server import main; main(sys.argv[1:])")
        self.proc = subprocess.Popen([sys.executable, "-c", code, *argv], cwd=workdir, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.wait_ready()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120) -> None:
        """Listening."""
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"voila exited:\n{self.log()[-3000:]}")
            try:
                urllib.request.urlopen(self.url.split("?")[0] + "api", timeout=2)
            except OSError as e:  # 404/403 still means it answers
                if not hasattr(e, "code"):
                    time.sleep(0.2)
                    continue
            return
        raise TimeoutError(f"voila not ready after {timeout}s:\n{self.log()[-3000:]}")

    def ready_kernels(self) -> set[str]:
        """The preheated kernels whose page is ready and that no page has taken yet."""
        log = self.log()
        return set(_READY.findall(log)) - set(_GONE.findall(log))

    def wait_pool(self, timeout: float | None = None) -> float:
        """Until the preheated pool holds a kernel whose page is ready (at once without
        preheat); the seconds waited. :class:`PoolNotReady` after ``timeout`` (default
        :data:`POOL_READY_S`), saying why."""
        timeout = POOL_READY_S if timeout is None else timeout
        t = time.monotonic()
        while self.preheat and not self.ready_kernels():
            if self.proc.poll() is not None:
                raise PoolNotReady(f"the {self.side} server (Voila) stopped (exit code "
                                   f"{self.proc.returncode}): {self._last_words()}")
            if time.monotonic() - t > timeout:
                raise PoolNotReady(
                    f"the {self.side} server's preheated pool held no kernel with its page ready "
                    f"within {timeout:g} s: {self._last_words()}")
            time.sleep(0.1)
        return time.monotonic() - t

    def _last_words(self) -> str:
        """The log's say on why: a kernel's page that failed, else its last line."""
        log = self.log()
        failed = _FAILED.findall(log)
        if failed:
            kernel, error = failed[-1]
            return f"kernel {kernel} did not bring its page up ({error})"
        lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
        return f"its log ends: {lines[-1][:300]}" if lines else "its log is empty"

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
    """Until the machine is quiet, after the pools are ready (``Server.wait_pool``): what is
    left of the last page (its browser context closing, a plain kernel's page ending) must
    not be on the next page's clock."""
    deadline, calm = time.monotonic() + timeout, 0
    while time.monotonic() < deadline and calm < 2:
        i0, t0 = _cpu_times()
        time.sleep(0.25)
        i1, t1 = _cpu_times()
        calm = calm + 1 if (i1 - i0) / max(1, t1 - t0) >= idle else 0


def _load(browser, browser_pid: int, server: Server, target: str) -> tuple[Clock, PageCPU]:
    """One page in a fresh browser context: its time (a person waits for it) and its CPU
    seconds (:mod:`bench.form_cpu`), read before the context closes."""
    context = browser.new_context()
    try:
        context.add_init_script(STILL)
        page = context.new_page()
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        meter = PageMeter(server.proc.pid, browser_pid, server.side)
        t = time.perf_counter()
        page.goto(server.url, wait_until="commit")
        page.locator(target).first.click(trial=True, timeout=120_000)
        seconds = time.perf_counter() - t
        cpu = meter.count(sockets)
        return Clock(seconds, cpu.total), cpu
    finally:
        context.close()


def _measure(browser, browser_pid: int, db: Path, form: Path, preheat: bool, repeats: int, work: Path
             ) -> tuple[list, list, list[float]]:
    """(floor pages, form pages, seconds waited for the pools before each): both servers up
    at once, their pages taking turns; a page is its :class:`Clock` and :class:`PageCPU`."""
    floor_server = Server(db, BENCH / "floor_form.ipynb", preheat=preheat, workdir=work,
                          side="floor")
    try:
        form_server = Server(db, form, preheat=preheat, workdir=work)
    except Exception:
        floor_server.stop()
        raise
    waits: list[float] = []

    def loads(server: Server, target: str):
        def one() -> tuple[Clock, PageCPU]:
            # Both servers, whichever is timed: neither page meets a pool still refilling.
            waits.append(sum(s.wait_pool() for s in (floor_server, form_server)))
            wait_quiet()
            return _load(browser, browser_pid, server, target)
        return one

    try:
        floor, mine = loads(floor_server, FLOOR_TARGET), loads(form_server, FORM_TARGET)
        floor(), mine()  # warm-up: first-ever import caches, browser
        floors, mines = in_turns(floor, mine, repeats)
        return floors, mines, waits[2:]
    finally:
        form_server.stop()
        floor_server.stop()


def where_note(mine: list[PageCPU], floor: list[PageCPU], preheat: bool) -> str:
    """Where each side's CPU went (medians), and with preheated kernels what was left out."""
    def part(name: str) -> str:
        return (f"{name} {median([getattr(c, name) for c in mine]):.2f} / "
                f"{median([getattr(c, name) for c in floor]):.2f} s")

    note = "CPU by part, form / floor (medians): " + ", ".join(map(part, ("server", "kernel", "browser")))
    if preheat:
        pages = mine + floor
        missed = sum(c.kernel_born_on_clock for c in pages)
        note += (f"; the pools' replacement kernels, not counted, started on "
                 f"{sum(bool(c.not_counted) for c in pages)} of {len(pages)} pages")
        if missed:
            note += f"; {missed} pages' kernels were not preheated (born on their clock)"
    return note


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
        browser, browser_pid = new_browser(
            lambda: p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS))
        try:
            for preheat in (False, True):
                kind = "preheated" if preheat else "plain"
                title = f"{name}, {kind} kernels, CPU (least of {repeats})"
                try:
                    floor, mine, waits = _measure(browser, browser_pid, db, form, preheat, repeats,
                                                   work)
                except (PoolNotReady, Uncounted) as e:  # no floor, no figure: it fails
                    run.add(cpu_figure(title, [], [], MAX_RATIO, ceiling=CEILING_S,
                                       note=str(e)))
                    continue
                waited = (f"before each page both pools ready: waited median "
                          f"{median(waits):.1f} s, longest {max(waits):.1f} s"
                          if preheat else "")
                note = "; ".join(n for n in (waited, where_note(
                    [c for _, c in mine], [c for _, c in floor], preheat)) if n)
                run.add(cpu_figure(title, [t for t, _ in mine], [t for t, _ in floor],
                                   MAX_RATIO, ceiling=CEILING_S, note=note))
        finally:
            browser.close()
