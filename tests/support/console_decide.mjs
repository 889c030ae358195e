// Decides one approval in the approvals console (gateway /console/approvals), in real headless Chromium.
//
// Usage: node console_decide.mjs <gateway url> <approval id> <approve|reject|edit> <comment> [edited JSON]
// Prints "decided <id>" once the page confirmed the decision and the card left the list.
import { openConsole } from "./console_browser.mjs";

const [url, id, action, comment, edited] = process.argv.slice(2);
const { browser, page } = await openConsole(url, "/console/approvals");
try {
  await page.locator("#live.on").waitFor({ timeout: 15000 });
  const card = page.locator(`section.approval[data-id="${id}"]`);
  await card.waitFor({ timeout: 15000 });
  if (action === "edit") {
    await card.locator("button.edit").click();
    await card.locator("textarea.edited").fill(edited);
    await card.locator("button.approve-edited").click();
  } else {
    await card.locator(`button.${action}`).click();
  }
  await card.locator(".confirm .comment").fill(comment);
  await card.locator(".confirm button.yes").click();
  await card.waitFor({ state: "detached", timeout: 15000 });
  console.log(`decided ${id}`);
} finally {
  await browser.close();
}
