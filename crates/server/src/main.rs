//! The `ordo` binary: everything lives in the library; this only runs the CLI.

// mimalloc: measurably less time in the allocator than glibc's under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ordo::cli::main()
}
