// hello.rs — a Rust program on std for wasm32-wasi (Debian's rustc and
// libstd-rust-dev-wasm32): arguments, environment, files and directories through
// std::fs in a granted directory, a sandbox escape that must fail, and the exit code.
use std::env;
use std::fs;
use std::io::{Read, Write};
use std::process;

fn main() {
    let args: Vec<String> = env::args().collect();
    println!("args: {:?}", &args[1..]);
    println!("GREETING={}", env::var("GREETING").unwrap_or_else(|_| "(unset)".into()));
    println!("PATH granted: {}", env::var("PATH").is_ok());

    fs::create_dir_all("/data/rs/a/b").expect("create_dir_all");
    let mut f = fs::File::create("/data/rs/a/b/file.txt").expect("create");
    write!(f, "written by rust").expect("write");
    drop(f);
    let mut s = String::new();
    fs::File::open("/data/rs/a/b/file.txt").expect("open").read_to_string(&mut s).expect("read");
    println!("read back: {}", s);
    fs::rename("/data/rs/a/b/file.txt", "/data/rs/moved.txt").expect("rename");
    let meta = fs::metadata("/data/rs/moved.txt").expect("metadata");
    println!("moved: {} bytes, is_file {}", meta.len(), meta.is_file());
    let mut names: Vec<String> = fs::read_dir("/data/rs").expect("read_dir")
        .map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    println!("listing: {:?}", names);
    match fs::read_to_string("/data/../outside.txt") {
        Ok(_) => println!("escape: READ THE OUTSIDE"),
        Err(e) => println!("escape refused: {}", e.raw_os_error().map_or(-1, |c| c)),
    }
    fs::remove_dir_all("/data/rs/a").expect("remove_dir_all");
    eprintln!("done");
    process::exit(5);
}
