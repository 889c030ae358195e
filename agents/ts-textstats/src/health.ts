// The standard gRPC health service (grpc.health.v1.Health/Check), which Switchboard's directory
// asks when it waits for a restarting agent (runtime/a2a_client.py wait_until_serving). Two tiny
// messages, encoded with @bufbuild/protobuf's wire helpers rather than a generated module.
import * as grpc from "@grpc/grpc-js";
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";

export enum ServingStatus {
  UNKNOWN = 0,
  SERVING = 1,
  NOT_SERVING = 2,
  SERVICE_UNKNOWN = 3,
}

interface CheckRequest {
  service: string;
}

function decodeRequest(bytes: Buffer): CheckRequest {
  const reader = new BinaryReader(bytes);
  let service = "";
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1) service = reader.string();
    else reader.skip(wireType);
  }
  return { service };
}

function encodeResponse(status: ServingStatus): Buffer {
  return Buffer.from(new BinaryWriter().uint32(8).int32(status).finish());
}

export const HealthService: grpc.ServiceDefinition = {
  check: {
    path: "/grpc.health.v1.Health/Check",
    requestStream: false,
    responseStream: false,
    requestSerialize: () => Buffer.alloc(0), // client side only; this process serves
    requestDeserialize: decodeRequest,
    responseSerialize: encodeResponse,
    responseDeserialize: () => ServingStatus.UNKNOWN,
  },
};

/** Health of the server as a whole ("") and of `lf.a2a.v1.A2AService`. */
export class Health {
  private status = ServingStatus.SERVING;
  static readonly SERVICES = new Set(["", "lf.a2a.v1.A2AService"]);

  set(status: ServingStatus): void {
    this.status = status;
  }

  implementation(): grpc.UntypedServiceImplementation {
    return {
      check: (call: grpc.ServerUnaryCall<CheckRequest, ServingStatus>, callback: grpc.sendUnaryData<ServingStatus>) => {
        if (!Health.SERVICES.has(call.request.service)) {
          callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${call.request.service}` });
          return;
        }
        callback(null, this.status);
      },
    };
  }
}
