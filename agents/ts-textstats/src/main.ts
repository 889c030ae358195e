// textstats: an A2A agent in TypeScript, served with @a2a-js/sdk on gRPC, JSON-RPC and HTTP+JSON,
// with its Agent Card, gRPC health and /healthz, /readyz; stops gracefully on SIGTERM.
//
//   node .build/ts/agents/ts-textstats/src/main.js      (after `make ts`; docs/clients.md)
import * as grpc from "@grpc/grpc-js";
import express from "express";
import type { Server } from "node:http";
import { DefaultRequestHandler, InMemoryTaskStore } from "@a2a-js/sdk/server";
import { A2AService, grpcService, UserBuilder as GrpcUsers } from "@a2a-js/sdk/server/grpc";
import { agentCardHandler, jsonRpcHandler, restHandler, UserBuilder as HttpUsers } from "@a2a-js/sdk/server/express";
import { AGENT_NAME, JSONRPC_PATH, REST_PATH, agentCard } from "./card.js";
import { ConfigError, configFromEnv } from "./config.js";
import { TextStatsExecutor } from "./executor.js";
import { Health, HealthService, ServingStatus } from "./health.js";
import { specGrpc, specHttp } from "./spec.js";

function log(level: string, message: string, fields: Record<string, unknown> = {}): void {
  // One JSON object per line, like the Python services (runtime/logs.py).
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level, service: AGENT_NAME, message, ...fields })}\n`);
}

async function main(): Promise<void> {
  const config = configFromEnv();
  const card = agentCard(config);
  const executor = new TextStatsExecutor(config.chunkDelayMs);
  const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), executor);
  const health = new Health();
  let ready = false;

  const grpcServer = new grpc.Server();
  const a2a = grpcService({ requestHandler: handler, userBuilder: GrpcUsers.noAuthentication });
  grpcServer.addService(A2AService, specGrpc(A2AService, a2a));
  grpcServer.addService(HealthService, health.implementation());
  await new Promise<void>((resolve, reject) =>
    grpcServer.bindAsync(`${config.host}:${config.grpcPort}`, grpc.ServerCredentials.createInsecure(), (error) =>
      error ? reject(new Error(`cannot serve gRPC on ${config.host}:${config.grpcPort}: ${error.message}`)) : resolve(),
    ),
  );

  const app = express();
  app.disable("x-powered-by");
  const users = HttpUsers.noAuthentication;
  app.use("/.well-known/agent-card.json", specHttp("card"), agentCardHandler({ agentCardProvider: handler, cache: { maxAge: config.cardMaxAgeSeconds } }));
  // Mounted with use(): /a2a/jsonrpc and /a2a/jsonrpc/ both answer (no redirect a POST client would not follow).
  app.use(JSONRPC_PATH, specHttp("JSONRPC"), jsonRpcHandler({ requestHandler: handler, userBuilder: users }));
  app.use(REST_PATH, specHttp("HTTP+JSON"), restHandler({ requestHandler: handler, userBuilder: users }));
  app.get("/healthz", (_req, res) => res.status(200).json({ status: "ok" }));
  app.get("/readyz", (_req, res) =>
    ready ? res.status(200).json({ status: "ready" }) : res.status(503).json({ status: "stopping" }),
  );
  const http: Server = await new Promise((resolve, reject) => {
    const server = app.listen(config.httpPort, config.host, (error) =>
      error ? reject(new Error(`cannot serve HTTP on ${config.host}:${config.httpPort}: ${error.message}`)) : resolve(server),
    );
  });

  ready = true;
  log("INFO", "serving", {
    grpc: `${config.host}:${config.grpcPort}`,
    card: `http://${config.advertiseHost}:${config.httpPort}/.well-known/agent-card.json`,
  });

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    ready = false;
    health.set(ServingStatus.NOT_SERVING);
    log("INFO", "stopping", { signal, running_tasks: executor.runningTasks });
    await executor.drain(config.shutdownGraceSeconds * 1000);
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
    await new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()));
    log("INFO", "stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((error: unknown) => {
  const message = error instanceof ConfigError || error instanceof Error ? error.message : String(error);
  log("ERROR", message);
  process.exit(1);
});
