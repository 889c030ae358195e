"""Agent discovery from Agent Cards, against real agents on loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from runtime import messages
from runtime.discovery import AgentDirectory
from runtime.errors import AgentUnavailableError, DuplicateAgentError, InvalidAgentCardError
from runtime.state.sqlite import SqliteStateStore
from tests.support.echo_agent import EchoAgent, skill
from tests.support.platform import free_port

TTL = 0.1


@pytest_asyncio.fixture(loop_scope="function")
async def agents(tmp_path: Path) -> AsyncIterator[dict[str, EchoAgent]]:
    started = {
        "alpha": EchoAgent("alpha", [skill("echo", "test")], tmp_path),
        "beta": EchoAgent("beta", [skill("shout", "test"), skill("whisper")], tmp_path),
        "gamma": EchoAgent("gamma", [skill("count", "math")], tmp_path),
    }
    for agent in started.values():
        await agent.start()
    yield started
    for agent in started.values():
        await agent.stop()


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition``: the directory's background refresh changes it, not an event we can wait on."""
    for _ in range(250):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met within 5 s")


@pytest.mark.asyncio(loop_scope="function")
async def test_cards_skills_and_a_dead_url(agents: dict[str, EchoAgent]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    directory = AgentDirectory([agents["alpha"].url, agents["beta"].url + "/", dead], ttl_seconds=TTL)
    await directory.start()
    try:
        assert sorted(c.name for c in directory.cards()) == ["alpha", "beta"]
        assert directory.skills_of("beta") == ["shout", "whisper"]
        assert directory.skills_of("ghost") is None
        unreachable = [e for e in directory.entries() if not e.reachable]
        assert [e.base_url for e in unreachable] == [dead]
        assert "cannot read the Agent Card" in unreachable[0].error
        client = directory.client("alpha")
        assert client is not None and client.binding == "GRPC"
        answer = [
            e
            async for e in client.stream(messages.user_message("hi"))  # over gRPC, from the card's interface
        ]
        assert any(messages.text_of(e.artifact_update.artifact.parts) == "alpha: hi" for e in answer)
    finally:
        await directory.close()


@pytest.mark.asyncio(loop_scope="function")
async def test_an_agent_that_stops_is_dropped_and_comes_back(agents: dict[str, EchoAgent]) -> None:
    directory = AgentDirectory([agents["alpha"].url, agents["beta"].url], ttl_seconds=TTL, exclude={"alpha"})
    await directory.start()
    try:
        assert [c.name for c in directory.cards()] == ["beta"]  # alpha is excluded, not unreachable
        assert directory.skills_of("alpha") is None
        await agents["beta"].stop()
        await until(lambda: directory.skills_of("beta") is None)
        assert directory.cards() == [] and directory.client("beta") is None
        await agents["beta"].start()
        await until(lambda: directory.skills_of("beta") == ["shout", "whisper"])
        client = directory.client("beta")
        assert client is not None
        answer = [e async for e in client.stream(messages.user_message("back"))]
        assert any(messages.text_of(e.artifact_update.artifact.parts) == "beta: back" for e in answer)
    finally:
        await directory.close()


@pytest.mark.asyncio(loop_scope="function")
async def test_add_by_url_is_checked_and_shared_through_the_state_store(
    agents: dict[str, EchoAgent], tmp_path: Path
) -> None:
    store = SqliteStateStore(tmp_path / "directory.db")
    first = AgentDirectory([agents["alpha"].url], ttl_seconds=TTL, state=store)
    other_store = SqliteStateStore(tmp_path / "directory.db")  # another process's view of the same store
    second = AgentDirectory([agents["alpha"].url], ttl_seconds=TTL, state=other_store)
    await first.start()
    await second.start()
    try:
        card = await first.add(agents["gamma"].url)
        assert card.name == "gamma" and first.skills_of("gamma") == ["count"]
        await until(lambda: second.skills_of("gamma") == ["count"])  # picked up on its next refresh

        with pytest.raises(DuplicateAgentError, match="already known"):
            await first.add(agents["gamma"].url)
        with pytest.raises(DuplicateAgentError, match="named 'alpha'"):
            await first.add(agents["alpha"].url + "/../")  # another URL, same agent
        with pytest.raises(AgentUnavailableError, match="cannot read the Agent Card"):
            await first.add(f"http://127.0.0.1:{free_port()}")
        with pytest.raises(InvalidAgentCardError, match="HTTP 404"):
            await first.add(agents["beta"].url + "/nothing-here")
        with pytest.raises(InvalidAgentCardError, match="not an http"):
            await first.add("ftp://example")

        restarted = AgentDirectory([], ttl_seconds=TTL, state=store)
        await restarted.start()
        assert [c.name for c in restarted.cards()] == ["gamma"]
        await restarted.close()
    finally:
        await first.close()
        await second.close()
        await store.close()
        await other_store.close()


@pytest.mark.asyncio(loop_scope="function")
async def test_an_agent_that_restarts_stays_listed_and_is_waited_for(agents: dict[str, EchoAgent]) -> None:
    directory = AgentDirectory([agents["beta"].url], ttl_seconds=TTL, restart_grace_seconds=60)
    await directory.start()
    try:
        await agents["beta"].stop()
        await until(lambda: not directory.entries()[0].reachable)  # its card no longer answers
        assert directory.skills_of("beta") == ["shout", "whisper"]  # restarting: plans may still name it
        back = asyncio.create_task(directory.wait_for("beta", 30))
        await asyncio.sleep(0.5)
        assert not back.done()  # waits while it is down
        await agents["beta"].start()
        client = await asyncio.wait_for(back, 30)
        assert directory.entries()[0].reachable  # its card was read again at once
        answer = [e async for e in client.stream(messages.user_message("back"))]
        assert any(messages.text_of(e.artifact_update.artifact.parts) == "beta: back" for e in answer)
    finally:
        await directory.close()


@pytest.mark.asyncio(loop_scope="function")
async def test_an_agent_down_past_its_grace_is_dropped_and_not_waited_for(agents: dict[str, EchoAgent]) -> None:
    directory = AgentDirectory([agents["beta"].url], ttl_seconds=TTL, restart_grace_seconds=0.5)
    await directory.start()
    try:
        await agents["beta"].stop()
        await until(lambda: directory.skills_of("beta") is None)
        started = asyncio.get_running_loop().time()
        with pytest.raises(AgentUnavailableError, match="not listed"):
            await directory.wait_for("beta", 30)
        assert asyncio.get_running_loop().time() - started < 5  # refused at once, not after 30 s
    finally:
        await directory.close()
