// The same flows in headless Chromium (Debian's package, driven by
// playwright-core; no browser is ever downloaded). The page is served from
// a small static server on loopback: the scratch project's directory,
// which holds node_modules/sealpost (installed from the tarball) and the
// flows. Fails unless every flow ran and passed.
import test from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromiumIn } from "./harness.js";
import { flows } from "./flows.js";

const root = fileURLToPath(new URL(".", import.meta.url));
const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

function serve() {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const file = normalize(join(root, path === "/" ? "browser.html" : path));
    if (!file.startsWith(root)) {
      res.writeHead(403).end();
      return;
    }
    let body;
    try {
      body = readFileSync(file);
    } catch {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(body);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

test("every flow passes in headless Chromium", { timeout: 300_000 }, async () => {
  const server = await serve();
  const profile = mkdtempSync(join(tmpdir(), "sealpost-chromium-"));
  const browser = await launchChromiumIn(profile);
  try {
    const page = await browser.newPage();
    const problems = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
    });
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => window.__results !== undefined, null, { timeout: 240_000 });
    const results = await page.evaluate(() => window.__results);
    const version = browser.browser()?.version() ?? "unknown";
    for (const r of results) console.log(`chromium ${version}: ${r.ok ? "ok  " : "FAIL"} ${r.name}${r.ok ? "" : `\n${r.error}`}`);
    assert.ok(results.length > 0, "no flow ran");
    assert.equal(results.length, flows.length, "not every flow ran");
    assert.deepEqual(results.filter((r) => !r.ok), [], "failed flows");
    assert.deepEqual(problems, [], "errors or warnings in the page");
  } finally {
    await browser.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
