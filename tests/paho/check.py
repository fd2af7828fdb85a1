#!/usr/bin/env python3
"""Drives edgemq with Python paho-mqtt (2.x) for tests/broker_clients.rs.

usage: check.py CASE PORT [PROTOCOL]
  CASE: qos2 | will | retained | persist-subscribe | persist-receive
  PROTOCOL: 311 (default) or 5
Exit status 0 when the case behaved as MQTT says; otherwise a message on
stderr and status 1. Every wait is bounded (TIMEOUT seconds).
"""
import queue
import socket
import sys
import time

import paho.mqtt.client as mqtt

TIMEOUT = 5.0
QUIET = 0.5


def fail(msg):
    print(f"paho check failed: {msg}", file=sys.stderr)
    sys.exit(1)


class Conn:
    """One paho client with its callbacks turned into queues."""

    def __init__(self, port, client_id, proto, clean=True, will=None, expiry=None):
        self.proto = mqtt.MQTTv5 if proto == "5" else mqtt.MQTTv311
        kwargs = {"client_id": client_id, "protocol": self.proto}
        if self.proto != mqtt.MQTTv5:
            kwargs["clean_session"] = clean
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, **kwargs)
        self.messages = queue.Queue()
        self.events = queue.Queue()
        self.c.on_connect = lambda c, u, flags, rc, props: self.events.put(("connack", flags.session_present, rc))
        self.c.on_subscribe = lambda c, u, mid, rcs, props: self.events.put(("suback", mid, rcs))
        self.c.on_message = lambda c, u, msg: self.messages.put(msg)
        if will:
            self.c.will_set(will[0], will[1], qos=1, retain=False)
        props = None
        if self.proto == mqtt.MQTTv5:
            from paho.mqtt.properties import Properties
            from paho.mqtt.packettypes import PacketTypes
            props = Properties(PacketTypes.CONNECT)
            if expiry is not None:
                props.SessionExpiryInterval = expiry
        if self.proto == mqtt.MQTTv5:
            self.c.connect("127.0.0.1", port, keepalive=30, clean_start=clean, properties=props)
        else:
            self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        kind, present, rc = self.event("connack")
        if rc != 0:
            fail(f"{client_id}: CONNACK {rc}")
        self.session_present = present

    def event(self, kind):
        try:
            ev = self.events.get(timeout=TIMEOUT)
        except queue.Empty:
            fail(f"no {kind}")
        if ev[0] != kind:
            fail(f"expected {kind}, got {ev}")
        return ev

    def subscribe(self, topic, qos):
        self.c.subscribe(topic, qos)
        _, _, rcs = self.event("suback")
        if rcs[0] != qos:
            fail(f"SUBACK {rcs} for {topic}")

    def publish(self, topic, payload, qos, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=TIMEOUT)
        if not info.is_published():
            fail(f"publish to {topic} not acknowledged")

    def message(self):
        try:
            return self.messages.get(timeout=TIMEOUT)
        except queue.Empty:
            fail("no message arrived")

    def no_message(self):
        try:
            m = self.messages.get(timeout=QUIET)
            fail(f"unexpected message {m.topic} {m.payload!r}")
        except queue.Empty:
            pass

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()

    def crash(self):
        """Abnormal end: the socket goes away without DISCONNECT."""
        self.c.socket().shutdown(socket.SHUT_RDWR)
        self.c.loop_stop()


def qos2(port, proto):
    sub = Conn(port, "paho-q2-sub", proto)
    sub.subscribe("paho/q2", 2)
    pub = Conn(port, "paho-q2-pub", proto)
    for i in range(5):
        pub.publish("paho/q2", f"exactly-once-{i}", 2)
    for i in range(5):
        m = sub.message()
        if m.qos != 2 or m.payload != f"exactly-once-{i}".encode():
            fail(f"got qos {m.qos} {m.payload!r}")
    sub.no_message()
    pub.close()
    sub.close()


def will(port, proto):
    watch = Conn(port, "paho-will-watch", proto)
    watch.subscribe("paho/will/#", 1)
    polite = Conn(port, "paho-polite", proto, will=("paho/will/polite", "never"))
    polite.close()
    dies = Conn(port, "paho-dies", proto, will=("paho/will/dies", "gone"))
    dies.crash()
    m = watch.message()
    if m.topic != "paho/will/dies" or m.payload != b"gone":
        fail(f"will: {m.topic} {m.payload!r}")
    watch.no_message()
    watch.close()


def retained(port, proto):
    pub = Conn(port, "paho-ret-pub", proto)
    pub.publish("paho/ret/a", "first", 1, retain=True)
    pub.publish("paho/ret/a", "second", 1, retain=True)
    pub.publish("paho/ret/b", "gone", 1, retain=True)
    pub.publish("paho/ret/b", "", 1, retain=True)
    sub = Conn(port, "paho-ret-sub", proto)
    sub.subscribe("paho/ret/#", 1)
    m = sub.message()
    if m.topic != "paho/ret/a" or m.payload != b"second" or not m.retain:
        fail(f"retained: {m.topic} {m.payload!r} retain={m.retain}")
    sub.no_message()
    sub.close()
    pub.close()


def persist_subscribe(port, proto):
    c = Conn(port, "paho-persist", proto, clean=False, expiry=3600)
    c.subscribe("paho/p/#", 1)
    c.close()


def persist_receive(port, proto):
    c = Conn(port, "paho-persist", proto, clean=False, expiry=3600)
    if not c.session_present:
        fail("session not present")
    got = [c.message().payload.decode() for _ in range(3)]
    if got != ["p1", "p2", "p3"]:
        fail(f"queued messages {got}")
    c.no_message()
    c.close()


CASES = {
    "qos2": qos2,
    "will": will,
    "retained": retained,
    "persist-subscribe": persist_subscribe,
    "persist-receive": persist_receive,
}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in CASES:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    CASES[sys.argv[1]](int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "311")
    print("ok")
