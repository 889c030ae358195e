// The A2A executor: one task per message, its answer streamed as appends to one artifact.
import type { Message, Part, TaskStatus } from "@a2a-js/sdk";
import { TaskState } from "@a2a-js/sdk";
import type { AgentExecutor, ExecutionEventBus, RequestContext } from "@a2a-js/sdk/server";
import { answerLines, subjectOf, textStatistics } from "./stats.js";

/** Task metadata key Switchboard reads a failure's cause from (runtime/messages.py ERROR). */
const ERROR_KEY = "switchboard/error";
/** The cause that tells an orchestrator the step may run again elsewhere or later (runtime/executor.py). */
const SHUTDOWN = "shutdown";

function textPart(text: string): Part {
  return { content: { $case: "text", value: text }, metadata: undefined, filename: "", mediaType: "text/plain" };
}

function agentMessage(text: string, taskId: string, contextId: string): Message {
  return {
    messageId: crypto.randomUUID(),
    contextId,
    taskId,
    role: 2, // ROLE_AGENT
    parts: [textPart(text)],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
}

function status(state: TaskState, message?: Message): TaskStatus {
  return { state, message, timestamp: new Date().toISOString() };
}

/** Why a running task stopped before its end. */
type Stop = "canceled" | "shutdown";

export class TextStatsExecutor implements AgentExecutor {
  private readonly running = new Map<string, AbortController>();
  private readonly idle = new Set<() => void>();

  constructor(private readonly chunkDelayMs: number) {}

  get runningTasks(): number {
    return this.running.size;
  }

  execute = async (ctx: RequestContext, bus: ExecutionEventBus): Promise<void> => {
    const { taskId, contextId } = ctx;
    const stop = new AbortController();
    this.running.set(taskId, stop);
    try {
      if (ctx.task === undefined) {
        // Born WORKING, as Switchboard's agents are: the work starts now.
        bus.publish({
          kind: "task",
          data: {
            id: taskId,
            contextId,
            status: status(TaskState.TASK_STATE_WORKING),
            artifacts: [],
            history: [ctx.userMessage],
            metadata: undefined,
          },
        });
      }
      const request = ctx.userMessage.parts
        .map((p) => (p.content?.$case === "text" ? p.content.value : ""))
        .join("\n");
      const lines = answerLines(textStatistics(subjectOf(request)));
      for (const [i, line] of lines.entries()) {
        if (i > 0 && this.chunkDelayMs > 0) await pause(this.chunkDelayMs, stop.signal);
        if (stop.signal.aborted) break;
        bus.publish({
          kind: "artifactUpdate",
          data: {
            taskId,
            contextId,
            artifact: {
              artifactId: `${taskId}.answer`,
              name: "answer",
              description: "",
              parts: [textPart(line)],
              metadata: undefined,
              extensions: [],
            },
            append: i > 0,
            lastChunk: i === lines.length - 1,
            metadata: undefined,
          },
        });
      }
      const why = stop.signal.reason as Stop | undefined;
      if (why === "canceled") {
        bus.publish(statusEvent(taskId, contextId, TaskState.TASK_STATE_CANCELED, "canceled"));
      } else if (why === "shutdown") {
        const failed = statusEvent(taskId, contextId, TaskState.TASK_STATE_FAILED, "the agent is shutting down");
        failed.data.metadata = { [ERROR_KEY]: { code: SHUTDOWN } };
        bus.publish(failed);
      } else {
        bus.publish({
          kind: "statusUpdate",
          data: { taskId, contextId, status: status(TaskState.TASK_STATE_COMPLETED), metadata: undefined },
        });
      }
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      bus.publish(statusEvent(taskId, contextId, TaskState.TASK_STATE_FAILED, `textstats failed: ${reason}`));
    } finally {
      this.running.delete(taskId);
      bus.finished();
      if (this.running.size === 0) for (const wake of this.idle) wake();
    }
  };

  cancelTask = async (taskId: string, _bus: ExecutionEventBus): Promise<void> => {
    // The running execute() publishes CANCELED on the task's own bus when it sees the abort.
    this.running.get(taskId)?.abort("canceled");
  };

  /** Let running tasks finish for `graceMs`, then fail the rest as "shutting down". */
  async drain(graceMs: number): Promise<void> {
    if (this.running.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.idle.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    for (const stop of this.running.values()) stop.abort("shutdown");
    // Each aborted task publishes its final status before it leaves `running`.
    while (this.running.size > 0) await new Promise((r) => setTimeout(r, 10));
  }
}

function statusEvent(taskId: string, contextId: string, state: TaskState, text: string) {
  return {
    kind: "statusUpdate" as const,
    data: {
      taskId,
      contextId,
      status: status(state, agentMessage(text, taskId, contextId)),
      metadata: undefined as { [key: string]: unknown } | undefined,
    },
  };
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
