// Compiled by tsc --strict --noEmit against the installed package: the
// types describe the API well enough for a typed app (a wrong type here
// would fail the build).
import { init, Account, PrekeyBundle, Session, Room, Healer, SealpostError, RelayError, RelayRequest,
  defaultPolicy, parsePull, type SessionPolicy, type Incoming, type ErrorCode, type MessagePage } from "sealpost";

export async function demo(): Promise<string> {
  await init();
  const policy: SessionPolicy = { ...defaultPolicy(), padding: { kind: "block", size: 64 } };
  const alice = new Account();
  const bob = new Account(Date.now() / 1000);
  const bundle: PrekeyBundle = PrekeyBundle.fromBytes(bob.bundle(policy).toBytes());
  const session: Session = Session.initiate(alice, bundle, policy);
  const envelope: Uint8Array = session.encrypt(new TextEncoder().encode("hi"));
  const accepted = bob.accept(policy, envelope);
  const reply: Session = accepted.session;
  const room = new Room(new Uint8Array([1]), alice, policy);
  const got: Incoming = room.receive(bob.identity(), envelope);
  const from: Uint8Array = got.from;
  const healer = new Healer(60);
  const request: Uint8Array | undefined = healer.onDecryptFailure(alice, bob.identity(), reply.id(), "replay");
  const req = RelayRequest.pull(0, 50);
  const auth: string = req.authorize(alice.relaySigner());
  const page: MessagePage = parsePull(200, undefined, new Uint8Array());
  try {
    session.decrypt(new Uint8Array());
  } catch (e) {
    if (e instanceof SealpostError) {
      const code: ErrorCode = e.code;
      return code;
    }
    if (e instanceof RelayError) return `${e.kind} ${e.code} ${e.status ?? 0}`;
  }
  return `${from.length} ${request?.length ?? 0} ${auth} ${page.nextAfter}`;
}
