//! Bridge topic rules with Mosquitto's `topic pattern direction qos
//! local_prefix remote_prefix` semantics: which local topics go out and under
//! which remote name, what we subscribe to centrally, and how inbound topics
//! are renamed locally.

use std::borrow::Cow;

use crate::config::model::{Direction, TopicRule};
use crate::router::message::QoS;
use crate::router::topic::matches as topic_matches;

/// Where an outbound message goes on the central broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRoute<'a> {
    /// Topic name at the central broker: borrowed when the rule maps no prefix.
    pub remote_topic: Cow<'a, str>,
    /// QoS on the uplink: the lower of the message's and the rule's.
    pub qos: QoS,
    /// Keep only the newest queued message of this topic.
    pub coalesce: bool,
}

#[derive(Debug, Clone)]
struct Rule {
    local_filter: String,
    remote_filter: String,
    qos: QoS,
    local_prefix: String,
    remote_prefix: String,
    coalesce: bool,
}

/// The compiled topic rules of one bridge.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    out: Vec<Rule>,
    inbound: Vec<Rule>,
}

impl Rules {
    /// Splits the configured rules by direction (a `both` rule is in both lists).
    pub fn new(config: &[TopicRule]) -> Rules {
        let mut rules = Rules::default();
        for r in config {
            let rule = Rule {
                local_filter: format!("{}{}", r.local_prefix, r.pattern),
                remote_filter: format!("{}{}", r.remote_prefix, r.pattern),
                qos: QoS::from_u8(r.qos).unwrap_or(QoS::AtLeastOnce),
                local_prefix: r.local_prefix.clone(),
                remote_prefix: r.remote_prefix.clone(),
                coalesce: r.coalesce,
            };
            if matches!(r.direction, Direction::Out | Direction::Both) {
                rules.out.push(rule.clone());
            }
            if matches!(r.direction, Direction::In | Direction::Both) {
                rules.inbound.push(rule);
            }
        }
        rules
    }

    /// The first out/both rule whose local filter matches `topic`, with the remote name.
    pub fn outbound<'a>(&self, topic: &'a str, qos: QoS) -> Option<OutRoute<'a>> {
        let rule = self
            .out
            .iter()
            .find(|r| topic_matches(&r.local_filter, topic))?;
        let rest = topic.strip_prefix(rule.local_prefix.as_str())?;
        Some(OutRoute {
            remote_topic: if rule.remote_prefix == rule.local_prefix {
                Cow::Borrowed(topic)
            } else {
                Cow::Owned(format!("{}{}", rule.remote_prefix, rest))
            },
            qos: qos.min(rule.qos),
            coalesce: rule.coalesce,
        })
    }

    /// The filters to subscribe to at the central broker (in/both rules).
    pub fn subscriptions(&self) -> Vec<(String, QoS)> {
        self.inbound
            .iter()
            .map(|r| (r.remote_filter.clone(), r.qos))
            .collect()
    }

    /// The local name of an inbound topic, or None when no in/both rule matches it.
    pub fn inbound(&self, remote_topic: &str) -> Option<String> {
        let rule = self
            .inbound
            .iter()
            .find(|r| topic_matches(&r.remote_filter, remote_topic))?;
        let rest = remote_topic.strip_prefix(rule.remote_prefix.as_str())?;
        Some(format!("{}{}", rule.local_prefix, rest))
    }

    /// True when any rule carries messages outward.
    pub fn has_out(&self) -> bool {
        !self.out.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, dir: Direction, local: &str, remote: &str) -> TopicRule {
        TopicRule {
            pattern: pattern.into(),
            direction: dir,
            qos: 1,
            local_prefix: local.into(),
            remote_prefix: remote.into(),
            coalesce: false,
        }
    }

    #[test]
    fn outbound_prefixes_are_swapped() {
        let rules = Rules::new(&[rule("data/#", Direction::Out, "local/", "meters/GW-0001/")]);
        let route = rules.outbound("local/data/x", QoS::ExactlyOnce).unwrap();
        assert_eq!(route.remote_topic, "meters/GW-0001/data/x");
        assert_eq!(route.qos, QoS::AtLeastOnce, "rule qos caps");
        assert_eq!(
            rules.outbound("local/data/x", QoS::AtMostOnce).unwrap().qos,
            QoS::AtMostOnce
        );
        assert!(rules.outbound("data/x", QoS::AtLeastOnce).is_none());
        assert!(rules.inbound("meters/GW-0001/data/x").is_none(), "out only");
    }

    #[test]
    fn inbound_prefixes_are_swapped_and_subscribed() {
        let rules = Rules::new(&[
            rule("cmd/#", Direction::In, "central/", "meters/GW-0001/"),
            rule("ota", Direction::Both, "", "meters/GW-0001/"),
        ]);
        assert_eq!(
            rules.subscriptions(),
            vec![
                ("meters/GW-0001/cmd/#".to_string(), QoS::AtLeastOnce),
                ("meters/GW-0001/ota".to_string(), QoS::AtLeastOnce)
            ]
        );
        assert_eq!(
            rules.inbound("meters/GW-0001/cmd/reboot").as_deref(),
            Some("central/cmd/reboot")
        );
        assert_eq!(rules.inbound("meters/GW-0001/ota").as_deref(), Some("ota"));
        assert_eq!(
            rules
                .outbound("ota", QoS::AtLeastOnce)
                .unwrap()
                .remote_topic,
            "meters/GW-0001/ota"
        );
        assert!(rules.inbound("meters/GW-0002/cmd/x").is_none());
    }

    #[test]
    fn first_matching_rule_wins() {
        let mut a = rule("a/#", Direction::Out, "", "first/");
        a.coalesce = true;
        let rules = Rules::new(&[a, rule("#", Direction::Out, "", "second/")]);
        let r = rules.outbound("a/1", QoS::AtLeastOnce).unwrap();
        assert_eq!((&*r.remote_topic, r.coalesce), ("first/a/1", true));
        let r = rules.outbound("b", QoS::AtLeastOnce).unwrap();
        assert_eq!((&*r.remote_topic, r.coalesce), ("second/b", false));
        assert!(rules.outbound("$SYS/x", QoS::AtLeastOnce).is_none());
    }
}
