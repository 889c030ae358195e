"""GET and DELETE /v1/sessions/{id} against the real platform, and session expiry."""

from __future__ import annotations

import sqlite3
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import openai

from tests.support.platform import Platform


def _chat(client: openai.OpenAI, session: str, text: str, *, stream: bool = False) -> str:
    headers = {"X-Session-ID": session}
    if stream:
        chunks = client.chat.completions.create(
            model="switchboard", messages=[{"role": "user", "content": text}], stream=True, extra_headers=headers
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reply = client.chat.completions.create(
        model="switchboard", messages=[{"role": "user", "content": text}], extra_headers=headers
    )
    return reply.choices[0].message.content or ""


def _get(platform: Platform, session: str) -> httpx.Response:
    return httpx.get(f"{platform.gateway_url}/v1/sessions/{session}", timeout=10)


def test_a_session_lists_its_tasks_messages_and_usage(client: openai.OpenAI, platform: Platform) -> None:
    session = f"s-{uuid.uuid4().hex[:8]}"
    first = _chat(client, session, "first question")
    second = _chat(client, session, "[[tokens=5]] second", stream=True)

    response = _get(platform, session)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body["id"] == session and body["object"] == "session" and body["context_id"] == session
    assert body["status"] == "idle"
    assert [t["state"] for t in body["tasks"]] == ["completed", "completed"]
    assert all(t["model"] == "switchboard" for t in body["tasks"])
    assert body["messages"] == [
        {"role": "user", "content": "first question", "task_id": body["tasks"][0]["id"]},
        {"role": "assistant", "content": first, "task_id": body["tasks"][0]["id"]},
        {"role": "user", "content": "[[tokens=5]] second", "task_id": body["tasks"][1]["id"]},
        {"role": "assistant", "content": second, "task_id": body["tasks"][1]["id"]},
    ]
    per_task = [t["usage"]["completion_tokens"] for t in body["tasks"]]
    assert per_task[1] == 5 and all(n > 0 for n in per_task)
    assert body["usage"]["completion_tokens"] == sum(per_task)
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    assert body["created_at"] <= body["updated_at"] < body["expires_at"]


def test_deleting_a_session_forgets_it(client: openai.OpenAI, platform: Platform) -> None:
    session = f"s-{uuid.uuid4().hex[:8]}"
    _chat(client, session, "to be forgotten")
    deleted = httpx.delete(f"{platform.gateway_url}/v1/sessions/{session}", timeout=10)
    assert deleted.status_code == 200 and deleted.json() == {
        "id": session,
        "object": "session.deleted",
        "deleted": True,
    }

    gone = _get(platform, session)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "session_not_found"
    again = httpx.delete(f"{platform.gateway_url}/v1/sessions/{session}", timeout=10)
    assert again.status_code == 404

    # The same id starts afresh: the deleted conversation is not part of it.
    _chat(client, session, "new start")
    fresh = _get(platform, session).json()
    assert [m["content"] for m in fresh["messages"] if m["role"] == "user"] == ["new start"]


def test_unknown_and_malformed_session_ids(platform: Platform) -> None:
    missing = _get(platform, "never-used")
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "message": "No session 'never-used': it never existed, expired or was deleted.",
        "type": "not_found",
        "param": None,
        "code": "session_not_found",
    }
    wrong_method = httpx.post(f"{platform.gateway_url}/v1/sessions/x", timeout=10)
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


def test_sessions_expire_after_their_ttl_and_survive_a_gateway_restart(tmp_path: Path) -> None:
    p = Platform(tmp_path, extra_env={"SWITCHBOARD_SESSION_TTL_SECONDS": "8"})
    try:
        p.start()
        client = openai.OpenAI(base_url=f"{p.gateway_url}/v1", api_key="unused")
        _chat(client, "short-lived", "hello")
        assert _get(p, "short-lived").status_code == 200

        assert p.terminate("gateway") in (0, -15)  # uvicorn re-raises SIGTERM after a clean shutdown
        p.start_service("gateway")
        restarted = _get(p, "short-lived")
        assert restarted.status_code == 200 and len(restarted.json()["tasks"]) == 1

        expires_at = restarted.json()["expires_at"]
        time.sleep(max(0.0, expires_at - time.time()) + 1.5)
        expired = _get(p, "short-lived")
        assert expired.status_code == 404 and expired.json()["error"]["code"] == "session_not_found"
    finally:
        p.stop()


def test_a_corrupt_session_record_is_a_clear_error_and_is_kept(client: openai.OpenAI, platform: Platform) -> None:
    session = f"s-{uuid.uuid4().hex[:8]}"
    _chat(client, session, "hello")
    assert _get(platform, session).status_code == 200
    db = platform.workdir / "data" / "state-gateway.db"
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE state SET value = ? WHERE key = ?", (b"\x00not a record", f"gateway/session/{session}"))

    broken = _get(platform, session)
    assert broken.status_code == 500
    error = broken.json()["error"]
    assert error["code"] == "bad_record" and "session" in error["message"]
    with closing(sqlite3.connect(db)) as conn:
        (value,) = conn.execute("SELECT value FROM state WHERE key = ?", (f"gateway/session/{session}",)).fetchone()
    assert value == b"\x00not a record"  # kept for inspection, not overwritten or dropped
