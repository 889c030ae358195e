"""The generated switchboard.v1 modules import, serialize and serve over gRPC."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from switchboard.v1 import (
    approval_pb2,
    approval_pb2_grpc,
    events_pb2,
    knowledge_pb2,
    knowledge_pb2_grpc,
    plan_pb2,
    storage_pb2,
    usage_pb2,
)

APPROVAL_SERVICE = "switchboard.v1.ApprovalService"
KNOWLEDGE_SERVICE = "switchboard.v1.KnowledgeService"
REFLECTION_SERVICE = "grpc.reflection.v1alpha.ServerReflection"


def _sample_plan() -> plan_pb2.Plan:
    plan = plan_pb2.Plan(
        id="plan-01",
        origin=plan_pb2.PLAN_ORIGIN_LLM,
        planner="gpt-4o-mini",
        goal="Find the refund policy and draft a reply",
        failure_policy=plan_pb2.FAILURE_POLICY_BEST_EFFORT,
        default_step_policy=plan_pb2.StepPolicy(max_retries=2, may_fail=False),
        output_step_id="draft",
    )
    plan.default_step_policy.timeout.FromTimedelta(dt.timedelta(seconds=30))
    plan.create_time.FromDatetime(dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    search = plan.steps.add(
        id="search",
        agent="kb-agent",
        skill_id="search",
        input="{{input}}",
        description="Look up the policy",
    )
    search.metadata.update({"collection": "policies", "top_k": 5})
    draft = plan.steps.add(
        id="draft",
        agent="writer",
        skill_id="reply",
        input="Answer using: {{steps.search.output}}",
        depends_on=["search"],
    )
    # max_retries=0 is set explicitly: "run once", not "inherit the default".
    draft.policy.max_retries = 0
    draft.policy.needs_approval = True
    draft.policy.retry_initial_backoff.FromMilliseconds(250)
    draft.policy.retry_max_backoff.FromSeconds(5)
    return plan


def test_package_and_services_are_described() -> None:
    files = [approval_pb2, events_pb2, knowledge_pb2, plan_pb2, storage_pb2, usage_pb2]
    assert {m.DESCRIPTOR.package for m in files} == {"switchboard.v1"}
    approval = approval_pb2.DESCRIPTOR.services_by_name["ApprovalService"]
    assert [m.name for m in approval.methods] == [
        "ListApprovals",
        "GetApproval",
        "DecideApproval",
        "WatchApprovals",
    ]
    watch = approval.methods_by_name["WatchApprovals"]
    assert watch.server_streaming and not watch.client_streaming
    knowledge = knowledge_pb2.DESCRIPTOR.services_by_name["KnowledgeService"]
    ingest = knowledge.methods_by_name["IngestDocuments"]
    assert ingest.client_streaming and not ingest.server_streaming
    assert ingest.output_type.full_name == "switchboard.v1.IngestDocumentsResponse"
    # Every enum starts with its _UNSPECIFIED zero value.
    for module in files:
        for enum in module.DESCRIPTOR.enum_types_by_name.values():
            assert enum.values[0].number == 0
            assert enum.values[0].name.endswith("_UNSPECIFIED"), enum.full_name


def test_plan_round_trips_through_json() -> None:
    plan = _sample_plan()
    text = json_format.MessageToJson(plan)
    doc = json.loads(text)
    # proto3 JSON: camelCase names, enum names, Duration/Timestamp strings.
    assert doc["origin"] == "PLAN_ORIGIN_LLM"
    assert doc["failurePolicy"] == "FAILURE_POLICY_BEST_EFFORT"
    assert doc["defaultStepPolicy"]["timeout"] == "30s"
    assert doc["createTime"] == "2025-01-02T03:04:05Z"
    assert doc["steps"][1]["dependsOn"] == ["search"]
    assert doc["steps"][1]["policy"]["retryInitialBackoff"] == "0.250s"
    assert doc["steps"][1]["policy"]["maxRetries"] == 0  # explicit presence
    assert doc["steps"][0]["metadata"] == {"collection": "policies", "top_k": 5}

    parsed = json_format.Parse(text, plan_pb2.Plan())
    assert parsed == plan
    assert parsed.steps[1].policy.HasField("max_retries")
    assert parsed.steps[1].policy.max_retries == 0
    assert not parsed.steps[0].policy.HasField("max_retries")
    assert parsed.SerializeToString(deterministic=True) == plan.SerializeToString(deterministic=True)


def test_workflow_status_and_event_envelope() -> None:
    plan = _sample_plan()
    usage = usage_pb2.Usage(
        prompt_tokens=120,
        completion_tokens=30,
        total_tokens=150,
        cost_micros=4_500,
        currency="USD",
    )
    status = plan_pb2.WorkflowStatus(
        workflow_id="wf-1",
        plan=plan,
        state=plan_pb2.WORKFLOW_STATE_AWAITING_APPROVAL,
        revision=3,
        usage=usage,
        steps=[
            plan_pb2.StepStatus(
                step_id="search",
                state=plan_pb2.STEP_STATE_SUCCEEDED,
                attempts=1,
                output="Refunds within 30 days.",
                usage=usage,
            ),
            plan_pb2.StepStatus(step_id="draft", state=plan_pb2.STEP_STATE_AWAITING_APPROVAL),
        ],
    )
    restored = plan_pb2.WorkflowStatus.FromString(status.SerializeToString())
    assert restored == status
    assert restored.steps[0].usage.cost_micros == 4_500

    change = events_pb2.WorkflowStepChanged(
        workflow_id="wf-1",
        plan_id=plan.id,
        previous_state=plan_pb2.STEP_STATE_PENDING,
        step=status.steps[1],
        workflow_state=status.state,
        revision=status.revision,
    )
    envelope = events_pb2.EventEnvelope(
        id="evt-1",
        type="switchboard.workflow.step_changed.v1",
        source="switchboard/orchestrator",
        subject="wf-1",
        tenant="acme",
        trace=events_pb2.TraceContext(traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        data_content_type="application/protobuf",
        schema_version=1,
    )
    envelope.proto_payload.Pack(change)
    wire = events_pb2.EventEnvelope.FromString(envelope.SerializeToString())
    assert wire.WhichOneof("payload") == "proto_payload"
    assert wire.proto_payload.TypeName() == "switchboard.v1.WorkflowStepChanged"
    unpacked = events_pb2.WorkflowStepChanged()
    assert wire.proto_payload.Unpack(unpacked)
    assert unpacked == change
    # The Any payload also survives the JSON form of the envelope.
    again = json_format.Parse(json_format.MessageToJson(envelope), events_pb2.EventEnvelope())
    assert again == envelope


def _approval(approval_id: str, status: int) -> approval_pb2.Approval:
    request = approval_pb2.ApprovalRequest(
        id=approval_id,
        task_id="task-1",
        session_id="sess-1",
        tenant="acme",
        step_id="draft",
        agent="writer",
        action="send_email",
        reason="Sends an email to a customer",
        risks=["wrong recipient"],
        impact=approval_pb2.APPROVAL_IMPACT_HIGH,
        suggested_outcome=approval_pb2.APPROVAL_OUTCOME_APPROVE,
        timeout_policy=approval_pb2.APPROVAL_TIMEOUT_POLICY_ESCALATE,
    )
    request.proposed_arguments.update({"to": "a@example.com", "cc": []})
    return approval_pb2.Approval(request=request, status=status)  # type: ignore[arg-type]


class _Approvals(approval_pb2_grpc.ApprovalServiceServicer):
    async def GetApproval(
        self,
        request: approval_pb2.GetApprovalRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> approval_pb2.GetApprovalResponse:
        if request.id != "ap-1":
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no approval {request.id}")
        return approval_pb2.GetApprovalResponse(approval=_approval("ap-1", approval_pb2.APPROVAL_STATUS_PENDING))

    async def WatchApprovals(
        self,
        request: approval_pb2.WatchApprovalsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[approval_pb2.WatchApprovalsResponse]:
        for n, status in enumerate(request.statuses, start=1):
            yield approval_pb2.WatchApprovalsResponse(
                event=approval_pb2.ApprovalEvent(
                    type=approval_pb2.APPROVAL_EVENT_TYPE_EXISTING,
                    approval=_approval(f"ap-{n}", status),
                )
            )


class _Knowledge(knowledge_pb2_grpc.KnowledgeServiceServicer):
    async def IngestDocuments(
        self,
        request_iterator: AsyncIterator[knowledge_pb2.IngestDocumentsRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> knowledge_pb2.IngestDocumentsResponse:
        summary = knowledge_pb2.IngestDocumentsResponse()
        async for request in request_iterator:
            summary.documents_received += 1
            if request.document.WhichOneof("content") is None:
                summary.failures.add(
                    collection=request.collection,
                    document_id=request.document.id,
                    error="no content",
                )
            else:
                summary.documents_ingested += 1
                summary.chunks_written += 2
        return summary


async def _reflect(channel: grpc.aio.Channel, **query: str) -> reflection_pb2.ServerReflectionResponse:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**query)]))
    responses = [response async for response in call]
    assert len(responses) == 1
    return responses[0]


async def _serve_and_query() -> None:
    server = grpc.aio.server()
    approval_pb2_grpc.add_ApprovalServiceServicer_to_server(_Approvals(), server)
    knowledge_pb2_grpc.add_KnowledgeServiceServicer_to_server(_Knowledge(), server)
    reflection.enable_server_reflection((APPROVAL_SERVICE, KNOWLEDGE_SERVICE, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port("127.0.0.1:0")
    assert port > 0
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            listed = await _reflect(channel, list_services="")
            names = {s.name for s in listed.list_services_response.service}
            assert names == {APPROVAL_SERVICE, KNOWLEDGE_SERVICE, REFLECTION_SERVICE}

            # The descriptors served by reflection describe the real contract.
            found = await _reflect(channel, file_containing_symbol=KNOWLEDGE_SERVICE)
            pool = descriptor_pool.DescriptorPool()
            protos = [
                descriptor_pb2.FileDescriptorProto.FromString(raw)
                for raw in found.file_descriptor_response.file_descriptor_proto
            ]
            assert "switchboard/v1/knowledge.proto" in {p.name for p in protos}
            pending = protos
            while pending:  # add files once their dependencies are in the pool
                added = []
                for proto in pending:
                    try:
                        pool.Add(proto)
                    except TypeError:
                        continue
                    added.append(proto)
                assert added, "reflection returned unresolvable descriptors"
                pending = [p for p in pending if p not in added]
            search = pool.FindMethodByName(f"{KNOWLEDGE_SERVICE}.Search")
            mode = search.input_type.fields_by_name["mode"].enum_type
            assert mode is not None
            assert mode.full_name == "switchboard.v1.SearchMode"

            # Calls through the generated stubs: unary, client- and server-streaming.
            approvals = approval_pb2_grpc.ApprovalServiceStub(channel)
            got = await approvals.GetApproval(approval_pb2.GetApprovalRequest(id="ap-1"))
            assert got.approval.request.action == "send_email"
            assert got.approval.request.proposed_arguments["to"] == "a@example.com"
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await approvals.GetApproval(approval_pb2.GetApprovalRequest(id="nope"))
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND

            statuses = [
                approval_pb2.APPROVAL_STATUS_PENDING,
                approval_pb2.APPROVAL_STATUS_ESCALATED,
            ]
            watched = [
                r.event.approval.status
                async for r in approvals.WatchApprovals(approval_pb2.WatchApprovalsRequest(statuses=statuses))
            ]
            assert watched == statuses

            with pytest.raises(grpc.aio.AioRpcError) as unimplemented:
                await approvals.DecideApproval(approval_pb2.DecideApprovalRequest())
            assert unimplemented.value.code() == grpc.StatusCode.UNIMPLEMENTED

            knowledge = knowledge_pb2_grpc.KnowledgeServiceStub(channel)
            docs = [
                knowledge_pb2.IngestDocumentsRequest(
                    collection="policies",
                    document=knowledge_pb2.Document(id="d1", text="Refunds within 30 days."),
                ),
                knowledge_pb2.IngestDocumentsRequest(
                    collection="policies",
                    document=knowledge_pb2.Document(id="d2", media_type="application/pdf"),
                ),
            ]
            summary = await knowledge.IngestDocuments(iter(docs))
            assert summary.documents_received == 2
            assert summary.documents_ingested == 1
            assert summary.chunks_written == 2
            assert [f.document_id for f in summary.failures] == ["d2"]
    finally:
        await server.stop(grace=None)


def test_grpc_aio_server_serves_services_with_reflection() -> None:
    asyncio.run(asyncio.wait_for(_serve_and_query(), timeout=30))
