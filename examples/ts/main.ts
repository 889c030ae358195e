// Ask Switchboard a question over A2A gRPC, print the streamed answer, then the workflow it ran.
//
//   make ts && node .build/ts/examples/ts/main.js "Compare TCP and UDP"
//
// SWITCHBOARD_ORCHESTRATOR_URL (the orchestrator's card, default http://127.0.0.1:8081) and
// SWITCHBOARD_ORCHESTRATOR_GRPC (default 127.0.0.1:50051) say where the platform is. Exit status:
// 0 answered, 1 a call failed or the task did not complete (the reason is printed), 2 usage.
import { TaskState } from "@a2a-js/sdk";
import { StepState, WorkflowState } from "../../gen/ts/switchboard/v1/plan_pb.js";
import { chat, describe, getWorkflow } from "./switchboard.js";

async function main(argv: string[]): Promise<number> {
  const question = argv.join(" ").trim();
  if (!question) {
    process.stderr.write('usage: node main.js "your question"\n');
    return 2;
  }
  const cardUrl = process.env.SWITCHBOARD_ORCHESTRATOR_URL || "http://127.0.0.1:8081";
  const grpcAddress = process.env.SWITCHBOARD_ORCHESTRATOR_GRPC || "127.0.0.1:50051";

  let answer;
  try {
    answer = await chat(cardUrl, question, (piece) => process.stdout.write(piece));
  } catch (error) {
    process.stderr.write(`error: ${describe(`chat with ${cardUrl}`, error)}\n`);
    return 1;
  }
  process.stdout.write(`\n\n[task ${answer.taskId}: ${TaskState[answer.state]}]\n`);
  if (answer.state !== TaskState.TASK_STATE_COMPLETED) {
    process.stderr.write(`error: the task ended ${TaskState[answer.state]}: ${answer.status}\n`);
    return 1;
  }

  try {
    const { workflow, mermaid } = await getWorkflow(grpcAddress, answer.taskId);
    process.stdout.write(`workflow ${workflow?.workflowId}: ${WorkflowState[workflow?.state ?? 0]}\n`);
    for (const step of workflow?.steps ?? []) {
      const planned = workflow?.plan?.steps.find((s) => s.id === step.stepId);
      process.stdout.write(`  step ${step.stepId} (${planned?.agent}/${planned?.skillId}): ${StepState[step.state]}, ${step.attempts} attempt(s)\n`);
    }
    process.stdout.write(`${mermaid}\n`);
  } catch (error) {
    process.stderr.write(`error: ${describe("GetWorkflow", error)}\n`);
    return 1;
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`error: ${describe("example", error)}\n`);
    process.exit(1);
  },
);
