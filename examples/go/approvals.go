package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	switchboardv1 "github.com/switchboard/switchboard/gen/go/switchboard/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// approveNext watches approvals (ApprovalService.WatchApprovals, pending ones that already exist
// first) and approves the first pending one, of workflowID when it is not empty. It returns the
// approval as decided.
func approveNext(ctx context.Context, approvals switchboardv1.ApprovalServiceClient, id Identity, workflowID, comment string) (*switchboardv1.Approval, error) {
	ctx, cancel := context.WithCancel(id.outgoing(ctx))
	defer cancel() // ends the watch
	stream, err := approvals.WatchApprovals(ctx, &switchboardv1.WatchApprovalsRequest{
		Statuses:        []switchboardv1.ApprovalStatus{switchboardv1.ApprovalStatus_APPROVAL_STATUS_PENDING},
		IncludeExisting: true,
		WorkflowId:      workflowID,
	})
	if err != nil {
		return nil, describe("WatchApprovals", err, nil)
	}
	for {
		reply, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("WatchApprovals ended before a pending approval arrived")
		}
		if err != nil {
			return nil, describe("WatchApprovals", err, stream.Trailer())
		}
		approval := reply.GetEvent().GetApproval()
		if approval.GetStatus() != switchboardv1.ApprovalStatus_APPROVAL_STATUS_PENDING {
			continue
		}
		return decide(ctx, approvals, approval.GetRequest().GetId(), switchboardv1.ApprovalOutcome_APPROVAL_OUTCOME_APPROVE, comment)
	}
}

// decide records a decision (ApprovalService.DecideApproval). The first decision wins: deciding
// again is FAILED_PRECONDITION with the typed code approval_already_decided.
func decide(ctx context.Context, approvals switchboardv1.ApprovalServiceClient, approvalID string, outcome switchboardv1.ApprovalOutcome, comment string) (*switchboardv1.Approval, error) {
	var trailer metadata.MD
	reply, err := approvals.DecideApproval(ctx, &switchboardv1.DecideApprovalRequest{
		Decision: &switchboardv1.ApprovalDecision{ApprovalId: approvalID, Outcome: outcome, Comment: comment},
	}, grpc.Trailer(&trailer))
	if err != nil {
		return nil, describe("DecideApproval", err, trailer)
	}
	return reply.GetApproval(), nil
}
