//! `skipblock`: the command-line entry point. Parsing lives in `cli`, each verb in its own module.

mod cli;

fn main() {
    // `skipblock … | head`: when the reader goes away, end quietly as Unix tools do. Rust ignores SIGPIPE,
    // so every `println!` after that would panic with "Broken pipe".
    #[cfg(unix)]
    // SAFETY: called first thing, before any thread starts; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    if let Err(error) = cli::run() {
        // One line: the error and its context chain ("cannot decode image 'x.jpg': ...").
        eprintln!("error: {}", format!("{error:#}").replace('\n', " "));
        std::process::exit(1);
    }
}
