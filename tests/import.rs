//! `edgemq import-mosquitto` on real Mosquitto configs: the seed stories'
//! configs and Debian's default, run through the built binary. Every output
//! must load as an edgemq `Config`, and the facts that matter must survive.

use std::path::Path;

use edgemq::config::mosquitto_import::CHECK_REFUSES;

use edgemq::config::model::{Direction, Protocol};

#[path = "import_support/cli.rs"]
mod cli;
use cli::{fixture_dirs, import, import_file, not_carried, run};

#[path = "import_support/gateway.rs"]
mod gateway;
#[path = "import_support/seeds.rs"]
mod seeds;

#[path = "import_support/real_mosquitto.rs"]
mod against_real_mosquitto;
