"""What a tool loop must remember across a pause, and the durable ledger that keeps it.

A task whose tool call waits for a person's approval stops running: its conversation so far,
the calls of the current round and what each has done are saved under
``reasoning/tool-loop/<task id>`` on the agent's state port before the task pauses, so the
decision, whenever and to whichever process it comes, resumes the loop where it stopped,
also after a ``kill -9`` of the agent.

The per-call ``status`` is the ledger that keeps an approved call to one run:
``approval`` (needs one, not asked yet) → ``awaiting_approval`` (the task is paused on it)
→ ``started`` (saved, with the approved arguments, before the request leaves) → ``done``
(with its result). The step to ``started`` is a conditional save on the record's ETag, so of
two deliveries of a decision only one sends the call; a call found ``started`` was cut off
mid-flight by a crash and is reported as "outcome unknown", never sent again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from google.protobuf import wrappers_pb2

from runtime.state import StateStore
from runtime.state.records import decode, encode

KIND = "tool_loop"
TTL_SECONDS = 30 * 86_400
"""A record outlives any approval it waits on; removed when its task ends, this only bounds leftovers."""


@dataclass
class PendingCall:
    """One call of the current round."""

    id: str
    """The model's id for the call."""
    name: str
    """The tool as the model named it."""
    server: str = ""
    tool: str = ""
    arguments: dict[str, Any] | None = None
    """Parsed and checked against the tool's schema; None when they were not usable."""
    raw_arguments: str = ""
    read_only: bool = False
    status: str = "queued"
    """``queued`` | ``approval`` | ``awaiting_approval`` | ``started`` | ``done``."""
    result: str = ""
    is_error: bool = False
    duration_ms: int = 0
    approval_id: str = ""
    announced: bool = False
    """Its finished event has been emitted (not again after a resume)."""


@dataclass
class LoopState:
    conversation: list[dict[str, Any]]
    """The OpenAI-shaped conversation so far (assistant ``tool_calls`` and ``tool`` messages included)."""
    options: dict[str, Any] = field(default_factory=dict)
    relayed: bool = False
    """The caller relays approvals (``switchboard/approval_relay``); without it ``approve`` tools are refused."""
    rounds: int = 0
    """Rounds of tool calls run so far."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per tool (``server/tool``): ``{"server", "tool", "calls", "errors", "durationMs"}``."""
    tool_time_ms: int = 0
    answered: bool = False
    """Text of the answer has been streamed already (later chunks append to it)."""
    pending: list[PendingCall] = field(default_factory=list)
    response_format: dict[str, Any] | None = None
    """OpenAI's ``response_format`` the caller asked for (``switchboard/response_format``)."""
    client_tools: dict[str, Any] | None = None
    """The caller's own functions (``switchboard/client_tools``): offered beside the MCP tools, never
    run here; a turn that asks for one ends the task with the calls (``runtime/llm/a2a.py``)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LoopState:
        state = cls(**{k: v for k, v in raw.items() if k != "pending"})
        state.pending = [PendingCall(**p) for p in raw.get("pending", [])]
        return state


@dataclass(frozen=True, slots=True)
class Stored:
    state: LoopState
    etag: str


class LoopStore:
    """The ledger on the state port, one record per paused (or resumed) task."""

    def __init__(self, state: StateStore, namespace: str = "reasoning") -> None:
        self._state = state
        self._ns = namespace

    def _key(self, task_id: str) -> str:
        return f"{self._ns}/tool-loop/{task_id}"

    async def load(self, task_id: str) -> Stored | None:
        item = await self._state.get(self._key(task_id))
        if item is None:
            return None
        # JSON text, not a Struct: a Struct would turn every number of the conversation into a float.
        raw = json.loads(decode(KIND, item.value, wrappers_pb2.BytesValue).value)
        return Stored(LoopState.from_dict(raw), item.etag)

    async def save(self, task_id: str, state: LoopState, *, etag: str | None = None) -> None:
        """Store ``state``; with ``etag``, only if the record is still the one read with it
        (else :class:`~runtime.errors.StateConflictError`)."""
        payload = wrappers_pb2.BytesValue(value=json.dumps(state.to_dict()).encode())
        await self._state.save(
            self._key(task_id), encode(KIND, payload, writer=self._ns), etag=etag, ttl_seconds=TTL_SECONDS
        )

    async def delete(self, task_id: str) -> None:
        await self._state.delete(self._key(task_id))

    async def close(self) -> None:
        await self._state.close()
