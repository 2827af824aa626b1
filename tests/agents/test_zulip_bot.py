"""The context bot with Zulip's outgoing-webhook payloads (ZULIP.md "Messages and bots")."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import text

from idp.extensions import db

BOT_TOKEN = "xvOzfurIutdRRVLzpXrIIHXJvNfaJLJ0"
URL = "/integrations/zulip/context"

# As Zulip sends it for an @-mention in a channel (format "Zulip").
PAYLOAD = {
    "bot_email": "lms-bot@chat.example.edu",
    "bot_full_name": "LMS",
    "data": "@**LMS** student1",
    "message": {
        "avatar_url": "https://secure.gravatar.com/avatar/1?d=identicon&version=1",
        "client": "website",
        "content": "@**LMS** student1",
        "display_recipient": "mentors",
        "id": 112,
        "is_me_message": False,
        "reactions": [],
        "recipient_id": 20,
        "rendered_content": "<p><span class=\"user-mention\" data-user-id=\"31\">@LMS</span> "
                            "student1</p>",
        "sender_email": "mentor1@example.edu",
        "sender_full_name": "Mentor One",
        "sender_id": 5,
        "sender_realm_str": "",
        "stream_id": 5,
        "subject": "progress",
        "submessages": [],
        "timestamp": 1527876931,
        "topic_links": [],
        "type": "stream",
    },
    "token": BOT_TOKEN,
    "trigger": "mention",
}


@pytest.fixture
def bot(make_app):
    return make_app(ZULIP_CONTEXT_BOT_TOKEN=BOT_TOKEN).test_client()


@pytest.fixture(scope="module")
def emails(app):
    with app.app_context():
        conn = app.extensions["lms_directory"].engine.connect()
        rows = conn.execute(text("SELECT username, email FROM students WHERE id <= 5 "
                                 "UNION ALL SELECT username, email FROM mentors")).all()
        conn.close()
    return dict(rows)


def ask(bot, data: str, sender: str, **changes) -> tuple[int, dict]:
    payload = copy.deepcopy(PAYLOAD)
    payload["data"] = payload["message"]["content"] = data
    payload["message"]["sender_email"] = sender
    payload.update(changes)
    response = bot.post(URL, json=payload)
    return response.status_code, response.json


def test_mentor_asks_about_their_student(bot, emails):
    status, body = ask(bot, "@**LMS** student1", emails["mentor1"])
    assert status == 200
    assert body["content"].startswith("**") and "average" in body["content"]
    assert "/mentor/students/1" in body["content"] and "@" not in body["content"]


def test_mentor_asks_who_needs_attention(bot, emails, app):
    status, body = ask(bot, "@**LMS** who needs attention", emails["mentor1"])
    assert status == 200
    assert "need attention" in body["content"] or "None of your students" in body["content"]
    with app.app_context():
        rows = db.session.execute(text(
            "SELECT subject, detail->>'resource' FROM audit_events "
            "WHERE detail->>'channel' = 'zulip'")).all()
    assert ("mentor:1", "students_needing_attention") in [tuple(r) for r in rows]


def test_who_needs_attention_comes_from_the_attention_rules(bot, emails, app):
    """The bot ranks with the same findings as /mentor and the digests (idp/attention)."""
    from tests.history.rows import put_history

    with app.app_context():
        put_history(3, 10, attempts=0, last_attempt_day=None, videos_watched=0, exams_taken=0)
        put_history(2, 4, current_streak=[10, 11, 12, 0], best_streak=12, videos_watched=9)
        put_history(1, 3, current_streak=[3, 4, 5], best_streak=20, videos_watched=9)
    _, body = ask(bot, "@**LMS** who needs attention", emails["mentor1"])
    content = body["content"]
    assert content.startswith("**2 of your students need attention:**"), content
    first, second = content.splitlines()[1:3]
    assert "/mentor/students/3" in first and "/mentor/students/2" in second  # high, then medium
    assert "The daily streak was reset: 12 days in a row, now 0." in second
    assert "/mentor/students/1)" not in content


def test_mentor_cannot_ask_about_another_mentors_student(bot, emails, app):
    with app.app_context():
        conn = app.extensions["lms_directory"].engine.connect()
        other = conn.execute(text("SELECT id, username FROM students WHERE mentor_id <> 1 "
                                  "ORDER BY id LIMIT 1")).one()
        conn.close()
    for question in (other.username, str(other.id)):
        status, body = ask(bot, f"@**LMS** {question}", emails["mentor1"])
        assert status == 200 and body["content"].startswith("I could not find a student")
    _, missing = ask(bot, "@**LMS** 1999999", emails["mentor1"])
    assert missing["content"].replace("1999999", "X") == body["content"].replace(
        str(other.id), "X")


def test_direct_message_help_and_listing(bot, emails):
    _, help_text = ask(bot, "help", emails["mentor1"], trigger="direct_message")
    assert "who needs attention" in help_text["content"]
    _, listing = ask(bot, "my students", emails["mentor1"], trigger="direct_message")
    assert listing["content"].startswith("**Your students:**")


def test_student_gets_own_summary_only(bot, emails):
    _, own = ask(bot, "@**LMS** me", emails["student1"])
    assert own["content"].startswith("**Your progress**")
    _, other = ask(bot, "@**LMS** student2", emails["student1"])
    assert other["content"].startswith("I can only tell you about your own progress.")
    assert "student2" not in other["content"] and "Vihaan" not in other["content"]


def test_opted_out_student(bot, emails, app):
    from idp.agents.sharing import set_sharing

    with app.app_context():
        set_sharing("student:1", False)
        db.session.commit()
    _, mentor = ask(bot, "@**LMS** student1", emails["mentor1"])
    assert mentor["content"].startswith("I could not find a student")
    _, own = ask(bot, "@**LMS** me", emails["student1"])
    assert "/me/privacy" in own["content"]


def test_unknown_sender_gets_a_polite_refusal(bot):
    status, body = ask(bot, "@**LMS** student1", "someone@elsewhere.example")
    assert status == 200 and body["content"].startswith("Sorry, I can only help")


def test_deactivated_student_gets_the_same_refusal(bot, emails, lms_admin):
    with lms_admin.cursor() as cur:
        cur.execute("UPDATE students SET is_active = false WHERE username = 'student1'")
    status, body = ask(bot, "@**LMS** me", emails["student1"])
    assert status == 200 and body["content"].startswith("Sorry, I can only help")


@pytest.mark.parametrize("token", ["wrong-token-wrong-token", "", None, 12345, ["x"],
                                   BOT_TOKEN[:-1], BOT_TOKEN + "x", "\udcff"])
def test_wrong_token_posts_nothing(bot, emails, token):
    payload = copy.deepcopy(PAYLOAD)
    payload["message"]["sender_email"] = emails["mentor1"]
    payload["token"] = token
    response = bot.post(URL, json=payload) if token != "\udcff" else bot.post(
        URL, data=b'{"token": "\\udcff", "data": "x", "message": {}}',
        content_type="application/json")
    assert response.status_code == 401 and "content" not in response.json


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"null", b"\xff\xfe\x00", b'"x"',
                                 b'{"token": "' + BOT_TOKEN.encode() + b'"}',
                                 b'{"token": "' + BOT_TOKEN.encode() + b'", "message": []}',
                                 b'{"token": "' + BOT_TOKEN.encode()
                                 + b'", "message": {"sender_email": 5}, "data": "x"}',
                                 b'{"token": "' + BOT_TOKEN.encode()
                                 + b'", "message": {"sender_email": "a@b"}, "data": 7}'])
def test_malformed_json_is_a_clear_400(bot, raw):
    response = bot.post(URL, data=raw, content_type="application/json")
    assert response.status_code in (400, 401) and "error" in response.json
    assert "content" not in response.json


def test_markdown_in_questions_is_not_echoed_as_markup(bot, emails):
    _, body = ask(bot, "@**LMS** [click](https://evil.example) **x**", emails["mentor1"])
    assert "[click](" not in body["content"] and "\\[click\\]" in body["content"]


def test_bot_off_without_token(client):
    assert client.post(URL, json=PAYLOAD).status_code == 404
