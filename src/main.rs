//! The `edgemq` binary: argument parsing and dispatch; the work lives in `edgemq::cli`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use edgemq::cli;

const USAGE: &str = "usage:
  edgemq run [-c PATH]              run the broker and its bridges in the foreground
  edgemq check [-c PATH]            validate a config file
  edgemq passwd [-D] FILE USER      add, update (-D: delete) a user in a password file
  edgemq status [-c PATH] [--json]  print each bridge's state, read from the running daemon
  edgemq import-mosquitto FILE      print the edgemq TOML equivalent of a mosquitto.conf
  edgemq --version";

fn main() -> ExitCode {
    match parse(lexopt::Parser::from_env()) {
        Ok(cmd) => cmd(),
        Err(e) => {
            eprintln!("edgemq: {e}\n{USAGE}");
            ExitCode::from(1)
        }
    }
}

type Command = Box<dyn FnOnce() -> ExitCode>;

fn parse(mut p: lexopt::Parser) -> Result<Command, lexopt::Error> {
    use lexopt::prelude::*;
    let sub = match p.next()? {
        Some(Value(v)) => v.string()?,
        Some(Long("version")) | Some(Short('V')) => {
            return Ok(Box::new(|| {
                println!("edgemq {}", env!("CARGO_PKG_VERSION"));
                ExitCode::SUCCESS
            }));
        }
        None => return Err("no command given".into()),
        Some(Long("help")) | Some(Short('h')) => {
            return Ok(Box::new(|| {
                println!("{USAGE}");
                ExitCode::SUCCESS
            }));
        }
        Some(other) => return Err(other.unexpected()),
    };
    let mut config: Option<PathBuf> = None;
    let mut delete = false;
    let mut json = false;
    let mut positional: Vec<String> = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Short('c') | Long("config") => config = Some(p.value()?.into()),
            Short('D') if sub == "passwd" => delete = true,
            Long("json") if sub == "status" => json = true,
            Value(v) => positional.push(v.string()?),
            other => return Err(other.unexpected()),
        }
    }
    let n = positional.len();
    let want = |k: usize| -> Result<(), lexopt::Error> {
        if n == k {
            Ok(())
        } else {
            Err(format!("{sub}: expected {k} argument(s), got {n}").into())
        }
    };
    Ok(match sub.as_str() {
        "run" => want(0).map(|_| -> Command { Box::new(move || cli::run::main(config)) })?,
        "check" => want(0).map(|_| -> Command { Box::new(move || cli::check::main(config)) })?,
        "status" => {
            want(0).map(|_| -> Command { Box::new(move || cli::status::main(config, json)) })?
        }
        "passwd" => {
            want(2)?;
            let user = positional.pop().unwrap_or_default();
            let file = PathBuf::from(positional.pop().unwrap_or_default());
            Box::new(move || cli::passwd::main(&file, &user, delete))
        }
        "import-mosquitto" => {
            want(1)?;
            let file = PathBuf::from(positional.pop().unwrap_or_default());
            Box::new(move || cli::import::main(&file))
        }
        other => return Err(format!("unknown command {other:?}").into()),
    })
}
