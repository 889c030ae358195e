// Drives the approvals console (gateway /console/approvals) in real headless Chromium.
//
// Usage: node approvals_console.mjs <gateway url> <api key> <approve id> <reject id> <edit id>
// Protocol with the Python test, one line each way on stdout/stdin:
//   -> "decided"          the three approvals were decided in the page and left the list
//   <- "<id>"             an approval the test created elsewhere
//   -> "shown <id>"       it appeared in the list without a reload
//   <- "decided-elsewhere"
//   -> "removed <id>"     it left the list after being decided through gRPC
import { createInterface } from "node:readline";
import { openConsole } from "./console_browser.mjs";

const [url, key, approveId, rejectId, editId] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const next = async () => (await lines.next()).value.trim();
const card = (page, id) => page.locator(`section.approval[data-id="${id}"]`);

const { browser, page } = await openConsole(url, "/console/approvals", key);
try {
  await page.locator("#live.on").waitFor({ timeout: 15000 });

  // Approve one, with its confirmation.
  await card(page, approveId).locator("button.approve").click();
  await card(page, approveId).locator(".confirm .comment").fill("looks right");
  await card(page, approveId).locator(".confirm button.yes").click();
  await card(page, approveId).waitFor({ state: "detached", timeout: 10000 });

  // Reject one.
  await card(page, rejectId).locator("button.reject").click();
  await card(page, rejectId).locator(".confirm .comment").fill("wrong audience");
  await card(page, rejectId).locator(".confirm button.yes").click();
  await card(page, rejectId).waitFor({ state: "detached", timeout: 10000 });

  // Edit the arguments: first malformed (refused in the page), then a JSON object.
  const edit = card(page, editId);
  await edit.locator("button.edit").click();
  await edit.locator("textarea.edited").fill("[1, 2]");
  await edit.locator("button.approve-edited").click();
  await page.locator("#status", { hasText: "must be a JSON object" }).waitFor({ timeout: 5000 });
  await edit.locator("textarea.edited").fill('{"to": "beta@example.com"}');
  await edit.locator("button.approve-edited").click();
  await edit.locator(".confirm button.yes").click();
  await edit.waitFor({ state: "detached", timeout: 10000 });
  console.log("decided");

  // Live updates from elsewhere.
  const outside = await next();
  await card(page, outside).waitFor({ timeout: 15000 });
  console.log(`shown ${outside}`);
  if ((await next()) !== "decided-elsewhere") throw new Error("protocol");
  await card(page, outside).waitFor({ state: "detached", timeout: 15000 });
  console.log(`removed ${outside}`);
} finally {
  await browser.close();
}
// The open stdin would keep the process alive.
process.exit(0);
