// The TypeScript example against a live platform: tests/polyglot/test_ts_clients.py starts one
// (real processes, the scripted LLM) and runs `node --test` with its addresses in
// SWITCHBOARD_ORCHESTRATOR_URL and SWITCHBOARD_ORCHESTRATOR_GRPC. Without them these tests skip
// and say why.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { ClientFactory, ClientFactoryOptions } from "@a2a-js/sdk/client";
import { GrpcTransportFactory } from "@a2a-js/sdk/client/grpc";
import { TaskState } from "@a2a-js/sdk";
import { StepState, WorkflowState } from "../../gen/ts/switchboard/v1/plan_pb.js";
import { chat, describe, failure, getWorkflow } from "./switchboard.js";

const cardUrl = process.env.SWITCHBOARD_ORCHESTRATOR_URL ?? "";
const grpcAddress = process.env.SWITCHBOARD_ORCHESTRATOR_GRPC ?? "";
const skip = cardUrl && grpcAddress ? false : "needs a live platform: tests/polyglot/test_ts_clients.py runs this";
const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));

test("a chat streams its answer over A2A gRPC and the workflow view shows its step", { skip }, async () => {
  const pieces: string[] = [];
  // 40 ms between tokens: without a pause, tokens that queue up are merged into one event
  // (runtime/streams.py), which is right but would not show that the answer streams.
  const answer = await chat(cardUrl, "[[tokens=6]] [[delay_ms=40]] say six things", (piece) => pieces.push(piece));
  assert.equal(answer.state, TaskState.TASK_STATE_COMPLETED, answer.status);
  assert.equal(answer.text, "t0 t1 t2 t3 t4 t5 ");
  assert.ok(pieces.length > 1, `the answer came in ${pieces.length} piece(s), not streamed`);

  const { workflow, mermaid } = await getWorkflow(grpcAddress, answer.taskId);
  assert.equal(workflow?.workflowId, answer.taskId);
  assert.equal(workflow?.state, WorkflowState.SUCCEEDED);
  assert.deepEqual(workflow?.plan?.steps.map((s) => s.agent), ["reasoning"]);
  assert.equal(workflow?.steps[0]?.state, StepState.SUCCEEDED);
  assert.equal(workflow?.steps[0]?.output, answer.text);
  assert.match(mermaid, /^flowchart/m);
});

test("an unknown workflow is NOT_FOUND with the typed code of its trailer", { skip }, async () => {
  const error = await getWorkflow(grpcAddress, "no-such-workflow").then(
    () => assert.fail("GetWorkflow of an unknown id answered"),
    (e: unknown) => e,
  );
  assert.deepEqual(
    { code: failure(error).code, typed: failure(error).typed },
    { code: "NOT_FOUND", typed: "workflow_not_found" },
  );
  assert.match(describe("GetWorkflow", error), /^GetWorkflow failed: NOT_FOUND \(workflow_not_found\): .+ \[check the id\]$/);
});

test("an A2A refusal is the SDK's typed error with its gRPC code", { skip }, async () => {
  const factory = new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, { transports: [new GrpcTransportFactory()] }),
  );
  const client = await factory.createFromUrl(cardUrl);
  const error = await client.getTask({ tenant: "", id: "no-such-task" }).then(
    () => assert.fail("GetTask of an unknown task answered"),
    (e: unknown) => e,
  );
  assert.deepEqual({ code: failure(error).code, typed: failure(error).typed }, { code: "NOT_FOUND", typed: "TaskNotFoundError" });
});

/** A port nothing listens on: bound by the kernel, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test("the command prints the streamed answer and the workflow, or a clear error", { skip }, async () => {
  const env = { ...process.env, SWITCHBOARD_ORCHESTRATOR_URL: cardUrl, SWITCHBOARD_ORCHESTRATOR_GRPC: grpcAddress };
  const ok = spawnSync(process.execPath, [MAIN, "[[tokens=3]]", "hello"], { env, encoding: "utf8", timeout: 60_000 });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^t0 t1 t2 \n\n\[task [0-9a-f-]+: TASK_STATE_COMPLETED\]$/m);
  assert.match(ok.stdout, /^workflow [0-9a-f-]+: SUCCEEDED$/m);
  assert.match(ok.stdout, /^ {2}step \S+ \(reasoning\/general-reasoning\): SUCCEEDED, 1 attempt\(s\)$/m);

  const port = await closedPort();
  const down = spawnSync(process.execPath, [MAIN, "hello"], {
    env: { ...env, SWITCHBOARD_ORCHESTRATOR_URL: `http://127.0.0.1:${port}` },
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(down.status, 1);
  assert.match(down.stderr, new RegExp(`^error: chat with http://127.0.0.1:${port} failed: \\(ECONNREFUSED\\): fetch failed: .*is the platform running`, "m"));

  const usage = spawnSync(process.execPath, [MAIN], { env, encoding: "utf8", timeout: 60_000 });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /^usage: /);
});
