// The agent's settings: the same SWITCHBOARD_* variables the Python services read
// (runtime/config.py Settings, docs/configuration.md), so `switchboard up` configures it alike.

export interface Config {
  host: string;
  advertiseHost: string;
  grpcPort: number;
  httpPort: number;
  /** Pause between two streamed lines of an answer (0: none); slows the stream for demos and crash tests. */
  chunkDelayMs: number;
  shutdownGraceSeconds: number;
  /** Max-age of the Agent Card: Switchboard's discovery TTL, as the Python agents send it. */
  cardMaxAgeSeconds: number;
}

export class ConfigError extends Error {}

function number(env: NodeJS.ProcessEnv, name: string, fallback: number, integer: boolean): number {
  const raw = env[`SWITCHBOARD_${name}`];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new ConfigError(`SWITCHBOARD_${name}=${JSON.stringify(raw)} is not a valid ${integer ? "int" : "float"}`);
  }
  return value;
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): Config {
  const host = env.SWITCHBOARD_HOST || "127.0.0.1";
  return {
    host,
    advertiseHost: env.SWITCHBOARD_ADVERTISE_HOST || host,
    grpcPort: number(env, "TEXTSTATS_GRPC_PORT", 50055, true),
    httpPort: number(env, "TEXTSTATS_HTTP_PORT", 8085, true),
    chunkDelayMs: number(env, "TEXTSTATS_CHUNK_DELAY_MS", 0, false),
    shutdownGraceSeconds: number(env, "SHUTDOWN_GRACE_SECONDS", 10, false),
    cardMaxAgeSeconds: number(env, "DISCOVERY_TTL_SECONDS", 30, false),
  };
}
