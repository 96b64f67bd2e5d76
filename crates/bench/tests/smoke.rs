//! The load generator really drives the server: `tessera-bench --smoke` runs a short
//! refresh load on independent chains and fails unless the database's refresh
//! generations advanced by exactly the number of rotations it counted. Run on SQLite and
//! on the private PostgreSQL + Redis the tool starts itself. No timing is asserted.
//!
//! Needs the `tessera` binary of the same profile beside `tessera-bench`
//! (`cargo build -p tessera` first); without it the test is skipped loudly, or fails
//! under TESSERA_TEST_REQUIRE=all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

fn tessera_binary() -> Option<PathBuf> {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_tessera-bench"));
    let tessera = bench.parent()?.join("tessera");
    if tessera.is_file() {
        return Some(tessera);
    }
    let why = format!(
        "no tessera binary at {} (run `cargo build -p tessera` first)",
        tessera.display()
    );
    if std::env::var("TESSERA_TEST_REQUIRE").as_deref() == Ok("all") {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

fn smoke(backend: &str) {
    let Some(tessera) = tessera_binary() else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-bench"))
        .args(["--smoke", "--secs", "1", "--backend", backend, "--tessera"])
        .arg(&tessera)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tessera-bench --smoke --backend {backend} failed:\n{stdout}\n{stderr}"
    );
    // The tool's own verdict line names the counted rotations and the recorded ones.
    let line = stdout
        .lines()
        .find(|l| l.starts_with("smoke "))
        .unwrap_or_else(|| panic!("no verdict line in:\n{stdout}"));
    let answered: u64 = line
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let recorded: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(answered > 0, "{line}");
    assert_eq!(answered, recorded, "{line}");
}

#[test]
fn the_load_generator_drives_refreshes_the_sqlite_server_records() {
    smoke("sqlite");
}

#[test]
fn the_load_generator_drives_refreshes_the_postgres_server_records() {
    smoke("postgres");
}
