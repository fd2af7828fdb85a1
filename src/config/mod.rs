//! Configuration: one model ([`model::Config`]), loaded from TOML or UCI,
//! validated once, with errors that name file, line and key.

pub mod model;
pub mod mosquitto_import;
pub mod toml_file;
pub mod uci;
pub mod units;
pub mod validate;

pub use model::Config;
