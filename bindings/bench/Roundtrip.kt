// The Kotlin side of the binding benchmark (bindings/bench/run.sh): 1 KiB
// encrypt + decrypt round trips on an established session through the
// generated Kotlin and JNA, and the cheapest exported call
// (`isSessionReset` on an empty buffer), timed like the Rust and Python
// programs next to it (median of 7 rounds, after a JIT warm-up).
// Prints one JSON object.
package sealpost.bench

import sealpost.Account
import sealpost.PrekeyBundle
import sealpost.Session
import sealpost.defaultPolicy
import sealpost.isSessionReset

private const val T0: ULong = 1_700_000_000uL
private const val ROUNDS = 7

/** Nanoseconds per call of `f`: the median of [ROUNDS] rounds of `n` calls. */
private fun perCall(n: Int, f: () -> Unit): Double {
    repeat(maxOf(n / 2, 1000)) { f() }
    val rounds = (0 until ROUNDS).map {
        val start = System.nanoTime()
        repeat(n) { f() }
        (System.nanoTime() - start).toDouble() / n
    }.sorted()
    return rounds[ROUNDS / 2]
}

fun main(args: Array<String>) {
    val n = args.firstOrNull()?.toInt() ?: 20_000
    val message = ByteArray(1024) { 0x5a }
    val policy = defaultPolicy()
    val alice = Account(T0)
    val bob = Account(T0)
    val a = Session.initiate(alice, PrekeyBundle.fromBytes(bob.bundle(policy).toBytes()), policy, T0)
    val b = bob.accept(policy, a.encrypt("hi".toByteArray(), T0), T0).session
    a.decrypt(b.encrypt("back".toByteArray(), T0), T0)
    val rt = perCall(n) {
        check(b.decrypt(a.encrypt(message, T0), T0).contentEquals(message)) { "round trip changed the message" }
    }
    val empty = ByteArray(0)
    var sink = false
    val call = perCall(n * 50) { sink = sink xor isSessionReset(empty) }
    check(!sink)
    println("{\"language\": \"kotlin\", \"round_trip_ns\": ${"%.0f".format(rt)}, \"call_ns\": ${"%.1f".format(call)}}")
}
