//! `tributary-runner`: the binary in each task's Job. Reads the input from `TRIBUTARY_INPUT`
//! (or `--input FILE`), credentials from the bound environment variables, writes the result to
//! the termination log and exits 0 (succeeded), 75 (retryable) or 65 (permanent).

use tributary_core::contract::{INPUT_ENV, RunnerInput, TERMINATION_MESSAGE_PATH};
use tributary_core::lineage::exit_code;
use tributary_runner::{Error, Progress, Secrets, execute, failure, init_json_logs};

const USAGE: &str = "usage: tributary-runner [--input FILE] [--termination-log PATH]
  Runs the task or connection check given as JSON in $TRIBUTARY_INPUT (or FILE).
  The result is written to PATH (default $TRIBUTARY_TERMINATION_LOG or /dev/termination-log).";

fn main() {
    init_json_logs();
    let mut input_file = None;
    let mut termination_log = std::env::var("TRIBUTARY_TERMINATION_LOG")
        .unwrap_or_else(|_| TERMINATION_MESSAGE_PATH.to_string());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--input" => input_file = args.next(),
            "--termination-log" => termination_log = args.next().unwrap_or(termination_log),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                std::process::exit(64);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let result = runtime.block_on(async {
        let input = match read_input(input_file.as_deref()) {
            Ok(input) => input,
            Err(e) => return failure(&e),
        };
        let secrets = match Secrets::from_env(&input) {
            Ok(s) => s,
            Err(e) => return failure(&e),
        };
        execute(&input, &secrets, Progress::default()).await
    });
    let message = result.to_termination_message();
    if let Err(e) = std::fs::write(&termination_log, &message) {
        // The exit code still carries the outcome; the operator falls back to it.
        tracing::warn!(path = %termination_log, error = %e, "could not write the termination log");
    }
    println!("{message}");
    std::process::exit(exit_code(result.outcome));
}

fn read_input(file: Option<&str>) -> Result<RunnerInput, Error> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Error::permanent(format!("read {path}: {e}")))?,
        None => std::env::var(INPUT_ENV)
            .map_err(|_| Error::permanent(format!("{INPUT_ENV} is not set")))?,
    };
    serde_json::from_str(&text).map_err(|e| Error::permanent(format!("runner input: {e}")))
}
