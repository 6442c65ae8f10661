import type { ErrorCode } from "./sealpost_wasm.js";

/**
 * What every protocol call throws. `code` is stable and the same in every
 * Sealpost binding (Kotlin, Swift, Python, JavaScript); the message is for
 * logs and may change.
 */
export class SealpostError extends Error {
  /** The stable code, one of {@link errorCodes}. */
  readonly code: ErrorCode;
  /** Always `"SealpostError"`. */
  readonly name: "SealpostError";
}

/**
 * What the relay client functions (`RelayRequest`, `parse*`, `ackFrame`)
 * throw: a refusal by the relay, or an answer that does not parse or
 * verify, or an unusable argument.
 */
export class RelayError extends Error {
  /**
   * `"refused"` (the relay said no), `"unknown_error_code"` (a newer
   * relay), `"unexpected_status"` (not a Sealpost answer), `"malformed"`,
   * `"core"` (a key or bundle in the answer does not verify),
   * `"wrong_account"` or `"invalid_argument"`.
   */
  readonly kind:
    | "refused"
    | "unknown_error_code"
    | "unexpected_status"
    | "malformed"
    | "core"
    | "wrong_account"
    | "invalid_argument";
  /**
   * What to match on: the relay's machine code for a refusal (docs/RELAY.md,
   * for example `"rate_limited"`), the core's {@link ErrorCode} for
   * `"core"`, otherwise the kind itself.
   */
  readonly code: string;
  /** The HTTP status, when the relay answered with an error. */
  readonly status?: number;
  /** Seconds to wait before retrying (a 429 with `Retry-After`). */
  readonly retryAfter?: number;
  /** Always `"RelayError"`. */
  readonly name: "RelayError";
}
