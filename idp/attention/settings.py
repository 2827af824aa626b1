"""Rule thresholds: the catalogue's defaults, changed globally or per course or batch by one
JSON setting, validated at start (docs/attention.md).

``IDP_ATTENTION_RULES`` example::

    {"default": {"no_activity.days": 10},
     "course:3": {"scores_declining.points_per_30_days": 8},
     "batch:12": {"streak_reset.min_streak": 3}}

A batch's value beats its course's, which beats ``default``, which beats the catalogue.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from ..config import ConfigError

VARIABLE = "IDP_ATTENTION_RULES"


@dataclass(frozen=True)
class AttentionSettings:
    """``overrides``: scope ("default", "course:3", "batch:12") → {"rule.param": value}."""

    overrides: Mapping[str, Mapping[str, float]]

    def thresholds(self, rule: str, defaults: Mapping[str, float], batch_id: int | None,
                   course_id: int | None) -> dict[str, float]:
        merged = dict(defaults)
        for scope in ("default", f"course:{course_id}" if course_id is not None else None,
                      f"batch:{batch_id}" if batch_id is not None else None):
            for key, value in self.overrides.get(scope or "", {}).items():
                name, param = key.split(".", 1)
                if name == rule:
                    merged[param] = value
        return merged


def load_attention_settings(env: Mapping[str, str],
                            catalogue: Mapping[str, Mapping[str, float]]) -> AttentionSettings:
    """Parse and check ``IDP_ATTENTION_RULES`` against the catalogue's rules and parameters."""
    raw = env.get(VARIABLE, "").strip()
    if not raw:
        return AttentionSettings({})
    try:
        data = json.loads(raw)
    except ValueError:
        raise ConfigError(f"{VARIABLE} is not valid JSON: write an object such as "
                          '{"default": {"no_activity.days": 10}}') from None
    if not isinstance(data, dict):
        raise ConfigError(f"{VARIABLE} must be a JSON object of scopes")
    checked: dict[str, dict[str, float]] = {}
    for scope, values in data.items():
        kind, _, number = str(scope).partition(":")
        if not (scope == "default" or (kind in ("course", "batch") and number.isdigit())):
            raise ConfigError(f"{VARIABLE}: scope {scope!r} is not default, course:<id> or "
                              f"batch:<id>")
        if not isinstance(values, dict):
            raise ConfigError(f"{VARIABLE}: {scope} must map rule.parameter to a number")
        checked[scope] = {}
        for key, value in values.items():
            rule, _, param = str(key).partition(".")
            if rule not in catalogue or param not in catalogue[rule]:
                known = ", ".join(f"{r}.{p}" for r in catalogue for p in catalogue[r])
                raise ConfigError(f"{VARIABLE}: {key!r} is not a rule parameter (known: "
                                  f"{known})")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 \
                    or value > 100_000:
                raise ConfigError(f"{VARIABLE}: {scope}.{key} must be a number from 0 to "
                                  f"100000")
            checked[scope][key] = float(value)
    return AttentionSettings(checked)
