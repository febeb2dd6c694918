"""The form benchmark's CPU count of a page (bench/form_cpu.py): the Voila server's, the
kernel that serves the page (told by its id) and the browser's, never a preheated pool's
replacement kernel, and never a silent zero."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import time
import uuid

import pytest
from voila_harness import notebook

# A parent that starts, on each line it reads, a child spinning on a core whose command line
# names that line (as Voila's kernels name their connection file ``kernel-<id>.json``).
PARENT = """
import subprocess, sys
kids = []
try:
    for line in sys.stdin:
        kids.append(subprocess.Popen([sys.executable, "-c", "while True: pass", *line.split()]))
        print(kids[-1].pid, flush=True)
finally:
    for kid in kids:
        kid.kill()
"""


class Parent:
    """A real process tree: a server with its kernels, or a browser with its renderers."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, start_new_session=True)

    def start(self, *argv: str) -> int:
        self.proc.stdin.write(" ".join(argv) + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def stop(self) -> None:
        import os
        import signal

        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def trees():
    made: list[Parent] = []

    def make() -> Parent:
        made.append(Parent())
        return made[-1]

    yield make
    for parent in made:
        parent.stop()


def _ticks(pid: int) -> float:
    from bench.common import TICK, proc_stat

    stat = proc_stat(pid)
    return (stat[11] + stat[12]) / TICK  # as bench.form_cpu counts it, to the tick


def _until(condition, timeout: float = 30) -> None:
    """Spinners on a busy machine get a core when they can: wait for their CPU, not a time."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the spinning processes got no CPU in 30 s"
        time.sleep(0.05)


def _socket(kernel_id: str) -> str:
    return f"ws://127.0.0.1:8866/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4()}"


def _kernel(tmp_path, kernel_id: str) -> tuple[str, str]:
    return "-f", str(tmp_path / f"kernel-{kernel_id}.json")


def test_a_preheated_page_counts_its_own_kernel_and_not_the_pool_s_replacement(trees, tmp_path):
    from bench.form_cpu import PageMeter

    server, browser = trees(), trees()
    page_kernel, replacement = str(uuid.uuid4()), str(uuid.uuid4())
    preheated = server.start(*_kernel(tmp_path, page_kernel))  # before the page's clock
    renderer = browser.start("--type=renderer")
    _until(lambda: _ticks(preheated) >= 0.2)  # its notebook run, before the clock
    before = _ticks(preheated)
    meter = PageMeter(server.proc.pid, browser.proc.pid, "test")
    started = _ticks(preheated)
    spare = server.start(*_kernel(tmp_path, replacement))  # the pool refills during the page
    _until(lambda: _ticks(spare) >= 0.2 and _ticks(preheated) - started >= 0.1
           and _ticks(renderer) >= 0.1)
    ended = _ticks(preheated)
    cpu = meter.count([_socket(page_kernel)])
    after = _ticks(preheated)

    assert cpu.kernel_id == page_kernel and cpu.kernel_born_on_clock is False
    assert cpu.not_counted == (replacement,)
    # The page's kernel counted for the page's time only (its 0.2 s before the clock not),
    # and the replacement's 0.2 s or more, spinning beside it, not at all: either would put
    # the count above what the page's kernel spent from just before to just after it.
    during, around = round(ended - started, 2), round(after - before, 2)  # whole ticks
    assert 0.1 <= during <= cpu.kernel <= around < during + 0.2
    assert 0.1 <= cpu.browser <= _ticks(renderer) + 0.05
    assert cpu.total == cpu.server + cpu.kernel + cpu.browser


def test_a_plain_page_counts_its_kernel_from_its_birth(trees, tmp_path):
    from bench.form_cpu import PageMeter

    server, browser = trees(), trees()
    idle = server.start(*_kernel(tmp_path, str(uuid.uuid4())))  # another page's, spinning
    meter = PageMeter(server.proc.pid, browser.proc.pid, "test")
    idle_before = _ticks(idle)
    page_kernel = str(uuid.uuid4())
    born = server.start(*_kernel(tmp_path, page_kernel))
    _until(lambda: _ticks(born) >= 0.1 and _ticks(idle) - idle_before >= 0.2)
    spent = _ticks(born)
    cpu = meter.count([_socket(page_kernel), _socket(page_kernel)])  # reconnects: one kernel
    spent_after = _ticks(born)
    assert cpu.kernel_id == page_kernel and cpu.kernel_born_on_clock is True
    assert cpu.not_counted == ()  # born on the clock, and counted
    # all of its CPU since its birth; the other kernel's 0.2 s meanwhile would put it above
    assert 0.1 <= spent <= cpu.kernel <= spent_after < spent + 0.2  # no difference: exact


def test_a_page_whose_kernel_cannot_be_found_is_not_counted_as_nothing(trees, tmp_path):
    from bench.form_cpu import PageMeter, Uncounted

    server, browser = trees(), trees()
    known = str(uuid.uuid4())
    server.start(*_kernel(tmp_path, known))
    meter = PageMeter(server.proc.pid, browser.proc.pid, "floor")
    with pytest.raises(Uncounted, match=r"^the floor page opened websockets to 0 kernels "
                       r"\(none\), not one"):
        meter.count(["ws://127.0.0.1:8866/api/events/subscribe"])
    with pytest.raises(Uncounted, match="to 2 kernels"):
        meter.count([_socket(known), _socket(str(uuid.uuid4()))])
    gone = str(uuid.uuid4())
    with pytest.raises(Uncounted, match=rf"^no process below the floor server names "
                       rf"kernel-{gone}\.json, the kernel its page is connected to"):
        meter.count([_socket(gone)])
    server.stop()
    with pytest.raises(Uncounted, match=r"^the floor server \(Voila, pid \d+\) ended"):
        meter.count([_socket(known)])


def test_a_person_s_ceiling_on_the_time_is_kept_beside_the_ratio_of_cpu():
    from bench.common import Clock, cpu_figure

    floor = [Clock(2.0, 1.0), Clock(2.1, 1.0)]
    quick = cpu_figure("form", [Clock(3.0, 1.2), Clock(3.1, 1.3)], floor, 1.5, ceiling=15)
    assert quick.passed is True and quick.ratio == 1.2
    assert quick.target == "<= 1.5x floor (CPU), < 15.00 s (a person waits)"
    assert "time median 3.05 s" in quick.note and "FAIL" not in quick.note
    # The CPU ratio holds, but a person waited 16 s for most pages: the figure fails.
    slow = cpu_figure("form", [Clock(3.0, 1.2), Clock(16.0, 1.3), Clock(17.0, 1.2)],
                      [*floor, Clock(2.2, 1.0)], 1.5, ceiling=15)
    assert slow.ratio == 1.2 and slow.passed is False
    assert "time median 16.00 s (FAIL: over the ceiling)" in slow.note
    assert cpu_figure("form", [], [], 1.5, ceiling=15).passed is False


def _burn(seconds: float) -> str:
    return f"import time\nt = time.process_time()\nwhile time.process_time() - t < {seconds}:\n pass"


def _page_in_chromium(server, target: str):
    from playwright.sync_api import sync_playwright

    from bench.form import CHROMIUM, CHROMIUM_ARGS, _load
    from bench.form_cpu import new_browser

    with sync_playwright() as p:
        browser, pid = new_browser(
            lambda: p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS))
        try:
            return _load(browser, pid, server, target)
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_real_preheated_page_counts_the_kernel_it_took_not_the_one_the_pool_starts(
        demo_db_path, tmp_path):
    """Voila and Chromium: the page's kernel is the one the pool had ready (its notebook's
    1.5 s of CPU before the clock not counted, the 0.3 s it spends once the page asks,
    counted); the replacement the pool starts during the page runs that 1.5 s too, and is
    not counted. The page is still (its animations off), as every page the bench counts."""
    from bench.form import Server
    from bench.form_cpu import processes

    nb = notebook(tmp_path / "burn.ipynb", _burn(1.5),
                   "from voila.utils import wait_for_request\nwait_for_request()\n" + _burn(0.3),
                   # A button that turns for ever is never "stable" for Playwright: found only
                   # on a page stilled as the bench stills it (bench.form.STILL)
                   "from IPython.display import HTML\nHTML('<style>@keyframes turn {to "
                   "{transform: rotate(359deg)}} .go {animation: turn 1s infinite linear}"
                   "</style>')",
                   "import ipywidgets as w\nw.Button(description='Go').add_class('go')")
    server = Server(demo_db_path, nb, preheat=True, workdir=tmp_path, side="burn")
    try:
        server.wait_pool()
        (ready,) = server.ready_kernels()
        # Playwright's sync API wants a thread without an event loop
        with concurrent.futures.ThreadPoolExecutor(1) as one:
            clock, cpu = one.submit(_page_in_chromium, server, ".go").result()
        assert cpu.kernel_id == ready and cpu.kernel_born_on_clock is False
        assert 0.25 <= cpu.kernel < 1.0, cpu
        assert cpu.server > 0 and cpu.browser > 0.1 and clock.cpu_seconds == cpu.total, cpu
        server.wait_pool()
        (replacement,) = server.ready_kernels()
        assert replacement != ready and cpu.not_counted == (replacement,)
        (spare,) = [pid for pid, p in processes().items()
                    if any(a.endswith(f"kernel-{replacement}.json") for a in p.argv)]
        assert _ticks(spare) >= 1.5  # its notebook's burn, run during our page and after
    finally:
        server.stop()
