package main

import (
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ErrorCodeKey is the trailer in which Switchboard's own services (ApprovalService,
// KnowledgeService, WorkflowService) name the typed error behind a failed call, e.g.
// "approval_already_decided" (runtime/grpc_errors.py).
const ErrorCodeKey = "switchboard-error-code"

// CallError is a failed gRPC call as Switchboard describes it: the status code, the typed error
// code from the trailer (Switchboard's services) or the ErrorInfo reason (A2A agents), and the
// message.
type CallError struct {
	Method string
	Code   codes.Code
	// Typed is the switchboard-error-code trailer, or for an A2A call the google.rpc.ErrorInfo
	// reason (TASK_NOT_FOUND, VERSION_NOT_SUPPORTED, ...); empty when the server sent neither.
	Typed   string
	Message string
}

func (e *CallError) Error() string {
	typed := ""
	if e.Typed != "" {
		typed = " (" + e.Typed + ")"
	}
	return fmt.Sprintf("%s failed: %s%s: %s%s", e.Method, e.Code, typed, e.Message, hint(e.Code))
}

// hint tells a person what to do about a status code.
func hint(code codes.Code) string {
	switch code {
	case codes.Unavailable:
		return " [is the platform running? `switchboard up`, or check the address]"
	case codes.DeadlineExceeded:
		return " [no answer in time: try again, or raise -timeout]"
	case codes.Unauthenticated, codes.PermissionDenied:
		return " [check the API key, tenant and principal (docs/approvals.md)]"
	case codes.NotFound:
		return " [check the id or collection name]"
	case codes.InvalidArgument:
		return " [the request was refused as malformed]"
	case codes.FailedPrecondition:
		return " [the thing is not in a state that allows this]"
	case codes.Unimplemented:
		return " [the server does not offer this call or protocol version]"
	default:
		return ""
	}
}

// describe turns an error from a call into a *CallError; trailer is the call's trailing
// metadata (grpc.Trailer for unary calls, stream.Trailer() for streams), which may be nil.
func describe(method string, err error, trailer metadata.MD) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s failed: %w", method, err)
	}
	out := &CallError{Method: method, Code: st.Code(), Message: st.Message()}
	if values := trailer.Get(ErrorCodeKey); len(values) > 0 {
		out.Typed = values[0]
	}
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok && out.Typed == "" {
			out.Typed = info.GetReason()
		}
	}
	return out
}

// typedCode is the typed error code of err ("" when it has none): what a program branches on.
func typedCode(err error) string {
	var call *CallError
	if errors.As(err, &call) {
		return call.Typed
	}
	return ""
}
