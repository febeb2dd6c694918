"""The Zero to JupyterHub sketch (deploy/z2jh): no Kubernetes here to run it, so its files are
read and held to what the README says of them and to what ehkit itself provides."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from ehkit import hub

ROOT = Path(__file__).resolve().parent.parent
Z2JH = ROOT / "deploy" / "z2jh"
README = (ROOT / "README.md").read_text(encoding="utf-8")


def config() -> dict:
    return yaml.safe_load((Z2JH / "config.yaml").read_text(encoding="utf-8"))


def secret_ref(env: dict, name: str) -> tuple[str, str]:
    ref = env[name]["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def test_the_store_comes_from_a_kubernetes_secret_never_from_the_file():
    c = config()
    assert secret_ref(c["singleuser"]["extraEnv"], "EHKIT_DB") == ("ehkit-db", "url")
    text = (Z2JH / "config.yaml").read_text(encoding="utf-8")
    # The secret is made with kubectl, as the file's own header and the README say.
    for where in (text, README):
        assert "kubectl -n early-help create secret generic ehkit-db" in where
        assert "--from-literal=url='postgresql://" in where
    assert not re.search(r"^\s*EHKIT_DB:\s*postgresql://", text, re.M)
    assert c["singleuser"]["storage"]["type"] == "none"  # nothing of ehkit's kept in a pod


def test_the_login_is_the_one_server_deployments_entra_id():
    c = config()
    assert c["hub"]["config"]["JupyterHub"]["authenticator_class"] == "azuread"
    assert hub.AUTHENTICATORS["entra"].endswith(".AzureAdOAuthenticator")
    oauth = c["hub"]["config"]["AzureAdOAuthenticator"]
    assert oauth["oauth_callback_url"].endswith("/hub/oauth_callback")
    # OAuthenticator's own variables, each from the ehkit-entra secret (README's names).
    env = c["hub"]["extraEnv"]
    for name, key in (("OAUTH_CLIENT_ID", "client_id"), ("OAUTH_CLIENT_SECRET", "client_secret"),
                      ("AAD_TENANT_ID", "tenant_id")):
        assert secret_ref(env, name) == ("ehkit-entra", key)
        assert name in README


def test_each_pod_serves_only_ehkits_forms_and_idle_pods_are_culled():
    c = config()
    command = c["singleuser"]["cmd"]
    assert command[:3] == ["ehkit", "serve", "--hub"]
    notebook = command[command.index("--notebook") + 1]
    assert (ROOT / "notebooks" / f"{notebook}.ipynb").exists()
    assert c["cull"]["enabled"] is True and 0 < c["cull"]["every"] < c["cull"]["timeout"]
    assert c["singleuser"]["image"]["name"] in README


def test_the_image_installs_ehkit_from_the_wheel_with_extras_that_exist():
    docker = (Z2JH / "Dockerfile").read_text(encoding="utf-8")
    extras = re.search(r"ehkit-\*\.whl\)\[([\w,]+)\]", docker)
    assert extras and "COPY dist/ehkit-*.whl" in docker
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert set(extras[1].split(",")) == {"hub", "postgresql"} <= set(declared)
    assert "ehkit init /srv/early-help" in docker and "USER 1000" in docker
    assert config()["singleuser"]["extraEnv"]["EHKIT_HOME"] == "/srv/early-help"
    for path in ("deploy/z2jh/config.yaml", "deploy/z2jh/Dockerfile"):
        assert f"`{path}`" in README


def test_the_pods_server_is_run_for_real_by_tests_test_hub_user():
    """The sketch's command is what tests/test_hub_user.py spawns as a person's server."""
    assert "SKETCH_CMD" in (ROOT / "tests" / "test_hub_user.py").read_text(encoding="utf-8")
    assert "`tests/test_hub_user.py`" in README and "What remains before it runs" not in README
    assert "What only a real cluster can show" in README
