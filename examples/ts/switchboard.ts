// Calling Switchboard from TypeScript (docs/clients.md):
// * a chat as an A2A SendStreamingMessage to the orchestrator over gRPC, with @a2a-js/sdk's client;
// * the workflow it ran, from WorkflowService over gRPC, with the stubs generated into gen/ts
//   (protoc-gen-es) and a @connectrpc/connect gRPC transport;
// * errors by gRPC status code, with the typed code Switchboard's services put in the
//   `switchboard-error-code` trailer, or the A2A error an agent answered.
import { ClientFactory, ClientFactoryOptions } from "@a2a-js/sdk/client";
import { GrpcTransportFactory } from "@a2a-js/sdk/client/grpc";
import { A2AError } from "@a2a-js/sdk/errors";
import { Role, TaskState, type Artifact, type Part } from "@a2a-js/sdk";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { WorkflowService, type GetWorkflowResponse } from "../../gen/ts/switchboard/v1/workflow_pb.js";

/** The trailer in which Switchboard's own services name a failure's typed code (runtime/grpc_errors.py). */
export const ERROR_CODE_KEY = "switchboard-error-code";

export interface ChatAnswer {
  /** The orchestrator's task id, which is also the workflow id. */
  taskId: string;
  state: TaskState;
  text: string;
  /** The final status message: why a task failed, for instance. */
  status: string;
}

function textOf(parts: Part[] | undefined): string {
  return (parts ?? []).map((p) => (p.content?.$case === "text" ? p.content.value : "")).join("");
}

/**
 * The answer's text as opposed to another step's progress: a workflow step's artifacts carry
 * `switchboard/step` = {id, agent, answer} (docs/orchestration.md); any other artifact is the answer.
 */
function isAnswer(artifact: Artifact | undefined): boolean {
  const step = artifact?.metadata?.["switchboard/step"] as { answer?: boolean } | undefined;
  return step === undefined || step.answer === true;
}

/**
 * Send `text` to the agent whose Agent Card is at `cardUrl` (its HTTP base URL) as an A2A
 * SendStreamingMessage over gRPC, calling `onText` with each piece of the answer as it streams.
 */
export async function chat(cardUrl: string, text: string, onText?: (piece: string) => void): Promise<ChatAnswer> {
  const factory = new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new GrpcTransportFactory()],
      preferredTransports: ["GRPC"],
    }),
  );
  const client = await factory.createFromUrl(cardUrl);
  const answer: ChatAnswer = { taskId: "", state: TaskState.TASK_STATE_UNSPECIFIED, text: "", status: "" };
  const stream = client.sendMessageStream({
    tenant: "",
    message: {
      messageId: crypto.randomUUID(),
      contextId: "",
      taskId: "",
      role: Role.ROLE_USER,
      parts: [{ content: { $case: "text", value: text }, metadata: undefined, filename: "", mediaType: "text/plain" }],
      metadata: undefined,
      extensions: [],
      referenceTaskIds: [],
    },
    configuration: undefined,
    metadata: undefined,
  });
  for await (const event of stream) {
    const payload = event.payload;
    if (payload === undefined) continue;
    switch (payload.$case) {
      case "task":
        answer.taskId ||= payload.value.id;
        answer.state = payload.value.status?.state ?? answer.state;
        break;
      case "statusUpdate":
        answer.taskId ||= payload.value.taskId;
        answer.state = payload.value.status?.state ?? answer.state;
        answer.status = textOf(payload.value.status?.message?.parts);
        break;
      case "artifactUpdate": {
        answer.taskId ||= payload.value.taskId;
        if (!isAnswer(payload.value.artifact)) break; // another step's output: progress
        const piece = textOf(payload.value.artifact?.parts);
        answer.text += piece;
        if (piece) onText?.(piece);
        break;
      }
      case "message": {
        const piece = textOf(payload.value.parts);
        answer.text += piece;
        if (piece) onText?.(piece);
        break;
      }
    }
  }
  return answer;
}

/** The workflow a chat ran (WorkflowService.GetWorkflow on the orchestrator's gRPC address, host:port). */
export async function getWorkflow(grpcAddress: string, workflowId: string): Promise<GetWorkflowResponse> {
  const transport = createGrpcTransport({ baseUrl: `http://${grpcAddress}` });
  const workflows = createClient(WorkflowService, transport);
  return await workflows.getWorkflow({ workflowId });
}

export interface Failure {
  /** The gRPC status code's name (NOT_FOUND, UNAVAILABLE, ...), or "" for a failure outside gRPC. */
  code: string;
  /** Switchboard's typed code (switchboard-error-code), or the A2A error's name; may be "". */
  typed: string;
  message: string;
}

const GRPC_NAMES = new Map<number, string>(
  Object.entries(GrpcStatus)
    .filter(([, value]) => typeof value === "number")
    .map(([name, value]) => [value as number, name]),
);

/** What went wrong with a call, whichever client made it. */
export function failure(error: unknown): Failure {
  if (error instanceof ConnectError) {
    // Connect's codes are gRPC's: Code[NotFound] = 5 = NOT_FOUND. Trailers are in `metadata`.
    return {
      code: GRPC_NAMES.get(error.code) ?? Code[error.code],
      typed: error.metadata.get(ERROR_CODE_KEY) ?? "",
      message: error.rawMessage,
    };
  }
  if (error instanceof A2AError) {
    const status = (error as A2AError & { status?: number }).status;
    const typed = error.name === "A2AError" || error.name === "Error" ? "" : error.name;
    return { code: status === undefined ? "" : (GRPC_NAMES.get(status) ?? String(status)), typed, message: error.message };
  }
  if (error instanceof Error) {
    // fetch's "fetch failed" says little: its cause says what (ECONNREFUSED, a bad port, ...).
    const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
    const message = cause?.message ? `${error.message}: ${cause.message}` : error.message;
    return { code: "", typed: cause?.code ?? "", message };
  }
  return { code: "", typed: "", message: String(error) };
}

const HINTS: Record<string, string> = {
  UNAVAILABLE: "is the platform running? (switchboard up), or check the address",
  DEADLINE_EXCEEDED: "no answer in time: try again",
  NOT_FOUND: "check the id",
  INVALID_ARGUMENT: "the request was refused as malformed",
  UNAUTHENTICATED: "check the API key",
  PERMISSION_DENIED: "check the API key, tenant and principal",
  UNIMPLEMENTED: "the server does not offer this call or protocol version",
  ECONNREFUSED: "nothing listens there: is the platform running? (switchboard up)",
};

/** One line for a person: "<what> failed: NOT_FOUND (workflow_not_found): <message> [hint]". */
export function describe(what: string, error: unknown): string {
  const f = failure(error);
  const head = [f.code, f.typed && `(${f.typed})`].filter(Boolean).join(" ");
  const hint = HINTS[f.code] ?? HINTS[f.typed];
  return `${what} failed: ${head ? `${head}: ` : ""}${f.message}${hint ? ` [${hint}]` : ""}`;
}
