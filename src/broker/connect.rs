//! The CONNECT handshake: the first packet within the connect timeout,
//! authentication, client id rules, session takeover or resumption, CONNACK.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::connection::Connection;
use super::encode::{self, ConnAckProps, reason};
use super::frame::PacketType;
use super::packets::{self, ConnectIn, DecodeError, Version};
use super::session::Session;
use super::{Broker, ListenerCtx, persist};
use crate::auth::AuthOutcome;

/// How long a takeover waits for the old connection task to let go.
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);

/// A client that passed the handshake.
pub struct Accepted {
    /// The CONNECT as received (client id filled in if it was empty).
    pub connect: ConnectIn,
    /// Username after identity_as_username.
    pub username: Option<String>,
    /// The session bound to this connection.
    pub session: Arc<Session>,
    /// Connection generation.
    pub generation: u64,
    /// Cancelled when another connection takes the session over.
    pub kick: CancellationToken,
    /// Whether an existing session was resumed.
    pub session_present: bool,
    /// Keepalive in force (after the server's cap).
    pub keep_alive: u16,
}

/// Why the handshake ended without a session.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Nothing arrived in time.
    #[error("no CONNECT within {0:?}")]
    Timeout(Duration),
    /// Closed before CONNECT.
    #[error("closed before CONNECT")]
    Closed,
    /// The first packet was something else.
    #[error("first packet was {0:?}, not CONNECT")]
    NotConnect(PacketType),
    /// Bytes that are not MQTT, or a CONNECT that does not parse.
    #[error("{0}")]
    Bad(String),
    /// Refused with a CONNACK reason.
    #[error("refused: {0}")]
    Rejected(&'static str),
}

/// Runs the handshake on a fresh connection.
pub async fn handshake(
    conn: &mut Connection,
    broker: &Arc<Broker>,
    ctx: &ListenerCtx,
    peer_cn: Option<String>,
) -> Result<Accepted, Refused> {
    let mut c = read_connect(conn, broker).await?;
    let username = if ctx.identity_as_username {
        peer_cn.clone()
    } else {
        c.username.clone()
    };
    if let Err((code, why)) = check_client(&mut c, &username, &peer_cn, ctx) {
        refuse(conn, c.version, code).await;
        return Err(Refused::Rejected(why));
    }
    let keep_alive = effective_keepalive(c.keep_alive, broker.limits.max_keepalive);
    if keep_alive != c.keep_alive && !c.version.is_v5() {
        // MQTT 3.1.1 cannot tell a client to ping more often; silently
        // lowering it would drop the client at 1.5 × max_keepalive over and
        // over. Refuse it the way Mosquitto does, with "identifier rejected".
        refuse(conn, c.version, reason::CLIENT_ID_NOT_VALID).await;
        return Err(Refused::Rejected("keepalive above max_keepalive"));
    }
    let (session, session_present, generation, kick) = bind_session(broker, &c).await;
    let props = connack_props(broker, &c, &session, keep_alive);
    encode::connack(
        conn.out(),
        c.version,
        session_present,
        reason::SUCCESS,
        &props,
    );
    Ok(Accepted {
        connect: c,
        username,
        session,
        generation,
        kick,
        session_present,
        keep_alive,
    })
}

/// The CONNECT, within the connect timeout; a protocol this broker does not speak is
/// answered with CONNACK 0x01 before the refusal.
async fn read_connect(conn: &mut Connection, broker: &Arc<Broker>) -> Result<ConnectIn, Refused> {
    let limit = broker.limits.connect_timeout.get();
    let frame = match tokio::time::timeout(limit, conn.read_frame()).await {
        Err(_) => return Err(Refused::Timeout(limit)),
        Ok(Ok(None)) => return Err(Refused::Closed),
        Ok(Err(e)) => return Err(Refused::Bad(e.to_string())),
        Ok(Ok(Some(f))) => f,
    };
    let (header, bytes) = frame;
    if header.ptype != PacketType::Connect {
        return Err(Refused::NotConnect(header.ptype));
    }
    match packets::decode_connect(
        &header,
        bytes,
        broker.limits.max_packet_size.bytes() as usize,
    ) {
        Ok(c) => Ok(c),
        Err(DecodeError::Protocol { name, level }) => {
            encode::connack(
                conn.out(),
                Version::V311,
                false,
                1,
                &ConnAckProps::default(),
            );
            conn.close().await;
            Err(Refused::Bad(format!(
                "unsupported protocol {name:?} level {level}"
            )))
        }
        Err(e) => Err(Refused::Bad(e.to_string())),
    }
}

/// What the CONNACK tells the client about the limits it must keep.
fn connack_props(
    broker: &Broker,
    c: &ConnectIn,
    session: &Session,
    keep_alive: u16,
) -> ConnAckProps {
    let expiry = session.lock().expiry_secs;
    ConnAckProps {
        session_expiry: (c.version.is_v5() && expiry != c.session_expiry).then_some(expiry),
        receive_maximum: broker.limits.receive_maximum,
        max_packet_size: broker
            .limits
            .max_packet_size
            .bytes()
            .min(u64::from(u32::MAX)) as u32,
        topic_alias_max: broker.limits.max_topic_alias,
        assigned_client_id: generated_id(c),
        server_keep_alive: (keep_alive != c.keep_alive).then_some(keep_alive),
        reason_string: None,
    }
}

fn generated_id(c: &ConnectIn) -> Option<String> {
    c.client_id
        .strip_prefix("edgemq-auto-")
        .map(|_| c.client_id.clone())
        .filter(|_| c.version.is_v5())
}

fn effective_keepalive(requested: u16, max: u16) -> u16 {
    if requested == 0 || requested > max {
        if max == u16::MAX { requested } else { max }
    } else {
        requested
    }
}

/// Authentication and client id rules; fills in a generated client id.
fn check_client(
    c: &mut ConnectIn,
    username: &Option<String>,
    peer_cn: &Option<String>,
    ctx: &ListenerCtx,
) -> Result<(), (u8, &'static str)> {
    if c.auth_method.is_some() {
        return Err((
            reason::BAD_AUTH_METHOD,
            "enhanced authentication is not supported",
        ));
    }
    if ctx.identity_as_username && peer_cn.is_none() {
        return Err((
            reason::NOT_AUTHORIZED,
            "identity_as_username: no client certificate CN",
        ));
    }
    if !ctx.identity_as_username {
        match username {
            None if !ctx.anonymous => {
                return Err((
                    reason::NOT_AUTHORIZED,
                    "anonymous clients are not allowed here",
                ));
            }
            None => {}
            Some(u) => match ctx.auth.authenticate(Some(u), c.password.as_deref()) {
                AuthOutcome::Allowed => {}
                AuthOutcome::NoSuchUser if !ctx.auth.has_users() && ctx.anonymous => {}
                _ => return Err((reason::BAD_CREDENTIALS, "bad username or password")),
            },
        }
    }
    if c.client_id.is_empty() {
        if !c.clean_start && !c.version.is_v5() {
            return Err((
                reason::CLIENT_ID_NOT_VALID,
                "empty client id with a persistent session",
            ));
        }
        c.client_id = format!("edgemq-auto-{:016x}", random_u64());
    }
    Ok(())
}

async fn refuse(conn: &mut Connection, v: Version, code: u8) {
    let code = if v.is_v5() {
        code
    } else {
        encode::connack_code_v311(code)
    };
    encode::connack(conn.out(), v, false, code, &ConnAckProps::default());
    conn.close().await;
}

/// Takes over or creates the session for `c.client_id`.
async fn bind_session(
    broker: &Arc<Broker>,
    c: &ConnectIn,
) -> (Arc<Session>, bool, u64, CancellationToken) {
    let router = &broker.router;
    let limits = &broker.limits;
    let cap = limits
        .session_expiry
        .get()
        .as_secs()
        .min(u64::from(u32::MAX)) as u32;
    let expiry = match (c.version.is_v5(), c.clean_start) {
        (true, _) => c.session_expiry.min(cap),
        (false, true) => 0,
        (false, false) => cap,
    };
    if let Some(old) = router.session(&c.client_id) {
        take_over(&old).await;
    }
    // Re-read: the old connection may have ended a non-persistent session meanwhile.
    // A session past its expiry is gone even if the periodic sweep has not run yet.
    let existing = router.session(&c.client_id).filter(|s| {
        let expired = s.is_expired();
        if expired {
            tracing::info!(client_id = %s.id, "session expired");
            router.remove_session(s);
        }
        !expired
    });
    let resume = existing.filter(|_| !c.clean_start);
    let present = resume.is_some();
    let session = match resume {
        Some(s) => s,
        None => fresh_session(broker, &c.client_id),
    };
    let generation = broker.next_gen();
    let kick = CancellationToken::new();
    {
        let mut s = session.lock();
        s.expiry_secs = expiry;
        s.conn_gen = generation;
        s.kick = Some(kick.clone());
        s.disconnected_at = None;
        if let Some(w) = s.pending_will.take() {
            w.cancel.cancel();
        }
    }
    if let Some(store) = &broker.store {
        persist::save_session(store, &session);
    }
    (session, present, generation, kick)
}

/// A new, empty session for `client_id`, replacing whatever the store and the router had.
fn fresh_session(broker: &Broker, client_id: &str) -> Arc<Session> {
    let (router, limits) = (&broker.router, &broker.limits);
    if let Some(store) = &broker.store {
        persist::delete_session(store, client_id);
    }
    let fresh = Session::new(
        Arc::from(client_id),
        limits.max_queued_messages,
        limits.queue_full,
    );
    if let Some(old) = router.insert_session(fresh.clone()) {
        router.remove_subscriptions_of(&old);
        // The old session ends here, so a will still waiting out its
        // delay is due now (MQTT 5 §3.1.3.2.2).
        if let Some(w) = old.lock().pending_will.take() {
            w.fire.cancel();
        }
    }
    fresh
}

/// Closes the session's live connection and waits (bounded) for its task to let go.
async fn take_over(old: &Arc<Session>) {
    let (kick, gen_before) = {
        let s = old.lock();
        (s.kick.clone(), s.conn_gen)
    };
    let Some(kick) = kick else { return };
    if gen_before == 0 {
        return;
    }
    kick.cancel();
    let deadline = Instant::now() + TAKEOVER_WAIT;
    while old.lock().conn_gen == gen_before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A random 64-bit value for generated client ids.
fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        return crate::clock::now_ms() ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(b)
}
