// The Agent Card: all Switchboard knows of this agent. The planner picks agents by matching the
// words of a request against each skill's tags (weight 3: single lowercase words, singular, as
// services/planner/catalog.py compares them), its id, name, description and examples (weight 1),
// so the skill says plainly what it does, in the words people use to ask for it (docs/clients.md).
import type { AgentCard } from "@a2a-js/sdk";
import type { Config } from "./config.js";

export const AGENT_NAME = "textstats";
export const SKILL_ID = "text-statistics";
export const JSONRPC_PATH = "/a2a/jsonrpc";
export const REST_PATH = "/a2a/rest";

export function agentCard(config: Config): AgentCard {
  const host = config.advertiseHost;
  const http = `http://${host}:${config.httpPort}`;
  return {
    name: AGENT_NAME,
    description: "Text statistics in TypeScript: counts words, sentences and characters, reading time.",
    // gRPC first: Switchboard's clients take the first interface they speak. A gRPC URL is
    // host:port without a scheme (what a channel is given).
    supportedInterfaces: [
      { url: `${host}:${config.grpcPort}`, protocolBinding: "GRPC", tenant: "", protocolVersion: "1.0" },
      { url: `${http}${JSONRPC_PATH}`, protocolBinding: "JSONRPC", tenant: "", protocolVersion: "1.0" },
      { url: `${http}${REST_PATH}`, protocolBinding: "HTTP+JSON", tenant: "", protocolVersion: "1.0" },
    ],
    provider: undefined,
    version: "1.0.0",
    capabilities: { streaming: true, pushNotifications: false, extensions: [] },
    securitySchemes: {},
    securityRequirements: [],
    defaultInputModes: ["text/plain"],
    defaultOutputModes: ["text/plain"],
    skills: [
      {
        id: SKILL_ID,
        name: "Text statistics",
        description:
          "Counts the words, sentences and characters of a text, the average word length, " +
          "its reading time and its most frequent words.",
        tags: ["word", "count", "sentence", "statistic", "readability"],
        examples: [
          "Count the words in this text: The quick brown fox jumps over the lazy dog.",
          "How many sentences and words are in: ...",
          "Word count and reading time of: ...",
        ],
        inputModes: ["text/plain"],
        outputModes: ["text/plain"],
        securityRequirements: [],
      },
    ],
    signatures: [],
  };
}
