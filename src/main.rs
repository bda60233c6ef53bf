//! The `theta` binary: parses the command line and hands over to [`theta::cli`].

fn main() -> std::process::ExitCode {
    theta::cli::main()
}
