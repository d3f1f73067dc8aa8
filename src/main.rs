fn main() -> std::process::ExitCode {
    nhacviec::cli::main()
}
