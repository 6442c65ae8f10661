// The flows under Node's test runner, against the package as installed
// from its tarball into a scratch project (bindings/wasm/test.sh).
import test from "node:test";
import assert from "node:assert/strict";
import * as sealpost from "sealpost";
import { flows } from "./flows.js";

test("the package loads under Node and exports the API", async () => {
  await sealpost.init();
  for (const name of ["Account", "Session", "Room", "Healer", "PrekeyBundle", "PickleKey", "SafetyNumber",
    "RelayRequest", "RelaySigner", "SealpostError", "RelayError", "defaultPolicy", "errorCodes"]) {
    assert.equal(typeof sealpost[name], "function", name);
  }
});

assert.ok(flows.length > 0);
for (const flow of flows) {
  test(flow.name, () => flow.run(sealpost));
}
