// The relay's live status page in Chromium: a real relay process sampling
// every second, four registered accounts sending real sealed envelopes to
// each other for about five seconds (Alice and Bob pull and acknowledge,
// Carol is pushed over a WebSocket, Dave is never online so his mailbox
// fills), and handle claims inside the claim cooldown refused with 429.
// The tiles must show the relay's totals, the six charts must be drawn,
// and /metrics still answers. Screenshots land in $SEALPOST_SCREENSHOTS.
//
//   SEALPOST_RELAY=target/debug/sealpost-relay node --test dashboard.test.js
import test from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isDeepStrictEqual } from "node:util";
import { launchChromium, startRelay as startRelayWith } from "./harness.js";
import * as sealpost from "sealpost";

const relayBin = process.env.SEALPOST_RELAY;
const shots = process.env.SEALPOST_SCREENSHOTS ?? join(tmpdir(), "sealpost-web-screenshots");
const SERIES = ["deposits_per_sec", "deliveries_per_sec", "push_connections", "messages_waiting",
  "envelope_bytes_stored", "rate_limited_per_sec"];
const PREKEYS = 10;
const policy = sealpost.defaultPolicy();
const { RelayRequest } = sealpost;

/** Starts the relay on a free loopback port, sampling its status every second. */
const startRelay = (dataDir) => startRelayWith(relayBin, ["--data-dir", dataDir, "--status-sample-secs", "1"]);

/** People on the relay at `base`, speaking its HTTP API through the package (as examples/web/app.js does). */
function client(base) {
  async function call(who, request, parse, ...before) {
    const headers = { authorization: request.authorize(who.signer) };
    if (request.contentType()) headers["content-type"] = request.contentType();
    const body = request.method() === "GET" ? undefined : request.body();
    const response = await fetch(new URL(request.pathAndQuery(), base), { method: request.method(), headers, body });
    const bytes = new Uint8Array(await response.arrayBuffer());
    return parse(...before, response.status, response.headers.get("retry-after") ?? undefined, bytes);
  }
  return {
    async register(name) {
      const account = new sealpost.Account();
      const who = { name, account, signer: account.relaySigner(), after: 0, sessions: new Map() };
      who.id = who.signer.account();
      await call(who, RelayRequest.publishBundle(account.bundle(policy)), sealpost.parsePublishBundle);
      const upload = RelayRequest.uploadPrekeys(account.generateOneTimePrekeys(PREKEYS));
      assert.equal(await call(who, upload, sealpost.parseUploadPrekeys), PREKEYS, `${name} holds ${PREKEYS} prekeys`);
      return who;
    },
    /** Seals `text` for `to` in a session from their fetched bundle and deposits it; returns its size. */
    async send(from, to, text) {
      if (!from.sessions.has(to.id)) {
        const { bundle } = await call(from, RelayRequest.fetchBundle(to.id), sealpost.parseFetchBundle, to.id);
        from.sessions.set(to.id, sealpost.Session.initiate(from.account, bundle, policy));
      }
      const envelope = from.sessions.get(to.id).encrypt(new TextEncoder().encode(text));
      await call(from, RelayRequest.deposit([to.id], envelope), sealpost.parseDeposit);
      return envelope.length;
    },
    /** Pulls `who`'s mailbox and acknowledges what came; returns how many. */
    async drain(who) {
      const { messages, nextAfter } = await call(who, RelayRequest.pull(who.after, 100), sealpost.parsePull);
      who.after = nextAfter;
      if (messages.length > 0) await call(who, RelayRequest.ack(messages.map((m) => m.id)), sealpost.parseAck);
      return messages.length;
    },
    /** Claims a handle: 202, or 429 `rate_limited` within the claim cooldown. */
    claim: (who, handle) => call(who, RelayRequest.claimHandle(handle), sealpost.parseClaimHandle).then(() => 202,
      (e) => (e instanceof sealpost.RelayError && e.code === "rate_limited" ? e.status : Promise.reject(e))),
  };
}

const getStatus = (base) => fetch(`${base}/status.json`).then((r) => {
  assert.equal(r.status, 200, "GET /status.json answers 200");
  return r.json();
});

/** The page's byte format: "512 B", "12.1 KiB", "340 KiB". */
const human = (n, i = 0) => (n >= 1024 && i < 3 ? human(n / 1024, i + 1)
  : i === 0 ? `${n} B` : `${n.toFixed(n < 100 ? 1 : 0).replace(/\.0$/, "")} ${["B", "KiB", "MiB", "GiB"][i]}`);

const within = (what, promise) => promise.catch((e) => { throw new Error(`${what}: ${e.message}`); });

test("the status page charts a relay's live traffic in Chromium", { timeout: 120_000 }, async () => {
  assert.ok(relayBin, "SEALPOST_RELAY must be set");
  mkdirSync(shots, { recursive: true });
  const data = mkdtempSync(join(tmpdir(), "sealpost-dashboard-relay-"));
  const relay = await startRelay(data);
  const browser = await launchChromium();
  const problems = [];
  let running = true;
  let traffic;
  try {
    const net = client(relay.url);
    const [alice, bob, carol, dave] = await Promise.all(["alice", "bob", "carol", "dave"].map(net.register));

    // Carol is online: a push connection from a page on the relay's origin,
    // acknowledging every envelope pushed with the package's frames.
    const pusher = await (await browser.newContext()).newPage();
    await pusher.exposeFunction("ackFor", (text) => {
      const frame = sealpost.parsePushFrame(text);
      return frame.kind === "message" ? sealpost.ackFrame([frame.message.id]) : null;
    });
    await pusher.goto(`${relay.url}/healthz`);
    const ws = new URL(sealpost.wsAuthQuery(RelayRequest.websocket().authorize(carol.signer)), relay.url);
    ws.protocol = "ws:";
    await within("Carol's push connection", pusher.evaluate((url) => new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      Object.assign(window, { socket });
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error("the WebSocket failed"));
      socket.onmessage = async (e) => {
        const reply = await window.ackFor(e.data);
        if (reply) socket.send(reply);
      };
    }), ws.href));

    // Traffic well inside the default rate limits; only the repeated claims are refused.
    const sent = { toDave: 0, daveBytes: 0, claims: 0, refused: 0 };
    const started = Date.now();
    traffic = (async () => {
      for (let round = 0; running; round++) {
        await net.send(alice, bob, `round ${round}: hi Bob`);
        await net.send(bob, carol, `round ${round}: hi Carol`);
        await net.send(carol, alice, `round ${round}: hi Alice`);
        if (round % 3 === 0) {
          sent.daveBytes += await net.send(alice, dave, `round ${round}: for when you are back, Dave`);
          sent.toDave++;
        }
        await net.drain(alice);
        await net.drain(bob);
        if (round % 4 === 1) {
          sent.claims++;
          if ((await net.claim(carol, "dashboard")) === 429) sent.refused++;
        }
        await sleep(250);
      }
    })();
    const stoppedEarly = traffic.then(() => running && assert.fail("the traffic stopped early"));
    stoppedEarly.catch(() => {});

    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => m.type() === "error" && problems.push(`console error: ${m.text()}`));
    const response = await page.goto(`${relay.url}/`);
    assert.equal(response.status(), 200, "GET / answers 200");
    assert.match(response.headers()["content-security-policy"] ?? "", /default-src 'none'/, "GET / has the strict CSP");
    const seen = within("the page never became ready with a non-zero deposits value", (async () => {
      await page.locator('body[data-ready="1"]').waitFor({ state: "attached", timeout: 15_000 });
      await page.waitForFunction(() => Number(document.querySelector(
        '[data-series="deposits_per_sec"] [data-role="current"]')?.dataset.value) > 0, null, { timeout: 20_000 });
    })());
    seen.catch(() => {});
    await Promise.race([seen, stoppedEarly]);
    await sleep(Math.max(0, 5000 - (Date.now() - started)));
    running = false;
    await traffic;
    while ((await net.drain(alice)) + (await net.drain(bob)) > 0);
    assert.ok(sent.refused >= 1, `a claim inside the cooldown was refused (${sent.refused} of ${sent.claims})`);

    // The totals settle once Carol's last acknowledgements are in.
    let status = await getStatus(relay.url);
    for (let i = 0, last = ""; i < 20; i++) {
      if (JSON.stringify(status.totals) === last && status.totals.messages_waiting === sent.toDave) break;
      last = JSON.stringify(status.totals);
      status = await sleep(500).then(() => getStatus(relay.url));
    }
    const { totals, series } = status;
    assert.equal(status.sample_secs, 1, "the relay samples every second (--status-sample-secs 1)");
    assert.equal(totals.accounts, 4, "four accounts published bundles");
    assert.equal(totals.push_connections, 1, "Carol's push connection is open");
    assert.equal(totals.messages_waiting, sent.toDave, "only Dave, never online, has messages waiting");
    assert.equal(totals.envelopes_stored, sent.toDave, "each of Dave's envelopes is stored once");
    assert.equal(totals.envelope_bytes_stored, sent.daveBytes, "the stored bytes are those of Dave's envelopes");
    assert.equal(totals.one_time_prekeys, 4 * PREKEYS - 4, "each of the four bundle fetches took a one-time prekey");
    assert.ok(series.t.length >= 5, `at least five samples (${series.t.length})`);
    for (const name of SERIES) assert.equal(series[name]?.length, series.t.length, `${name}: a value per sample`);

    // The tiles show those numbers (the page polls every second).
    const want = Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, String(v)]));
    const tiles = () => page.$$eval("[data-total]", (els) => Object.fromEntries(
      els.map((e) => [e.dataset.total, e.dataset.value])));
    let shown = await tiles();
    for (let i = 0; i < 40 && !isDeepStrictEqual(shown, want); i++) shown = await sleep(250).then(tiles);
    assert.deepEqual(shown, want, "the tiles show the relay's totals from /status.json");
    assert.equal(await page.locator('[data-total="envelope_bytes_stored"]').textContent(),
      human(totals.envelope_bytes_stored), "the stored bytes tile is human-readable");
    assert.equal(await page.evaluate(() => getComputedStyle(document.querySelector(".tiles")).display), "grid",
      "status.css is applied");

    // Six charts, each with a drawn line and a summary for screen readers.
    const charts = await page.$$eval("[data-series]", (cards) => cards.map((c) => ({
      series: c.dataset.series,
      d: c.querySelector("svg path.line")?.getAttribute("d") ?? "",
      label: c.querySelector('svg[role="img"]')?.getAttribute("aria-label") ?? "",
      max: Number(c.querySelector('[data-role="max"]')?.dataset.value),
    })));
    assert.deepEqual(charts.map((c) => c.series), SERIES, "one chart per series, in order");
    for (const c of charts) {
      assert.match(c.d, /^M[\d.]+,[\d.]+( L[\d.]+,[\d.]+)+$/, `the ${c.series} chart has a drawn line`);
      assert.ok(c.label !== "" && !c.label.includes("collecting"), `the ${c.series} chart is summarized: "${c.label}"`);
    }
    const max = Object.fromEntries(charts.map((c) => [c.series, c.max]));
    assert.ok(max.deposits_per_sec > 0, `the deposits chart saw deposits (max ${max.deposits_per_sec})`);
    assert.ok(max.deliveries_per_sec > 0, `the deliveries chart saw deliveries (max ${max.deliveries_per_sec})`);
    assert.equal(max.push_connections, 1, "the push connections chart saw Carol's connection");
    assert.ok(max.rate_limited_per_sec > 0, `the rate limited chart saw the ${sent.refused} refused claims`);

    await page.screenshot({ path: join(shots, "dashboard.png"), fullPage: true });
    await page.emulateMedia({ colorScheme: "dark" });
    await page.screenshot({ path: join(shots, "dashboard-dark.png"), fullPage: true });

    // /metrics stays the Prometheus source of truth, and agrees.
    const metrics = await fetch(`${relay.url}/metrics`);
    assert.equal(metrics.status, 200, "GET /metrics answers 200");
    assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/, "Prometheus text format");
    const text = await metrics.text();
    assert.match(text, /^# TYPE sealpost_requests_total counter$/m, "/metrics has the request counter");
    assert.match(text, new RegExp(`^sealpost_accounts ${totals.accounts}$`, "m"), "/metrics agrees on accounts");
    const claims429 = `sealpost_requests_total{route="claim_handle",status="429"} ${sent.refused}`;
    assert.ok(text.split("\n").includes(claims429), `/metrics counted the refused claims: ${claims429}`);
    const limited = `sealpost_rate_limited_total ${sent.refused}`;
    assert.ok(text.split("\n").includes(limited), `/metrics counted every 429: ${limited}`);
    assert.deepEqual(problems, [], "no errors in the page (a CSP violation is one)");
  } finally {
    running = false;
    await traffic?.catch(() => {});
    await browser.close();
    relay.child.kill("SIGTERM");
    rmSync(data, { recursive: true, force: true });
  }
});
