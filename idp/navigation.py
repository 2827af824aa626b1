"""Links on the start page, contributed by feature packages ("Open Zulip", "My students")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask

from .people import Person


@dataclass(frozen=True)
class StartLink:
    label: str
    url: Callable[[], str]
    description: str = ""
    shows_for: Callable[[Person], bool] = lambda person: True


def add_start_link(app: Flask, link: StartLink) -> None:
    app.extensions["start_links"].append(link)
