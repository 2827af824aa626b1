"""Attention: one catalogue of rules reading a student's learning history and returning
findings (docs/attention.md). Used by /mentor, /me, nudges and mentor digests."""

from __future__ import annotations

from flask import Flask

from .findings import Finding, attention_score
from .rules import CATALOGUE, DEFAULTS, Evidence, evaluate
from .settings import AttentionSettings, load_attention_settings

__all__ = ["CATALOGUE", "AttentionSettings", "Evidence", "Finding", "attention_score",
           "evaluate", "init_app"]


def init_app(app: Flask) -> None:
    app.extensions["attention"] = load_attention_settings(app.config["IDP_ENV"], DEFAULTS)
