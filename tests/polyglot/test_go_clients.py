"""Go drives the platform with the generated stubs (gen/go): `go test` in examples/go, live.

A platform of real processes (scripted LLM, reasoning, knowledge, orchestrator) is started here;
`go test ./...` then runs examples/go's tests against it with the addresses in the environment:
a user plan with an approval step sent over A2A gRPC (stubs generated from the a2a-sdk's A2A
descriptor), the approval found with `ApprovalService.WatchApprovals` and approved, the workflow
followed to its answer; documents ingested and searched with filters (`KnowledgeService`); and
errors read by status code and the `switchboard-error-code` trailer or A2A `ErrorInfo` reason.
Each Go test fails on a wrong answer, not only on a crash, and must report PASS here: one that
skipped (no addresses) fails this test.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

from tests.polyglot.support import env_with, tool
from tests.support.platform import ROOT, Platform

GO_TESTS = (
    "TestApproveAPausedStepThenFollowTheWorkflow",
    "TestSearchWithAFilter",
    "TestA2AErrorsCarryTheirReason",
    "TestTheCommandPrintsClearErrors",
)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform(tmp_path_factory.mktemp("go-clients"))
    try:
        p.start_llm()
        # A user's plan needs no planner, and Go calls the orchestrator directly: no gateway.
        for name in ("reasoning", "knowledge", "orchestrator"):
            p.start_service(name)
        yield p
    finally:
        p.stop()


def test_go_example_against_the_live_platform(platform: Platform) -> None:
    result = subprocess.run(
        [tool("go"), "test", "-count=1", "-v", "./..."],
        cwd=ROOT / "examples" / "go",
        env=env_with(
            SWITCHBOARD_ORCHESTRATOR_GRPC=platform.grpc_target("orchestrator"),
            SWITCHBOARD_KNOWLEDGE_GRPC=platform.grpc_target("knowledge"),
        ),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    passed = set(re.findall(r"^--- PASS: (\w+)", output, re.MULTILINE))
    assert passed == set(GO_TESTS), output
    assert "--- SKIP" not in output, output


def test_go_code_is_vetted() -> None:
    """`go vet` over the example and the generated module (what `make lint` runs too)."""
    for folder in ("examples/go", "gen/go"):
        result = subprocess.run(
            [tool("go"), "vet", "./..."], cwd=ROOT / folder, capture_output=True, text=True, timeout=600, check=False
        )
        assert result.returncode == 0, f"go vet in {folder}:\n{result.stdout}{result.stderr}"
