// Opens the stampede dashboard in real Chromium (Debian's, driven by playwright-core), reads the
// page's numbers twice, a second and a half apart, and prints what it saw as one JSON line.
// Usage: node dashboard.js URL CHROMIUM [reads]
"use strict";
const { chromium } = require("playwright-core");

const [url, executablePath, readsArg] = process.argv.slice(2);
const reads = Number(readsArg || 2);

(async () => {
  const browser = await chromium.launch({
    executablePath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  });
  const errors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 1600 } });
    page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") errors.push(`${m.type()}: ${m.text()}`); });
    page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
    await page.goto(url, { waitUntil: "load", timeout: 10000 });
    await page.waitForFunction(() => Number(document.getElementById("requests").textContent) > 0, null, { timeout: 10000 });
    const read = () => page.evaluate(() => {
      const canvasInk = (id) => {
        // Read through a copy made for reading, so the page's own canvas stays as it drew it
        // (and Chromium does not warn about readbacks from it).
        const c = document.getElementById(id);
        const o = document.createElement("canvas");
        o.width = c.width; o.height = c.height;
        const g = o.getContext("2d", { willReadFrequently: true });
        g.drawImage(c, 0, 0);
        const d = g.getImageData(0, 0, o.width, o.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;
      };
      const t = (id) => document.getElementById(id).textContent;
      return {
        status: t("status"), phase: t("phase"), t: t("t"), vus: t("vus"), rps: t("rps"),
        requests: t("requests"), p50: t("p50"), p95: t("p95"), p99: t("p99"), error_rate: t("error-rate"),
        steps: Array.from(document.querySelectorAll("#steps tr")).map((r) => Array.from(r.cells).map((c) => c.textContent)),
        findings: Array.from(document.querySelectorAll("#findings li")).map((l) => l.textContent),
        monitors: t("monitors"),
        ink_rps: canvasInk("chart-rps"), ink_p95: canvasInk("chart-p95"),
      };
    });
    const seen = [];
    for (let i = 0; i < reads; i++) {
      if (i > 0) await page.waitForTimeout(1500);
      seen.push(await read());
    }
    console.log(JSON.stringify({ seen, errors }));
  } finally {
    await browser.close();
  }
})().catch((e) => { console.log(JSON.stringify({ fatal: String(e && e.stack || e) })); process.exit(1); });
