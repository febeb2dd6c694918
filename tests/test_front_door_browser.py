"""``ehkit serve``'s front door (issue 16): a browser without the link's key is told in plain
words how to get the link, and the server's log never holds the key in a request line.
The real server (``ehkit serve``), headless Chromium, the server's own log."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from voila_harness import VoilaServer, chromium_fixture, copy_db  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(demo_db_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("frontdoor")
    with VoilaServer(copy_db(demo_db_path, folder / "ehkit.db"), cwd=folder,
                     preheat=False) as s:
        yield s


def visit(chromium, url: str) -> str:
    """What a person sees at ``url``: the page's text."""
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(url, timeout=60_000)
        page.wait_for_selector("h1", timeout=60_000)
        assert page.locator(".ehkit-form").count() == 0
        return page.locator("body").inner_text()
    finally:
        context.close()


def test_without_the_key_the_page_says_how_to_get_the_link(server, chromium):
    said = visit(chromium, server.base)
    assert "Open the form from its full link" in said
    assert "ask them for the link" in said and "ehkit serve" in said
    assert "ehkit: serving audit for ehkit.db at http://127.0.0.1:8866/?token=..." in said
    for jupyter in ("jupyter server list", "Setup a Password", "Password or token"):
        assert jupyter not in said


def test_a_link_with_an_old_key_is_told_it_is_out_of_date(server, chromium):
    said = visit(chromium, server.base + "?token=key-of-a-server-started-yesterday")
    assert "The link you used is out of date" in said and "ehkit serve" in said
    assert "key-of-a-server-started-yesterday" not in said


def test_the_log_never_holds_the_key_in_a_request_line(server):
    for path in (f"no-such-page?token={server.token}", f"voila/api/shutdown/x?token={server.token}"):
        try:
            urllib.request.urlopen(server.base + path, timeout=60).read()
        except urllib.error.HTTPError:
            pass  # refused or not found: logged all the same
    # A request is logged once it is answered: wait for the line (masked) to be written.
    deadline = time.monotonic() + 30
    while "GET /voila/api/shutdown/x?token=[secret]" not in server.log():
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.2)
    log = server.log()
    assert "GET /no-such-page?token=[secret]" in log
    # Only the line `ehkit serve` printed for the person who started it holds the key.
    holding = [line for line in log.splitlines() if server.token in line]
    assert len(holding) == 1 and holding[0].startswith("ehkit: serving audit for ")
