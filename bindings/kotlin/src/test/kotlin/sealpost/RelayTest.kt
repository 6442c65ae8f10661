// The relay's client protocol through the binding on the JVM: requests are
// built, signed and parsed by the Rust code the relay itself uses; HTTP and
// WebSocket are java.net.http's. The end-to-end test starts a real
// sealpost-relay process (SEALPOST_RELAY, set by bindings/test.sh).
package sealpost

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.net.http.WebSocket
import java.nio.file.Files
import java.util.concurrent.CompletionStage
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread

private const val NOW: ULong = 1_700_000_000uL

private fun u(s: Int): UShort = s.toUShort()

class RelayTest {
    @Test
    fun requestsAreBuiltAndSignedWithoutIo() {
        val signer = Account(NOW).relaySigner()
        assertEquals(32, signer.account().size)
        val req = RelayRequest.deposit(listOf(ByteArray(32)), "sealed".toByteArray())
        assertEquals("POST", req.method())
        assertEquals("/v1/messages", req.pathAndQuery())
        assertEquals("application/json", req.contentType())
        assertEquals("{\"recipients\":[\"${"A".repeat(43)}\"],\"envelope\":\"c2VhbGVk\"}", String(req.body()))
        val auth = req.authorize(signer, NOW, ByteArray(16))
        assertTrue(Regex("^Sealpost key=[A-Za-z0-9_-]{43},ts=$NOW,nonce=A{22},sig=[A-Za-z0-9_-]{86}$").matches(auth), auth)
        assertEquals(auth, req.authorize(signer, NOW, ByteArray(16)))
        assertNotEquals(auth, req.authorize(signer, NOW, null))
        assertEquals("/v1/handles/%2B4915112345678", RelayRequest.lookupHandle("+4915112345678").pathAndQuery())
        assertTrue(wsAuthQuery(RelayRequest.websocket().authorize(signer, NOW, null)).startsWith("/v1/ws?auth=Sealpost%20key%3D"))
        assertThrows(RelayException.InvalidArgument::class.java) { RelayRequest.fetchBundle(ByteArray(3)) }
        assertThrows(RelayException.InvalidArgument::class.java) { req.authorize(signer, NOW, ByteArray(3)) }
    }

    @Test
    fun mqttFramingIsTheSameRequestInUserProperties() {
        val props = RelayRequest.ack(listOf(1L, 2L)).mqttProperties("Sealpost key=x")
        assertEquals(
            listOf(MqttProperty("method", "POST"), MqttProperty("path", "/v1/messages/ack"), MqttProperty("authorization", "Sealpost key=x")),
            props,
        )
        val status = mqttAnswerStatus(listOf(MqttProperty("status", "429"), MqttProperty("retry-after", "3")))
        assertEquals(AnswerStatus(u(429), "3"), status)
        assertThrows(RelayException.Malformed::class.java) { mqttAnswerStatus(listOf()) }
        val body = "{\"username\":\"sp-a\",\"password\":\"pw-secret\",\"client_id\":\"sp-a\",\"mailbox\":\"s/m/a\"," +
            "\"requests\":\"s/r/a\",\"responses\":\"s/a/a/\"}"
        val enrolled = parseEnrolMqtt(u(200), null, body.toByteArray())
        assertEquals("s/m/a", enrolled.mailbox())
        assertEquals("pw-secret", enrolled.password())
        assertTrue(!enrolled.toString().contains("pw-secret"))
    }

    @Test
    fun answersParseAndRefusalsAreTyped() {
        assertEquals(listOf(41L, 42L), parseDeposit(u(201), null, "{\"ids\":[41,42]}".toByteArray()))
        assertEquals(2uL, parseAck(u(200), null, "{\"deleted\":2}".toByteArray()))
        val limited = assertThrows(RelayException.Refused::class.java) {
            parseDeposit(u(429), "3", "{\"error\":{\"code\":\"rate_limited\",\"message\":\"slow down\"}}".toByteArray())
        }
        assertEquals("rate_limited", limited.code)
        assertEquals(u(429), limited.status)
        assertEquals(3uL, limited.retryAfter)
        // A missing field is refused, not defaulted.
        assertThrows(RelayException.Malformed::class.java) { parseDeposit(u(201), null, "{}".toByteArray()) }
        val proxy = assertThrows(RelayException.UnexpectedStatus::class.java) {
            parseDeposit(u(502), null, "<html>".toByteArray())
        }
        assertEquals(u(502), proxy.status)
        assertThrows(RelayException.UnknownErrorCode::class.java) {
            parseDeposit(u(400), null, "{\"error\":{\"code\":\"from_the_future\",\"message\":\"\"}}".toByteArray())
        }
        assertEquals(PushFrame.Acked(4uL), parsePushFrame("{\"type\":\"acked\",\"deleted\":4}"))
        assertEquals("{\"type\":\"ack\",\"ids\":[1,2]}", ackFrame(listOf(1L, 2L)))
        assertThrows(RelayException.Malformed::class.java) { parsePushFrame("not json") }
    }

    private class Relay(binary: String) : AutoCloseable {
        val dir = Files.createTempDirectory("sealpost-relay")
        val proc: Process = ProcessBuilder(
            binary, "--listen", "127.0.0.1:0", "--data-dir", dir.toString(), "--log-format", "json",
        ).start()
        val codes = LinkedBlockingQueue<Pair<String, String>>()
        val base: String
        val http: HttpClient = HttpClient.newHttpClient()

        init {
            // The default code sink prints "verification code for <handle>: <code>".
            // The drains end when close() destroys the process and its
            // streams close under them: that IOException is the end, not a failure.
            thread(isDaemon = true) {
                try {
                    proc.inputStream.bufferedReader().forEachLine { line ->
                        Regex("verification code for (\\S+): (\\d{6})").find(line)?.let {
                            codes.put(it.groupValues[1] to it.groupValues[2])
                        }
                    }
                } catch (_: java.io.IOException) {
                }
            }
            val stderr = proc.errorStream.bufferedReader()
            var address: String? = null
            while (address == null) {
                val line = stderr.readLine() ?: error("the relay did not start")
                address = Regex("\"address\":\"([^\"]+)\"").find(line)?.groupValues?.get(1)
            }
            base = "http://$address"
            thread(isDaemon = true) {
                try { stderr.forEachLine { } } catch (_: java.io.IOException) { }
            }
        }

        class Answer(val status: UShort, val retryAfter: String?, val body: ByteArray)

        fun send(req: RelayRequest, authorization: String): Answer {
            val body = if (req.method() == "POST") HttpRequest.BodyPublishers.ofByteArray(req.body())
            else HttpRequest.BodyPublishers.noBody()
            val builder = HttpRequest.newBuilder(URI.create(base + req.pathAndQuery()))
                .method(req.method(), body)
                .header("Authorization", authorization)
            req.contentType()?.let { builder.header("Content-Type", it) }
            val resp = http.send(builder.build(), HttpResponse.BodyHandlers.ofByteArray())
            return Answer(resp.statusCode().toUShort(), resp.headers().firstValue("Retry-After").orElse(null), resp.body())
        }

        fun <T> call(req: RelayRequest, signer: RelaySigner, parse: (UShort, String?, ByteArray) -> T): T {
            val a = send(req, req.authorize(signer, null, null))
            return parse(a.status, a.retryAfter, a.body)
        }

        override fun close() {
            proc.destroy()
            proc.waitFor(10, TimeUnit.SECONDS)
        }
    }

    private fun register(relay: Relay, handle: String): Pair<Account, RelaySigner> {
        val account = Account(null)
        val signer = account.relaySigner()
        relay.call(RelayRequest.publishBundle(account.bundle(defaultPolicy())), signer, ::parsePublishBundle)
        val held = relay.call(RelayRequest.uploadPrekeys(account.generateOneTimePrekeys(2u)), signer, ::parseUploadPrekeys)
        assertEquals(2uL, held)
        assertEquals(handle, relay.call(RelayRequest.claimHandle(handle), signer, ::parseClaimHandle).handle)
        val (sentTo, code) = relay.codes.poll(10, TimeUnit.SECONDS) ?: error("no code was sent")
        assertEquals(handle, sentTo)
        val bound = relay.call(RelayRequest.verifyHandle(handle, code), signer, ::parseVerifyHandle)
        assertArrayEquals(signer.account(), bound.account)
        return account to signer
    }

    @Test
    fun twoUsersConverseThroughARealRelay() {
        val binary = System.getenv("SEALPOST_RELAY") ?: error("SEALPOST_RELAY is not set; bindings/test.sh sets it")
        Relay(binary).use { relay ->
            val policy = defaultPolicy()
            val (alice, aliceSigner) = register(relay, "alice_kt")
            val (bob, bobSigner) = register(relay, "bob_kt")

            val found = relay.call(RelayRequest.lookupHandle("bob_kt"), aliceSigner, ::parseLookupHandle)
            assertArrayEquals(bob.identity(), found.identity)
            val fetched = relay.call(RelayRequest.fetchBundle(found.account), aliceSigner) { s, r, b ->
                parseFetchBundle(found.account, s, r, b)
            }
            assertTrue(fetched.bundle.hasOneTimePrekey())
            val session = Session.initiate(alice, fetched.bundle, policy, null)

            val opened = relay.call(RelayRequest.openSession(), aliceSigner, ::parseOpenSession)
            val deposit = RelayRequest.deposit(listOf(bobSigner.account()), session.encrypt("hello Bob".toByteArray(), null))
            val sent = relay.send(deposit, deposit.authorizeSession(opened.session))
            val firstId = parseDeposit(sent.status, sent.retryAfter, sent.body).single()

            // Bob is pushed the message over a WebSocket (the signed upgrade
            // in the Authorization header), accepts it and acknowledges it.
            val frames = LinkedBlockingQueue<String>()
            val listener = object : WebSocket.Listener {
                val text = StringBuilder()
                override fun onText(ws: WebSocket, data: CharSequence, last: Boolean): CompletionStage<*>? {
                    text.append(data)
                    if (last) {
                        frames.put(text.toString())
                        text.setLength(0)
                    }
                    ws.request(1)
                    return null
                }
            }
            val auth = RelayRequest.websocket().authorize(bobSigner, null, null)
            val ws = relay.http.newWebSocketBuilder().header("Authorization", auth)
                .buildAsync(URI.create(relay.base.replace("http://", "ws://") + "/v1/ws"), listener)
                .get(10, TimeUnit.SECONDS)
            val frame = parsePushFrame(frames.poll(10, TimeUnit.SECONDS) ?: error("no push"))
            val message = (frame as PushFrame.Message).message
            assertEquals(firstId, message.id)
            assertArrayEquals(aliceSigner.account(), message.sender)
            val accepted = bob.accept(policy, message.envelope, null)
            assertArrayEquals("hello Bob".toByteArray(), accepted.plaintext)
            ws.sendText(ackFrame(listOf(message.id)), true).get(10, TimeUnit.SECONDS)
            assertEquals(PushFrame.Acked(1uL), parsePushFrame(frames.poll(10, TimeUnit.SECONDS) ?: error("no ack")))
            ws.sendClose(WebSocket.NORMAL_CLOSURE, "").get(10, TimeUnit.SECONDS)

            val reply = RelayRequest.deposit(listOf(aliceSigner.account()), accepted.session.encrypt("hi Alice".toByteArray(), null))
            relay.call(reply, bobSigner, ::parseDeposit)
            val page = relay.call(RelayRequest.pull(0L, 10u), aliceSigner, ::parsePull)
            val m = page.messages.single()
            assertArrayEquals("hi Alice".toByteArray(), session.decrypt(m.envelope, null))
            assertEquals(1uL, relay.call(RelayRequest.ack(listOf(m.id)), aliceSigner, ::parseAck))
            assertEquals(0, relay.call(RelayRequest.pull(0L, 10u), aliceSigner, ::parsePull).messages.size)
            // A replayed request is refused with the relay's code.
            val ack = RelayRequest.ack(listOf(m.id))
            val once = ack.authorize(aliceSigner, null, null)
            relay.send(ack, once)
            val again = relay.send(ack, once)
            val e = assertThrows(RelayException.Refused::class.java) { parseAck(again.status, again.retryAfter, again.body) }
            assertEquals("replayed_request", e.code)
        }
    }
}
