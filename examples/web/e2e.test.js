// The browser chat end to end: a real relay process serving the page (its
// static directory holds examples/web and the npm package as installed from
// the tarball), Debian's Chromium driven by playwright-core, three people in
// three browser contexts. Handles are claimed with the codes the relay
// prints; messages go both ways, directly and to the group; one page is
// reloaded and goes on; the safety numbers both sides show are equal.
// Screenshots land in $SEALPOST_SCREENSHOTS.
//
//   SEALPOST_RELAY=target/debug/sealpost-relay SEALPOST_WEB=dir node --test e2e.test.js
import test from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchChromium, startRelay as startRelayWith } from "./harness.js";

const relayBin = process.env.SEALPOST_RELAY;
const webDir = process.env.SEALPOST_WEB;
const shots = process.env.SEALPOST_SCREENSHOTS ?? join(tmpdir(), "sealpost-web-screenshots");

/** Starts the relay on a free loopback port serving the chat; resolves with its URL and the codes it prints. */
const startRelay = (dataDir) => startRelayWith(relayBin, ["--data-dir", dataDir, "--static-dir", webDir]);

async function sees(page, text) {
  await page.locator("#log li", { hasText: text }).first().waitFor({ timeout: 20_000 });
}

async function logText(page) {
  return (await page.locator("#log li").allTextContents()).join("\n");
}

test("three people chat in Chromium through a real relay", { timeout: 240_000 }, async () => {
  assert.ok(relayBin && webDir, "SEALPOST_RELAY and SEALPOST_WEB must be set");
  mkdirSync(shots, { recursive: true });
  const data = mkdtempSync(join(tmpdir(), "sealpost-web-relay-"));
  const relay = await startRelay(data);
  const browser = await launchChromium();
  const problems = [];
  try {
    const people = {};
    for (const name of ["alice", "bob", "carol"]) {
      const context = await browser.newContext();
      const page = await context.newPage();
      page.on("pageerror", (e) => problems.push(`${name}: page error: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`${name}: console error: ${m.text()}`);
      });
      await page.goto(`${relay.url}/chat/`);
      await page.locator("#unlock-button", { hasText: "Create account" }).waitFor();
      await page.fill("#passphrase", `${name}'s long passphrase`);
      await page.click("#unlock-button");
      await page.locator("#status", { hasText: "connected" }).waitFor({ timeout: 30_000 });
      await page.fill("#handle", name);
      await page.click("#claim");
      await sees(page, `a code for ${name}`);
      await page.fill("#code", await relay.code(name));
      await page.click("#verify");
      await page.locator("#me", { hasText: `@${name}` }).waitFor();
      people[name] = { context, page };
    }
    const { alice, bob, carol } = people;

    // Everyone adds everyone (a room is each person's own list).
    const addTo = async (who, whom) => {
      await who.page.fill("#contact", whom);
      await who.page.click("#add");
      await sees(who.page, `@${whom} joined`);
    };
    await addTo(alice, "bob");
    await sees(bob.page, "@alice joined");
    await addTo(alice, "carol");
    await sees(carol.page, "@alice joined");
    await addTo(bob, "carol");
    await sees(carol.page, "@bob joined");

    const say = async (who, to, text) => {
      if (to) {
        const value = await who.page.locator("#to option", { hasText: `@${to}` }).getAttribute("value");
        await who.page.selectOption("#to", value);
      } else {
        await who.page.selectOption("#to", "");
      }
      await who.page.fill("#text", text);
      await who.page.click("#send");
    };

    // Direct messages both ways; only the recipient reads them.
    await say(alice, "bob", "hi Bob, only you can read this");
    await sees(bob.page, "[@alice → you] hi Bob, only you can read this");
    await say(bob, "alice", "hi Alice");
    await sees(alice.page, "[@bob → you] hi Alice");
    // The group: one broadcast reaches both others.
    await say(alice, null, "hello everyone");
    await sees(bob.page, "[@alice] hello everyone");
    await sees(carol.page, "[@alice] hello everyone");
    await say(carol, null, "hi all, Carol here");
    await sees(alice.page, "[@carol] hi all, Carol here");
    await sees(bob.page, "[@carol] hi all, Carol here");
    assert.ok(!(await logText(carol.page)).includes("only you can read this"), "Carol never saw the direct message");

    // Both sides show the same safety number.
    const digits = async (who, of) => who.page.locator(`#contacts li[data-handle="${of}"] .digits`).textContent();
    const ab = await digits(alice, "bob");
    assert.match(ab, /^(\d{5} ){11}\d{5}$/);
    assert.equal(ab, await digits(bob, "alice"), "Alice and Bob see the same safety number");
    assert.equal(await digits(alice, "carol"), await digits(carol, "alice"));
    assert.notEqual(ab, await digits(alice, "carol"));

    for (const [name, { page }] of Object.entries(people)) await page.screenshot({ path: join(shots, `${name}.png`) });

    // A second tab of Bob's does not take over his state.
    const second = await bob.context.newPage();
    await second.goto(`${relay.url}/chat/`);
    await second.locator("#status", { hasText: "another tab" }).waitFor();
    await second.close();

    // Bob reloads, unlocks with his passphrase, and every conversation goes on.
    await bob.page.reload();
    await bob.page.locator("#unlock-button", { hasText: "Unlock" }).waitFor();
    await bob.page.fill("#passphrase", "not bob's passphrase");
    await bob.page.click("#unlock-button");
    await bob.page.locator("#status", { hasText: "wrong passphrase" }).waitFor();
    await bob.page.fill("#passphrase", "bob's long passphrase");
    await bob.page.click("#unlock-button");
    await bob.page.locator("#status", { hasText: "connected" }).waitFor({ timeout: 30_000 });
    await bob.page.locator("#me", { hasText: "@bob" }).waitFor();
    assert.equal(await digits(bob, "alice"), ab, "the same safety number after the reload");
    await say(alice, "bob", "still there after your reload?");
    await sees(bob.page, "[@alice → you] still there after your reload?");
    await say(bob, "alice", "yes, still here");
    await sees(alice.page, "[@bob → you] yes, still here");
    await say(bob, null, "group message after a reload");
    await sees(alice.page, "[@bob] group message after a reload");
    await sees(carol.page, "[@bob] group message after a reload");
    await bob.page.screenshot({ path: join(shots, "bob-after-reload.png") });

    for (const { page } of Object.values(people)) {
      assert.ok(!(await logText(page)).includes("refused"), `no message was refused:\n${await logText(page)}`);
    }
    assert.deepEqual(problems, [], "errors in the pages");
  } finally {
    await browser.close();
    relay.child.kill("SIGTERM");
    rmSync(data, { recursive: true, force: true });
  }
});
