//! The uplink's inflight window: packet id → queue sequence number and the
//! acknowledgement each is waiting for. A queue record is acked only when
//! the central broker acknowledged exactly the packet id that carried it.

use std::collections::HashMap;

use bytes::Bytes;

/// What an inflight packet id waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// QoS 1: PUBACK.
    PubAck,
    /// QoS 2: PUBREC.
    PubRec,
    /// QoS 2 after PUBREL: PUBCOMP.
    PubComp,
    /// SUBSCRIBE: SUBACK.
    SubAck,
}

/// One packet id in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The queue record it carries; None for notifications and SUBSCRIBE.
    pub seq: Option<u64>,
    /// What it waits for.
    pub stage: Stage,
    /// The record's encoded message, to send again into a kept session even
    /// if the queue has dropped the record meanwhile (limits, max_age).
    pub data: Option<Bytes>,
}

impl Pending {
    /// A notification or SUBSCRIBE: nothing in the queue.
    pub fn control(stage: Stage) -> Pending {
        Pending {
            seq: None,
            stage,
            data: None,
        }
    }

    /// Queue record `seq` carrying `data`.
    pub fn record(seq: u64, stage: Stage, data: Bytes) -> Pending {
        Pending {
            seq: Some(seq),
            stage,
            data: Some(data),
        }
    }
}

/// Packet ids in use on the uplink; kept across reconnects when the broker
/// kept our session, so a re-sent message reuses its packet id (MQTT §4.4).
#[derive(Debug, Default)]
pub struct Inflight {
    by_pkid: HashMap<u16, Pending>,
    by_seq: HashMap<u64, u16>,
    last: u16,
    qos2: usize,
}

fn is_qos2(stage: Stage) -> bool {
    matches!(stage, Stage::PubRec | Stage::PubComp)
}

impl Inflight {
    /// Packet ids in use.
    pub fn len(&self) -> usize {
        self.by_pkid.len()
    }

    /// QoS 2 messages in flight (awaiting PUBREC or PUBCOMP).
    pub fn qos2_len(&self) -> usize {
        self.qos2
    }

    /// True when no packet id is in use.
    pub fn is_empty(&self) -> bool {
        self.by_pkid.is_empty()
    }

    /// Takes a free packet id for `pending`; None when all 65,535 are in use.
    pub fn insert(&mut self, pending: Pending) -> Option<u16> {
        for _ in 0..u16::MAX {
            self.last = self.last.checked_add(1).unwrap_or(1);
            if !self.by_pkid.contains_key(&self.last) {
                self.qos2 += usize::from(is_qos2(pending.stage));
                if let Some(seq) = pending.seq {
                    self.by_seq.insert(seq, self.last);
                }
                self.by_pkid.insert(self.last, pending);
                return Some(self.last);
            }
        }
        None
    }

    /// The packet id (and stage) already carrying queue record `seq`.
    pub fn by_seq(&self, seq: u64) -> Option<(u16, Stage)> {
        let pkid = *self.by_seq.get(&seq)?;
        self.by_pkid.get(&pkid).map(|p| (pkid, p.stage))
    }

    /// The stage `pkid` waits for.
    pub fn stage(&self, pkid: u16) -> Option<Stage> {
        self.by_pkid.get(&pkid).map(|p| p.stage)
    }

    /// Moves a QoS 2 packet id from PUBREC to PUBCOMP; false if it was not awaiting PUBREC.
    pub fn released(&mut self, pkid: u16) -> bool {
        match self.by_pkid.get_mut(&pkid) {
            Some(p) if p.stage == Stage::PubRec => {
                p.stage = Stage::PubComp;
                true
            }
            _ => false,
        }
    }

    /// Frees `pkid`, returning what it carried.
    pub fn complete(&mut self, pkid: u16) -> Option<Pending> {
        let p = self.by_pkid.remove(&pkid)?;
        self.qos2 -= usize::from(is_qos2(p.stage));
        if let Some(seq) = p.seq {
            self.by_seq.remove(&seq);
        }
        Some(p)
    }

    /// A new session at the broker: no packet id means anything there.
    pub fn clear(&mut self) {
        self.by_pkid.clear();
        self.by_seq.clear();
        self.qos2 = 0;
    }

    /// The broker kept our session: keep queue records, forget the rest
    /// (notifications and SUBSCRIBEs are sent afresh). Returns what to send
    /// again, oldest first, with packet ids.
    pub fn keep_queued(&mut self) -> Vec<(u16, Pending)> {
        self.by_pkid
            .retain(|_, p| p.seq.is_some() && p.stage != Stage::SubAck);
        self.qos2 = self.by_pkid.values().filter(|p| is_qos2(p.stage)).count();
        let mut kept: Vec<(u16, Pending)> =
            self.by_pkid.iter().map(|(k, p)| (*k, p.clone())).collect();
        kept.sort_unstable_by_key(|(_, p)| p.seq);
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(seq: u64) -> Pending {
        Pending::record(seq, Stage::PubAck, Bytes::from_static(b"m"))
    }

    #[test]
    fn ids_map_to_sequences_and_back() {
        let mut f = Inflight::default();
        let a = f.insert(queued(10)).unwrap();
        let b = f.insert(queued(11)).unwrap();
        assert_ne!(a, b);
        assert_eq!(f.by_seq(11), Some((b, Stage::PubAck)));
        assert_eq!(f.complete(a).unwrap().seq, Some(10));
        assert!(f.complete(a).is_none(), "a second ack is ignored");
        assert_eq!(f.by_seq(10), None);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn ids_wrap_and_skip_ids_in_use() {
        let mut f = Inflight {
            last: u16::MAX - 1,
            ..Default::default()
        };
        let keep = f.insert(queued(1)).unwrap();
        assert_eq!(keep, u16::MAX);
        assert_eq!(f.insert(queued(2)), Some(1), "0 is never a packet id");
        f.last = u16::MAX - 1;
        assert_eq!(f.insert(queued(3)), Some(2), "skips the ids in use");
    }

    #[test]
    fn session_kept_keeps_only_queue_records() {
        let mut f = Inflight::default();
        let q = f.insert(queued(5)).unwrap();
        f.insert(Pending::control(Stage::PubAck)).unwrap();
        f.insert(Pending::control(Stage::SubAck)).unwrap();
        let q2 = f
            .insert(Pending::record(6, Stage::PubRec, Bytes::from_static(b"m")))
            .unwrap();
        assert_eq!(f.qos2_len(), 1);
        assert!(f.released(q2));
        assert!(!f.released(q), "PUBREC for a QoS 1 id changes nothing");
        let kept = f.keep_queued();
        assert_eq!(
            kept.iter().map(|(_, p)| p.seq).collect::<Vec<_>>(),
            vec![Some(5), Some(6)]
        );
        assert_eq!(f.len(), 2);
        assert_eq!(f.qos2_len(), 1);
        assert_eq!(f.stage(q2), Some(Stage::PubComp));
        assert_eq!(f.complete(q2).map(|p| p.seq), Some(Some(6)));
        assert_eq!(f.qos2_len(), 0);
        assert_eq!(f.stage(q), Some(Stage::PubAck));
        f.clear();
        assert!(f.is_empty());
    }
}
