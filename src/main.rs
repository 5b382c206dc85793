fn main() -> std::process::ExitCode {
    stampede::cli::main()
}
