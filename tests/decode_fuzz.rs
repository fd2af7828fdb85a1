//! Mutation fuzzing of the inbound decoders: valid MQTT 3.1.1 and 5 packets, damaged at random
//! (bits flipped, bytes changed, inserted, dropped, the frame cut short or a length varint
//! rewritten), go through the fixed-header parser and the body decoders the broker uses.
//! Every input must end in a value or an error, never a panic: the release binary aborts on
//! panic, so one panic in a decoder would be one malformed packet taking the whole broker down.
//!
//! Seeded and deterministic; `EDGEMQ_FUZZ_ITERS` (default 200,000) and `EDGEMQ_FUZZ_SEED` widen a
//! run by hand: `EDGEMQ_FUZZ_ITERS=5000000 cargo test --release --test decode_fuzz`.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::BytesMut;
use common::fuzz::{Rng, corpus, mutate, server_corpus};
use common::rng::env_u64;
use edgemq::bridge::codec;
use edgemq::broker::frame::parse_header;
use edgemq::broker::packets::{Version, decode, decode_connect};

const MAX_PACKET: usize = 1 << 16;

/// What the connection loop does with bytes: frame them, then decode the frame as a CONNECT
/// and, for each version, as a packet after CONNECT.
fn feed(input: &[u8]) {
    let Ok(Some(header)) = parse_header(input, MAX_PACKET) else {
        return;
    };
    if input.len() < header.frame_len() {
        return;
    }
    let frame = BytesMut::from(&input[..header.frame_len()]);
    let _ = decode_connect(&header, frame.clone(), MAX_PACKET);
    for v in [Version::V31, Version::V311, Version::V5] {
        let _ = decode(&header, frame.clone(), v, MAX_PACKET);
    }
}

#[test]
fn the_corpus_itself_decodes() {
    for (i, p) in corpus().iter().enumerate() {
        let h = parse_header(p, MAX_PACKET)
            .unwrap_or_else(|e| panic!("corpus[{i}] framing: {e}"))
            .unwrap_or_else(|| panic!("corpus[{i}] incomplete"));
        assert_eq!(h.frame_len(), p.len(), "corpus[{i}] length");
        let frame = BytesMut::from(&p[..]);
        let ok = decode_connect(&h, frame.clone(), MAX_PACKET).is_ok()
            || decode(&h, frame.clone(), Version::V311, MAX_PACKET).is_ok()
            || decode(&h, frame, Version::V5, MAX_PACKET).is_ok();
        assert!(ok, "corpus[{i}] is not a valid packet: {p:02x?}");
    }
}

#[test]
fn damaged_packets_are_errors_not_panics() {
    let iters = env_u64("EDGEMQ_FUZZ_ITERS", 200_000);
    let seed = env_u64("EDGEMQ_FUZZ_SEED", 0x5EED_ED6E_4D51);
    let corpus = corpus();
    let mut rng = Rng::new(seed);
    for i in 0..iters {
        let pick = rng.index(corpus.len());
        let input = mutate(&mut rng, corpus[pick].clone());
        if let Err(why) = catch_unwind(AssertUnwindSafe(|| feed(&input))) {
            panic!(
                "iteration {i} (seed {seed:#x}): {}\ninput: {input:02x?}",
                panic_text(&*why)
            );
        }
    }
}

/// What the bridge's uplink does with what the central broker sends: take packets off the
/// front of the buffer until it holds only part of one, or an error.
fn feed_uplink(input: &[u8]) {
    for version in [codec::Version::V311, codec::Version::V5] {
        let mut buf = BytesMut::from(input);
        while let Ok(Some(_)) = codec::decode(version, &mut buf) {}
    }
}

#[test]
fn the_server_corpus_decodes_in_the_uplink() {
    for (i, p) in server_corpus().iter().enumerate() {
        let ok = [codec::Version::V311, codec::Version::V5]
            .into_iter()
            .any(|v| matches!(codec::decode(v, &mut BytesMut::from(&p[..])), Ok(Some(_))));
        assert!(ok, "server_corpus[{i}] is not a valid packet: {p:02x?}");
    }
}

#[test]
fn a_central_brokers_damaged_packets_are_errors_not_panics() {
    let iters = env_u64("EDGEMQ_FUZZ_ITERS", 200_000);
    let seed = env_u64("EDGEMQ_FUZZ_SEED", 0x0CE2_78A1);
    let corpus = server_corpus();
    let mut rng = Rng::new(seed);
    for i in 0..iters {
        // two packets back to back, either or both damaged: the second starts wherever the
        // damage left the first one's end
        let (a, b) = (rng.index(corpus.len()), rng.index(corpus.len()));
        let mut input = mutate(&mut rng, corpus[a].clone());
        input.extend(if rng.bool() {
            mutate(&mut rng, corpus[b].clone())
        } else {
            corpus[b].clone()
        });
        if let Err(why) = catch_unwind(AssertUnwindSafe(|| feed_uplink(&input))) {
            panic!(
                "iteration {i} (seed {seed:#x}): {}\ninput: {input:02x?}",
                panic_text(&*why)
            );
        }
    }
}

/// The message a caught panic carried.
fn panic_text(e: &(dyn std::any::Any + Send)) -> &str {
    e.downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| e.downcast_ref::<&str>().copied())
        .unwrap_or("?")
}
