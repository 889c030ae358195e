// The agent as a process: served on spare ports, called with @a2a-js/sdk's gRPC and JSON-RPC
// clients, stopped with SIGTERM.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { TaskState, type StreamResponse } from "@a2a-js/sdk";
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, type Client } from "@a2a-js/sdk/client";
import { GrpcTransportFactory } from "@a2a-js/sdk/client/grpc";

const MAIN = fileURLToPath(new URL("../src/main.js", import.meta.url));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let agent: ChildProcess;
let base = "";
let log = "";

async function waitReady(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (agent.exitCode !== null) throw new Error(`the agent exited with ${agent.exitCode}: ${log}`);
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} not ready: ${log}`);
}

before(async () => {
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  agent = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      SWITCHBOARD_HOST: "127.0.0.1",
      SWITCHBOARD_TEXTSTATS_GRPC_PORT: String(grpcPort),
      SWITCHBOARD_TEXTSTATS_HTTP_PORT: String(httpPort),
      SWITCHBOARD_TEXTSTATS_CHUNK_DELAY_MS: "20",
      SWITCHBOARD_SHUTDOWN_GRACE_SECONDS: "5",
    },
  });
  agent.stdout?.on("data", (d: Buffer) => (log += d.toString()));
  agent.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  base = `http://127.0.0.1:${httpPort}`;
  await waitReady(`${base}/readyz`);
});

after(() => {
  if (agent.exitCode === null) agent.kill("SIGKILL");
});

function client(binding: "GRPC" | "JSONRPC"): Promise<Client> {
  const transport = binding === "GRPC" ? new GrpcTransportFactory() : new JsonRpcTransportFactory();
  return new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, { transports: [transport], preferredTransports: [binding] }),
  ).createFromUrl(base);
}

function message(text: string) {
  return {
    tenant: "",
    message: {
      messageId: crypto.randomUUID(),
      contextId: "",
      taskId: "",
      role: 1, // ROLE_USER
      parts: [{ content: { $case: "text" as const, value: text }, metadata: undefined, filename: "", mediaType: "text/plain" }],
      metadata: undefined,
      extensions: [],
      referenceTaskIds: [],
    },
    configuration: undefined,
    metadata: undefined,
  };
}

async function streamed(c: Client, text: string): Promise<{ events: StreamResponse[]; answer: string }> {
  const events: StreamResponse[] = [];
  let answer = "";
  for await (const event of c.sendMessageStream(message(text))) {
    events.push(event);
    if (event.payload?.$case === "artifactUpdate") {
      for (const part of event.payload.value.artifact?.parts ?? []) {
        if (part.content?.$case === "text") answer += part.content.value;
      }
    }
  }
  return { events, answer };
}

test("the card names the skill the planner matches, and all three bindings", async () => {
  const response = await fetch(`${base}/.well-known/agent-card.json`);
  assert.equal(response.headers.get("content-type"), "application/json");
  assert.equal(response.headers.get("cache-control"), "public, max-age=30");
  const card = (await response.json()) as { name: string; skills: Array<{ id: string; tags: string[] }>; supportedInterfaces: Array<{ protocolBinding: string }> };
  assert.equal(card.name, "textstats");
  assert.deepEqual(card.skills.map((s) => s.id), ["text-statistics"]);
  assert.ok(card.skills[0]?.tags.includes("word"));
  assert.deepEqual(card.supportedInterfaces.map((i) => i.protocolBinding), ["GRPC", "JSONRPC", "HTTP+JSON"]);
});

for (const binding of ["GRPC", "JSONRPC"] as const) {
  test(`${binding}: the statistics stream as appends to one artifact, then the task completes`, async () => {
    const { events, answer } = await streamed(await client(binding), "Count the words in this text: One two three. Four five!");
    assert.equal(events[0]?.payload?.$case, "task");
    const chunks = events.filter((e) => e.payload?.$case === "artifactUpdate");
    assert.equal(chunks.length, 7);
    assert.match(answer, /^Text statistics:\n- words: 5\n- sentences: 2\n/);
    const last = events.at(-1)?.payload;
    assert.equal(last?.$case, "statusUpdate");
    assert.equal(last?.$case === "statusUpdate" && last.value.status?.state, TaskState.TASK_STATE_COMPLETED);
  });
}

test("SIGTERM lets a running task finish, then the agent exits 0", async () => {
  const c = await client("GRPC");
  const running = streamed(c, "Count the words in: a b c");
  await new Promise((r) => setTimeout(r, 40)); // the task has started, lines are streaming
  agent.kill("SIGTERM");
  const { events, answer } = await running;
  const last = events.at(-1)?.payload;
  assert.equal(last?.$case === "statusUpdate" && last.value.status?.state, TaskState.TASK_STATE_COMPLETED);
  assert.match(answer, /- words: 3\n/);
  const [code] = (await once(agent, "exit")) as [number | null];
  assert.equal(code, 0, log);
  assert.match(log, /"message":"stopped"/);
});
