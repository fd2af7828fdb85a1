//! Running the built binary on fixtures, shared by the import tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edgemq::config::Config;

/// The fixture tree: one directory per config, each with a mosquitto.conf.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mosquitto");

/// Runs the built `edgemq import-mosquitto FILE`.
pub fn run(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgemq"))
        .arg("import-mosquitto")
        .arg(file)
        .output()
        .expect("run edgemq")
}

/// Imports fixture `name`/mosquitto.conf; returns the TOML text and the loaded config.
pub fn import(name: &str) -> (String, Config) {
    import_file(&Path::new(FIXTURES).join(name).join("mosquitto.conf"))
}

/// Imports `file`; asserts exit 0 and that the output loads as a `Config`.
pub fn import_file(file: &Path) -> (String, Config) {
    let out = run(file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}: exit {:?}: {stderr}",
        file.display(),
        out.status
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    let config = toml::from_str::<Config>(&text)
        .unwrap_or_else(|e| panic!("{}: output does not load: {e}\n{text}", file.display()));
    (text, config)
}

/// Every fixture directory holding a mosquitto.conf.
pub fn fixture_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(FIXTURES)
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("mosquitto.conf").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// The `# not carried over` comment lines.
pub fn not_carried(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("# not carried over: "))
        .collect()
}
