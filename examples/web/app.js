// The Sealpost browser chat: one page, the npm package `sealpost`, and the
// relay that serves this page (or the one named by `?relay=`).
//
// Everything secret stays in this browser: the account and the room (the
// group session and a pairwise session per person) are kept in IndexedDB
// as pickles sealed under a key derived from the passphrase, written after
// every change and before the relay is told a message may be deleted, so a
// crash or a reload loses nothing. Plaintext is shown, never stored.
// Messages use the same room protocol as the terminal chat
// (examples/chat): "everyone" is one broadcast envelope sealed with the
// room's sender keys, a direct message uses the pairwise session.
import * as sp from "./sealpost/index.js";

const ROOM = new TextEncoder().encode("lobby");
/** A direct message announcing the sender's handle (the terminal chat's). */
const HELLO = "\u0001hello-from-handle ";
const AD_ACCOUNT = new TextEncoder().encode("sealpost-web account");
const AD_ROOM = new TextEncoder().encode("sealpost-web room");
const PREKEYS = 20;

const $ = (id) => document.getElementById(id);
const enc = (s) => new TextEncoder().encode(s);
const dec = (b) => new TextDecoder().decode(b);
const relay = new URL(new URLSearchParams(location.search).get("relay") ?? location.origin);

const state = {
  account: null,
  room: null,
  key: null,
  policy: null,
  /** Account id (base64url) → handle, for people whose handle the relay confirmed. */
  names: {},
  /** Handle → safety number digits first seen, to warn when it changes. */
  seen: {},
  /** Handles whose safety number changed since first seen. */
  changed: {},
  me: null,
  socket: null,
};

// ---- small helpers ----------------------------------------------------------

function b64url(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The relay account id of a 128-byte identity (its signing key). */
const accountOf = (identity) => b64url(identity.slice(0, 32));

function show(text, kind = "notice") {
  const li = document.createElement("li");
  li.className = kind;
  li.textContent = text;
  $("log").append(li);
  li.scrollIntoView({ block: "end" });
}

function status(text) {
  $("status").textContent = text;
}

function nameOf(identity) {
  const id = accountOf(identity);
  return state.names[id] ? `@${state.names[id]}` : `#${id.slice(0, 6)}`;
}

function grouped(digits) {
  return digits.match(/.{1,5}/g).join(" ");
}

/** One state change at a time: pushes, sends and additions all go through here. */
let queue = Promise.resolve();
function serially(task) {
  const run = queue.then(task);
  queue = run.catch((e) => show(`${e.code ?? "error"}: ${e.message}`, "error"));
  return run;
}

// ---- storage ----------------------------------------------------------------

function database() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("sealpost-web", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("state");
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

async function load() {
  const db = await database();
  return new Promise((resolve, reject) => {
    const get = db.transaction("state").objectStore("state").get("me");
    get.onsuccess = () => resolve(get.result);
    get.onerror = () => reject(get.error);
  });
}

/** Seals the account and the room and writes them, with the names, at once. */
async function save() {
  const record = {
    account: state.account.pickle(state.key, AD_ACCOUNT),
    room: state.room.pickle(state.key, AD_ROOM),
    names: state.names,
    seen: state.seen,
    me: state.me,
  };
  const db = await database();
  await new Promise((resolve, reject) => {
    const tx = db.transaction("state", "readwrite");
    tx.objectStore("state").put(record, "me");
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
}

// ---- the relay --------------------------------------------------------------

/** Sends a signed request and parses the answer with `parse`. */
async function call(request, parse, ...before) {
  const headers = { authorization: request.authorize(state.account.relaySigner()) };
  const type = request.contentType();
  if (type) headers["content-type"] = type;
  const init = { method: request.method(), headers };
  if (request.method() !== "GET") init.body = request.body();
  const response = await fetch(new URL(request.pathAndQuery(), relay), init);
  const body = new Uint8Array(await response.arrayBuffer());
  return parse(...before, response.status, response.headers.get("retry-after") ?? undefined, body);
}

async function send(outgoing) {
  const recipients = outgoing.recipient
    ? [accountOf(outgoing.recipient)]
    : state.room.members().map(accountOf);
  if (recipients.length > 0) await call(sp.RelayRequest.deposit(recipients, outgoing.envelope), sp.parseDeposit);
}

async function publish() {
  await call(sp.RelayRequest.publishBundle(state.account.bundle(state.policy)), sp.parsePublishBundle);
  const prekeys = state.account.generateOneTimePrekeys(PREKEYS);
  await call(sp.RelayRequest.uploadPrekeys(prekeys), sp.parseUploadPrekeys);
}

function connect() {
  const auth = sp.RelayRequest.websocket().authorize(state.account.relaySigner());
  const url = new URL(sp.wsAuthQuery(auth), relay);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  state.socket = socket;
  socket.onopen = () => status("connected");
  socket.onmessage = (event) => {
    let frame;
    try {
      frame = sp.parsePushFrame(event.data);
    } catch (e) {
      show(`the relay sent a frame this page does not understand (${e.code ?? e.message})`, "error");
      return;
    }
    if (frame.kind !== "message") return;
    const { id, sender, envelope } = frame.message;
    serially(async () => {
      try {
        await deliver(sender, envelope);
      } catch (e) {
        // A forgery, a replay or a message for a lost session: it will
        // never open, so it is shown as refused and acknowledged too.
        show(`a message from ${member(sender) ? nameOf(member(sender)) : "a stranger"} was refused (${e.code ?? e.message})`, "error");
      }
      await save();
      // Only once the new state is stored may the relay delete it.
      socket.send(sp.ackFrame([id]));
    });
  };
  socket.onclose = () => {
    status("reconnecting…");
    setTimeout(connect, 1000);
  };
}

// ---- people and messages ----------------------------------------------------

/** Records that the relay binds `handle` to `identity`, warning if it changed. */
function learn(handle, identity) {
  state.names[accountOf(identity)] = handle;
  const digits = new sp.SafetyNumber(state.account.identity(), identity).digits();
  if (state.seen[handle] && state.seen[handle] !== digits) {
    state.changed[handle] = true;
    show(`The safety number with @${handle} changed. Compare it again before you trust them.`, "error");
  }
  state.seen[handle] = digits;
  render();
}

function render() {
  const list = $("contacts");
  const to = $("to");
  const chosen = to.value;
  list.replaceChildren();
  to.replaceChildren(new Option("everyone", ""));
  for (const identity of state.room.members()) {
    const id = accountOf(identity);
    const handle = state.names[id];
    const digits = new sp.SafetyNumber(state.account.identity(), identity).digits();
    const li = document.createElement("li");
    li.dataset.handle = handle ?? "";
    if (handle && state.changed[handle]) li.classList.add("warning");
    const name = document.createElement("strong");
    name.textContent = nameOf(identity);
    const number = document.createElement("div");
    number.className = "digits";
    number.textContent = grouped(digits);
    li.append(name, number);
    list.append(li);
    to.append(new Option(nameOf(identity), id));
  }
  to.value = [...to.options].some((o) => o.value === chosen) ? chosen : "";
  $("me").textContent = state.me ? `@${state.me}` : "no handle yet";
}

function member(id) {
  return state.room.members().find((identity) => accountOf(identity) === id);
}

async function hello(identity) {
  if (state.me) await send(state.room.direct(identity, enc(HELLO + state.me)));
}

/** Opens one pushed envelope from account `sender`. */
async function deliver(sender, envelope) {
  const known = member(sender);
  let incoming;
  if (known) {
    try {
      incoming = state.room.receive(known, envelope);
    } catch (e) {
      // A new session from someone already here (they started again); a
      // replayed first message is refused, never accepted a second time.
      if (e.code === "replay" || sp.envelopeKind(envelope) !== sp.EnvelopeKind.Prekey) throw e;
      incoming = undefined;
    }
  }
  if (!incoming) {
    if (sp.envelopeKind(envelope) !== sp.EnvelopeKind.Prekey) {
      show("a message from a stranger was dropped", "error");
      return;
    }
    // The room learns who it is from the session, not from `sender`.
    const accepted = state.room.accept(state.account, state.policy, envelope);
    await send(accepted.outgoing);
    incoming = accepted.incoming;
    await hello(incoming.from);
    render();
  }
  if (incoming.kind === "broadcast") {
    show(`[${nameOf(incoming.from)}] ${dec(incoming.text)}`, "broadcast");
  } else if (incoming.kind === "direct") {
    const text = dec(incoming.text);
    if (text.startsWith(HELLO)) {
      const handle = text.slice(HELLO.length);
      // Believed only if the relay binds that handle to this identity.
      const found = await call(sp.RelayRequest.lookupHandle(handle), sp.parseLookupHandle).catch(() => undefined);
      if (found && accountOf(found.identity) === accountOf(incoming.from)
        && state.names[found.account] !== found.handle) {
        learn(found.handle, incoming.from);
        show(`@${found.handle} joined`);
      }
    } else {
      show(`[${nameOf(incoming.from)} → you] ${text}`, "direct");
    }
  }
}

async function add(handle) {
  const found = await call(sp.RelayRequest.lookupHandle(handle), sp.parseLookupHandle);
  if (member(found.account)) {
    show(`@${found.handle} is already here`);
    return;
  }
  const { bundle } = await call(sp.RelayRequest.fetchBundle(found.account), sp.parseFetchBundle, found.account);
  const session = sp.Session.initiate(state.account, bundle, state.policy);
  const outgoing = state.room.addMember(session);
  learn(found.handle, found.identity);
  await send(outgoing);
  await hello(found.identity);
  await save();
  show(`@${found.handle} joined`);
}

async function say(to, text) {
  if (to) {
    const identity = member(to);
    await send(state.room.direct(identity, enc(text)));
    show(`[you → ${nameOf(identity)}] ${text}`, "direct");
  } else {
    await send(state.room.broadcast(enc(text)));
    show(`[you] ${text}`, "broadcast");
  }
  await save();
}

// ---- start ------------------------------------------------------------------

async function unlock(passphrase, saved) {
  state.key = sp.PickleKey.fromPassphrase(passphrase);
  state.policy = sp.defaultPolicy();
  if (saved) {
    try {
      state.account = sp.Account.fromPickle(saved.account, state.key, AD_ACCOUNT);
    } catch (e) {
      if (e.code === "authentication_failed") throw new Error("wrong passphrase");
      throw e;
    }
    state.room = sp.Room.fromPickle(saved.room, state.key, AD_ROOM, state.account);
    Object.assign(state, { names: saved.names, seen: saved.seen, me: saved.me });
    // The restored room hands out a fresh sender key before it broadcasts.
    for (const outgoing of state.room.redistribute()) await send(outgoing);
    if (state.account.maintain()) {
      await call(sp.RelayRequest.publishBundle(state.account.bundle(state.policy)), sp.parsePublishBundle);
    }
  } else {
    state.account = new sp.Account();
    state.room = new sp.Room(ROOM, state.account, state.policy);
    await publish();
  }
  await save();
}

function wire() {
  $("claim-form").onsubmit = (e) => {
    e.preventDefault();
    const handle = $("handle").value.trim();
    serially(async () => {
      const claimed = await call(sp.RelayRequest.claimHandle(handle), sp.parseClaimHandle);
      show(`a code for ${claimed.handle} is on its way`);
    });
  };
  $("verify-form").onsubmit = (e) => {
    e.preventDefault();
    const handle = $("handle").value.trim();
    const code = $("code").value.trim();
    serially(async () => {
      const bound = await call(sp.RelayRequest.verifyHandle(handle, code), sp.parseVerifyHandle);
      state.me = bound.handle;
      await save();
      render();
      show(`you are @${bound.handle}`);
    });
  };
  $("add-form").onsubmit = (e) => {
    e.preventDefault();
    const handle = $("contact").value.trim();
    $("contact").value = "";
    serially(() => add(handle));
  };
  $("send-form").onsubmit = (e) => {
    e.preventDefault();
    const text = $("text").value;
    const to = $("to").value;
    $("text").value = "";
    serially(() => say(to, text));
  };
}

async function main() {
  await sp.init();
  const saved = await load();
  $("unlock").hidden = false;
  $("unlock-hint").textContent = saved
    ? "Enter your passphrase to continue your conversations."
    : "Choose a passphrase: it seals your keys in this browser. There is no way to recover it.";
  $("unlock-button").textContent = saved ? "Unlock" : "Create account";
  status(saved ? "locked" : "new");
  $("unlock-form").onsubmit = (e) => {
    e.preventDefault();
    status("unlocking…");
    unlock($("passphrase").value, saved).then(
      () => {
        $("unlock").hidden = true;
        $("chat").hidden = false;
        wire();
        render();
        connect();
      },
      (err) => status(err.message),
    );
  };
}

// One writer per browser profile: a second tab would restore the same
// pickles and both would advance the same ratchets. The lock is held for
// the page's lifetime; a tab that cannot get it stays read-only.
navigator.locks.request("sealpost-web", { ifAvailable: true }, (lock) => {
  if (!lock) {
    status("Sealpost is open in another tab of this browser; use that one.");
    return undefined;
  }
  main().catch((e) => status(`failed: ${e.message}`));
  return new Promise(() => {});
});
