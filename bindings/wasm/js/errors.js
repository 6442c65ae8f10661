// The error classes every Sealpost call throws. The WebAssembly glue
// imports the two factories below; the package exports the classes.

/**
 * A failed protocol call. `code` is stable (see `errorCodes()`), the same
 * in every Sealpost binding; the message is for logs and may change.
 */
export class SealpostError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "SealpostError";
    this.code = code;
  }
}

/**
 * A failed relay call: the relay refused (`kind` "refused", `code` the
 * relay's machine code, `status` its HTTP status, `retryAfter` seconds
 * for 429) or its answer does not parse or verify.
 */
export class RelayError extends Error {
  constructor(kind, code, message, status, retryAfter) {
    super(message);
    this.name = "RelayError";
    this.kind = kind;
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

export function sealpostError(code, message) {
  return new SealpostError(code, message);
}

export function relayError(kind, code, message, status, retryAfter) {
  return new RelayError(kind, code, message, status ?? undefined, retryAfter ?? undefined);
}
