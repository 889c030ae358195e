package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"

	a2av1 "github.com/switchboard/switchboard/gen/go/lf/a2a/v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

// A2AVersion is sent as the a2a-version header on every A2A call: without it a server assumes
// the 0.3 protocol, which Switchboard's agents refuse (UNIMPLEMENTED, VERSION_NOT_SUPPORTED).
const A2AVersion = "1.0"

// Answer is what an A2A task streamed: its id (for the orchestrator, the workflow id), its final
// state and the text of its artifacts.
type Answer struct {
	TaskID string
	State  a2av1.TaskState
	Text   string
	// Status is the text of the final status message (why a task failed, for instance).
	Status string
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// ask sends text as an A2A SendStreamingMessage (stubs generated from the A2A proto) and calls
// onTask with the task id once it is known, then onText with each piece of answer text as it
// streams. metadata (may be nil) rides on the message: "switchboard/plan" holds a user's plan
// (docs/orchestration.md).
func ask(ctx context.Context, agent a2av1.A2AServiceClient, text string, meta map[string]any, onTask func(string), onText func(string)) (*Answer, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, "a2a-version", A2AVersion)
	message := &a2av1.Message{
		MessageId: newID(),
		Role:      a2av1.Role_ROLE_USER,
		Parts:     []*a2av1.Part{{Content: &a2av1.Part_Text{Text: text}}},
	}
	if meta != nil {
		s, err := structpb.NewStruct(meta)
		if err != nil {
			return nil, fmt.Errorf("message metadata: %w", err)
		}
		message.Metadata = s
	}
	stream, err := agent.SendStreamingMessage(ctx, &a2av1.SendMessageRequest{Message: message})
	if err != nil {
		return nil, describe("SendStreamingMessage", err, nil)
	}
	return collect("SendStreamingMessage", stream, &Answer{}, onTask, onText)
}

// follow subscribes to a task (A2A SubscribeToTask) and reads it to its end, or to its next pause:
// how a client goes on after a stream stopped at AUTH_REQUIRED (an approval) or INPUT_REQUIRED.
func follow(ctx context.Context, agent a2av1.A2AServiceClient, taskID string, onText func(string)) (*Answer, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, "a2a-version", A2AVersion)
	stream, err := agent.SubscribeToTask(ctx, &a2av1.SubscribeToTaskRequest{Id: taskID})
	if err != nil {
		return nil, describe("SubscribeToTask", err, nil)
	}
	// The first event is the task as it stands: its artifacts hold what was streamed before.
	return collect("SubscribeToTask", stream, &Answer{TaskID: taskID}, nil, onText)
}

type events interface {
	Recv() (*a2av1.StreamResponse, error)
	Trailer() metadata.MD
}

// collect reads a stream of A2A events to its end. A stream ends when its task ends, or pauses
// (AUTH_REQUIRED, INPUT_REQUIRED): Answer.State says which.
func collect(method string, stream events, answer *Answer, onTask func(string), onText func(string)) (*Answer, error) {
	var text strings.Builder
	seen := func(id string) {
		if answer.TaskID == "" && id != "" {
			answer.TaskID = id
			if onTask != nil {
				onTask(id)
			}
		}
	}
	emit := func(piece string) {
		text.WriteString(piece)
		if onText != nil && piece != "" {
			onText(piece)
		}
	}
	for {
		event, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, describe(method, err, stream.Trailer())
		}
		switch payload := event.GetPayload().(type) {
		case *a2av1.StreamResponse_Task:
			task := payload.Task
			seen(task.GetId())
			answer.State = task.GetStatus().GetState()
			answer.Status = partsText(task.GetStatus().GetMessage().GetParts())
			text.Reset() // a task snapshot holds every artifact whole
			for _, artifact := range task.GetArtifacts() {
				if isAnswer(artifact.GetMetadata()) {
					emit(partsText(artifact.GetParts()))
				}
			}
		case *a2av1.StreamResponse_StatusUpdate:
			seen(payload.StatusUpdate.GetTaskId())
			status := payload.StatusUpdate.GetStatus()
			answer.State = status.GetState()
			answer.Status = partsText(status.GetMessage().GetParts())
		case *a2av1.StreamResponse_ArtifactUpdate:
			seen(payload.ArtifactUpdate.GetTaskId())
			// Another step's output is progress, not the answer.
			if isAnswer(payload.ArtifactUpdate.GetArtifact().GetMetadata()) {
				emit(partsText(payload.ArtifactUpdate.GetArtifact().GetParts()))
			}
		case *a2av1.StreamResponse_Message:
			emit(partsText(payload.Message.GetParts()))
		}
	}
	answer.Text = text.String()
	return answer, nil
}

// isAnswer tells the answer's text from the other steps' progress in an orchestrator's stream:
// a workflow step's artifacts carry "switchboard/step" = {id, agent, answer}
// (docs/orchestration.md). An artifact without it (any other agent's) is the answer.
func isAnswer(meta *structpb.Struct) bool {
	if step, ok := meta.GetFields()["switchboard/step"]; ok {
		return step.GetStructValue().GetFields()["answer"].GetBoolValue()
	}
	return true
}

func partsText(parts []*a2av1.Part) string {
	var b strings.Builder
	for _, part := range parts {
		b.WriteString(part.GetText())
	}
	return b.String()
}
