//! The connection to the central broker: own MQTT state machine over mqttbytes and tokio-rustls.
