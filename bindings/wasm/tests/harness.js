// What the browser tests share (copied next to them by bindings/wasm/test.sh):
// headless Chromium as the test machines run it, and a relay process on a
// free loopback port.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chromium } from "playwright-core";

/** Debian's Chromium, headless, without anything that reaches the network on its own. */
export const CHROMIUM = {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
};

/** A browser with a fresh profile of its own. */
export const launchChromium = () => chromium.launch(CHROMIUM);

/** A persistent context in the profile directory `profile`. */
export const launchChromiumIn = (profile) => chromium.launchPersistentContext(profile, CHROMIUM);

/**
 * Starts the relay at `relayBin` on a free loopback port with the extra
 * `args`; resolves with its URL, the child process, and `code(handle)`,
 * the verification code it printed for a handle.
 */
export function startRelay(relayBin, args) {
  const child = spawn(relayBin, ["--listen", "127.0.0.1:0", ...args], {
    env: { ...process.env, NO_COLOR: "1", RUST_LOG: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const codes = new Map();
  const waiting = [];
  let out = "";
  child.stdout.on("data", (chunk) => {
    out += chunk;
    for (const m of out.matchAll(/verification code for (\S+): (\d+)/g)) codes.set(m[1], m[2]);
    waiting.splice(0).forEach((wake) => wake());
  });
  return new Promise((resolve, reject) => {
    let err = "";
    child.on("exit", (code) => reject(new Error(`relay exited (${code}): ${err}`)));
    child.stderr.on("data", (chunk) => {
      err += chunk;
      const m = /listening on (http:\/\/[0-9.:]+)/.exec(err);
      if (!m) return;
      child.stderr.removeAllListeners("data");
      child.stderr.resume();
      resolve({
        url: m[1],
        child,
        async code(handle) {
          for (let i = 0; i < 100 && !codes.has(handle); i++) {
            await new Promise((wake) => { waiting.push(wake); setTimeout(wake, 100); });
          }
          assert.ok(codes.has(handle), `the relay printed no code for ${handle}`);
          return codes.get(handle);
        },
      });
    });
  });
}
