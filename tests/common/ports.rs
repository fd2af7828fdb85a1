//! Ports for servers the tests start by port number (mosquitto, the edgemq
//! binary), which cannot be handed an already-bound socket.
//!
//! The kernel picks a free ephemeral port on `bind(0)`, but once that socket is
//! closed it may pick the same one again: two calls in a row once gave a
//! mosquitto config the same port for both of its listeners. So every port is
//! handed out at most once per test process.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port that was free a moment ago and that no other caller in this process got.
pub fn free_port() -> u16 {
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if given.insert(port) {
            return port;
        }
    }
}
