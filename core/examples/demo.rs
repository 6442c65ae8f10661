//! Two parties start a session from a prekey bundle and converse.
//!
//! Run with `cargo run -p sealpost --example demo`. Everything that would
//! cross a network is shown as the bytes that would be sent.

use sealpost::{Account, Envelope, PrekeyBundle, Session, SessionPolicy};

fn show(label: &str, bytes: &[u8]) {
    let head: String = bytes.iter().take(12).map(|b| format!("{b:02x}")).collect();
    println!("  {label}: {} bytes on the wire ({head}…)", bytes.len());
}

fn main() -> Result<(), sealpost::Error> {
    let mut rng = sealpost::os_rng();
    let policy = SessionPolicy::default();
    let mut now = 1_700_000_000;

    // Bob sets up his account and publishes a bundle with one one-time prekey.
    let mut alice = Account::new(&mut rng, now);
    let mut bob = Account::new(&mut rng, now);
    let one_time = bob.generate_one_time_prekeys(&mut rng, 5);
    let published = bob.bundle(&policy)?;
    println!("Bob publishes his prekey bundle and {} one-time prekeys.", one_time.len());

    // Alice fetches it (the relay attaches one one-time prekey) and verifies it.
    let first_otk = one_time.first().copied().ok_or(sealpost::Error::UnknownPrekey)?;
    let wire = published.with_one_time_prekey(first_otk)?.to_bytes();
    show("bundle", &wire);
    let bundle = PrekeyBundle::from_bytes(&wire)?;

    // Alice starts a session while Bob is offline and sends two messages.
    let mut alice_to_bob = Session::initiate(&mut rng, &mut alice, &bundle, &policy, now)?;
    println!("Alice starts a session; negotiated suite: {}", alice_to_bob.suite());
    let m1 = alice_to_bob.encrypt(&mut rng, now, b"Hi Bob, it's Alice.")?;
    let m2 = alice_to_bob.encrypt(&mut rng, now, b"Are you there?")?;
    show("first message (prekey message)", &m1);

    // Bob comes online, accepts the session from the first message.
    now += 60;
    let Envelope::Prekey(first) = Envelope::from_bytes(&m1)? else {
        return Err(sealpost::Error::Malformed("expected a prekey message"));
    };
    let (mut bob_to_alice, text) = bob.accept(&policy, now, &first)?;
    println!("Bob reads: {}", String::from_utf8_lossy(&text));
    println!("Bob reads: {}", String::from_utf8_lossy(&bob_to_alice.decrypt(now, &m2)?));

    // They compare safety numbers out of band.
    println!("Alice's safety number: {}", alice_to_bob.safety_number());
    println!("Bob's safety number:   {}", bob_to_alice.safety_number());
    assert_eq!(alice_to_bob.safety_number(), bob_to_alice.safety_number());

    // A conversation, each turn a Diffie-Hellman ratchet step.
    let lines = ["Yes! Got both.", "Great. Lunch at noon?", "Noon works.", "See you then."];
    for (i, line) in lines.iter().enumerate() {
        now += 30;
        let (sender, receiver, who) = if i % 2 == 0 {
            (&mut bob_to_alice, &mut alice_to_bob, "Alice")
        } else {
            (&mut alice_to_bob, &mut bob_to_alice, "Bob")
        };
        let sealed = sender.encrypt(&mut rng, now, line.as_bytes())?;
        show("ratchet message", &sealed);
        println!("{who} reads: {}", String::from_utf8_lossy(&receiver.decrypt(now, &sealed)?));
    }

    // A replayed envelope is refused.
    let again = alice_to_bob.encrypt(&mut rng, now, b"once only")?;
    bob_to_alice.decrypt(now, &again)?;
    match bob_to_alice.decrypt(now, &again) {
        Err(e) => println!("Delivering the last envelope again: {e}"),
        Ok(_) => println!("Delivering the last envelope again: accepted (unexpected!)"),
    }
    Ok(())
}
