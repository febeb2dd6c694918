"""The form benchmark's Voila server (started by ``bench/form.py``, for the floor's page and
the audit form alike): Voila launched as ``ehkit.serve.run`` launches it (ehkit's checked
preheated pool, the quiet request log), and saying in its log when a preheated kernel is
ready for a person: still in the pool, its notebook run up to the page's request.

Voila's own "Kernel pool ... is filled" comes as soon as the kernel has started, before it
has run the notebook (seconds for the audit form, more on a busy machine), and Voila lists
no kernels to poll; so the pool is watched here. A kernel is ready when its page is
rendered (the floor's notebook runs to its end), or when its notebook waits for the page's
request (the audit form's last cell, ``voila.utils.wait_for_request``, which fills the
form's lists as the page is opened: the kernel has then opened its socket to Voila's
``RequestInfoSocketHandler``).
"""

from __future__ import annotations

import sys

READY = "bench: pre-heated kernel {} is ready for its page"
FAILED = "bench: pre-heated kernel {} did not bring its page up: {}"
_POOLS: list = []  # the server's pool (one), for the request socket's hook


def _failed(task) -> BaseException | None:
    return RuntimeError("cancelled") if task.cancelled() else task.exception()


def watched(factory):
    """Wrap ehkit's checked pool factory (:func:`ehkit.serve_kernels.checked_pool`): each
    kernel the preheated pool starts logs :data:`READY` once it is ready for its page, while
    no page has taken it yet."""

    def wrapped(base_class, preheat_kernel, default_pool_size, page_config_hook=None):
        pool_class = factory(base_class, preheat_kernel, default_pool_size, page_config_hook)
        if not preheat_kernel:
            return pool_class

        class WatchedPool(pool_class):
            def __init__(self, **kwargs):
                self._said: set[str] = set()
                _POOLS.append(self)
                super().__init__(**kwargs)

            def starting(self, started) -> None:
                super().starting(started)
                started.add_done_callback(self._watch_render)

            def _watch_render(self, started) -> None:
                error = _failed(started)
                if error is not None:
                    self.log.warning(FAILED.format("(not started)", repr(error)[:300]))
                    return
                kernel_id = started.result()["kernel_id"]
                started.result()["task"].add_done_callback(
                    lambda render: self.ready(kernel_id, _failed(render)))

            def ready(self, kernel_id: str, error: BaseException | None = None) -> None:
                if kernel_id in self._said or self.waiting_in(kernel_id) is None:
                    return  # said already, or a page took it first: not waiting in the pool
                self._said.add(kernel_id)
                if error is not None:
                    self.log.warning(FAILED.format(kernel_id, repr(error)[:300]))
                else:
                    self.log.info(READY.format(kernel_id))

        return WatchedPool

    return wrapped


def _say_when_waiting_for_request() -> None:
    from voila.request_info_handler import RequestInfoSocketHandler

    opened = RequestInfoSocketHandler.open

    def open(self, kernel_id: str) -> None:  # noqa: A001 - tornado's name
        opened(self, kernel_id)
        for pool in _POOLS:
            pool.ready(kernel_id)

    RequestInfoSocketHandler.open = open


def main(argv: list[str]) -> None:
    import voila.app

    from ehkit.serve_door import LOG_SETTINGS
    from ehkit.serve_kernels import checked_pool

    _say_when_waiting_for_request()
    voila.app.voila_kernel_manager_factory = watched(
        checked_pool(voila.app.voila_kernel_manager_factory))
    voila.app.Voila.launch_instance(argv=argv, tornado_settings=LOG_SETTINGS)


if __name__ == "__main__":
    main(sys.argv[1:])
