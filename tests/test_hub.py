"""The hub's configuration (``deploy/jupyterhub_config.py`` = ``ehkit.hub.configure``), without
starting a hub: each login is chosen by ``EHKIT_HUB_AUTH``, users get no server, the forms are
the hub's services; a setting that is wrong is one clear line. The real hub runs in
tests/test_hub_browser.py."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import runpy
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from traitlets.config import Config

from ehkit import cli, hub

ROOT = Path(__file__).resolve().parents[1]
BASE = {"EHKIT_HUB_PROXY": sys.executable, "EHKIT_DB": "/srv/early-help/data/ehkit.db",
        "EHKIT_HUB_ALLOW_ALL": "1"}


def configured(**env) -> Config:
    c = Config()
    hub.configure(c, {**BASE, **env})
    return c


@pytest.mark.parametrize("name", sorted(hub.AUTHENTICATORS))
def test_each_login_is_chosen_by_ehkit_hub_auth(name):
    c = configured(EHKIT_HUB_AUTH=name, EHKIT_HUB_PASSWORD="long-enough-pw")
    assert c.JupyterHub.authenticator_class == hub.AUTHENTICATORS[name]
    module, _, cls = hub.AUTHENTICATORS[name].rpartition(".")
    if importlib.util.find_spec(module.split(".")[0]) is None:
        pytest.skip(f"{module} is not installed (`pip install jupyterhub-nativeauthenticator`)")
    assert getattr(importlib.import_module(module), cls)  # the class named is there


def test_an_unknown_login_is_refused_naming_the_choices():
    with pytest.raises(hub.HubConfigError, match="EHKIT_HUB_AUTH='ldap' .* entra, github"):
        configured(EHKIT_HUB_AUTH="ldap")
    with pytest.raises(hub.HubConfigError, match="EHKIT_HUB_AUTH"):
        configured()


def test_a_hub_nobody_could_log_in_to_is_refused():
    with pytest.raises(hub.HubConfigError, match="EHKIT_HUB_USERS, or set EHKIT_HUB_ALLOW_ALL=1"):
        configured(EHKIT_HUB_AUTH="entra", EHKIT_HUB_ALLOW_ALL="")
    assert configured(EHKIT_HUB_AUTH="entra", EHKIT_HUB_ALLOW_ALL="",
                      EHKIT_HUB_USERS="amy").Authenticator.allowed_users == {"amy"}


def test_the_shared_password_login_needs_a_password_of_eight_characters():
    with pytest.raises(hub.HubConfigError, match="8 characters"):
        configured(EHKIT_HUB_AUTH="shared-password", EHKIT_HUB_PASSWORD="short")


def test_a_missing_proxy_says_how_to_install_it():
    with pytest.raises(hub.HubConfigError, match="npm install"):
        configured(EHKIT_HUB_AUTH="pam", EHKIT_HUB_PROXY="/nowhere/configurable-http-proxy")


def test_users_have_no_server_and_land_on_the_first_form():
    c = configured(EHKIT_HUB_AUTH="pam", EHKIT_HUB_APPS="audit sampling",
                   EHKIT_HUB_APPS_PORT="9000", EHKIT_HUB_USERS="amy, bo ,",
                   EHKIT_HUB_ADMINS="it.admin", EHKIT_HUB_ALLOW_ALL="")
    assert c.JupyterHub.spawner_class is hub.NoServerSpawner
    assert c.JupyterHub.redirect_to_server is False
    assert c.JupyterHub.default_url == "/services/audit/"
    assert c.JupyterHub.template_paths == [str(hub.HOME_PAGE)]
    assert (hub.HOME_PAGE / "home.html").exists()
    assert [(s["name"], s["url"]) for s in c.JupyterHub.services] == [
        ("audit", "http://127.0.0.1:9000"), ("sampling", "http://127.0.0.1:9001")]
    for service in c.JupyterHub.services:
        assert service["command"][-4:] == ["serve", "--hub", "--notebook", service["name"]]
        assert service["environment"]["EHKIT_DB"] == BASE["EHKIT_DB"]
    (role,) = c.JupyterHub.load_roles
    assert role["name"] == "user" and set(role["scopes"]) == {
        "self", "access:services!service=audit", "access:services!service=sampling"}
    assert c.Authenticator.allowed_users == {"amy", "bo"}
    assert c.Authenticator.admin_users == {"it.admin"} and c.Authenticator.allow_all is False


def test_the_shipped_config_file_is_configure(monkeypatch):
    for key, value in {**BASE, "EHKIT_HUB_AUTH": "github"}.items():
        monkeypatch.setenv(key, value)
    c = Config()
    runpy.run_path(str(ROOT / "deploy" / "jupyterhub_config.py"), init_globals={"c": c})
    assert c.JupyterHub.authenticator_class == hub.AUTHENTICATORS["github"]
    assert c.JupyterHub.spawner_class is hub.NoServerSpawner


@pytest.mark.slow  # starts the real jupyterhub
def test_a_wrong_setting_stops_the_real_hub_with_one_line_and_no_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHKIT_HUB_")}
    done = subprocess.run(
        [sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "deploy" / "jupyterhub_config.py"),
         "--JupyterHub.bind_url=http://127.0.0.1:1"], cwd=tmp_path, capture_output=True,
        text=True, timeout=120, env={**env, "EHKIT_HUB_AUTH": "ldap", "EHKIT_HUB_STATE": str(tmp_path)})
    assert done.returncode != 0
    assert "ehkit: error: EHKIT_HUB_AUTH='ldap' is not a login ehkit knows" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def run(coroutine):
    """Run a coroutine on a thread of its own (a browser test in this process may hold a
    running event loop)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def test_asked_for_a_server_the_hub_says_there_is_none():
    from tornado import web
    with pytest.raises(web.HTTPError) as refused:
        run(hub.NoServerSpawner().start())
    assert refused.value.status_code == 403 and "forms are the only apps" in refused.value.log_message
    assert run(hub.NoServerSpawner().poll()) == 0  # never running


def test_ehkit_serve_hub_by_hand_is_one_clear_line(demo_db_path, capsys, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    code = cli.main(["serve", "--hub", "--db", str(demo_db_path)])
    err = capsys.readouterr().err
    assert code == 2 and "started by JupyterHub" in err and "Traceback" not in err


def test_every_hub_setting_is_in_the_readme_and_the_shipped_env_file_knows_no_other():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert [key for key in hub.SETTINGS if f"`{key}`" not in readme] == []
    shipped = {line.split("=", 1)[0] for line in
               (ROOT / "deploy" / "ehkit-hub.env").read_text(encoding="utf-8").splitlines()
               if line.startswith("EHKIT_HUB_")}
    assert shipped and shipped <= set(hub.SETTINGS), shipped - set(hub.SETTINGS)


def test_the_systemd_unit_runs_the_shipped_config_with_the_env_file():
    unit = (ROOT / "deploy" / "ehkit-hub.service").read_text(encoding="utf-8")
    assert "EnvironmentFile=/etc/ehkit/ehkit-hub.env" in unit
    assert "-f /etc/ehkit/jupyterhub_config.py" in unit and "User=ehkit" in unit


def test_a_login_the_hub_lets_in_that_is_not_an_ehkit_user_gets_a_page_saying_ask_the_admin(
        store_at, monkeypatch):
    """On SQLite and on PostgreSQL: the server reads the logins from the store in EHKIT_DB."""
    from builders import add_logins, add_moderator, base_rows
    from tornado import web

    from ehkit import db as store
    from ehkit import serve_hub

    database = store.connect(store_at)
    base_rows(database)
    add_moderator(database)
    add_logins(database, monkeypatch)
    database.close()
    monkeypatch.setenv("EHKIT_DB", store_at)
    monkeypatch.delenv("EHKIT_LOGIN")  # the service's own: the page's login is asked for
    serve_hub.refuse_a_stranger("ava")  # a user: her form opens
    with pytest.raises(web.HTTPError) as refused:
        serve_hub.refuse_a_stranger("dan")
    assert refused.value.status_code == 403
    assert refused.value.reason == ("Your login 'dan' is not an ehkit user: ask an ehkit admin "
                                    "to add you (ehkit users add dan --practitioner ID --role "
                                    "ROLE).")


def hub_service(monkeypatch, tmp_path, serve_settings: str = "") -> None:
    """The environment the hub gives ``ehkit serve --hub``, with these [serve] settings."""
    (tmp_path / "settings.toml").write_text(f"[serve]\n{serve_settings}")
    monkeypatch.setenv("EHKIT_SETTINGS", str(tmp_path / "settings.toml"))
    for name, value in {"JUPYTERHUB_SERVICE_PREFIX": "/services/audit/",
                        "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:18871",
                        "JUPYTERHUB_API_TOKEN": "t", "JUPYTERHUB_API_URL": "http://h"}.items():
        monkeypatch.setenv(name, value)


def test_under_the_hub_the_preheated_forms_are_the_serve_preheat_setting(
        demo_both, tmp_path, monkeypatch):
    """On SQLite and on PostgreSQL: the kernels are handed the store as it was given."""
    from ehkit import serve

    hub_service(monkeypatch, tmp_path)
    cfg = serve.configure(demo_both, hub=True)
    argv = cfg.argv()
    assert "--preheat_kernel=True" in argv and "--pool_size=2" in argv  # ehkit's default
    url = demo_both.startswith("postgresql://")
    assert cfg.environment()["EHKIT_DB"] == (demo_both if url else str(Path(demo_both).resolve()))
    hub_service(monkeypatch, tmp_path, "preheat = 0")
    assert not [a for a in serve.configure(demo_both, hub=True).argv() if "preheat" in a]


def test_a_password_in_the_url_reaches_the_forms_kernels_apart_from_it(pg_server, tmp_path,
                                                                        monkeypatch):
    """The kernels are handed the URL without its password and the password in PGPASSWORD
    (libpq reads it), as a report's kernel is: a URL may be shown, logged or kept."""
    from ehkit import db as store
    from ehkit import postgres, serve

    hub_service(monkeypatch, tmp_path)
    url = pg_server.new_database()
    store.connect(url)  # a store there (the test server trusts its login: any password works)
    with_password = url.replace("://ehkit@", "://ehkit:Sw0rdfish-7@")
    assert with_password != url
    env = serve.configure(with_password, hub=True).environment()
    assert env["EHKIT_DB"] == url and env["PGPASSWORD"] == "Sw0rdfish-7"
    assert "Sw0rdfish-7" not in env["EHKIT_DB"]
    assert postgres.password_apart(with_password) == (url, "Sw0rdfish-7")


@pytest.mark.parametrize("bad", ["-1", '"two"', "true"])
def test_a_preheat_setting_that_is_not_a_whole_number_is_refused_in_plain_words(
        demo_db_path, tmp_path, monkeypatch, bad):
    from ehkit import serve

    hub_service(monkeypatch, tmp_path, f"preheat = {bad}")
    with pytest.raises(serve.ServeError, match=r"\[serve\] preheat = .* must be a whole number"):
        serve.configure(demo_db_path, hub=True)


def persons_server(monkeypatch, tmp_path, url: str) -> None:
    """The environment a spawner gives a person's server (jupyterhub's Spawner.get_env), as
    KubeSpawner does in a pod: the url from the spawner's ip."""
    hub_service(monkeypatch, tmp_path)
    for name, value in {"JUPYTERHUB_SERVICE_URL": url, "JUPYTERHUB_USER": "amy",
                        "JUPYTERHUB_SERVICE_PREFIX": "/user/amy/", "JUPYTERHUB_SERVER_NAME": "",
                        "JUPYTERHUB_ACTIVITY_URL": "http://h/hub/api/users/amy/activity"
                        }.items():
        monkeypatch.setenv(name, value)


def test_a_persons_server_listens_where_its_spawner_says(demo_db_path, tmp_path, monkeypatch):
    from bench.local_hub import free_port
    from ehkit import serve

    port = free_port()
    persons_server(monkeypatch, tmp_path, f"http://0.0.0.0:{port}/user/amy/")
    argv = serve.configure(demo_db_path, hub=True).argv()
    assert "--Voila.ip=0.0.0.0" in argv and f"--port={port}" in argv
    assert "--Voila.base_url=/user/amy/" in argv
    # the one-server hub's service stays on the loopback, whatever its url says
    monkeypatch.setenv("JUPYTERHUB_SERVICE_NAME", "audit")
    with pytest.raises(serve.ServeError, match=r"must be http://127\.0\.0\.1:PORT"):
        serve.configure(demo_db_path, hub=True)


@pytest.mark.parametrize(("url", "said"), [
    ("https://0.0.0.0:8888/user/amy/", "plain HTTP"),
    ("http://0.0.0.0/user/amy/", "plain HTTP"),
    ("http://203.0.113.9:{port}/user/amy/", "203.0.113.9 is not an address of this machine"),
    ("http://no-such-host.invalid:{port}/user/amy/", "not a name this machine knows"),
])
def test_a_url_a_persons_server_cannot_use_is_one_clear_line(
        demo_db_path, tmp_path, monkeypatch, capsys, url, said):
    from bench.local_hub import free_port

    persons_server(monkeypatch, tmp_path, url.format(port=free_port()))
    code = cli.main(["serve", "--hub", "--db", str(demo_db_path)])
    err = capsys.readouterr().err
    assert code == 2 and said in err and "JUPYTERHUB_SERVICE_URL" in err
    assert "Traceback" not in err


def test_a_preheated_form_not_yet_handed_its_login_opens_the_store(demo_both, monkeypatch):
    """On SQLite and on PostgreSQL: a pooled kernel is nobody until the server hands it its
    login, and opening an up-to-date store names nobody (no writers' lock on PostgreSQL)."""
    from ehkit import access
    from ehkit.forms.audit import AuditForm, audit_app

    monkeypatch.delenv("EHKIT_LOGIN", raising=False)
    monkeypatch.setenv(access.AWAITING, "1")
    form = audit_app(demo_both, refresh=False)
    assert isinstance(form, AuditForm), form.message
    form.db.close()
