// Where @a2a-js/sdk 1.3.0 answers differently from the A2A v1.0 specification, corrected at the
// edge without forking it, as runtime/a2a_grpc.py and runtime/a2a_rest.py do for the Python SDK,
// so this agent passes the same conformance checks as Switchboard's Python agents
// (tests/polyglot/test_ts_agent.py, docs/conformance.md):
//
// * "unsupported operation", "push notifications not supported" and "version not supported" are
//   gRPC UNIMPLEMENTED (spec 5.4); the SDK says FAILED_PRECONDITION (status and status details);
// * on HTTP+JSON, the HTTP status and the body's `status` of each error are the table of 5.4
//   (REST_ERRORS, the same as runtime/a2a_rest.py's): the SDK answers 400 for a task that cannot
//   be canceled (409) and for a content type it does not take (415), and names
//   FAILED_PRECONDITION where the table says UNIMPLEMENTED;
// * HTTP+JSON answers `application/json` (11.1) unless the request's Accept names
//   `application/a2a+json` (14.1); the SDK always answers the latter;
// * JSON bodies are sent as `application/json` with no charset parameter (RFC 8259 defines none),
//   as the Python agents send them.
import * as grpc from "@grpc/grpc-js";
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import type { RequestHandler, Response } from "express";

const UNIMPLEMENTED_REASONS = new Set(["UNSUPPORTED_OPERATION", "PUSH_NOTIFICATION_NOT_SUPPORTED", "VERSION_NOT_SUPPORTED"]);
/** ErrorInfo reason: [HTTP status, status name] as the specification gives them. */
const REST_ERRORS: Record<string, [number, string]> = {
  TASK_NOT_CANCELABLE: [409, "FAILED_PRECONDITION"],
  PUSH_NOTIFICATION_NOT_SUPPORTED: [400, "UNIMPLEMENTED"],
  UNSUPPORTED_OPERATION: [400, "UNIMPLEMENTED"],
  CONTENT_TYPE_NOT_SUPPORTED: [415, "INVALID_ARGUMENT"],
  INVALID_AGENT_RESPONSE: [502, "INTERNAL"],
  VERSION_NOT_SUPPORTED: [400, "UNIMPLEMENTED"],
};
const DETAILS_KEY = "grpc-status-details-bin";
const A2A_MEDIA_TYPE = "application/a2a+json";

interface Status {
  code: number;
  message: string;
  details: Uint8Array[]; // google.protobuf.Any, kept as encoded
}

function decodeStatus(bytes: Uint8Array): Status {
  const reader = new BinaryReader(bytes);
  const status: Status = { code: 0, message: "", details: [] };
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1) status.code = reader.int32();
    else if (field === 2) status.message = reader.string();
    else if (field === 3) status.details.push(reader.bytes());
    else reader.skip(wireType);
  }
  return status;
}

function encodeStatus(status: Status): Buffer {
  const writer = new BinaryWriter().uint32(8).int32(status.code).uint32(18).string(status.message);
  for (const detail of status.details) writer.uint32(26).bytes(detail);
  return Buffer.from(writer.finish());
}

/** The `reason` of the first google.rpc.ErrorInfo among the details. */
function reasonOf(status: Status): string {
  for (const any of status.details) {
    const reader = new BinaryReader(any);
    let typeUrl = "";
    let value: Uint8Array | undefined;
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === 1) typeUrl = reader.string();
      else if (field === 2) value = reader.bytes();
      else reader.skip(wireType);
    }
    if (!typeUrl.endsWith("/google.rpc.ErrorInfo") || value === undefined) continue;
    const info = new BinaryReader(value);
    while (info.pos < info.len) {
      const [field, wireType] = info.tag();
      if (field === 1) return info.string();
      info.skip(wireType);
    }
  }
  return "";
}

function corrected<E extends Partial<grpc.StatusObject> | null | undefined>(error: E): E {
  if (!error || error.code !== grpc.status.FAILED_PRECONDITION || !error.metadata) return error;
  const [blob] = error.metadata.get(DETAILS_KEY);
  if (!(blob instanceof Buffer)) return error;
  const status = decodeStatus(blob);
  if (!UNIMPLEMENTED_REASONS.has(reasonOf(status))) return error;
  status.code = grpc.status.UNIMPLEMENTED;
  error.metadata.set(DETAILS_KEY, encodeStatus(status));
  return { ...error, code: grpc.status.UNIMPLEMENTED };
}

/** The SDK's gRPC service implementation with the spec's status codes. */
export function specGrpc(
  definition: grpc.ServiceDefinition,
  implementation: grpc.UntypedServiceImplementation,
): grpc.UntypedServiceImplementation {
  const fixed: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const handler = implementation[name] as (...args: unknown[]) => unknown;
    if (!method.responseStream) {
      fixed[name] = (call: unknown, callback: grpc.sendUnaryData<unknown>) =>
        handler(call, (error: grpc.ServerErrorResponse | null, value?: unknown) => callback(corrected(error), value));
    } else {
      fixed[name] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
        const emit = call.emit.bind(call);
        call.emit = (event: string | symbol, ...args: unknown[]): boolean =>
          event === "error" ? emit(event, corrected(args[0] as grpc.ServerErrorResponse)) : emit(event, ...args);
        return handler(call);
      };
    }
  }
  return fixed;
}

interface RestErrorBody {
  error?: { code?: number; status?: string; details?: Array<{ reason?: string }> };
}

/** Express middleware for the card, JSON-RPC and HTTP+JSON mounts: the spec's media types and statuses. */
export function specHttp(binding: "card" | "JSONRPC" | "HTTP+JSON"): RequestHandler {
  return (req, res, next) => {
    const wantsA2a = binding === "HTTP+JSON" && (req.headers.accept ?? "").includes(A2A_MEDIA_TYPE);
    const json = res.json.bind(res);
    res.json = (body: unknown): Response => {
      const error = (body as RestErrorBody | null)?.error;
      const spec = binding === "HTTP+JSON" ? REST_ERRORS[error?.details?.[0]?.reason ?? ""] : undefined;
      if (error && spec) {
        res.status(spec[0]);
        error.code = spec[0]; // the body repeats the HTTP status (AIP-193)
        error.status = spec[1];
      }
      return json(body); // which calls res.send below with the JSON text
    };
    const send = res.send.bind(res);
    res.send = (body: unknown): Response => {
      const type = String(res.getHeader("Content-Type") ?? "");
      if (typeof body === "string" && /^application\/(a2a\+)?json/.test(type)) {
        res.setHeader("Content-Type", wantsA2a ? A2A_MEDIA_TYPE : "application/json");
        // A Buffer keeps express from appending "; charset=utf-8" to the type.
        return send(Buffer.from(body));
      }
      return send(body);
    };
    next();
  };
}
