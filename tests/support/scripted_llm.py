"""A scripted OpenAI-compatible LLM server: the one test double the suite allows.

It makes model behaviour deterministic. The reply to a conversation is decided by
directives in the last user message:

- ``[[tokens=N]]``     reply with N tokens ``t0 t1 ...`` (default: echo the message)
- ``[[delay_ms=X]]``   sleep X ms before each token (default from ``--delay-ms``)
- ``[[reply_b64=B]]``  reply with the base64-decoded text B as one token (e.g. a JSON plan)
- ``[[fail]]``         answer HTTP 500
- ``[[hang]]``         never answer (for cancellation and timeout tests)
- ``[[tools_b64=B]]``  call tools, scripted: B is base64 of a JSON list of turns (below)
- ``[[refuse=P]]``     answer HTTP 400 naming parameter P, as an endpoint that cannot honour it does
- ``[[fail_times=N]]`` answer HTTP 503 (with ``Retry-After: 0``) to the first N requests whose last
                      user message is this one, then answer (a client's retries)
- ``[[status=C]]``     always answer HTTP C (with ``Retry-After: 0``)

Structured output and log probabilities are honoured as OpenAI does. With ``response_format``
``json_object`` the reply is ``{"echo": <the message without directives>}``; with ``json_schema``
it is an instance of the schema (``_instance``: required and listed properties, the first ``enum``
value, strings holding the message), so a test can validate it. With ``logprobs: true`` every
content token comes with a deterministic log probability (``-(len(token) % 7 + 1) / 10``) and, for
``top_logprobs: N``, N alternatives (the token itself first, then ``alt1``... each 0.5 lower),
streamed in each chunk's ``logprobs.content`` and given whole in a non-streamed answer.

Tool calling. Each turn of a ``tools_b64`` script is either calls or a final text:

- ``{"calls": [{"name": "time__get_current_time", "arguments": {"timezone": "UTC"}}, ...]}``:
  the reply asks for these calls, in parallel when there are several. ``arguments`` is an
  object (sent as its JSON text) or a string sent verbatim, so a script can send invalid JSON
  or arguments that break the tool's schema;
- ``{"text": "..."}``: the final answer, streamed word by word. ``{{results}}`` in it becomes
  the contents of the tool messages of the latest round (joined by `` | ``), ``{{result:N}}``
  the N-th of them, and ``{{tools}}`` the comma-separated names of the tools offered.

The turn played is the one at index = the number of tool-result rounds already in the
conversation (assistant messages with ``tool_calls`` after the last user message); past the
end of the script the last turn repeats, so a one-turn script of calls loops forever. Calls
stream as OpenAI streams them: a first chunk per call with ``index``, ``id``
(``call_<round>_<i>``), ``type`` and the function name, then the arguments' JSON text in
fragments of a few characters, then ``finish_reason: "tool_calls"``. Non-streamed requests get
one message with ``tool_calls`` and ``content: null``.

``POST /v1/embeddings`` answers deterministic unit vectors (``dimensions`` wide, default 8) drawn
from each input's hash. An input holding ``[[fail_times=N]]`` makes the first N requests that carry
it answer HTTP 503 (then it succeeds: retries); ``[[status=C]]`` always answers HTTP C.

Every request's headers and body are recorded and served at ``GET /_requests``
(``DELETE /_requests`` clears them), so tests can check what reached the model,
trace context included. Run it as ``python -m tests.support.scripted_llm --port N``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import re
import time
import uuid
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

_DIRECTIVE = re.compile(r"\[\[(\w+)(?:=([^\]]*))?\]\]")


def plan_reply(
    messages: list[dict[str, Any]],
    default_delay_ms: float,
    tools: list[dict[str, Any]] | None = None,
    response_format: dict[str, Any] | None = None,
) -> dict[str, Any]:
    last_index = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "user"), -1)
    content = messages[last_index].get("content") if last_index >= 0 else ""
    text = content if isinstance(content, str) else ""
    directives = dict(_DIRECTIVE.findall(text))
    clean = _DIRECTIVE.sub("", text).strip()
    calls: list[dict[str, Any]] = []
    if "tools_b64" in directives:
        script = json.loads(base64.b64decode(directives["tools_b64"]))
        after = messages[last_index + 1 :]
        rounds = sum(1 for m in after if m.get("role") == "assistant" and m.get("tool_calls"))
        turn = script[min(rounds, len(script) - 1)]
        if "calls" in turn:
            calls = [
                {
                    "id": f"call_{rounds}_{i}",
                    "name": c["name"],
                    "arguments": c["arguments"]
                    if isinstance(c.get("arguments"), str)
                    else json.dumps(c.get("arguments", {})),
                }
                for i, c in enumerate(turn["calls"])
            ]
            tokens: list[str] = []
        else:
            words = _fill(turn["text"], after, tools or []).split(" ")
            tokens = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
    elif "reply_b64" in directives:
        tokens = [base64.b64decode(directives["reply_b64"]).decode()]
    elif (response_format or {}).get("type") in ("json_object", "json_schema"):
        if response_format and response_format["type"] == "json_schema":
            value = _instance((response_format.get("json_schema") or {}).get("schema") or {}, clean)
        else:
            value = {"echo": clean}
        text_json = json.dumps(value)
        tokens = [text_json[i : i + 8] for i in range(0, len(text_json), 8)]
    elif "tokens" in directives:
        tokens = [f"t{i} " for i in range(int(directives["tokens"]))]
    else:
        words = f"Echo: {clean}".split(" ")
        tokens = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
    return {
        "tokens": tokens,
        "calls": calls,
        "delay": float(directives.get("delay_ms", default_delay_ms)) / 1000.0,
        "fail": "fail" in directives,
        "hang": "hang" in directives,
        "refuse": directives.get("refuse"),
        "fail_times": int(directives.get("fail_times") or 0),
        "status": int(directives.get("status") or 0),
        "said": text,
        "prompt_tokens": prompt_tokens,
    }


def _fill(text: str, after: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
    """The final text of a tool script with the latest round's results put in."""
    start = max((i for i, m in enumerate(after) if m.get("role") == "assistant" and m.get("tool_calls")), default=-1)
    results = [str(m.get("content") or "") for m in after[start + 1 :] if m.get("role") == "tool"]
    text = text.replace("{{results}}", " | ".join(results))
    text = re.sub(
        r"\{\{result:(\d+)\}\}", lambda m: results[int(m.group(1))] if int(m.group(1)) < len(results) else "", text
    )
    names = [str((t.get("function") or {}).get("name")) for t in tools]
    return text.replace("{{tools}}", ", ".join(names))


def _instance(schema: dict[str, Any], text: str) -> Any:
    """A value the JSON Schema ``schema`` accepts (the common keywords), with ``text`` in its strings."""
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: _instance(sub, text) for name, sub in props.items()}
    if kind == "array":
        items = schema.get("items") or {}
        return [_instance(items, text) for _ in range(int(schema.get("minItems", 1)))]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return text


def _logprobs(token: str, top: int) -> dict[str, Any]:
    """A deterministic log probability for ``token``, with ``top`` alternatives."""
    logprob = -((len(token) % 7) + 1) / 10
    alternatives = [{"token": token, "logprob": logprob, "bytes": list(token.encode())}]
    alternatives += [
        {"token": f"alt{k}", "logprob": logprob - 0.5 * k, "bytes": list(f"alt{k}".encode())} for k in range(1, top)
    ]
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": alternatives[:top]}


def _fragments(arguments: str, size: int = 7) -> list[str]:
    """The arguments' JSON text cut in pieces, as OpenAI streams them."""
    return [arguments[i : i + size] for i in range(0, len(arguments), size)] or [""]


def create_app(default_delay_ms: float = 0.0) -> Starlette:
    recorded: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    """How often each failing input came (``fail_times``), for chats and embeddings alike."""

    async def chat(request: Request) -> Response:
        body = await request.json()
        recorded.append({"headers": dict(request.headers), "body": body, "at": time.time()})
        reply = plan_reply(body.get("messages", []), default_delay_ms, body.get("tools"), body.get("response_format"))
        if reply["fail"]:
            return JSONResponse({"error": {"message": "scripted failure", "type": "server_error"}}, status_code=500)
        failing = False
        if reply["fail_times"]:
            seen[reply["said"]] = seen.get(reply["said"], 0) + 1
            failing = seen[reply["said"]] <= reply["fail_times"]
        if reply["status"] or failing:
            status = reply["status"] or 503
            failure = {"error": {"message": f"scripted {status}", "type": "server_error"}}
            return JSONResponse(failure, status_code=status, headers={"Retry-After": "0"})
        if reply["refuse"]:
            param = reply["refuse"]
            refusal = {"message": f"scripted: '{param}' is not supported", "type": "invalid_request_error"}
            return JSONResponse({"error": {**refusal, "param": param, "code": "unsupported_parameter"}}, 400)
        logprobs = bool(body.get("logprobs"))
        top = int(body.get("top_logprobs") or 0)
        if reply["hang"]:
            await asyncio.sleep(3600)
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        created = int(time.time())
        model = body.get("model", "scripted")
        calls = reply["calls"]
        completion_tokens = len(reply["tokens"]) + sum(len(_fragments(c["arguments"])) + 1 for c in calls)
        usage = {
            "prompt_tokens": reply["prompt_tokens"],
            "completion_tokens": completion_tokens,
            "total_tokens": reply["prompt_tokens"] + completion_tokens,
        }
        finish_reason = "tool_calls" if calls else "stop"
        if not body.get("stream"):
            for _ in reply["tokens"]:
                if reply["delay"]:
                    await asyncio.sleep(reply["delay"])
            message: dict[str, Any] = {"role": "assistant", "content": "".join(reply["tokens"])}
            choice_logprobs = {"content": [_logprobs(t, top) for t in reply["tokens"]]} if logprobs else None
            if calls:
                message = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": c["id"],
                            "type": "function",
                            "function": {"name": c["name"], "arguments": c["arguments"]},
                        }
                        for c in calls
                    ],
                }
            return JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {"index": 0, "message": message, "logprobs": choice_logprobs, "finish_reason": finish_reason}
                    ],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        async def events() -> Any:
            def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
                choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
                if logprobs and delta.get("content"):
                    choice["logprobs"] = {"content": [_logprobs(delta["content"], top)]}
                payload = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [choice],
                }
                return b"data: " + json.dumps(payload).encode() + b"\n\n"

            yield chunk({"role": "assistant", "content": None if calls else ""})
            for token in reply["tokens"]:
                if reply["delay"]:
                    await asyncio.sleep(reply["delay"])
                yield chunk({"content": token})
            for index, call in enumerate(calls):
                head = {"index": index, "id": call["id"], "type": "function"}
                yield chunk({"tool_calls": [{**head, "function": {"name": call["name"], "arguments": ""}}]})
                for piece in _fragments(call["arguments"]):
                    if reply["delay"]:
                        await asyncio.sleep(reply["delay"])
                    yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            yield chunk({}, finish_reason)
            if include_usage:
                tail = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
                yield b"data: " + json.dumps(tail).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def embeddings(request: Request) -> Response:
        body = await request.json()
        recorded.append({"headers": dict(request.headers), "body": body, "at": time.time()})
        inputs = body.get("input", [])
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        for text in inputs:
            directives = dict(_DIRECTIVE.findall(text))
            if "status" in directives:
                status = int(directives["status"])
                return JSONResponse(
                    {"error": {"message": f"scripted {status}", "type": "scripted"}}, status_code=status
                )
            if "fail_times" in directives:
                seen[text] = seen.get(text, 0) + 1
                if seen[text] <= int(directives["fail_times"]):
                    return JSONResponse(
                        {"error": {"message": "scripted outage", "type": "server_error"}}, status_code=503
                    )
        width = int(body.get("dimensions") or 8)
        data = []
        for i, text in enumerate(inputs):
            digest = hashlib.sha256(text.encode()).digest()
            raw = [(digest[k % len(digest)] - 127.5) for k in range(width)]
            norm = sum(x * x for x in raw) ** 0.5 or 1.0
            data.append({"object": "embedding", "index": i, "embedding": [x / norm for x in raw]})
        # Reversed on purpose: clients must order by ``index``, as OpenAI documents.
        return JSONResponse({"object": "list", "data": data[::-1], "model": body.get("model", "scripted")})

    async def requests_log(request: Request) -> Response:
        if request.method == "DELETE":
            recorded.clear()
            return Response(status_code=204)
        return JSONResponse(recorded)

    async def models(_: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "tests"}]})

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/_requests", requests_log, methods=["GET", "DELETE"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    uvicorn.run(create_app(args.delay_ms), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
