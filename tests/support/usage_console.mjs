// Opens the usage console (gateway /console/usage) in real headless Chromium and prints what it drew.
//
// Usage: node usage_console.mjs <gateway url> <api key>
// Prints one JSON line: {"total": micros, "days": {day: micros}, "models": {model: micros}, "keys": {key: micros}}
// read from the SVG bars and the table rows the page rendered.
import { openConsole } from "./console_browser.mjs";

const [url, key] = process.argv.slice(2);
const { browser, page } = await openConsole(url, "/console/usage", key);
try {
  await page.locator("body[data-loaded=true]").waitFor({ timeout: 20000 });
  const drawn = await page.evaluate(() => {
    const pick = (selector, attr) => Object.fromEntries(
      [...document.querySelectorAll(selector)].map((n) => [n.getAttribute(attr), Number(n.getAttribute("data-cost-micros"))]));
    return {
      total: Number(document.getElementById("total").dataset.costMicros),
      shown: document.getElementById("total").textContent,
      days: pick("#per-day rect.bar", "data-day"),
      models: pick("#per-model rect.bar", "data-model"),
      keys: Object.fromEntries([...document.querySelectorAll("#per-key tbody tr")].map(
        (tr) => [tr.dataset.key, Number(tr.dataset.costMicros)])),
    };
  });
  console.log(JSON.stringify(drawn));
} finally {
  await browser.close();
}
