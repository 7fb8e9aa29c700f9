//! `skipblock`: the command-line entry point. Parsing lives in `cli`, each verb in its own module.

mod cli;

fn main() {
    if let Err(error) = cli::run() {
        // One line: the error and its context chain ("cannot decode image 'x.jpg': ...").
        eprintln!("error: {}", format!("{error:#}").replace('\n', " "));
        std::process::exit(1);
    }
}
