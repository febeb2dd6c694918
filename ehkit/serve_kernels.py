"""The kernels of ``ehkit serve``: capped, stopped when unused, a broken preheated one discarded.

Voila gives every page a kernel of its own (a Python process holding the form). Left alone,
one that a closed or crashed tab (or a page that never connected) leaves behind lives for
ever. ``serve`` therefore runs Voila with jupyter_server's culling (a kernel no page is
connected to, idle ``idle_seconds``, is stopped; never-connected kernels too) and with
:class:`FormKernelManager`, which refuses a kernel beyond ``max_kernels`` with a page saying
why. :func:`checked_pool` makes Voila's preheated pool hand out only a kernel that is still
the one the form was built in, and replace at once one that breaks while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import os
from pathlib import Path

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Integer

# Shown on Voila's error page (a HTTP reason: one line, plain ASCII).
TOO_MANY = ("The ehkit server already has {n} forms open, the most it allows. Close a form "
            "you no longer need, or wait a few minutes (an unused form closes by itself), "
            "then reload this page.")
NOT_STARTED = ("The ehkit server could not start this form. Reload the page; if it happens "
               "again tell your ehkit administrator.")


class FormKernelManager(AsyncMappingKernelManager):
    """At most ``max_kernels`` kernels; remembers the ones that died or were restarted."""

    max_kernels = Integer(20, config=True, help="Most kernels running at once (0: no limit).")
    start_timeout = Integer(120, config=True,
                            help="Seconds a preheated kernel has to bring its page's form up.")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._starting = 0
        # A kernel that died or was restarted lost the form built in it.
        self.broken: set[str] = set()

    async def start_kernel(self, **kwargs) -> str:
        if self.max_kernels and len(self) + self._starting >= self.max_kernels:
            raise web.HTTPError(503, reason=TOO_MANY.format(n=self.max_kernels))
        self._starting += 1
        try:
            kernel_id = await super().start_kernel(**kwargs)
        finally:
            self._starting -= 1
        kernel = self.get_kernel(kernel_id)
        for event in ("restart", "dead"):
            kernel.add_restart_callback(lambda k=kernel_id: self.broke(k), event)
        return kernel_id

    def broke(self, kernel_id: str) -> None:
        """The kernel died, or was restarted: the form built in it is gone."""
        self.broken.add(kernel_id)

    async def shutdown_kernel(self, kernel_id: str, *args, **kwargs):
        self.broken.discard(kernel_id)
        try:
            return await super().shutdown_kernel(kernel_id, *args, **kwargs)
        finally:
            before = resident_mb()
            give_back_memory()
            self.log.info("Kernel %s stopped; the server's memory %.0f MB -> %.0f MB",
                          kernel_id, before, resident_mb())


def give_back_memory() -> None:
    """Hand what a closed form's page held in this server back to the system: Python frees
    it to the C allocator, which keeps it unless trimmed (bench/RESULTS.md, issue 17)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # a C library without malloc_trim
        ctypes.CDLL(None).malloc_trim(0)


def resident_mb() -> float:
    """This process's resident memory (Linux; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _failed(task) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)


# Preheated kernels that broke in the pool and were replaced at once, in a row: past this,
# the form itself cannot start, and the next page says so rather than the pool churning.
REPLACED_IN_A_ROW = 3


def checked_pool(voila_factory, mixin: type | None = None):
    """Wrap Voila's kernel manager factory: its preheated pool discards a broken kernel
    (and, given ``mixin``, is built with it on top: the hub's :class:`~ehkit.serve_hub.HandOver`).

    Voila builds the pool class at start-up from the configured base class, so the check on
    hand-out has to sit on top of the class it builds.
    """

    def factory(base_class, preheat_kernel, default_pool_size, page_config_hook=None):
        voila_class = voila_factory(base_class, preheat_kernel, default_pool_size,
                                    page_config_hook)
        if not preheat_kernel:
            return voila_class

        class CheckedPool(voila_class):
            def __init__(self, **kwargs):
                self._replaced_in_a_row = 0  # Voila's own __init__ fills the pool
                super().__init__(**kwargs)

            def fill_if_needed(self, *args, **kwargs) -> None:
                known = {id(t) for pool in self._pools.values() for t in pool}
                super().fill_if_needed(*args, **kwargs)
                for pool in self._pools.values():
                    for started in pool:
                        if id(started) not in known:
                            self.starting(started)

            def starting(self, started) -> None:
                """A kernel the pool has begun to start (``started``, the task starting it)."""
                started.add_done_callback(self._watch_form)

            def _watch_form(self, started) -> None:
                if not _failed(started):  # one that did not start is dropped on demand
                    kernel_id, form = started.result()["kernel_id"], started.result()["task"]
                    form.add_done_callback(lambda done: self._form_built(kernel_id, done))

            def _form_built(self, kernel_id: str, form) -> None:
                if _failed(form):
                    self.replace(kernel_id)
                elif kernel_id not in self.broken:
                    self._replaced_in_a_row = 0

            def broke(self, kernel_id: str) -> None:
                super().broke(kernel_id)
                self.replace(kernel_id)

            def replace(self, kernel_id: str) -> None:
                """A preheated kernel that broke while waiting in the pool (died, or its form
                failed) is stopped and another started at once: the next person gets a
                ready form, not a fresh start. One a page has taken is the page's to say."""
                notebook = self.waiting_in(kernel_id)
                if notebook is None or self._replaced_in_a_row >= REPLACED_IN_A_ROW:
                    return
                self._replaced_in_a_row += 1
                self.log.warning("Pre-heated kernel %s broke before a page took it: replacing it",
                                 kernel_id)
                asyncio.ensure_future(self._stop_and_refill(kernel_id, notebook))

            def waiting_in(self, kernel_id: str) -> str | None:
                """The notebook whose pool holds this started kernel, no page having taken it."""
                return next((name for name, pool in self._pools.items() for t in pool
                             if t.done() and not _failed(t)
                             and t.result()["kernel_id"] == kernel_id), None)

            async def _stop_and_refill(self, kernel_id: str, notebook_name: str) -> None:
                with contextlib.suppress(Exception):  # gone already (a page took it meanwhile)
                    await self.shutdown_kernel(kernel_id, now=True)
                self.fill_if_needed(delay=0, notebook_name=notebook_name)

            def get_pool_size(self, notebook_name: str) -> int:
                # Drop kernels that failed to start (Voila's shutdown_kernel would trip on
                # them) and refill an emptied pool (refused at the cap, or discarded) on demand.
                pool = self._pools.get(notebook_name, [])
                pool[:] = [task for task in pool if not _failed(task)]
                if not pool:
                    self.fill_if_needed(delay=0, notebook_name=notebook_name)
                return super().get_pool_size(notebook_name)

            async def get_rendered_notebook(self, notebook_name: str, **kwargs):
                for _ in range(3):
                    self.get_pool_size(notebook_name)
                    try:
                        task, cache, kernel_id = await super().get_rendered_notebook(
                            notebook_name, **kwargs)
                    except web.HTTPError:
                        raise  # at the cap: the page says so
                    except Exception:  # noqa: BLE001 - a kernel that failed to start
                        self.log.warning("Discarding a pre-heated kernel that failed to start",
                                         exc_info=True)
                        continue
                    if (kernel_id not in self.broken and not _failed(task)
                            and await self.get_kernel(kernel_id).is_alive()):
                        asyncio.ensure_future(self._stop_unless_up(kernel_id, task))
                        return task, cache, kernel_id
                    self.log.warning("Discarding broken pre-heated kernel %s", kernel_id)
                    await self.shutdown_kernel(kernel_id)
                raise web.HTTPError(503, reason=NOT_STARTED)

            async def _stop_unless_up(self, kernel_id: str, task) -> None:
                """A kernel that has not finished its page in time is stopped: the page says
                so and a reload gets a fresh one (a hung kernel is busy, so never culled)."""
                try:
                    await asyncio.wait_for(asyncio.shield(task), self.start_timeout)
                except TimeoutError:
                    self.log.warning("Pre-heated kernel %s did not bring its form up in %s s:"
                                     " stopping it", kernel_id, self.start_timeout)
                    if kernel_id in self:
                        await self.shutdown_kernel(kernel_id, now=True)
                except Exception:  # noqa: BLE001 - the page's own handler reports it
                    pass

        return type(f"{mixin.__name__}Pool", (mixin, CheckedPool), {}) if mixin else CheckedPool

    return factory
