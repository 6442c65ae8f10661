// The flows of the uniffi binding's tests (bindings/python/tests), for the
// npm package: run by Node's test runner (node.test.js) and in headless
// Chromium (browser.html, driven by browser.test.js). Each flow gets the
// package's module namespace. Every call passes the time (`now`) so that
// nothing depends on the clock; apps leave it out.

const T0 = 1_700_000_000;
const enc = (s) => new TextEncoder().encode(s);
const dec = (b) => new TextDecoder().decode(b);

function fail(msg) {
  throw new Error(`assertion failed: ${msg}`);
}
function ok(cond, msg) {
  if (!cond) fail(msg);
}
function eq(a, b, msg) {
  if (a !== b) fail(`${msg}: ${JSON.stringify(a)} !== ${JSON.stringify(b)}`);
}
function bytesEq(a, b, msg) {
  ok(a instanceof Uint8Array && b instanceof Uint8Array, `${msg}: not Uint8Arrays`);
  ok(a.length === b.length && a.every((x, i) => x === b[i]), `${msg}: bytes differ`);
}
function text(b, s, msg) {
  eq(dec(b), s, msg);
}
/** Runs `f`, which must throw an instance of `cls` with `code`. */
function throwsCode(sp, f, code, msg, cls = sp.SealpostError) {
  let thrown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  ok(thrown !== undefined, `${msg}: did not throw (expected ${code})`);
  ok(thrown instanceof cls, `${msg}: threw ${thrown && thrown.name}: ${thrown && thrown.message} (expected ${cls.name})`);
  ok(thrown instanceof Error, `${msg}: not an Error`);
  eq(thrown.code, code, `${msg}: code`);
  return thrown;
}
/** Runs `f`, which may return or throw a typed error, never anything else. */
function typedOrValue(sp, f, msg) {
  try {
    f();
  } catch (e) {
    ok(
      (e instanceof sp.SealpostError || e instanceof sp.RelayError) && typeof e.code === "string",
      `${msg}: threw ${e && e.name}: ${e && e.message}`,
    );
    return e.code;
  }
  return "ok";
}

/** A deterministic byte generator (xorshift32) for garbage inputs. */
function garbage(seed) {
  let x = seed >>> 0 || 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      out[i] = x & 0xff;
    }
    return out;
  };
}
/** Truncations and single-bit flips of a valid input, plus garbage. */
function mutations(valid, seed) {
  const rand = garbage(seed);
  const out = [new Uint8Array(0), rand(1), rand(7), rand(64), rand(valid.length), rand(valid.length + 40)];
  for (const cut of [1, 2, 3, 5, 8, 16, 33, 64, 100, 200, 500, 1000, 1200]) {
    if (cut < valid.length) out.push(valid.slice(0, cut), valid.slice(0, valid.length - cut));
  }
  const r = rand(64);
  for (let i = 0; i < 48; i++) {
    const m = valid.slice();
    const at = ((r[i] << 8) | r[(i + 1) % 64]) % m.length;
    m[at] ^= 1 << (r[(i + 2) % 64] & 7);
    out.push(m);
  }
  const longer = new Uint8Array(valid.length + 1);
  longer.set(valid);
  out.push(longer);
  return out;
}

function b64url(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Bob publishes a bundle with a one-time prekey; Alice starts a session
 * from the wire bytes; Bob accepts her first message. */
function start(sp, now = T0) {
  const policy = sp.defaultPolicy();
  const alice = new sp.Account(now);
  const bob = new sp.Account(now);
  const [otk] = bob.generateOneTimePrekeys(1);
  const wire = bob.bundle(policy).withOneTimePrekey(otk).toBytes();
  const bundle = sp.PrekeyBundle.fromBytes(wire);
  ok(bundle.hasOneTimePrekey(), "bundle has a one-time prekey");
  const a = sp.Session.initiate(alice, bundle, policy, now);
  const first = a.encrypt(enc("hello Bob"), now);
  eq(sp.envelopeKind(first), sp.EnvelopeKind.Prekey, "first message kind");
  const accepted = bob.accept(policy, first, now);
  text(accepted.plaintext, "hello Bob", "first plaintext");
  return { policy, alice, bob, a, b: accepted.session };
}

function roomOfThree(sp) {
  const policy = sp.defaultPolicy();
  const accounts = [0, 1, 2].map(() => new sp.Account(T0));
  const rooms = accounts.map((acc) => new sp.Room(enc("lobby"), acc, policy));
  const ids = accounts.map((acc) => acc.identity());
  for (let i = 0; i < 3; i++) {
    for (let j = i + 1; j < 3; j++) {
      const bundle = sp.PrekeyBundle.fromBytes(accounts[j].bundle(policy).toBytes());
      const s = sp.Session.initiate(accounts[i], bundle, policy, T0);
      const out = rooms[i].addMember(s, T0);
      bytesEq(out.recipient, ids[j], "sender key goes to the new member");
      const got = rooms[j].accept(accounts[j], policy, out.envelope, T0);
      eq(got.incoming.kind, "key_update", "first room envelope is a key update");
      bytesEq(got.incoming.from, ids[i], "key update sender");
      const back = rooms[i].receive(ids[j], got.outgoing.envelope, T0);
      eq(back.kind, "key_update", "answer is a key update");
      bytesEq(back.from, ids[j], "answer sender");
      throwsCode(sp, () => s.encrypt(enc("x"), T0), "invalid_argument", "a session moved into a room");
    }
  }
  return { accounts, rooms, ids };
}

export const flows = [
  {
    // --- snippet: README "In the browser" (keep in sync) ---
    name: "readme snippet",
    run(sealpost) {
      const policy = sealpost.defaultPolicy();
      const alice = new sealpost.Account();
      const bob = new sealpost.Account();
      const bundle = sealpost.PrekeyBundle.fromBytes(bob.bundle(policy).toBytes());
      const session = sealpost.Session.initiate(alice, bundle, policy);
      const envelope = session.encrypt(new TextEncoder().encode("hi Bob"));
      const { session: reply, plaintext } = bob.accept(policy, envelope);
      text(plaintext, "hi Bob", "readme: first message");
      text(session.decrypt(reply.encrypt(enc("hi Alice"))), "hi Alice", "readme: reply");
    },
    // --- end snippet ---
  },
  {
    name: "two parties converse both ways",
    run(sp) {
      const { alice, bob, a, b } = start(sp);
      eq(a.id(), b.id(), "same session id");
      eq(a.id().length, 43, "session id is base64url of 32 bytes");
      bytesEq(a.peerIdentity(), bob.identity(), "Alice's peer");
      bytesEq(b.peerIdentity(), alice.identity(), "Bob's peer");
      eq(alice.identity().length, 128, "identity length");
      ok(a.safetyNumber().matches(b.safetyNumber()), "safety numbers match");
      eq(a.safetyNumber().digits(), new sp.SafetyNumber(bob.identity(), alice.identity()).digits(), "safety number");
      ok(/^\d{60}$/.test(a.safetyNumber().digits()), "60 digits");
      ok(a.isAwaitingReply(), "awaiting reply");
      for (let i = 0; i < 5; i++) {
        const r = b.encrypt(enc(`reply ${i}`), T0 + i);
        eq(sp.envelopeKind(r), sp.EnvelopeKind.Ratchet, "reply kind");
        text(a.decrypt(r, T0 + i), `reply ${i}`, "reply");
        text(b.decrypt(a.encrypt(enc(`msg ${i}`), T0 + i), T0 + i), `msg ${i}`, "message");
      }
      ok(!a.isAwaitingReply(), "no longer awaiting");
      eq(bob.oneTimePrekeyCount(), 0, "one-time prekey used up");
    },
  },
  {
    name: "out of order delivery",
    run(sp) {
      const { a, b } = start(sp);
      b.decrypt(a.encrypt(enc("warm up"), T0), T0);
      const envelopes = [0, 1, 2, 3, 4, 5].map((i) => a.encrypt(enc(`m${i}`), T0 + 1));
      for (const i of [3, 0, 5, 1, 4, 2]) text(b.decrypt(envelopes[i], T0 + 2), `m${i}`, `m${i}`);
    },
  },
  {
    name: "tampered envelope fails authentication and a replay is refused",
    run(sp) {
      const { a, b } = start(sp);
      text(a.decrypt(b.encrypt(enc("answer"), T0), T0), "answer", "answer");
      const m = a.encrypt(enc("authentic"), T0 + 1);
      const tampered = m.slice();
      tampered[tampered.length - 1] ^= 1;
      throwsCode(sp, () => b.decrypt(tampered, T0 + 1), "authentication_failed", "tampered");
      text(b.decrypt(m, T0 + 1), "authentic", "the real one still opens");
      const e = throwsCode(sp, () => b.decrypt(m, T0 + 1), "replay", "replay");
      ok(e.message.length > 0 && e.stack !== undefined, "a real Error with message and stack");
      throwsCode(sp, () => b.decrypt(new Uint8Array(0), T0 + 1), "malformed", "empty");
    },
  },
  {
    name: "pickles round trip with a passphrase and with a key",
    run(sp) {
      const { alice, bob, a, b } = start(sp);
      const byKey = sp.PickleKey.fromKey(crypto.getRandomValues(new Uint8Array(32)));
      const byPhrase = sp.PickleKey.fromPassphrase("correct horse battery staple");
      for (const key of [byKey, byPhrase]) {
        const restored = sp.Account.fromPickle(alice.pickle(key, enc("alice")), key, enc("alice"));
        bytesEq(restored.identity(), alice.identity(), "restored account");
      }
      const ad = new Uint8Array([...enc("session with "), ...bob.identity()]);
      const restored = sp.Session.fromPickle(b.pickle(byPhrase, ad), byPhrase, ad);
      eq(restored.id(), b.id(), "restored session id");
      text(restored.decrypt(a.encrypt(enc("after restore"), T0 + 1), T0 + 1), "after restore", "after restore");
      const pickle = alice.pickle(byPhrase, enc("alice"));
      throwsCode(sp, () => sp.Account.fromPickle(pickle, sp.PickleKey.fromPassphrase("wrong"), enc("alice")),
        "authentication_failed", "wrong passphrase");
      const other = sp.PickleKey.fromKey(crypto.getRandomValues(new Uint8Array(32)));
      throwsCode(sp, () => sp.Account.fromPickle(alice.pickle(byKey, enc("")), other, enc("")),
        "authentication_failed", "wrong key");
      throwsCode(sp, () => sp.Account.fromPickle(pickle, byPhrase, enc("bob")), "authentication_failed", "other AD");
      throwsCode(sp, () => sp.PickleKey.fromKey(enc("short")), "invalid_argument", "short key");
    },
  },
  {
    name: "a group of three broadcasts and directs and a removed member cannot read",
    run(sp) {
      const { accounts, rooms, ids } = roomOfThree(sp);
      const members = rooms[0].members().map((m) => m.join());
      eq(members.length, 2, "two members");
      ok(members.includes(ids[1].join()) && members.includes(ids[2].join()), "members are Bob and Carol");
      const b = rooms[0].broadcast(enc("hi all"));
      eq(b.recipient, undefined, "broadcast has no recipient");
      eq(sp.envelopeKind(b.envelope), sp.EnvelopeKind.Group, "group kind");
      for (const r of [1, 2]) {
        const got = rooms[r].receive(ids[0], b.envelope, T0);
        eq(got.kind, "broadcast", "broadcast kind");
        bytesEq(got.from, ids[0], "broadcast sender");
        text(got.text, "hi all", "broadcast text");
      }
      const d = rooms[0].direct(ids[1], enc("@bob psst"), T0);
      bytesEq(d.recipient, ids[1], "direct recipient");
      throwsCode(sp, () => rooms[2].receive(ids[0], d.envelope, T0), "authentication_failed", "Carol reads Bob's");
      const got = rooms[1].receive(ids[0], d.envelope, T0);
      eq(got.kind, "direct", "direct kind");
      text(got.text, "@bob psst", "direct text");
      const outsA = rooms[0].removeMember(accounts[0], ids[2], T0);
      const outsB = rooms[1].removeMember(accounts[1], ids[2], T0);
      eq(outsA.length, 1, "one re-key envelope");
      bytesEq(outsA[0].recipient, ids[1], "re-key goes to Bob");
      eq(rooms[1].receive(ids[0], outsA[0].envelope, T0).kind, "key_update", "Bob gets Alice's new key");
      eq(rooms[0].receive(ids[1], outsB[0].envelope, T0).kind, "key_update", "Alice gets Bob's new key");
      const after = rooms[0].broadcast(enc("just us"));
      text(rooms[1].receive(ids[0], after.envelope, T0).text, "just us", "after removal");
      throwsCode(sp, () => rooms[2].receive(ids[0], after.envelope, T0), "unknown_sender", "Carol after removal");
    },
  },
  {
    name: "rooms and healers survive pickling",
    run(sp) {
      const { accounts, rooms, ids } = roomOfThree(sp);
      const key = sp.PickleKey.fromPassphrase("room passphrase");
      const late = rooms[0].broadcast(enc("in flight"));
      const pickle = rooms[1].pickle(key, enc("lobby"));
      throwsCode(sp, () => sp.Room.fromPickle(pickle, key, enc("other"), accounts[1]), "authentication_failed", "other AD");
      throwsCode(sp, () => sp.Room.fromPickle(pickle, key, enc("lobby"), accounts[2]), "invalid_key", "other account");
      const bob = sp.Room.fromPickle(pickle, key, enc("lobby"), accounts[1]);
      const members = bob.members().map((m) => m.join());
      ok(members.length === 2 && members.includes(ids[0].join()) && members.includes(ids[2].join()), "members kept");
      text(bob.receive(ids[0], late.envelope, T0).text, "in flight", "a message sent before the pickle");
      throwsCode(sp, () => bob.broadcast(enc("too soon")), "redistribution_required", "broadcast before redistribute");
      const outs = bob.redistribute(T0);
      eq(outs.length, 2, "a new sender key for each member");
      eq(bob.redistribute(T0).length, 0, "nothing due the second time");
      for (const out of outs) {
        const r = out.recipient.join() === ids[0].join() ? 0 : 2;
        eq(rooms[r].receive(ids[1], out.envelope, T0).kind, "key_update", "members learn the new key");
      }
      const back = bob.broadcast(enc("back"));
      for (const r of [0, 2]) text(rooms[r].receive(ids[1], back.envelope, T0).text, "back", "broadcast after restore");

      const { alice, bob: bobAccount, a, b } = start(sp);
      const request = new sp.Healer().onDecryptFailure(alice, bobAccount.identity(), a.id(), "authentication_failed", T0);
      const healer = new sp.Healer();
      ok(healer.accept(request, bobAccount, alice.identity(), b.id(), T0 + 1).renew, "first acceptance renews");
      const saved = healer.pickle(key, enc("healer"));
      throwsCode(sp, () => sp.Healer.fromPickle(saved, key, enc("other")), "authentication_failed", "healer other AD");
      throwsCode(sp, () => sp.Healer.fromPickle(saved, key, enc("healer")).accept(request, bobAccount, alice.identity(),
        b.id(), T0 + 2), "replay", "a restored healer still refuses the replayed request");
    },
  },
  {
    name: "a session reset heals a rolled-back session",
    run(sp) {
      let { policy, alice, bob, a, b } = start(sp);
      const key = sp.PickleKey.fromKey(Uint8Array.from({ length: 32 }, (_, i) => i));
      a.decrypt(b.encrypt(enc("before the backup"), T0 + 1), T0 + 1);
      const backup = b.pickle(key, enc("bob-alice"));
      b.decrypt(a.encrypt(enc("turn"), T0 + 2), T0 + 2);
      a.decrypt(b.encrypt(enc("new epoch, then lost"), T0 + 3), T0 + 3);
      b = sp.Session.fromPickle(backup, key, enc("bob-alice"));
      const stale = b.encrypt(enc("from the restored device"), T0 + 4);
      let failure;
      try {
        a.decrypt(stale, T0 + 4);
      } catch (e) {
        failure = e;
      }
      ok(failure instanceof sp.SealpostError, "the stale message fails");
      ok(sp.suggestsDivergence(failure.code), `${failure.code} suggests divergence`);
      const aliceHealer = new sp.Healer();
      const bobHealer = new sp.Healer();
      const request = aliceHealer.onDecryptFailure(alice, bob.identity(), a.id(), failure.code, T0 + 4);
      ok(request instanceof Uint8Array && sp.isSessionReset(request), "a reset request");
      eq(aliceHealer.onDecryptFailure(alice, bob.identity(), a.id(), failure.code, T0 + 5), undefined, "rate limited");
      eq(new sp.Healer().onDecryptFailure(alice, bob.identity(), undefined, "replay", T0), undefined, "benign");
      throwsCode(sp, () => new sp.Healer().accept(request, new sp.Account(T0), alice.identity(), undefined, T0 + 5),
        "misdirected", "someone else");
      const outcome = bobHealer.accept(request, bob, alice.identity(), b.id(), T0 + 5);
      bytesEq(outcome.peer, alice.identity(), "outcome peer");
      ok(outcome.renew && !outcome.crossed, "Bob renews");
      throwsCode(sp, () => bobHealer.accept(request, bob, alice.identity(), b.id(), T0 + 6), "replay", "request replay");
      const b2 = sp.Session.initiate(bob, sp.PrekeyBundle.fromBytes(alice.bundle(policy).toBytes()), policy, T0 + 5);
      const a2 = alice.accept(policy, b2.encrypt(enc("fresh session"), T0 + 6), T0 + 6);
      text(a2.plaintext, "fresh session", "fresh session");
      text(b2.decrypt(a2.session.encrypt(enc("welcome back"), T0 + 7), T0 + 7), "welcome back", "welcome back");
      ok(a2.session.id() !== a.id(), "a new session id");
    },
  },
  {
    name: "relay requests are signed and relay replies parse",
    run(sp) {
      const alice = new sp.Account(T0);
      const signer = alice.relaySigner();
      eq(signer.account().length, 43, "account id is base64url of 32 bytes");
      eq(signer.account(), b64url(alice.identity().slice(0, 32)), "account id is the identity's signing key");
      const zero = "A".repeat(43);
      const req = sp.RelayRequest.deposit([zero], enc("sealed"));
      eq(req.method(), "POST", "method");
      eq(req.pathAndQuery(), "/v1/messages", "path");
      eq(req.contentType(), "application/json", "content type");
      const body = JSON.parse(dec(req.body()));
      eq(JSON.stringify(body), JSON.stringify({ recipients: [zero], envelope: "c2VhbGVk" }), "body");
      const auth = req.authorize(signer, T0, new Uint8Array(16));
      const m = /^Sealpost key=([A-Za-z0-9_-]{43}),ts=(\d+),nonce=[A-Za-z0-9_-]{22},sig=[A-Za-z0-9_-]{86}$/.exec(auth);
      ok(m && m[1] === signer.account() && m[2] === String(T0), `authorization ${auth}`);
      eq(req.authorize(signer, T0, new Uint8Array(16)), auth, "same nonce, same value");
      ok(req.authorize(signer, T0) !== auth, "a fresh nonce");
      const pull = sp.RelayRequest.pull(5, 10);
      eq(pull.pathAndQuery(), "/v1/messages?after=5&limit=10", "pull path");
      eq(pull.contentType(), undefined, "GET has no content type");
      eq(pull.body().length, 0, "GET has no body");
      eq(sp.RelayRequest.lookupHandle("+4915112345678").pathAndQuery(), "/v1/handles/%2B4915112345678", "handle path");
      const ws = sp.RelayRequest.websocket().authorize(signer, T0);
      ok(sp.wsAuthQuery(ws).startsWith("/v1/ws?auth=Sealpost%20key%3D"), "ws query");
      throwsCode(sp, () => sp.RelayRequest.fetchBundle("short"), "invalid_argument", "short account", sp.RelayError);
      throwsCode(sp, () => req.authorize(signer, T0, enc("too short")), "invalid_argument", "short nonce", sp.RelayError);
      throwsCode(sp, () => sp.RelayRequest.uploadPrekeys([enc("no prekey")]), "invalid_argument", "bad prekey",
        sp.RelayError);
      const prekeys = alice.generateOneTimePrekeys(2);
      eq(JSON.parse(dec(sp.RelayRequest.uploadPrekeys(prekeys).body())).prekeys.length, 2, "two prekeys uploaded");

      // Replies, as the relay writes them.
      eq(sp.parseDeposit(201, undefined, enc('{"ids":[41,42]}')).join(), "41,42", "deposit ids");
      eq(sp.parseAck(200, undefined, enc('{"deleted":2}')), 2, "acked");
      eq(sp.parseUploadPrekeys(200, undefined, enc('{"one_time_prekeys":7}')), 7, "prekeys stored");
      const page = sp.parsePull(200, undefined,
        enc(`{"messages":[{"id":3,"sender":"${zero}","envelope":"aGk","received_at":9}],"next_after":3}`));
      eq(page.nextAfter, 3, "next after");
      eq(page.messages[0].id, 3, "message id");
      eq(page.messages[0].sender, zero, "sender");
      text(page.messages[0].envelope, "hi", "envelope");
      eq(page.messages[0].receivedAt, 9, "received at");
      const bob = new sp.Account(T0);
      const bobId = bob.relaySigner().account();
      const reply = enc(JSON.stringify({ bundle: b64url(bob.bundle(undefined).toBytes()), one_time_prekeys_left: 4 }));
      const fetched = sp.parseFetchBundle(bobId, 200, undefined, reply);
      bytesEq(fetched.bundle.identity(), bob.identity(), "fetched bundle");
      eq(fetched.oneTimePrekeysLeft, 4, "prekeys left");
      throwsCode(sp, () => sp.parseFetchBundle(signer.account(), 200, undefined, reply), "wrong_account",
        "another account's bundle", sp.RelayError);
      const opened = sp.parseOpenSession(201, undefined,
        enc(`{"id":"${b64url(new Uint8Array(16))}","key":"${b64url(new Uint8Array(32).fill(7))}","expires_in":600}`));
      eq(opened.expiresIn, 600, "session lifetime");
      const s1 = req.authorizeSession(opened.session);
      ok(s1.startsWith("SealpostSession ") && s1 !== req.authorizeSession(opened.session), "sequence numbers advance");
      const refused = throwsCode(sp,
        () => sp.parseDeposit(429, "30", enc('{"error":{"code":"rate_limited","message":"slow down"}}')),
        "rate_limited", "a refusal", sp.RelayError);
      eq(refused.kind, "refused", "refusal kind");
      eq(refused.status, 429, "refusal status");
      eq(refused.retryAfter, 30, "retry after");
      const unknown = throwsCode(sp, () => sp.parseAck(418, undefined, enc('{"error":{"code":"teapot","message":"x"}}')),
        "unknown_error_code", "an unknown code", sp.RelayError);
      eq(unknown.status, 418, "unknown code status");
      const frame = sp.parsePushFrame(`{"type":"message","id":8,"sender":"${zero}","envelope":"aGk","received_at":1}`);
      eq(frame.kind, "message", "push message");
      eq(frame.message.id, 8, "push id");
      eq(sp.parsePushFrame('{"type":"acked","deleted":1}').deleted, 1, "push acked");
      const err = sp.parsePushFrame('{"type":"error","code":"bad_json","message":"no"}');
      eq(err.kind + err.code, "errorbad_json", "push error");
      eq(sp.ackFrame([8, 9]), '{"type":"ack","ids":[8,9]}', "ack frame");
      throwsCode(sp, () => sp.ackFrame([1.5]), "invalid_argument", "fractional id", sp.RelayError);
    },
  },
  {
    name: "every core error kind has its own code, the same as the other bindings",
    run(sp) {
      const codes = sp.errorCodes();
      eq(codes.length, 25, "23 core kinds and the bindings' 2");
      eq(new Set(codes).size, codes.length, "codes are distinct");
      for (const c of codes) ok(/^[a-z]+(_[a-z]+)*$/.test(c), `snake_case ${c}`);
      eq(codes.slice(-2).join(), "invalid_argument,internal", "the bindings' own codes come last");
      for (const c of ["malformed", "authentication_failed", "replay", "misdirected", "unknown_sender", "rng"]) {
        ok(codes.includes(c), `${c} is a code`);
      }
      // Each core code is accepted where a code is expected; other strings are not.
      for (const c of codes) eq(typeof sp.suggestsDivergence(c), "boolean", c);
      ok(sp.suggestsDivergence("authentication_failed") && !sp.suggestsDivergence("replay"), "divergence");
      throwsCode(sp, () => sp.suggestsDivergence("Replay"), "invalid_argument", "not a code");
      // The errors thrown by real failures carry codes from the list.
      const { a, b } = start(sp);
      const seen = new Set();
      for (const f of [
        () => b.decrypt(new Uint8Array(0), T0),
        () => b.decrypt(new Uint8Array(3), T0),
        () => sp.PrekeyBundle.fromBytes(new Uint8Array(300)),
        () => a.encrypt(enc("x"), NaN),
        () => a.encrypt(enc("x"), T0 + 10 * 365 * 86400),
        () => sp.Session.initiate(new sp.Account(T0), new sp.Account(T0).bundle(undefined), { suites: [] }, T0),
        () => new sp.Account(T0).bundle({ suites: [9] }),
      ]) {
        try {
          f();
          fail("did not throw");
        } catch (e) {
          ok(e instanceof sp.SealpostError, `${e.name}: ${e.message}`);
          ok(codes.includes(e.code), e.code);
          seen.add(e.code);
        }
      }
      for (const c of ["malformed", "unsupported_version", "invalid_argument", "session_expired", "no_common_suite",
        "unsupported_suite"]) {
        ok(seen.has(c), `${c} was thrown (saw ${[...seen]})`);
      }
    },
  },
  {
    name: "garbage into every parsing entry point gives typed errors, never a trap",
    run(sp) {
      const { policy, alice, bob, a, b } = start(sp);
      const key = sp.PickleKey.fromKey(new Uint8Array(32));
      const room = new sp.Room(enc("r"), bob, policy);
      const healer = new sp.Healer();
      const ratchet = b.encrypt(enc("valid"), T0);
      const prekeyMsg = sp.Session.initiate(alice, bob.bundle(policy), policy, T0).encrypt(enc("p"), T0);
      const group = new sp.Room(enc("g"), alice, policy).broadcast(enc("g"));
      const request = new sp.Healer().onDecryptFailure(alice, bob.identity(), a.id(), "authentication_failed", T0);
      const valid = {
        bundle: bob.bundle(policy).toBytes(),
        otk: bob.generateOneTimePrekeys(1)[0],
        accountPickle: alice.pickle(key, enc("")),
        sessionPickle: a.pickle(key, enc("")),
        identity: alice.identity(),
        ratchet,
        prekeyMsg,
        group: group.envelope,
        request,
      };
      const entry = {
        bundle: (x) => sp.PrekeyBundle.fromBytes(x),
        otk: (x) => bob.bundle(policy).withOneTimePrekey(x),
        accountPickle: (x) => sp.Account.fromPickle(x, key, enc("")),
        sessionPickle: (x) => sp.Session.fromPickle(x, key, enc("")),
        identity: (x) => new sp.SafetyNumber(x, alice.identity()),
        ratchet: (x) => a.decrypt(x, T0),
        prekeyMsg: (x) => bob.accept(policy, x, T0),
        group: (x) => room.receive(alice.identity(), x, T0),
        request: (x) => healer.accept(x, bob, alice.identity(), b.id(), T0),
      };
      const extra = [
        (x) => sp.envelopeKind(x),
        (x) => sp.isSessionReset(x),
        (x) => room.accept(bob, policy, x, T0),
        (x) => room.removeMember(bob, x, T0),
        (x) => room.direct(x, enc("t"), T0),
        (x) => sp.Session.initiate(alice, sp.PrekeyBundle.fromBytes(x), policy, T0),
        (x) => sp.RelayRequest.uploadPrekeys([x]),
        (x) => sp.PickleKey.fromKey(x),
      ];
      let calls = 0;
      let seed = 1;
      for (const [name, v] of Object.entries(valid)) {
        ok(v instanceof Uint8Array && v.length > 0, `valid ${name}`);
        for (const x of mutations(v, seed++)) {
          typedOrValue(sp, () => entry[name](x), `${name} (${x.length} bytes)`);
          for (const f of extra) typedOrValue(sp, () => f(x), `extra on ${name}`);
          calls += 1 + extra.length;
        }
      }
      // Relay replies: garbage bodies under every status, garbage frames.
      const parsers = [sp.parsePublishBundle, sp.parseUploadPrekeys, sp.parseOpenSession, sp.parseDeposit,
        sp.parsePull, sp.parseAck, sp.parseClaimHandle, sp.parseVerifyHandle, sp.parseLookupHandle,
        (s, r, x) => sp.parseFetchBundle("A".repeat(43), s, r, x)];
      const bodies = [
        ...mutations(enc('{"ids":[1],"deleted":1,"one_time_prekeys":1,"next_after":1,"messages":[]}'), 99),
        enc('{"error":{"code":"rate_limited","message":"x"}}'), enc("{}"), enc("null"), enc('{"ids":[1e300]}'),
        enc(`{"ids":[${2 ** 60}]}`), enc('{"messages":[{"id":1,"sender":"x","envelope":"!","received_at":-1}]}'),
        enc('{"bundle":"AAAA","one_time_prekeys_left":1}'), enc('{"id":"","key":"","expires_in":1}'),
      ];
      for (const p of parsers) {
        for (const status of [0, 200, 201, 204, 400, 401, 429, 500, 65535]) {
          for (const body of bodies) {
            for (const retry of [undefined, "x", "-1", "99999999999999999999"]) {
              typedOrValue(sp, () => p(status, retry, body), `parser status ${status}`);
              calls++;
            }
          }
        }
      }
      for (const t of ["", "{", "[]", '{"type":"message"}', '{"type":"error","code":"nope","message":""}',
        '{"type":"acked","deleted":-1}', "\u0000\uffff", "x".repeat(5000)]) {
        typedOrValue(sp, () => sp.parsePushFrame(t), `frame ${t.slice(0, 20)}`);
        calls++;
      }
      // Arguments of the wrong shape.
      const args = [
        () => new sp.Account(-1), () => new sp.Account(NaN), () => new sp.Account(Infinity),
        () => new sp.Account(2 ** 60), () => new sp.Healer(-5), () => new sp.Healer(0.5),
        () => alice.bundle({ suites: "all" }), () => alice.bundle({ suites: [1.5] }),
        () => alice.bundle({ minVersion: 300 }), () => alice.bundle({ padding: { kind: "block" } }),
        () => alice.bundle({ padding: { kind: "block", size: 70000 } }), () => alice.bundle({ padding: "padme" }),
        () => alice.bundle({ maxMessagesPerChain: -1 }), () => alice.bundle(42), () => alice.bundle("policy"),
        () => sp.Session.initiate(alice, bob.bundle(policy), { suites: [4] }, T0),
        () => healer.accept(request, bob, alice.identity(), "not an id", T0),
        () => healer.onDecryptFailure(alice, bob.identity(), undefined, "no such code", T0),
        () => sp.RelayRequest.deposit("x", enc("e")), () => sp.RelayRequest.deposit([1], enc("e")),
        () => sp.RelayRequest.deposit(["A".repeat(44)], enc("e")), () => sp.RelayRequest.ack([NaN]),
        () => sp.RelayRequest.ack("1"), () => sp.RelayRequest.ack([2 ** 60]), () => sp.RelayRequest.pull(0.5, 1),
        () => sp.RelayRequest.uploadPrekeys("x"), () => sp.RelayRequest.uploadPrekeys(["x"]),
        () => sp.parseFetchBundle("", 200, undefined, enc("{}")), () => sp.ackFrame("x"),
      ];
      for (const f of args) {
        const code = typedOrValue(sp, f, String(f));
        ok(code !== "ok", `${f} was refused`);
        calls++;
      }
      ok(calls > 2000, `${calls} calls`);
      // The objects still work after all of that.
      text(b.decrypt(a.encrypt(enc("still fine"), T0), T0), "still fine", "still fine");
    },
  },
];

/** Runs every flow; returns one result per flow (never throws). */
export async function runAll(sealpost) {
  const results = [];
  for (const flow of flows) {
    try {
      await flow.run(sealpost);
      results.push({ name: flow.name, ok: true });
    } catch (e) {
      results.push({ name: flow.name, ok: false, error: `${e && e.name}: ${e && e.message}\n${e && e.stack}` });
    }
  }
  return results;
}
