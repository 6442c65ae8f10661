//! The shared relay client protocol without a relay: signing and checking
//! requests, every error code, and refusal of malformed input with typed
//! errors (never a panic).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use sealpost::{Account, SessionPolicy};
use sealpost_client::{
    AckBody, Acked, BundleFetched, BundlePublished, ClaimHandleBody, Credentials, Delivered, DepositBody, Deposited,
    Error, ErrorCode, HandleBound, HandleClaimed, HandleFound, MessagePage, Method, PrekeysBody, PrekeysStored,
    PublishBundleBody, PullQuery, PushFrame, RelayError, RelaySession, Reply, Request, SessionCredentials,
    SessionOpened, VerifyHandleBody, ack_frame, acked_frame, decode_ack_frame, error_frame, parse_response,
    ws_auth_query,
};

const NOW: u64 = 1_700_000_000;

fn account() -> Account {
    Account::new(&mut sealpost::os_rng(), NOW)
}

#[test]
fn every_error_code_round_trips_status_and_code() {
    let mut seen = std::collections::HashSet::new();
    for &code in ErrorCode::ALL {
        assert!(seen.insert(code.as_str()), "{code} declared twice");
        assert_eq!(ErrorCode::from_code(code.as_str()), Some(code));
        assert!((400..600).contains(&code.status()), "{code}");
        let sent = RelayError::new(code, format!("why {code}"));
        let got = RelayError::decode(code.status(), None, &sent.encode()).unwrap();
        assert_eq!(got, sent);
        // Through the reply parser too: any reply type sees the refusal.
        let e = parse_response::<Acked>(code.status(), Some("7"), &sent.encode()).unwrap_err();
        assert_eq!(e, Error::Relay(sent.clone().with_retry_after(7)));
        assert_eq!(e.code(), Some(code));
    }
    assert_eq!(ErrorCode::ALL.len(), 51);
    assert_eq!(ErrorCode::from_code("no_such_code"), None);
}

#[test]
fn error_answers_that_do_not_match_are_typed_errors() {
    let body = RelayError::new(ErrorCode::BadJson, "x").encode();
    // The code's status is 400, not 401.
    assert_eq!(RelayError::decode(401, None, &body), Err(Error::UnexpectedStatus { status: 401 }));
    let unknown = br#"{"error":{"code":"from_the_future","message":"?"}}"#;
    assert_eq!(parse_response::<Acked>(418, None, unknown), Err(Error::UnknownErrorCode { status: 418 }));
    assert_eq!(
        parse_response::<Acked>(502, None, b"<html>bad gateway</html>"),
        Err(Error::UnexpectedStatus { status: 502 })
    );
    assert_eq!(parse_response::<Acked>(302, None, b""), Err(Error::UnexpectedStatus { status: 302 }));
    // The success status of another reply is not this reply's.
    assert_eq!(parse_response::<Deposited>(200, None, br#"{"ids":[1]}"#), Err(Error::UnexpectedStatus { status: 200 }));
    let limited = RelayError::rate_limited(3).encode();
    assert_eq!(parse_response::<Acked>(429, Some("soon"), &limited), Err(Error::Malformed { what: "Retry-After" }));
}

#[test]
fn signed_requests_verify_and_any_change_is_refused() {
    let a = account();
    let signer = a.relay_signer();
    let request = Request::deposit(&[[7; 32]], b"sealed");
    let header = request.authorize(&signer, NOW, &[3; 16]);
    let creds = Credentials::parse(&header).unwrap();
    assert_eq!((&creds.account, creds.ts, creds.nonce), (signer.account(), NOW, [3; 16]));
    let (m, p, b) = ("POST", request.path_and_query(), request.body());
    creds.verify(m, p, b, NOW + 300, 300).unwrap();
    let code = |r: Result<(), RelayError>| r.unwrap_err().code;
    assert_eq!(code(creds.verify(m, p, b, NOW + 301, 300)), ErrorCode::StaleRequest);
    assert_eq!(code(creds.verify("GET", p, b, NOW, 300)), ErrorCode::BadSignature);
    assert_eq!(code(creds.verify(m, "/v1/messages/ack", b, NOW, 300)), ErrorCode::BadSignature);
    assert_eq!(code(creds.verify(m, p, b"other", NOW, 300)), ErrorCode::BadSignature);
    let other = Credentials { account: *account().relay_signer().account(), ..creds.clone() };
    assert_eq!(code(other.verify(m, p, b, NOW, 300)), ErrorCode::BadSignature);
    // The signed bytes are those of docs/RELAY.md.
    // The signed bytes are those of docs/RELAY.md (the last line is SHA-256("x") in hex).
    let got = String::from_utf8(sealpost_client::signed_bytes("POST", "/v1/messages", NOW, &[3; 16], b"x")).unwrap();
    assert_eq!(
        got,
        format!(
            "POST\n/v1/messages\n{NOW}\nAwMDAwMDAwMDAwMDAwMDAw\n{}",
            "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
        )
    );
}

#[test]
fn malformed_authorization_values_are_bad_authorization() {
    let good = Request::websocket().authorize(&account().relay_signer(), NOW, &[1; 16]);
    let mut bad: Vec<String> = [
        "",
        "Bearer xyz",
        "Sealpost",
        "Sealpost ",
        "Sealpost key=abc",
        "Sealpost key=a,ts=1,nonce=b,sig=c,extra=d",
        "Sealpost key,ts,nonce,sig",
        "SealpostSession id=AAAAAAAAAAAAAAAAAAAAAA,seq=1,mac=x",
        "Sealpost key=é,ts=1,nonce=b,sig=c",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    bad.push(good.replacen("ts=", "ts=-", 1));
    bad.push(good.replacen("key=", "key=A", 1));
    bad.push(good.replacen("nonce=", "nonce=AA", 1));
    bad.push(format!("{good},ts=1"));
    bad.push(good.replacen(',', ", ", 1).replacen("sig=", "sig=%", 1));
    for b in &bad {
        assert_eq!(Credentials::parse(b).unwrap_err().code, ErrorCode::BadAuthorization, "{b:?}");
    }
    for b in ["SealpostSession id=AAAAAAAAAAAAAAAAAAAAAA,seq=x,mac=AA", "SealpostSession id=A,seq=1,mac=B", &good] {
        assert_eq!(SessionCredentials::parse(b).unwrap_err().code, ErrorCode::BadAuthorization, "{b:?}");
    }
}

#[test]
fn session_requests_use_increasing_sequence_numbers_and_check_the_mac() {
    let opened = SessionOpened::new([5; 16], &[9; 32], 3600);
    let reply: SessionOpened = parse_response(201, None, &opened.encode()).unwrap();
    assert_eq!((reply.id, reply.expires_in), ([5; 16], 3600));
    assert!(!format!("{reply:?}").contains("9, 9"));
    let mut session: RelaySession = reply.session();
    let request = Request::deposit(&[[1; 32]], b"e");
    let first = SessionCredentials::parse(&request.authorize_session(&mut session)).unwrap();
    let second = SessionCredentials::parse(&request.authorize_session(&mut session)).unwrap();
    assert_eq!((first.id, first.seq, second.seq), ([5; 16], 1, 2));
    first.verify(&[9; 32], "POST", "/v1/messages", request.body()).unwrap();
    assert_eq!(first.verify(&[8; 32], "POST", "/v1/messages", request.body()).unwrap_err().code, ErrorCode::BadMac);
    assert_eq!(first.verify(&[9; 32], "POST", "/v1/messages", b"{}").unwrap_err().code, ErrorCode::BadMac);
}

#[test]
fn request_bodies_decode_as_the_relay_checks_them() {
    let mut a = account();
    let mut rng = sealpost::os_rng();
    let bundle = a.bundle(&SessionPolicy::default()).unwrap();
    let published = PublishBundleBody::decode(Request::publish_bundle(&bundle).body()).unwrap();
    assert_eq!(published.bundle, bundle);
    assert_eq!(published.bytes, bundle.to_bytes());
    let keys = a.generate_one_time_prekeys(&mut rng, 3);
    let up = PrekeysBody::decode(Request::upload_prekeys(&keys).body()).unwrap();
    assert_eq!(up.prekeys.iter().map(|(k, _)| k.id).collect::<Vec<_>>(), keys.iter().map(|k| k.id).collect::<Vec<_>>());
    let d = DepositBody::decode(Request::deposit(&[[1; 32], [2; 32]], b"env").body(), 2, 3).unwrap();
    assert_eq!(d, DepositBody { recipients: vec![[1; 32], [2; 32]], envelope: b"env".to_vec() });
    assert_eq!(AckBody::decode(Request::ack(&[4, 5]).body()).unwrap().ids, vec![4, 5]);
    assert_eq!(ClaimHandleBody::decode(Request::claim_handle("alice").body()).unwrap().handle, "alice");
    let v = VerifyHandleBody::decode(Request::verify_handle("alice", "012345").body()).unwrap();
    assert_eq!((v.handle.as_str(), v.code.as_str()), ("alice", "012345"));
    let pull = Request::pull(17, 50);
    let query = pull.path_and_query().split_once('?').unwrap().1;
    assert_eq!(PullQuery::decode(query).unwrap(), PullQuery { after: 17, limit: 50 });
    assert_eq!(PullQuery::decode("").unwrap(), PullQuery { after: 0, limit: 100 });
    assert_eq!(Request::lookup_handle("+4915112345678").path_and_query(), "/v1/handles/%2B4915112345678");
    assert_eq!(Request::open_session().body(), b"{}");
    assert_eq!((Request::pull(0, 1).method(), Request::pull(0, 1).content_type()), (Method::Get, None));
    assert_eq!(Request::ack(&[1]).content_type(), Some("application/json"));
}

#[test]
fn bad_request_bodies_get_their_codes() {
    let code = |r: Result<(), RelayError>| r.unwrap_err().code;
    let deposit = |b: &str| DepositBody::decode(b.as_bytes(), 2, 4).map(drop);
    let r = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";
    assert_eq!(code(deposit("")), ErrorCode::BadJson);
    assert_eq!(code(deposit("[]")), ErrorCode::BadJson);
    assert_eq!(code(deposit(r#"{"recipients":[]}"#)), ErrorCode::BadJson);
    assert_eq!(code(deposit(&format!(r#"{{"recipients":["{r}"],"envelope":"AA","x":1}}"#))), ErrorCode::BadJson);
    assert_eq!(code(deposit(r#"{"recipients":[],"envelope":"AA"}"#)), ErrorCode::BadRecipients);
    assert_eq!(code(deposit(&format!(r#"{{"recipients":["{r}","{r}"],"envelope":"AA"}}"#))), ErrorCode::BadRecipients);
    assert_eq!(code(deposit(r#"{"recipients":["AAAA"],"envelope":"AA"}"#)), ErrorCode::BadAccount);
    assert_eq!(code(deposit(&format!(r#"{{"recipients":["{r}"],"envelope":"***"}}"#))), ErrorCode::BadBase64);
    assert_eq!(code(deposit(&format!(r#"{{"recipients":["{r}"],"envelope":""}}"#))), ErrorCode::BadEnvelope);
    assert_eq!(code(deposit(&format!(r#"{{"recipients":["{r}"],"envelope":"AAAAAAA"}}"#))), ErrorCode::TooLarge);
    assert_eq!(code(PublishBundleBody::decode(br#"{"bundle":"AAAA"}"#).map(drop)), ErrorCode::BadBundle);
    assert_eq!(code(PublishBundleBody::decode(br#"{"bundle":"*"}"#).map(drop)), ErrorCode::BadBase64);
    assert_eq!(code(PrekeysBody::decode(br#"{"prekeys":[]}"#).map(drop)), ErrorCode::BadPrekeys);
    assert_eq!(code(PrekeysBody::decode(br#"{"prekeys":["AAAA"]}"#).map(drop)), ErrorCode::BadPrekeys);
    assert_eq!(code(AckBody::decode(br#"{"ids":[]}"#).map(drop)), ErrorCode::BadIds);
    assert_eq!(code(AckBody::decode(br#"{"ids":["1"]}"#).map(drop)), ErrorCode::BadJson);
    assert_eq!(code(AckBody::decode(br#"{"ids":[3,0]}"#).map(drop)), ErrorCode::BadIds);
    assert_eq!(code(AckBody::decode(br#"{"ids":[-5]}"#).map(drop)), ErrorCode::BadIds);
    assert_eq!(code(ClaimHandleBody::decode(br#"{"handle":1}"#).map(drop)), ErrorCode::BadJson);
    assert_eq!(code(VerifyHandleBody::decode(br#"{"handle":"a","code":"12345"}"#).map(drop)), ErrorCode::BadCode);
    assert_eq!(code(VerifyHandleBody::decode(br#"{"handle":"a","code":"12345x"}"#).map(drop)), ErrorCode::BadCode);
    assert_eq!(PullQuery::decode("after=0").unwrap().after, 0);
    for q in ["after=x", "after=-1", "limit=0", "limit=1001", "limit=-1", "other=1", "after"] {
        assert_eq!(code(PullQuery::decode(q).map(drop)), ErrorCode::BadQuery, "{q}");
    }
}

#[test]
fn replies_round_trip_and_a_missing_field_is_refused() {
    let a = account();
    let bundle = a.bundle(&SessionPolicy::default()).unwrap();
    let account_id = *a.relay_signer().account();
    let fetched: BundleFetched = parse_response(200, None, &BundleFetched::encode_raw(&bundle.to_bytes(), 4)).unwrap();
    assert_eq!((&fetched.bundle, fetched.one_time_prekeys_left), (&bundle, 4));
    fetched.check_account(&account_id).unwrap();
    assert_eq!(fetched.check_account(&[0; 32]), Err(Error::WrongAccount));
    let p: BundlePublished = parse_response(200, None, &BundlePublished { account: account_id }.encode()).unwrap();
    assert_eq!(p.account, account_id);
    let s: PrekeysStored = parse_response(200, None, &PrekeysStored { one_time_prekeys: 9 }.encode()).unwrap();
    assert_eq!(s.one_time_prekeys, 9);
    let d: Deposited = parse_response(201, None, &Deposited { ids: vec![3, 4] }.encode()).unwrap();
    assert_eq!(d.ids, vec![3, 4]);
    let m = Delivered { id: 8, sender: [2; 32], envelope: vec![1, 2, 3, 4], received_at: NOW };
    let page: MessagePage = parse_response(200, None, &MessagePage::encode(vec![m.clone()], 0)).unwrap();
    assert_eq!(page, MessagePage { messages: vec![m.clone()], next_after: 8 });
    let empty: MessagePage = parse_response(200, None, &MessagePage::encode(vec![], 5)).unwrap();
    assert_eq!(empty, MessagePage { messages: vec![], next_after: 5 });
    let k: Acked = parse_response(200, None, &Acked { deleted: 2 }.encode()).unwrap();
    assert_eq!(k.deleted, 2);
    let c = HandleClaimed { handle: "alice".into(), expires_in: 600 };
    assert_eq!(parse_response::<HandleClaimed>(202, None, &c.encode()).unwrap(), c);
    let b = HandleBound { handle: "alice".into(), account: account_id };
    assert_eq!(parse_response::<HandleBound>(200, None, &b.encode()).unwrap(), b);
    let identity = a.identity().to_bytes();
    let f: HandleFound = parse_response(200, None, &HandleFound::encode_raw("alice", &account_id, &identity)).unwrap();
    assert_eq!(&f.identity, a.identity());
    let wrong = HandleFound::encode_raw("alice", &[1; 32], &identity);
    assert_eq!(parse_response::<HandleFound>(200, None, &wrong), Err(Error::WrongAccount));

    // Every field of every reply is required: none is defaulted.
    fn refused<T: Reply + std::fmt::Debug>(body: &[u8]) {
        let text = std::str::from_utf8(body).unwrap();
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        for field in v.as_object().unwrap().keys() {
            let mut w = v.clone();
            w.as_object_mut().unwrap().remove(field);
            let e = T::decode(w.to_string().as_bytes()).unwrap_err();
            assert!(matches!(e, Error::Malformed { .. }), "{field}: {e:?}");
        }
    }
    refused::<BundleFetched>(&BundleFetched::encode_raw(&bundle.to_bytes(), 4));
    refused::<BundlePublished>(&BundlePublished { account: account_id }.encode());
    refused::<PrekeysStored>(&PrekeysStored { one_time_prekeys: 9 }.encode());
    refused::<SessionOpened>(&SessionOpened::new([1; 16], &[2; 32], 60).encode());
    refused::<Deposited>(&Deposited { ids: vec![1] }.encode());
    refused::<MessagePage>(&MessagePage::encode(vec![], 5));
    refused::<Acked>(&Acked { deleted: 2 }.encode());
    refused::<HandleClaimed>(&c.encode());
    refused::<HandleBound>(&b.encode());
    refused::<HandleFound>(&HandleFound::encode_raw("alice", &account_id, &identity));
    // A message in a page without its received_at.
    let page = br#"{"messages":[{"id":1,"sender":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE","envelope":"AA"}],"next_after":1}"#;
    assert_eq!(MessagePage::decode(page), Err(Error::Malformed { what: "pull reply" }));
    // Wrong lengths and bad keys.
    assert_eq!(BundlePublished::decode(br#"{"account":"AAAA"}"#), Err(Error::Malformed { what: "account" }));
    assert_eq!(
        SessionOpened::decode(br#"{"id":"AAAA","key":"AAAA","expires_in":1}"#).unwrap_err(),
        Error::Malformed { what: "key" }
    );
    assert!(matches!(BundleFetched::decode(br#"{"bundle":"AAAA","one_time_prekeys_left":1}"#), Err(Error::Core(_))));
    assert_eq!(Acked::decode(b"\xff\xfe"), Err(Error::Malformed { what: "ack reply" }));
}

#[test]
fn push_frames_round_trip_and_garbage_is_typed() {
    let m = Delivered { id: 3, sender: [4; 32], envelope: vec![9; 10], received_at: NOW };
    let mut frame = Vec::new();
    sealpost_client::write_message(&mut frame, &m, true);
    assert_eq!(PushFrame::decode(std::str::from_utf8(&frame).unwrap()).unwrap(), PushFrame::Message(m));
    assert_eq!(PushFrame::decode(&acked_frame(2)).unwrap(), PushFrame::Acked(2));
    let e = RelayError::new(ErrorCode::BadIds, "no");
    assert_eq!(PushFrame::decode(&error_frame(&e)).unwrap(), PushFrame::Error(e));
    assert_eq!(decode_ack_frame(&ack_frame(&[1, 2])).unwrap(), vec![1, 2]);
    for bad in ["", "{}", r#"{"type":"ack"}"#, r#"{"type":"ack","ids":[1],"x":2}"#, r#"{"type":"nope","ids":[1]}"#] {
        assert_eq!(decode_ack_frame(bad).unwrap_err().code, ErrorCode::BadJson, "{bad}");
    }
    assert_eq!(decode_ack_frame(&ack_frame(&[])).unwrap_err().code, ErrorCode::BadIds);
    for bad in ["", "[]", r#"{"type":"message","id":1}"#, r#"{"type":"acked"}"#, r#"{"type":"other"}"#] {
        assert_eq!(PushFrame::decode(bad), Err(Error::Malformed { what: "push frame" }), "{bad}");
    }
    assert_eq!(
        PushFrame::decode(r#"{"type":"error","code":"new_code","message":"m"}"#),
        Err(Error::Malformed { what: "push error code" })
    );
}

#[test]
fn a_message_frame_is_written_into_a_buffer_sized_for_it() {
    for (id, received_at) in [(i64::MIN, u64::MAX), (i64::MAX, 0), (1, NOW)] {
        for len in [0, 1, 2, 3, 1024, 65_537] {
            let m = Delivered { id, sender: [0xff; 32], envelope: vec![0xa5; len], received_at };
            let frame = sealpost_client::message_frame(&m);
            let mut written = Vec::new();
            sealpost_client::write_message(&mut written, &m, true);
            assert_eq!(frame, written);
            // Sized once: a buffer that had to grow would have at least
            // doubled, leaving far more than the JSON margin unused.
            let spare = frame.capacity() - frame.len();
            assert!(spare < 100, "{id} {len}: {} bytes in {}", frame.len(), frame.capacity());
        }
    }
}

#[test]
fn websocket_auth_query_percent_encodes_the_signed_upgrade() {
    let signer = account().relay_signer();
    let auth = Request::websocket().authorize(&signer, NOW, &[0; 16]);
    let query = ws_auth_query(&auth);
    let encoded = query.strip_prefix("/v1/ws?auth=").unwrap();
    assert!(encoded.starts_with("Sealpost%20key%3D"));
    assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
    // The relay decodes it back and checks `GET /v1/ws` with an empty body.
    let decoded = {
        let mut out = Vec::new();
        let mut bytes = encoded.bytes();
        while let Some(b) = bytes.next() {
            if b == b'%' {
                let h: String = [bytes.next().unwrap(), bytes.next().unwrap()].iter().map(|&c| char::from(c)).collect();
                out.push(u8::from_str_radix(&h, 16).unwrap());
            } else {
                out.push(b);
            }
        }
        String::from_utf8(out).unwrap()
    };
    assert_eq!(decoded, auth);
    Credentials::parse(&decoded).unwrap().verify("GET", "/v1/ws", b"", NOW, 0).unwrap();
}
