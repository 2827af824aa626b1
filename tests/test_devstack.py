"""The embedded default's launcher (scripts/run → scripts/devstack.py): a second run on a taken
port says so and how to choose another, before starting anything."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_taken_port_is_reported_with_the_way_out():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run([sys.executable, "scripts/devstack.py", "--port", str(port)],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert f"./scripts/run --port {port + 1}" in result.stderr
    assert "Traceback" not in result.stderr


def test_hints_name_the_command_of_the_mode_in_use(monkeypatch):
    from idp.cli import admin_command

    monkeypatch.delenv("IDP_ADMIN_COMMAND", raising=False)
    assert admin_command("keys rotate") == "flask --app wsgi keys rotate"
    monkeypatch.setenv("IDP_ADMIN_COMMAND", "./scripts/run flask")   # as scripts/run sets it
    assert admin_command("keys rotate") == "./scripts/run flask keys rotate"


def test_a_cli_hint_in_the_embedded_mode(app, monkeypatch):
    monkeypatch.setenv("IDP_ADMIN_COMMAND", "./scripts/run flask")
    result = app.test_cli_runner().invoke(args=["saml", "list-sps"])
    assert "(./scripts/run flask saml add-sp ...)" in result.output
