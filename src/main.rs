//! The thin binary: parse the command line, run, exit with the right code.

use clap::Parser;
use clap::error::ErrorKind;

fn main() {
    let cli = match carbontop::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => {
                // One line, naming the flag and the value: clap's first line without its prefix.
                let text = e.render().to_string();
                let first = text.lines().next().unwrap_or("invalid command line");
                carbontop::errln!("carbontop: {}", first.trim_start_matches("error: "));
                std::process::exit(2);
            }
        },
    };
    match carbontop::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            carbontop::app::say(&e.to_string());
            std::process::exit(e.exit_code());
        }
    }
}
