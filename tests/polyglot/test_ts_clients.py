"""TypeScript drives the platform: `node --test` of examples/ts against a live platform.

The example sends a chat as an A2A ``SendStreamingMessage`` to the orchestrator over gRPC with
``@a2a-js/sdk``, prints the streamed answer, then reads the workflow from ``WorkflowService``
with the stubs generated into gen/ts and a Connect gRPC transport; failures are read by gRPC
status code and the ``switchboard-error-code`` trailer. Each test checks the platform's answer
(tokens, workflow state, the typed error), and every one must pass here: a skip fails this test.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

from tests.polyglot.support import build_typescript, env_with, tool
from tests.support.platform import ROOT, Platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform(tmp_path_factory.mktemp("ts-clients"))
    try:
        p.start_llm()
        for name in ("reasoning", "planner", "orchestrator"):  # the chat is planned by the planner
            p.start_service(name)
        yield p
    finally:
        p.stop()


def node_test(path: str, env: dict[str, str], expected: int) -> str:
    """Run ``node --test`` on compiled tests; all ``expected`` of them must pass, none skip."""
    build = build_typescript()
    result = subprocess.run(
        [tool("node"), "--test", "--test-reporter=tap", str(build / path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    counts = {k: int(v) for k, v in re.findall(r"^# (pass|fail|skipped|skip|todo|tests) (\d+)$", output, re.MULTILINE)}
    assert counts.get("pass") == expected and counts.get("tests") == expected, output
    assert counts.get("skipped", 0) == 0 and counts.get("skip", 0) == 0, output
    return output


def test_ts_example_against_the_live_platform(platform: Platform) -> None:
    node_test(
        "examples/ts/example.test.js",
        env_with(
            SWITCHBOARD_ORCHESTRATOR_URL=platform.agent_url("orchestrator"),
            SWITCHBOARD_ORCHESTRATOR_GRPC=platform.grpc_target("orchestrator"),
        ),
        expected=4,
    )
