// Command example calls Switchboard from Go with the generated stubs in gen/go: it watches
// approvals and approves one (ApprovalService), searches a knowledge collection with a filter
// (KnowledgeService), and asks an agent over A2A gRPC (lf.a2a.v1.A2AService). docs/clients.md
// walks through it.
//
//	go run . approve [-workflow ID]
//	go run . search [-collection docs] [-filter metadata.team=platform] QUERY
//	go run . ask [-agent 127.0.0.1:50051] TEXT
//
// Failed calls print the gRPC status code, the typed error code Switchboard sends in the
// switchboard-error-code trailer (or an A2A agent's ErrorInfo reason), the message and a hint,
// and exit with status 1; usage errors exit with 2.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	a2av1 "github.com/switchboard/switchboard/gen/go/lf/a2a/v1"
	switchboardv1 "github.com/switchboard/switchboard/gen/go/switchboard/v1"
)

func env(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, " ") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("example", flag.ContinueOnError)
	flags.SetOutput(stderr)
	orchestrator := flags.String("orchestrator", env("SWITCHBOARD_ORCHESTRATOR_GRPC", "127.0.0.1:50051"), "the orchestrator's gRPC address (ApprovalService, WorkflowService, A2A)")
	knowledgeAddr := flags.String("knowledge", env("SWITCHBOARD_KNOWLEDGE_GRPC", "127.0.0.1:50054"), "the knowledge agent's gRPC address (KnowledgeService)")
	agentAddr := flags.String("agent", "", "ask: the A2A agent's gRPC address (default: the orchestrator)")
	timeout := flags.Duration("timeout", 60*time.Second, "give up after this long")
	workflow := flags.String("workflow", "", "approve: only an approval of this workflow")
	collection := flags.String("collection", "default", "search: the collection")
	topK := flags.Uint("top", 5, "search: how many passages")
	var filters multi
	flags.Var(&filters, "filter", "search: field=value (or field=a,b), repeatable; all must hold")
	id := Identity{}
	flags.StringVar(&id.APIKey, "api-key", os.Getenv("SWITCHBOARD_API_KEY"), "API key (when the platform requires one)")
	flags.StringVar(&id.Tenant, "tenant", "", "tenant (trusted mode)")
	flags.StringVar(&id.Principal, "principal", env("USER", ""), "who decides (trusted mode)")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: example [flags] approve | search QUERY | ask TEXT")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() < 1 {
		flags.Usage()
		return 2
	}
	// Flags may also follow the command: `search -collection docs QUERY`.
	command := flags.Arg(0)
	if err := flags.Parse(flags.Args()[1:]); err != nil {
		return 2
	}
	rest := strings.Join(flags.Args(), " ")
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	var err error
	switch command {
	case "approve":
		err = runApprove(ctx, stdout, *orchestrator, id, *workflow)
	case "search":
		if rest == "" {
			fmt.Fprintln(stderr, "search: give a query")
			return 2
		}
		filter, ferr := parseFilter(filters)
		if ferr != nil {
			fmt.Fprintln(stderr, "search:", ferr)
			return 2
		}
		err = runSearch(ctx, stdout, *knowledgeAddr, *collection, rest, filter, uint32(*topK))
	case "ask":
		if rest == "" {
			fmt.Fprintln(stderr, "ask: give the text to send")
			return 2
		}
		target := *agentAddr
		if target == "" {
			target = *orchestrator
		}
		err = runAsk(ctx, stdout, target, rest)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n", command)
		flags.Usage()
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

func runApprove(ctx context.Context, out io.Writer, target string, id Identity, workflow string) error {
	conn, err := dial(target)
	if err != nil {
		return err
	}
	defer conn.Close()
	fmt.Fprintln(out, "waiting for a pending approval...")
	approval, err := approveNext(ctx, switchboardv1.NewApprovalServiceClient(conn), id, workflow, "approved from the Go example")
	if err != nil {
		return err
	}
	req := approval.GetRequest()
	fmt.Fprintf(out, "approved %s: workflow %s, step %s (%s): %s\n", req.GetId(), req.GetWorkflowId(), req.GetStepId(), req.GetAgent(), approval.GetStatus())
	return nil
}

func runSearch(ctx context.Context, out io.Writer, target, collection, query string, filter *switchboardv1.Filter, topK uint32) error {
	conn, err := dial(target)
	if err != nil {
		return err
	}
	defer conn.Close()
	hits, err := search(ctx, switchboardv1.NewKnowledgeServiceClient(conn), collection, query, filter, topK)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d hit(s) in %q\n", len(hits), collection)
	for i, hit := range hits {
		c := hit.GetCitation()
		fmt.Fprintf(out, "%d. %.3f %s (%s): %s\n", i+1, hit.GetScore(), c.GetTitle(), c.GetSourceUri(), oneLine(hit.GetText(), 100))
	}
	return nil
}

func runAsk(ctx context.Context, out io.Writer, target, text string) error {
	conn, err := dial(target)
	if err != nil {
		return err
	}
	defer conn.Close()
	answer, err := ask(ctx, a2av1.NewA2AServiceClient(conn), text, nil, nil, func(piece string) { fmt.Fprint(out, piece) })
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n[task %s: %s]\n", answer.TaskID, answer.State)
	if answer.State != a2av1.TaskState_TASK_STATE_COMPLETED {
		return fmt.Errorf("the task ended %s: %s", answer.State, answer.Status)
	}
	return nil
}

func oneLine(text string, max int) string {
	text = strings.Join(strings.Fields(text), " ")
	if len(text) > max {
		return text[:max] + "..."
	}
	return text
}
