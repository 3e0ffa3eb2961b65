use std::process::ExitCode;

fn main() -> ExitCode {
    yorisoi::cli::main()
}
