"""The LMS context bot: Zulip's outgoing-webhook protocol at POST /integrations/zulip/context.

Zulip (Settings → Bots → "Outgoing webhook", interface "Zulip") POSTs the message as JSON with
the bot's token; the answer ``{"content": …}`` (Zulip Markdown) is posted as the bot's reply
(ZULIP.md "Messages and bots"). The token is compared in constant time; the sender is the LMS
person whose e-mail address is ``message.sender_email`` (as Zulip knows it from SAML/OIDC
sign-in and provisioning). A mentor asks about their own students ("@**LMS** student1",
"@**LMS** who needs attention", "@**LMS** my students"); a student gets their own summary;
anyone else a polite refusal. Answers carry no e-mail addresses. Every question is audited
(channel ``zulip``).
"""

from __future__ import annotations

import hmac
import re

from flask import Blueprint, Response, current_app, jsonify, request

from ..context.access import Viewer
from ..extensions import csrf
from ..lms.db import LMSUnavailable
from ..lms.directory import get_directory
from ..people import Person
from . import answers
from .answers import AgentCaller, BadArgument, NotVisible, Unavailable

bp = Blueprint("agents_zulip", __name__)
csrf.exempt(bp)

MAX_BODY_BYTES = 64 * 1024
MAX_QUESTION_CHARS = 200
_MENTION = re.compile(r"^\s*@_?\*\*[^*]{1,100}\*\*\s*[:,]?\s*")
_MARKDOWN = re.compile(r"([\\`*_\[\]<>#|~$])")
ATTENTION = re.compile(r"\b(attention|struggling|at risk|who needs)\b", re.IGNORECASE)
LISTING = re.compile(r"^(my )?students\??$|^list( my students)?$", re.IGNORECASE)
HELP = re.compile(r"^(help|\?|hi|hello)?$", re.IGNORECASE)

NOT_CONNECTED = ("Sorry, I can only help people with an account in the LMS, and I could not "
                 "find yours. If you think this is a mistake, ask the LMS administrators.")
MENTOR_HELP = ("I answer questions about your students, from the LMS:\n"
               "* `@**{bot}** student1` (a name, username or student id): a student's summary\n"
               "* `@**{bot}** who needs attention`: students the attention rules flag (a streak "
               "reset, no activity, declining scores, a struggling subject…)\n"
               "* `@**{bot}** my students`: your students, by name")


def _md(value: object) -> str:
    """Plain text made safe for Zulip Markdown (no formatting, links or mentions from data)."""
    return _MARKDOWN.sub(r"\\\1", str(value))


def _reply(content: str) -> Response:
    response = jsonify({"content": content})
    response.headers["Cache-Control"] = "no-store"
    return response


def _refuse(status: int, error: str) -> Response:
    """Requests that are not from Zulip get an error and nothing posted."""
    response = jsonify({"error": error})
    response.status_code = status
    return response


def _token_matches(sent: object) -> bool:
    expected = current_app.extensions["agents"].settings.zulip_bot_token
    if expected is None or not isinstance(sent, str):
        return False
    return hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), expected.encode())


def _sender(email: str) -> Person | None:
    person = get_directory().find(email)
    if person is None or person.email.strip().lower() != email.strip().lower():
        return None
    return person


@bp.post("/integrations/zulip/context")
def context_bot() -> Response:
    if current_app.extensions["agents"].settings.zulip_bot_token is None:
        return _refuse(404, "The context bot is not configured (ZULIP_CONTEXT_BOT_TOKEN).")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _refuse(413, "The request body is too large.")
    payload = request.get_json(force=True, silent=True)
    if not isinstance(payload, dict):
        return _refuse(400, "The body must be Zulip's outgoing-webhook JSON object.")
    if not _token_matches(payload.get("token")):
        return _refuse(401, "The bot token does not match.")
    message = payload.get("message")
    sender = message.get("sender_email") if isinstance(message, dict) else None
    question = payload.get("data", "")
    if not isinstance(sender, str) or not sender or len(sender) > 254 \
            or not isinstance(question, str):
        return _refuse(400, "message.sender_email and data must be strings.")
    bot = payload.get("bot_full_name") if isinstance(payload.get("bot_full_name"), str) \
        else "LMS"
    try:
        person = _sender(sender)
        if person is None or not person.active:
            return _reply(NOT_CONNECTED)
        caller = AgentCaller(Viewer(person, "zulip"), frozenset(), "zulip")
        return _reply(_answer(caller, _question(question), bot[:60]))
    except (LMSUnavailable, Unavailable):
        return _reply("Sorry, the LMS cannot be reached right now. Please try again in a few "
                      "minutes.")


def _question(text: str) -> str:
    text = _MENTION.sub("", text.strip(), count=1)
    return " ".join(text.split())[:MAX_QUESTION_CHARS]


def _answer(caller: AgentCaller, question: str, bot: str) -> str:
    person = caller.viewer.person
    if person.kind == "student":
        return _own_summary(caller, asked_about_other=not HELP.match(question)
                            and question.lower() not in ("me", "my summary", "summary",
                                                         person.username.lower()))
    if person.kind != "mentor" and not person.is_staff:
        return NOT_CONNECTED
    if HELP.match(question):
        return MENTOR_HELP.format(bot=_md(bot))
    if ATTENTION.search(question):
        return _attention(caller) if person.kind == "mentor" else \
            "Ask me about a student by username; lists are for mentors."
    if LISTING.match(question):
        return _listing(caller) if person.kind == "mentor" else \
            "Ask me about a student by username; lists are for mentors."
    return _student(caller, question)


def _own_summary(caller: AgentCaller, *, asked_about_other: bool) -> str:
    note = "I can only tell you about your own progress. " if asked_about_other else ""
    try:
        profile = answers.student_profile(caller, caller.viewer.person.lms_id)
    except NotVisible:
        return (note + "You have chosen not to share your progress with AI assistants and "
                "bots; you can change that on your privacy page: "
                + current_app.config["IDP"].issuer + "/me/privacy")
    return note + "**Your progress**: " + _md(profile["summary"])


def _link(student_id: int) -> str:
    return f"{current_app.config['IDP'].issuer}/mentor/students/{student_id}"


def _student(caller: AgentCaller, question: str) -> str:
    try:
        if question.isdigit() and len(question) < 10:
            target = int(question)
        else:
            found = answers.find_student(caller, question)["matches"]
            if len(found) > 1:
                names = "\n".join(f"* {_md(m['display_name'])} (`{_md(m['username'])}`, id "
                                  f"{m['id']})" for m in found[:10])
                return f"Several of your students match; which one?\n{names}"
            target = found[0]["id"]
        profile = answers.student_profile(caller, target)
    except (NotVisible, BadArgument):
        return (f"I could not find a student matching “{_md(question)}” among the students "
                f"you can see.")
    name = profile["student"]["display_name"]
    recs = ""
    try:
        perf = answers.student_performance(caller, target)
        if perf["recommendations"]:
            first = perf["recommendations"][0]
            recs = f"\n* Suggested: {_md(first['title'])} ({_md(first['reason'])})"
    except NotVisible:
        pass
    return (f"**{_md(name)}**: {_md(profile['summary'])}{recs}\n"
            f"[Open the full page]({_link(target)})")


def _attention(caller: AgentCaller) -> str:
    found = answers.students_needing_attention(caller)
    if not found["students"]:
        return "None of your students needs attention right now."
    lines = [f"* **{_md(s['display_name'])}** (`{_md(s['username'])}`): "
             f"{_md(', '.join(s['reasons']))} — [page]({_link(s['id'])})"
             for s in found["students"][:15]]
    more = len(found["students"]) - 15
    issuer = current_app.config["IDP"].issuer
    tail = f"\n…and {more} more on your [students page]({issuer}/mentor)." if more > 0 else ""
    return f"**{len(found['students'])} of your students need attention:**\n" + \
        "\n".join(lines) + tail


def _listing(caller: AgentCaller) -> str:
    page = answers.list_my_students(caller, 50, 0)
    if not page["students"]:
        return "You have no students in the LMS."
    lines = [f"* {_md(s['display_name'])} (`{_md(s['username'])}`): average "
             f"{s['average_score'] if s['average_score'] is not None else '—'}"
             f"{', ' + ', '.join(s['flags']) if s['flags'] else ''}"
             for s in page["students"][:25]]
    return "**Your students:**\n" + "\n".join(lines)
