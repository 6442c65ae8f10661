// The Kotlin binding on the JVM (JNA): the flows an app goes through.
// Every call gets the time explicitly so the tests do not depend on the
// clock; apps leave `now` out and the system clock is read.
package sealpost

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Assertions.assertThrows
import java.security.SecureRandom
import java.util.Collections
import kotlin.concurrent.thread

private const val T0: ULong = 1_700_000_000uL

private fun b(s: String) = s.toByteArray()

/** Runs `block` and returns what it threw, failing unless that is a `T`. */
private inline fun <reified T : Throwable> throws(noinline block: () -> Unit): T =
    assertThrows(T::class.java) { block() }

private class Started(val alice: Account, val bob: Account, val a: Session, val b: Session)

/** Bob publishes a bundle with a one-time prekey; Alice starts from the wire bytes; Bob accepts. */
private fun start(): Started {
    val policy = defaultPolicy()
    val alice = Account(T0)
    val bob = Account(T0)
    val otk = bob.generateOneTimePrekeys(1u).single()
    val bundle = PrekeyBundle.fromBytes(bob.bundle(policy).withOneTimePrekey(otk).toBytes())
    assertTrue(bundle.hasOneTimePrekey())
    val a = Session.initiate(alice, bundle, policy, T0)
    val first = a.encrypt(b("hello Bob"), T0)
    assertEquals(EnvelopeKind.PREKEY, envelopeKind(first))
    val accepted = bob.accept(policy, first, T0)
    assertArrayEquals(b("hello Bob"), accepted.plaintext)
    return Started(alice, bob, a, accepted.session)
}

/** Three people in a room, each pair with a pairwise session. */
private fun roomOfThree(): Triple<List<Account>, List<Room>, List<ByteArray>> {
    val policy = defaultPolicy()
    val accounts = List(3) { Account(T0) }
    val rooms = accounts.map { Room(b("lobby"), it, policy) }
    val ids = accounts.map { it.identity() }
    for (i in 0 until 3) {
        for (j in i + 1 until 3) {
            val bundle = PrekeyBundle.fromBytes(accounts[j].bundle(policy).toBytes())
            val out = rooms[i].addMember(Session.initiate(accounts[i], bundle, policy, T0), T0)
            assertArrayEquals(ids[j], out.recipient)
            val got = rooms[j].accept(accounts[j], policy, out.envelope, T0)
            assertArrayEquals(ids[i], (got.incoming as Incoming.KeyUpdate).from)
            val back = rooms[i].receive(ids[j], got.outgoing.envelope, T0) as Incoming.KeyUpdate
            assertArrayEquals(ids[j], back.from)
        }
    }
    return Triple(accounts, rooms, ids)
}

class SealpostTest {
    // --- snippet: README "Kotlin" (keep in sync) ---------------------------
    @Test
    fun readmeSnippet() {
        val policy = defaultPolicy()
        val alice = Account()
        val bob = Account()
        val bundle = PrekeyBundle.fromBytes(bob.bundle(policy).toBytes())
        val session = Session.initiate(alice, bundle, policy)
        val envelope = session.encrypt("hi Bob".toByteArray())
        val replySession = bob.accept(policy, envelope).session
        assertArrayEquals("second".toByteArray(), replySession.decrypt(session.encrypt("second".toByteArray())))
        assertArrayEquals("hi Alice".toByteArray(), session.decrypt(replySession.encrypt("hi Alice".toByteArray())))
    }
    // --- end snippet -------------------------------------------------------

    @Test
    fun twoPartiesConverseBothWays() {
        val s = start()
        assertArrayEquals(s.a.id(), s.b.id())
        assertArrayEquals(s.bob.identity(), s.a.peerIdentity())
        assertTrue(s.a.safetyNumber().matches(s.b.safetyNumber()))
        assertEquals(60, s.a.safetyNumber().digits().length)
        assertEquals(SafetyNumber(s.alice.identity(), s.bob.identity()).digits(), s.b.safetyNumber().digits())
        assertTrue(s.a.isAwaitingReply())
        for (i in 0 until 5) {
            val r = s.b.encrypt(b("reply $i"), T0 + i.toULong())
            assertEquals(EnvelopeKind.RATCHET, envelopeKind(r))
            assertArrayEquals(b("reply $i"), s.a.decrypt(r, T0 + i.toULong()))
            assertArrayEquals(b("msg $i"), s.b.decrypt(s.a.encrypt(b("msg $i"), T0), T0))
        }
        assertFalse(s.a.isAwaitingReply())
        assertEquals(0uL, s.bob.oneTimePrekeyCount())
    }

    @Test
    fun outOfOrderDelivery() {
        val s = start()
        s.b.decrypt(s.a.encrypt(b("warm up"), T0), T0)
        val envelopes = (0 until 6).map { s.a.encrypt(b("m$it"), T0 + 1u) }
        for (i in listOf(3, 0, 5, 1, 4, 2)) {
            assertArrayEquals(b("m$i"), s.b.decrypt(envelopes[i], T0 + 2u))
        }
    }

    @Test
    fun tamperedEnvelopeFailsAuthenticationAndReplayIsRefused() {
        val s = start()
        s.a.decrypt(s.b.encrypt(b("answer"), T0), T0)
        val m = s.a.encrypt(b("authentic"), T0 + 1u)
        val tampered = m.copyOf()
        tampered[tampered.size - 1] = (tampered[tampered.size - 1].toInt() xor 1).toByte()
        throws<SealpostException.AuthenticationFailed> { s.b.decrypt(tampered, T0 + 1u) }
        assertArrayEquals(b("authentic"), s.b.decrypt(m, T0 + 1u))
        throws<SealpostException.Replay> { s.b.decrypt(m, T0 + 1u) }
        throws<SealpostException.Malformed> { s.b.decrypt(ByteArray(0), T0 + 1u) }
    }

    @Test
    fun picklesRoundTripWithAPassphraseAndWithAKey() {
        val s = start()
        val raw = ByteArray(32).also { SecureRandom().nextBytes(it) }
        val byKey = PickleKey.fromKey(raw)
        val byPhrase = PickleKey.fromPassphrase("correct horse battery staple")
        for (key in listOf(byKey, byPhrase)) {
            val restored = Account.fromPickle(s.alice.pickle(key, b("alice")), key, b("alice"))
            assertArrayEquals(s.alice.identity(), restored.identity())
        }
        val ad = b("session with ") + s.bob.identity()
        val restored = Session.fromPickle(s.b.pickle(byPhrase, ad), byPhrase, ad)
        assertArrayEquals(b("after restore"), restored.decrypt(s.a.encrypt(b("after restore"), T0 + 1u), T0 + 1u))
        val pickle = s.alice.pickle(byPhrase, b("alice"))
        throws<SealpostException.AuthenticationFailed> {
            Account.fromPickle(pickle, PickleKey.fromPassphrase("wrong"), b("alice"))
        }
        throws<SealpostException.AuthenticationFailed> { Account.fromPickle(pickle, byPhrase, b("bob")) }
        throws<SealpostException.InvalidArgument> { PickleKey.fromKey(ByteArray(5)) }
    }

    @Test
    fun aGroupOfThreeBroadcastsAndDirectsAndARemovedMemberCannotRead() {
        val (accounts, rooms, ids) = roomOfThree()
        val all = rooms[0].broadcast(b("hi all"))
        assertNull(all.recipient)
        for (r in 1..2) {
            val got = rooms[r].receive(ids[0], all.envelope, T0) as Incoming.Broadcast
            assertArrayEquals(ids[0], got.from)
            assertArrayEquals(b("hi all"), got.text)
        }
        val d = rooms[0].direct(ids[1], b("@bob psst"), T0)
        throws<SealpostException.AuthenticationFailed> { rooms[2].receive(ids[0], d.envelope, T0) }
        assertArrayEquals(b("@bob psst"), (rooms[1].receive(ids[0], d.envelope, T0) as Incoming.Direct).text)
        val outsA = rooms[0].removeMember(accounts[0], ids[2], T0)
        val outsB = rooms[1].removeMember(accounts[1], ids[2], T0)
        assertEquals(1, outsA.size)
        assertTrue(rooms[1].receive(ids[0], outsA[0].envelope, T0) is Incoming.KeyUpdate)
        assertTrue(rooms[0].receive(ids[1], outsB[0].envelope, T0) is Incoming.KeyUpdate)
        val after = rooms[0].broadcast(b("just us"))
        assertArrayEquals(b("just us"), (rooms[1].receive(ids[0], after.envelope, T0) as Incoming.Broadcast).text)
        throws<SealpostException.UnknownSender> { rooms[2].receive(ids[0], after.envelope, T0) }
    }

    @Test
    fun roomsAndHealersSurvivePickling() {
        val (accounts, rooms, ids) = roomOfThree()
        val key = PickleKey.fromPassphrase("room passphrase")
        val late = rooms[0].broadcast(b("in flight"))
        val pickle = rooms[1].pickle(key, b("lobby"))
        throws<SealpostException.AuthenticationFailed> { Room.fromPickle(pickle, key, b("other"), accounts[1]) }
        throws<SealpostException.InvalidKey> { Room.fromPickle(pickle, key, b("lobby"), accounts[2]) }
        val bob = Room.fromPickle(pickle, key, b("lobby"), accounts[1])
        assertEquals(listOf(ids[0], ids[2]).map { it.toList() }, bob.members().map { it.toList() })
        assertArrayEquals(b("in flight"), (bob.receive(ids[0], late.envelope, T0) as Incoming.Broadcast).text)
        throws<SealpostException.RedistributionRequired> { bob.broadcast(b("too soon")) }
        val outs = bob.redistribute(T0)
        assertEquals(2, outs.size)
        assertTrue(bob.redistribute(T0).isEmpty())
        for ((out, r) in outs.zip(listOf(0, 2))) {
            assertArrayEquals(ids[r], out.recipient)
            assertArrayEquals(ids[1], (rooms[r].receive(ids[1], out.envelope, T0) as Incoming.KeyUpdate).from)
        }
        val back = bob.broadcast(b("back"))
        for (r in listOf(0, 2)) {
            assertArrayEquals(b("back"), (rooms[r].receive(ids[1], back.envelope, T0) as Incoming.Broadcast).text)
        }

        val s = start()
        val request = Healer().onDecryptFailure(s.alice, s.bob.identity(), s.a.id(), ErrorCode.AUTHENTICATION_FAILED, T0)!!
        val healer = Healer()
        assertTrue(healer.accept(request, s.bob, s.alice.identity(), s.b.id(), T0 + 1u).renew)
        val saved = healer.pickle(key, b("healer"))
        throws<SealpostException.AuthenticationFailed> { Healer.fromPickle(saved, key, b("other")) }
        val restored = Healer.fromPickle(saved, key, b("healer"))
        throws<SealpostException.Replay> { restored.accept(request, s.bob, s.alice.identity(), s.b.id(), T0 + 2u) }
    }

    @Test
    fun aSessionResetHealsARolledBackSession() {
        val s = start()
        val key = PickleKey.fromKey(ByteArray(32) { it.toByte() })
        var bSide = s.b
        s.a.decrypt(bSide.encrypt(b("before the backup"), T0 + 1u), T0 + 1u)
        val backup = bSide.pickle(key, b("bob-alice"))
        bSide.decrypt(s.a.encrypt(b("turn"), T0 + 2u), T0 + 2u)
        s.a.decrypt(bSide.encrypt(b("new epoch, then lost"), T0 + 3u), T0 + 3u)
        bSide = Session.fromPickle(backup, key, b("bob-alice"))
        val stale = bSide.encrypt(b("from the restored device"), T0 + 4u)
        val failure = throws<SealpostException> { s.a.decrypt(stale, T0 + 4u) }
        val code = ErrorCode.valueOf(failure.javaClass.simpleName.replace(Regex("(?<!^)(?=[A-Z])"), "_").uppercase())
        assertTrue(suggestsDivergence(code))
        val aliceHealer = Healer()
        val bobHealer = Healer()
        val request = aliceHealer.onDecryptFailure(s.alice, s.bob.identity(), s.a.id(), code, T0 + 4u)
        assertNotNull(request)
        assertTrue(isSessionReset(request!!))
        assertNull(aliceHealer.onDecryptFailure(s.alice, s.bob.identity(), s.a.id(), code, T0 + 5u))
        throws<SealpostException.Misdirected> { Healer().accept(request, Account(T0), s.alice.identity(), null, T0 + 5u) }
        val outcome = bobHealer.accept(request, s.bob, s.alice.identity(), bSide.id(), T0 + 5u)
        assertArrayEquals(s.alice.identity(), outcome.peer)
        assertTrue(outcome.renew)
        throws<SealpostException.Replay> { bobHealer.accept(request, s.bob, s.alice.identity(), bSide.id(), T0 + 6u) }
        val policy = defaultPolicy()
        val b2 = Session.initiate(s.bob, PrekeyBundle.fromBytes(s.alice.bundle(policy).toBytes()), policy, T0 + 5u)
        val a2 = s.alice.accept(policy, b2.encrypt(b("fresh session"), T0 + 6u), T0 + 6u)
        assertArrayEquals(b("fresh session"), a2.plaintext)
        assertArrayEquals(b("welcome back"), b2.decrypt(a2.session.encrypt(b("welcome back"), T0 + 7u), T0 + 7u))
        assertFalse(a2.session.id().contentEquals(s.a.id()))
    }

    @Test
    fun objectsAreUsableFromSeveralThreads() {
        val s = start()
        s.b.decrypt(s.a.encrypt(b("warm up"), T0), T0)
        val envelopes = Collections.synchronizedList(mutableListOf<Pair<String, ByteArray>>())
        val errors = Collections.synchronizedList(mutableListOf<Throwable>())
        (0 until 4).map { t ->
            thread {
                try {
                    for (i in 0 until 20) envelopes.add("$t-$i" to s.a.encrypt(b("$t-$i"), T0 + 1u))
                    s.bob.generateOneTimePrekeys(2u)
                    s.alice.pickle(PickleKey.fromKey(ByteArray(32)), ByteArray(0))
                } catch (e: Throwable) {
                    errors.add(e)
                }
            }
        }.forEach { it.join() }
        assertEquals(emptyList<Throwable>(), errors)
        assertEquals(8uL, s.bob.oneTimePrekeyCount())
        assertEquals(80, envelopes.size)
        val results = Collections.synchronizedList(mutableListOf<String>())
        val snapshot = envelopes.toList()
        (0 until 4).map { t ->
            thread {
                for ((text, e) in snapshot.filterIndexed { i, _ -> i % 4 == t }) {
                    val got = String(s.b.decrypt(e, T0 + 2u))
                    if (got == text) results.add(got)
                }
            }
        }.forEach { it.join() }
        assertEquals(snapshot.map { it.first }.sorted(), results.sorted())
    }

    @Test
    fun everyErrorCodeHasItsOwnExceptionClass() {
        val classes = SealpostException::class.java.declaredClasses
            .filter { SealpostException::class.java.isAssignableFrom(it) }
            .map { it.simpleName }
            .toSet()
        val codes = ErrorCode.values().map { code ->
            code.name.split("_").joinToString("") { it.lowercase().replaceFirstChar(Char::uppercase) }
        }
        assertEquals(codes.size, codes.toSet().size)
        assertEquals(codes.toSet(), classes)
    }
}
