"""The dashboard is protected like the API wherever others can reach it (reliability issue, row 5)."""

from __future__ import annotations

import subprocess
import sys

import requests

from tests.conftest import AUTH, TOKEN, Server

HTML = {"Accept": "text/html,application/xhtml+xml"}


def test_serving_the_dashboard_without_a_login_on_a_public_address_is_refused(tmp_path):
    command = [sys.executable, "-m", "workbench.cli", "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]
    run = subprocess.run([*command, "--dashboard-auth", "none"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "Refusing to serve the dashboard on 0.0.0.0 without a login" in run.stderr


def test_the_dashboard_asks_for_the_token_and_the_api_keeps_its_bearer_token(tmp_path):
    server = Server(tmp_path / "data", "--dashboard-auth", "token").start()
    try:
        browser = requests.Session()
        page = browser.get(f"{server.url}/", headers=HTML, timeout=30)
        assert page.url.startswith(f"{server.url}/login") and 'type="password"' in page.text
        wrong = browser.post(f"{server.url}/login", data={"username": "ana", "password": "nope"}, timeout=30)
        assert "error=" in wrong.url and "user" not in browser.cookies
        right = browser.post(
            f"{server.url}/login", data={"username": "ana", "password": TOKEN}, headers=HTML, timeout=30
        )
        assert right.url == f"{server.url}/" and "bokeh" in right.text.lower()
        assert browser.get(f"{server.url}/", headers=HTML, timeout=30).url == f"{server.url}/"
        # the REST API is unchanged: its bearer token, JSON info at / for API clients
        assert server.get("/project/1").json() == {"detail": "Project not found"}
        assert requests.get(f"{server.url}/project/1", timeout=30).status_code == 401
        assert "Swagger UI" in requests.get(f"{server.url}/", timeout=30).json()
        assert server.get("/plugin/available", headers=AUTH).status_code == 200
    finally:
        server.stop()
