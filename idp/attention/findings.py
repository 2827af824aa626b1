"""What a rule returns: a finding, with a severity, a reason in plain words and the numbers
behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# "positive" findings are good news (nudged as encouragement, never "needs attention").
SEVERITIES = ("high", "medium", "low", "positive")
RANK = {"high": 3, "medium": 2, "low": 1, "positive": 0}


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    reason: str                       # to a mentor, in the third person
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_attention(self) -> bool:
        return self.severity != "positive"

    def as_dict(self) -> dict:
        return {"rule": self.rule, "severity": self.severity, "reason": self.reason,
                "numbers": dict(self.numbers)}


def attention_score(findings: list[Finding]) -> tuple[int, int]:
    """Sort key for triage, most urgent first when sorted descending: the worst severity,
    then how many concerns."""
    concerns = [RANK[f.severity] for f in findings if f.needs_attention]
    return (max(concerns, default=0), len(concerns))
