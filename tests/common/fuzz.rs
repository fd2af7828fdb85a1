//! Mutation fuzzing material shared by the decoder, live-connection and bridge fuzz tests:
//! corpora of well-formed client and server packets of every type in both protocol versions,
//! the mutations applied to them, and a counter of panics on any thread.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::raw::{self, connect_raw, mbin, mstr, p_u16, p_u32, p_var, props};
pub use super::rng::Rng;

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// From now on, counts panics on any thread (a broker or bridge task's panic is otherwise
/// only a line on stderr), still printing them as usual.
pub fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
}

/// Panics counted since [`count_panics`].
pub fn panics() -> usize {
    PANICS.load(Ordering::SeqCst)
}

/// Well-formed packets of every type a client sends, in both protocol versions, with the
/// optional parts present (will, login, properties of every kind) so mutations reach them.
pub fn corpus() -> Vec<Vec<u8>> {
    let user_prop = [vec![0x26], mstr("k"), mstr("v")].concat();
    let connect5_props = props(&[
        p_u32(0x11, 3600),
        p_u16(0x21, 20),
        p_u32(0x27, 65_536),
        p_u16(0x22, 10),
        vec![0x19, 1],
        vec![0x17, 1],
        user_prop.clone(),
    ]);
    let will5_props = props(&[
        p_u32(0x18, 5),
        vec![0x01, 1],
        [vec![0x03], mstr("text/plain")].concat(),
    ]);
    // will flag, will QoS 1, will retain, username, password, clean start
    let flags = 0x04 | 0x08 | 0x20 | 0x80 | 0x40 | 0x02;
    let login = [mstr("will/t"), mbin(b"bye"), mstr("user"), mbin(b"secret")].concat();
    let pub5_props = [
        vec![0x01, 1],
        p_u32(0x02, 60),
        p_u16(0x23, 3),
        [vec![0x08], mstr("reply/t")].concat(),
        [vec![0x09], mbin(b"corr")].concat(),
        p_var(0x0B, 7),
        [vec![0x03], mstr("text/plain")].concat(),
        user_prop.clone(),
    ]
    .concat();
    let unsub4 = raw::frame(
        0xA2,
        &[&7u16.to_be_bytes()[..], &mstr("a/#"), &mstr("b/+")].concat(),
    );
    let unsub5 = raw::frame(
        0xA2,
        &[
            &7u16.to_be_bytes()[..],
            &props(std::slice::from_ref(&user_prop)),
            &mstr("a/#"),
        ]
        .concat(),
    );
    let sub_many = raw::frame(
        0x82,
        &[
            &9u16.to_be_bytes()[..],
            &mstr("a/+/c"),
            &[1],
            &mstr("$share/g/x/#"),
            &[2],
        ]
        .concat(),
    );
    vec![
        raw::connect4("fuzz-4", true, 30),
        connect_raw(
            "MQTT",
            4,
            flags,
            30,
            None,
            &[mstr("fuzz-w"), login.clone()].concat(),
        ),
        connect_raw("MQIsdp", 3, 0x02, 30, None, &mstr("fuzz-31")),
        connect_raw("MQTT", 0x84, 0x02, 30, None, &mstr("bridge")),
        raw::connect5("fuzz-5", true, 30, &connect5_props[1..]),
        connect_raw(
            "MQTT",
            5,
            flags,
            30,
            Some(&connect5_props),
            &[mstr("fuzz-5w"), will5_props, login].concat(),
        ),
        raw::publish("a/b", 0, 0, false, false, None, b"hello"),
        raw::publish("a/b", 1, 1, false, true, None, &[7; 40]),
        raw::publish("a/b", 2, 2, true, false, None, b"x"),
        raw::publish("a/b", 1, 3, false, false, Some(&pub5_props), b"payload"),
        raw::publish("", 2, 4, false, false, Some(&p_u16(0x23, 3)), b"alias"),
        raw::subscribe(5, "a/#", 1, None),
        raw::subscribe(6, "s/+", 0x2E, Some(&[p_var(0x0B, 9), user_prop].concat())),
        sub_many,
        unsub4,
        unsub5,
        raw::ack(0x40, 1),
        raw::ack(0x50, 2),
        raw::ack(0x62, 3),
        raw::ack(0x70, 4),
        raw::frame(0x40, &[0, 1, 0x10, 0]),
        raw::frame(0x50, &[0, 2, 0x80, 3, 0x1F, 0, 0]),
        vec![0xC0, 0],
        raw::disconnect(),
        raw::frame(0xE0, &[0x04, 5, 0x11, 0, 0, 0, 9]),
        raw::frame(0xF0, &[0x18, 0]),
    ]
}

/// One to four random changes to `p`.
pub fn mutate(rng: &mut Rng, mut p: Vec<u8>) -> Vec<u8> {
    for _ in 0..=rng.index(4) {
        let len = p.len();
        match rng.index(7) {
            0 if len > 0 => p[rng.index(len)] ^= 1 << rng.index(8),
            1 if len > 0 => p[rng.index(len)] = rng.next() as u8,
            2 => p.insert(rng.index(len + 1), rng.next() as u8),
            3 if len > 1 => {
                p.remove(rng.index(len));
            }
            4 if len > 1 => p.truncate(1 + rng.index(len - 1)),
            // a length or property byte set to an edge value
            5 if len > 0 => p[rng.index(len)] = [0, 1, 0x7F, 0x80, 0xFF][rng.index(5)],
            6 if len > 2 => {
                // the remaining length rewritten to agree with the damaged body, so the
                // damage reaches the body decoders instead of stopping at the framing
                let mut lenlen = 1;
                while lenlen < len && p[lenlen] & 0x80 != 0 {
                    lenlen += 1;
                }
                if lenlen < len {
                    let body = p.split_off(lenlen + 1);
                    p.truncate(1);
                    p.extend(raw::varint(body.len()));
                    p.extend(body);
                }
            }
            _ => {}
        }
    }
    p
}

/// Well-formed packets a broker sends its clients (what the bridge's uplink decodes), in both
/// protocol versions, properties included.
pub fn server_corpus() -> Vec<Vec<u8>> {
    let user_prop = [vec![0x26], mstr("k"), mstr("v")].concat();
    let connack5_props = props(&[
        p_u32(0x11, 60),
        p_u16(0x21, 20),
        vec![0x24, 1],
        vec![0x25, 1],
        p_u32(0x27, 1 << 20),
        [vec![0x12], mstr("assigned-id")].concat(),
        p_u16(0x22, 10),
        [vec![0x1F], mstr("why")].concat(),
        p_u16(0x13, 30),
        user_prop.clone(),
    ]);
    let ack5 = |first: u8| {
        raw::frame(
            first,
            &[&[0, 9, 0x10][..], &props(std::slice::from_ref(&user_prop))].concat(),
        )
    };
    vec![
        raw::frame(0x20, &[1, 0]),
        raw::frame(0x20, &[&[0, 0][..], &connack5_props].concat()),
        raw::frame(0x90, &[0, 5, 1, 0x80]),
        raw::frame(
            0x90,
            &[
                &[0, 5][..],
                &props(std::slice::from_ref(&user_prop)),
                &[2, 0x87],
            ]
            .concat(),
        ),
        raw::frame(0xB0, &[0, 6]),
        raw::frame(0xB0, &[0, 6, 0, 0x11]),
        raw::ack(0x40, 1),
        raw::ack(0x50, 2),
        raw::ack(0x62, 3),
        raw::ack(0x70, 4),
        ack5(0x40),
        ack5(0x50),
        ack5(0x62),
        raw::publish("cmd/x", 0, 0, false, false, None, b"on"),
        raw::publish("cmd/x", 1, 7, false, true, None, b"on"),
        raw::publish("cmd/x", 2, 8, true, false, None, b"on"),
        raw::publish(
            "cmd/x",
            1,
            9,
            false,
            false,
            Some(&[p_u16(0x23, 2), p_var(0x0B, 3), user_prop.clone()].concat()),
            b"on",
        ),
        raw::publish("", 1, 10, false, false, Some(&p_u16(0x23, 2)), b"aliased"),
        vec![0xD0, 0],
        raw::frame(
            0xE0,
            &[
                &[0x8E][..],
                &props(&[[vec![0x1F], mstr("taken over")].concat()]),
            ]
            .concat(),
        ),
    ]
}
