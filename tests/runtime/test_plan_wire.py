"""The planner's wire format: what the orchestrator sends and reads back."""

from __future__ import annotations

import pytest
from a2a.types import a2a_pb2
from google.protobuf import duration_pb2

from runtime import messages
from runtime.errors import AgentTaskFailedError, PlanInvalidError
from runtime.plans import (
    PLAN_ARTIFACT,
    candidates_of,
    card_digest,
    plan_from_task,
    plan_request_message,
    plan_to_part,
)
from services.planner.catalog import Catalog
from switchboard.v1 import plan_pb2

CARD = a2a_pb2.AgentCard(
    name="knowledge",
    description="Answers from documents",
    skills=[a2a_pb2.AgentSkill(id="answer-from-knowledge", tags=["rag", "documents"])],
)
PLAN = plan_pb2.Plan(
    id="p1",
    origin=plan_pb2.PLAN_ORIGIN_RULES,
    goal="what is in the docs?",
    failure_policy=plan_pb2.FAILURE_POLICY_BEST_EFFORT,
    steps=[
        plan_pb2.Step(
            id="a",
            agent="knowledge",
            skill_id="answer-from-knowledge",
            input="{{input}}",
            policy=plan_pb2.StepPolicy(timeout=duration_pb2.Duration(seconds=30), may_fail=True, max_retries=0),
        )
    ],
)


def task(state: int, *artifacts: a2a_pb2.Artifact, reason: str = "") -> a2a_pb2.Task:
    status = a2a_pb2.TaskStatus(state=state)  # type: ignore[arg-type]
    if reason:
        status.message.CopyFrom(messages.agent_text_message(reason))
    return a2a_pb2.Task(id="t", status=status, artifacts=list(artifacts))


def test_request_carries_goal_cards_and_conversation() -> None:
    chat = [{"role": "user", "content": "what is in the docs?"}]
    message = plan_request_message("what is in the docs?", [CARD], chat_messages=chat)
    assert messages.text_of(message.parts) == "what is in the docs?"
    assert candidates_of(message) == [CARD]
    assert messages.metadata_value(message.metadata, messages.CHAT_MESSAGES) == chat


def test_a_plan_survives_the_round_trip_including_explicit_false_and_zero() -> None:
    done = task(
        a2a_pb2.TaskState.TASK_STATE_COMPLETED, a2a_pb2.Artifact(name=PLAN_ARTIFACT, parts=[plan_to_part(PLAN)])
    )
    got = plan_from_task(done)
    assert got == PLAN
    assert got.steps[0].policy.HasField("max_retries")  # optional fields keep presence


def test_a_failed_planner_task_raises_its_reason() -> None:
    with pytest.raises(AgentTaskFailedError, match="no agent can answer"):
        plan_from_task(task(a2a_pb2.TaskState.TASK_STATE_FAILED, reason="no agent can answer"))


def test_a_completed_task_without_a_plan_is_invalid() -> None:
    with pytest.raises(PlanInvalidError, match="no 'plan' artifact"):
        plan_from_task(task(a2a_pb2.TaskState.TASK_STATE_COMPLETED))


def test_malformed_candidates_are_rejected() -> None:
    message = messages.user_message("x", metadata={messages.CANDIDATES: [{"skills": "nope"}]})
    with pytest.raises(PlanInvalidError, match="not an Agent Card"):
        candidates_of(message)


def test_the_planner_is_sent_card_digests_it_plans_the_same_from() -> None:
    """Skills, words and interfaces travel; capabilities, extensions, security and output modes do not."""
    full = a2a_pb2.AgentCard(
        name="reasoning",
        description="Answers with an LLM",
        version="1.2.3",
        supported_interfaces=[a2a_pb2.AgentInterface(url="127.0.0.1:5", protocol_binding="GRPC")],
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        documentation_url="https://example.test/docs",
        capabilities=a2a_pb2.AgentCapabilities(
            streaming=True, extensions=[a2a_pb2.AgentExtension(uri="https://example.test/ext/" + "x" * 200)]
        ),
        skills=[
            a2a_pb2.AgentSkill(
                id="general-reasoning",
                name="General reasoning",
                description="Answers questions",
                tags=["reasoning", "chat"],
                examples=["Explain TCP"],
                input_modes=["text/plain"],
                output_modes=["text/plain", "application/json"],
            )
        ],
    )
    (sent,) = candidates_of(plan_request_message("Explain TCP", [full]))
    assert sent == card_digest(full)
    assert sent.supported_interfaces == full.supported_interfaces and sent.version == "1.2.3"
    assert not sent.HasField("capabilities") and not sent.documentation_url and not sent.default_output_modes
    assert not sent.skills[0].output_modes
    assert sent.ByteSize() < full.ByteSize() / 2
    # What the planner reads of a card is all there: it finds the same capabilities in both.
    assert Catalog([sent]).capabilities == Catalog([full]).capabilities
