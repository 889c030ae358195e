package main

// These tests drive a live platform: tests/polyglot/test_go_clients.py starts one (real
// processes, the scripted LLM) and runs `go test` with its addresses in
// SWITCHBOARD_ORCHESTRATOR_GRPC and SWITCHBOARD_KNOWLEDGE_GRPC. Run alone, they skip and say so.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	a2av1 "github.com/switchboard/switchboard/gen/go/lf/a2a/v1"
	switchboardv1 "github.com/switchboard/switchboard/gen/go/switchboard/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

func address(t *testing.T, name string) string {
	t.Helper()
	value := os.Getenv(name)
	if value == "" {
		t.Skipf("%s is not set: tests/polyglot/test_go_clients.py runs these against a live platform", name)
	}
	return value
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func callError(t *testing.T, err error) *CallError {
	t.Helper()
	var call *CallError
	if !errors.As(err, &call) {
		t.Fatalf("want a *CallError, got %v", err)
	}
	return call
}

func TestApproveAPausedStepThenFollowTheWorkflow(t *testing.T) {
	target := address(t, "SWITCHBOARD_ORCHESTRATOR_GRPC")
	ctx := testContext(t)
	conn, err := dial(target)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	agent := a2av1.NewA2AServiceClient(conn)
	approvals := switchboardv1.NewApprovalServiceClient(conn)

	marker := "send-go-" + newID()[:8]
	// A user's plan (docs/orchestration.md), in the A2A message's metadata as a JSON object.
	plan := map[string]any{"steps": []any{map[string]any{
		"id": "send", "agent": "reasoning", "skillId": "general-reasoning", "input": marker,
		"policy": map[string]any{"needsApproval": true},
	}}}
	taskIDs := make(chan string, 1)
	type result struct {
		answer *Answer
		err    error
	}
	asked := make(chan result, 1)
	go func() {
		answer, err := ask(ctx, agent, "send the report", map[string]any{"switchboard/plan": plan},
			func(id string) { taskIDs <- id }, nil)
		asked <- result{answer, err}
	}()
	var workflowID string
	select {
	case workflowID = <-taskIDs:
	case r := <-asked:
		t.Fatalf("the stream ended before the task was announced: %+v %v", r.answer, r.err)
	}

	type decided struct {
		approval *switchboardv1.Approval
		err      error
	}
	approved := make(chan decided, 1)
	go func() {
		approval, err := approveNext(ctx, approvals, Identity{Principal: "go-example"}, workflowID, "approved from Go")
		approved <- decided{approval, err}
	}()
	var r result
	var d decided
	select {
	case d = <-approved:
		r = <-asked
	case r = <-asked:
		// The stream may stop at the pause (A2A ends a stream at an interrupted state); anything
		// else before the approval is a failure.
		if r.err != nil || r.answer.State != a2av1.TaskState_TASK_STATE_AUTH_REQUIRED {
			t.Fatalf("the workflow did not wait for the approval: %+v %v", r.answer, r.err)
		}
		d = <-approved
	}
	approval, err := d.approval, d.err
	if err != nil {
		t.Fatal(err)
	}
	if approval.GetStatus() != switchboardv1.ApprovalStatus_APPROVAL_STATUS_APPROVED {
		t.Fatalf("approval status %s, want APPROVED", approval.GetStatus())
	}
	req := approval.GetRequest()
	if req.GetWorkflowId() != workflowID || req.GetStepId() != "send" || req.GetAgent() != "reasoning" {
		t.Fatalf("approved the wrong request: %+v", req)
	}
	if approval.GetDecision().GetDecidedBy() != "go-example" {
		t.Fatalf("decided_by %q, want the principal sent as metadata", approval.GetDecision().GetDecidedBy())
	}

	if r.err != nil {
		t.Fatal(r.err)
	}
	final := r.answer
	if final.State == a2av1.TaskState_TASK_STATE_AUTH_REQUIRED {
		// The stream stopped at the pause (A2A ends a stream at an interrupted state): follow the task.
		if final, err = follow(ctx, agent, workflowID, nil); err != nil {
			t.Fatal(err)
		}
	}
	if final.State != a2av1.TaskState_TASK_STATE_COMPLETED {
		t.Fatalf("workflow ended %s (%s), want COMPLETED", final.State, final.Status)
	}
	// The scripted LLM echoes what the reasoning agent sent it: the approved step's input.
	if !strings.Contains(final.Text, marker) {
		t.Fatalf("answer %q does not hold the step's input %q", final.Text, marker)
	}

	// The first decision wins; a second is refused with a typed code.
	_, err = decide(Identity{Principal: "go-example"}.outgoing(ctx), approvals, req.GetId(), switchboardv1.ApprovalOutcome_APPROVAL_OUTCOME_REJECT, "too late")
	call := callError(t, err)
	if call.Code != codes.FailedPrecondition || call.Typed != "approval_already_decided" {
		t.Fatalf("second decision: %v, want FailedPrecondition (approval_already_decided)", err)
	}
	if !strings.Contains(err.Error(), "DecideApproval failed: FailedPrecondition (approval_already_decided)") {
		t.Fatalf("unclear message: %v", err)
	}
}

func TestSearchWithAFilter(t *testing.T) {
	target := address(t, "SWITCHBOARD_KNOWLEDGE_GRPC")
	ctx := testContext(t)
	conn, err := dial(target)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	knowledge := switchboardv1.NewKnowledgeServiceClient(conn)
	collection := "go-example-" + newID()[:8]
	doc := func(id, title, team, text string) *switchboardv1.Document {
		meta, _ := structpb.NewStruct(map[string]any{"team": team})
		return &switchboardv1.Document{Id: id, SourceUri: id, Title: title, MediaType: "text/markdown",
			Content: &switchboardv1.Document_Text{Text: "# " + title + "\n\n" + text}, Metadata: meta}
	}
	report, err := ingest(ctx, knowledge, collection, []*switchboardv1.Document{
		doc("runbook.md", "Database runbook", "platform", "Restart the database with systemctl restart postgres. Database backups run nightly at 02:00 and are kept for 30 days."),
		doc("deploy.md", "Deploy guide", "platform", "Deploy with make deploy. Database migrations run before the new version starts."),
		doc("database-course.md", "Database course", "people", "New employees take the database course in their first month; it covers SQL and backups."),
	})
	if err != nil {
		t.Fatal(err)
	}
	if report.GetDocumentsIngested() != 3 || len(report.GetFailures()) != 0 {
		t.Fatalf("ingest: %+v", report)
	}

	for team, want := range map[string][]string{"platform": {"runbook.md", "deploy.md"}, "people": {"database-course.md"}} {
		filter, err := parseFilter([]string{"metadata.team=" + team})
		if err != nil {
			t.Fatal(err)
		}
		hits, err := search(ctx, knowledge, collection, "database backups", filter, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) == 0 {
			t.Fatalf("team %s: no hits", team)
		}
		found := map[string]bool{}
		for _, hit := range hits {
			if got := hit.GetMetadata().GetFields()["team"].GetStringValue(); got != team {
				t.Fatalf("team %s: a hit of team %q passed the filter: %s", team, got, hit.GetCitation().GetSourceUri())
			}
			found[hit.GetCitation().GetDocumentId()] = true
		}
		for _, id := range want {
			if !found[id] {
				t.Fatalf("team %s: %s missing from %v", team, id, found)
			}
		}
	}
	// The best passage about backups, without a filter, is the runbook's.
	hits, err := search(ctx, knowledge, collection, "how long are database backups kept", nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 || hits[0].GetCitation().GetDocumentId() != "runbook.md" {
		t.Fatalf("best hit: %v", hits)
	}

	// The command, flags after it: the same search, printed.
	var out, errOut bytes.Buffer
	code := run([]string{"-knowledge", target, "search", "-collection", collection, "-filter", "metadata.team=people", "database"}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "1 hit(s) in \""+collection+"\"\n1. ") || !strings.Contains(out.String(), "Database course (database-course.md)") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}

	_, err = search(ctx, knowledge, "no-such-collection-"+newID()[:6], "x", nil, 3)
	call := callError(t, err)
	if call.Code != codes.NotFound || call.Typed != "collection_not_found" {
		t.Fatalf("missing collection: %v, want NotFound (collection_not_found)", err)
	}
	_, err = search(ctx, knowledge, collection, "x", &switchboardv1.Filter{Must: []*switchboardv1.FilterCondition{{Field: "team"}}}, 3)
	if call := callError(t, err); call.Code != codes.InvalidArgument || call.Typed != "invalid_knowledge_request" {
		t.Fatalf("condition without a test: %v, want InvalidArgument (invalid_knowledge_request)", err)
	}
}

func TestA2AErrorsCarryTheirReason(t *testing.T) {
	target := address(t, "SWITCHBOARD_ORCHESTRATOR_GRPC")
	ctx := testContext(t)
	conn, err := dial(target)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	agent := a2av1.NewA2AServiceClient(conn)

	// Without the a2a-version header a server must assume 0.3, which Switchboard refuses.
	_, err = agent.GetTask(ctx, &a2av1.GetTaskRequest{Id: "x"})
	call := callError(t, describe("GetTask", err, nil))
	if call.Code != codes.Unimplemented || call.Typed != "VERSION_NOT_SUPPORTED" {
		t.Fatalf("no version: %v", call)
	}
	versioned := metadata.AppendToOutgoingContext(ctx, "a2a-version", A2AVersion)
	_, err = agent.GetTask(versioned, &a2av1.GetTaskRequest{Id: "no-such-task"})
	if call := callError(t, describe("GetTask", err, nil)); call.Code != codes.NotFound || call.Typed != "TASK_NOT_FOUND" {
		t.Fatalf("unknown task: %v", call)
	}
}

func TestTheCommandPrintsClearErrors(t *testing.T) {
	knowledge := address(t, "SWITCHBOARD_KNOWLEDGE_GRPC")
	var out, errOut bytes.Buffer
	code := run([]string{"-knowledge", knowledge, "-collection", "no-such-collection", "search", "backups"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "error: Search failed: NotFound (collection_not_found): ") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	code = run([]string{"-knowledge", "127.0.0.1:1", "-timeout", "5s", "search", "backups"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "Search failed: Unavailable") || !strings.Contains(errOut.String(), "is the platform running?") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"-filter", "team", "search", "x"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "write field=value") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}
