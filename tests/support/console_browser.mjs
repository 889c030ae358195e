// One headless Chromium page on a gateway console, for the console scripts beside this file.
//
// openConsole(url, path, key) launches the machine's Chromium (CHROMIUM, else /usr/bin/chromium),
// reports page errors on stderr, stores the API key where the console reads it (when one is given)
// and opens <url><path>. The caller closes the returned browser.
import { chromium } from "playwright-core";

export async function openConsole(url, path, key) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run"],
  });
  try {
    const page = await browser.newPage();
    page.on("pageerror", (e) => console.error("page error:", e.message));
    if (key !== undefined) {
      await page.addInitScript((k) => localStorage.setItem("switchboard.key", k), key);
    }
    await page.goto(`${url}${path}`);
    return { browser, page };
  } catch (error) {
    await browser.close();
    throw error;
  }
}
