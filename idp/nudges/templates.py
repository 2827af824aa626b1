"""Message texts in Zulip Markdown: one template per rule for student nudges, one for mentor
digests. Defaults below; a file ``<rule>.md`` (or ``digest.md``) in IDP_NUDGE_TEMPLATES_DIR
replaces one. Templates use ``$name`` placeholders (``string.Template``: no code, no
attribute access); an unknown placeholder is a start-up error, not a broken message."""

from __future__ import annotations

import os
from string import Template

from ..attention import CATALOGUE
from ..config import ConfigError

MAX_BYTES = 10_000  # Zulip's limit on a message's content (ZULIP.md, "Messages and bots")

# $first_name, $text (the finding told to the student), $me_url (their /me page)
DEFAULTS = {
    "streak_reset": "Hi $first_name! $text\n\n[See your progress]($me_url)",
    "no_activity": "Hi $first_name, we miss you! $text\n\n[See your progress]($me_url)",
    "scores_declining": "Hi $first_name. $text\n\n[See your progress]($me_url)",
    "struggling_subject": "Hi $first_name. $text\n\n[See your progress]($me_url)",
    "course_not_started": "Welcome, $first_name! $text\n\n[See your progress]($me_url)",
    "streak_resumed": "Great work, $first_name! :tada: $text\n\n[See your progress]($me_url)",
    "personal_best": "Well done, $first_name! :trophy: $text\n\n[See your progress]($me_url)",
    # $mentor_name, $count, $day, $lines (one Markdown list item per student), $triage_url
    "digest": ("Hi $mentor_name, **$count of your students need attention** (snapshot of "
               "$day):\n\n$lines\n\n[Open your students, needs attention first]($triage_url)"),
}
FIELDS = {"digest": {"mentor_name", "count", "day", "lines", "triage_url"}}
STUDENT_FIELDS = {"first_name", "text", "me_url"}
NOTE = ("\n\n*An automatic message from your learning platform: turn these off on "
        "[your progress page]($me_url).*")


def load_templates(directory: str | None) -> dict[str, Template]:
    """The templates, with overrides from ``directory``; checked for unknown placeholders."""
    texts = dict(DEFAULTS)
    if directory:
        for name in texts:
            path = os.path.join(directory, f"{name}.md")
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as handle:
                    texts[name] = handle.read().strip()
    out = {}
    for name, text in texts.items():
        if name != "digest":
            text += NOTE
        template = Template(text)
        allowed = FIELDS.get(name, STUDENT_FIELDS)
        unknown = {m.group("named") or m.group("braced")
                   for m in template.pattern.finditer(text)
                   if m.group("named") or m.group("braced")} - allowed
        if unknown or not template.is_valid():
            raise ConfigError(f"IDP_NUDGE_TEMPLATES_DIR: {name}.md uses unknown placeholders "
                              f"{sorted(unknown)}; allowed: {sorted(allowed)}")
        out[name] = template
    missing = set(CATALOGUE) - set(out)
    if missing:
        raise ConfigError(f"nudge templates missing for rules {sorted(missing)}")
    return out


def markdown_text(value: str) -> str:
    """A name or reason placed in Markdown: no formatting, links or mentions from LMS data."""
    out = []
    for char in value.replace("\n", " "):
        out.append("\\" + char if char in "\\`*_{}[]()#|<>~@:$" else char)
    return "".join(out)


def render(template: Template, **fields: str) -> str:
    """Fill a template; the result is cut to Zulip's 10,000 bytes."""
    text = template.substitute(fields)
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_BYTES:
        text = encoded[:MAX_BYTES - 3].decode("utf-8", "ignore") + "…"
    return text
