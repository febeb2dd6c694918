"""The CPU seconds one page of the form benchmark costs (``bench/form.py``), read from /proc.

A page's work is done in three places, none of them the bench's own process: the Voila
server of its side, the kernel that serves the page, and Chromium's processes. Each is read
(utime + stime of every thread, /proc/<pid>/stat) before the page's clock starts and again
once the page is ready, while every process is still alive: its browser context still open,
its kernel still connected. A process born during the page counts from zero; one that ended
during it is lost (reaped children are not counted: a previous page's renderer or kernel
reaped now is not this page's work).

- The server: Voila's own process (its kernels are counted apart, or not at all).
- The page's kernel, told by its id: the browser's websocket ``/api/kernels/<id>/channels``
  names it, the kernel's command line names its connection file ``kernel-<id>.json``. With
  plain kernels it is born on the page's clock; with preheated ones it ran its notebook
  before the clock (what preheating is for), and the pool starts a replacement during the
  page: the next person's kernel, not counted (:attr:`PageCPU.not_counted` names it).
- The browser: Chromium's browser process and its descendants (zygotes, renderers, GPU,
  network and storage processes), found once at launch (:func:`new_browser`).

A kernel that cannot be found makes the page uncountable (:class:`Uncounted`, saying why):
never a silent zero.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from .common import TICK, proc_stat

KERNEL_SOCKET = re.compile(r"/api/kernels/([0-9a-f-]{36})/channels")


class Uncounted(RuntimeError):
    """A page whose CPU cannot all be counted: the figure would be wrong, so it fails."""


@dataclass(frozen=True)
class Process:
    ppid: int
    ticks: int  # utime + stime, all threads
    argv: tuple[str, ...]


def processes() -> dict[int, Process]:
    """Every process on the machine now (those that end while being read are left out)."""
    found: dict[int, Process] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = proc_stat(pid)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = tuple(a.decode(errors="replace") for a in f.read().split(b"\0") if a)
        except OSError:
            continue
        found[pid] = Process(stat[1], stat[11] + stat[12], argv)
    return found


def descendants(procs: dict[int, Process], root: int) -> set[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid, p in procs.items():
        children.setdefault(p.ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in procs and pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def _is_browser(p: Process) -> bool:
    """Chromium's browser process: Chromium without a ``--type=`` (its children have one;
    its crash handler, ``chrome_crashpad_handler``, is another program)."""
    return bool(p.argv) and os.path.basename(p.argv[0]) in ("chromium", "chrome") and not any(
        a.startswith("--type=") for a in p.argv)


def new_browser(launch: Callable[[], object]) -> tuple[object, int]:
    """``launch()`` (Playwright's, which does not say its browser's pid) and the pid of the
    Chromium browser process it started: the one below this process that was not there
    before (another browser in this process, a test's, is not counted)."""
    me = os.getpid()

    def browsers() -> set[int]:
        procs = processes()
        found = {pid for pid in descendants(procs, me) if _is_browser(procs[pid])}
        return {pid for pid in found if procs[pid].ppid not in found}  # not a re-exec's child

    before = browsers()
    browser = launch()
    started = browsers() - before
    if len(started) != 1:
        browser.close()
        raise Uncounted(f"launching Chromium started {len(started)} browser processes below "
                        f"this one ({sorted(started)}), not one: its CPU cannot be counted")
    return browser, started.pop()


def _kernel_id(argv: tuple[str, ...]) -> str | None:
    for a in argv:
        m = re.search(r"kernel-([0-9a-f-]{36})\.json$", a)
        if m:
            return m.group(1)
    return None


@dataclass(frozen=True)
class PageCPU:
    """One page's CPU seconds, by where they were spent."""

    server: float
    kernel: float
    browser: float
    kernel_id: str
    kernel_born_on_clock: bool  # True with plain kernels; False: a preheated one
    not_counted: tuple[str, ...]  # kernels the server started during the page (the pool's)

    @property
    def total(self) -> float:
        return self.server + self.kernel + self.browser


class PageMeter:
    """Read before the page's clock starts; :meth:`count` once the page is ready, before its
    browser context closes. ``side`` names the server in errors."""

    def __init__(self, server_pid: int, browser_pid: int, side: str):
        self.server_pid, self.browser_pid, self.side = server_pid, browser_pid, side
        self.before = processes()

    def _spent(self, after: dict[int, Process], pids: set[int]) -> float:
        ticks = 0
        for pid in pids:
            was = self.before.get(pid)
            # A pid seen before with another command line was reused: born on the clock.
            ticks += after[pid].ticks - (was.ticks if was and was.argv == after[pid].argv
                                         else 0)
        return ticks / TICK

    def count(self, socket_urls: list[str]) -> PageCPU:
        after = processes()
        if self.server_pid not in after:
            raise Uncounted(f"the {self.side} server (Voila, pid {self.server_pid}) ended "
                            "before its page's CPU was read")
        ids = {m.group(1) for m in map(KERNEL_SOCKET.search, socket_urls) if m}
        if len(ids) != 1:
            raise Uncounted(
                f"the {self.side} page opened websockets to {len(ids)} kernels "
                f"({', '.join(sorted(ids)) or 'none'}), not one: which kernel served it is not "
                "known, so its CPU cannot be counted")
        (kernel_id,) = ids
        kernels = {pid: _kernel_id(after[pid].argv)
                   for pid in descendants(after, self.server_pid) - {self.server_pid}}
        mine = [pid for pid, k in kernels.items() if k == kernel_id]
        if not mine:
            raise Uncounted(
                f"no process below the {self.side} server names kernel-{kernel_id}.json, the "
                "kernel its page is connected to: it ended, or runs elsewhere; its CPU "
                "cannot be counted")
        (kernel_pid,) = mine
        born = {pid for pid in kernels if pid not in self.before}
        browser = descendants(after, self.browser_pid)
        if not browser:
            raise Uncounted(f"Chromium's browser process (pid {self.browser_pid}) has ended")
        return PageCPU(
            server=self._spent(after, {self.server_pid}),
            kernel=self._spent(after, descendants(after, kernel_pid)),
            browser=self._spent(after, browser),
            kernel_id=kernel_id,
            kernel_born_on_clock=kernel_pid in born,
            not_counted=tuple(sorted(kernels[pid] or f"pid {pid}"
                                     for pid in born - {kernel_pid})))
