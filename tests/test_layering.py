"""Imports flow downwards (DESIGN.md, "Layout"): provisioning and nudges are peers, and the
mentor pages (context) sit beside them; what they share, the Zulip accounts the bridge knows,
lives in the foundation (``idp.zulip_accounts``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

IDP = Path(__file__).resolve().parents[1] / "idp"


def imported_packages(package: str) -> set[str]:
    """The ``idp`` subpackages imported anywhere in ``idp/<package>`` (absolute or relative)."""
    found = set()
    for path in (IDP / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 0 and (node.module or "").startswith("idp."):
                    found.add(node.module.split(".")[1])
                elif node.level == 2 and node.module:  # from ..x import y
                    found.add(node.module.split(".")[0])
                elif node.level == 2:                   # from .. import x, y
                    found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[1] for a in node.names
                             if a.name.startswith("idp."))
    return found


@pytest.mark.parametrize("package, peer", [
    ("nudges", "provisioning"), ("provisioning", "nudges"), ("context", "provisioning"),
    ("context", "nudges"),
])
def test_peers_meet_in_the_foundation_not_sideways(package, peer):
    assert peer not in imported_packages(package)


def test_the_scan_sees_imports():
    assert {"zulip_accounts", "outbox"} <= imported_packages("nudges")
