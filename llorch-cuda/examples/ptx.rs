//! Prints the kernels' PTX for an architecture (default `sm_90a`), for reading what
//! the compiler made of them: `cargo run -p llorch-cuda --example ptx -- sm_90a`.
#![allow(clippy::print_stderr)]

fn main() {
    let arch = std::env::args().nth(1).unwrap_or_else(|| "sm_90a".into());
    match llorch_cuda::compile::compile(&llorch_cuda::kernels::source(), &arch) {
        Ok(ptx) => print!("{ptx}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
