//! The `scoregen` command-line tool: parses arguments and calls the library.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    // On rayon's pool, with freed buffers kept (`scoregen::runtime`).
    if let Err(e) = scoregen::runtime::run(|| cli::run(args)) {
        eprintln!("error: {}", message(&e));
        std::process::exit(1);
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text an outer message
/// already contains (library errors print their I/O source themselves).
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
