//! The two migration folders stay in step: same file names, forward-only numbering.

use std::collections::BTreeSet;
use std::path::Path;

use tessera_adapters::SqliteStore;
use tessera_adapters::testing::TestDatabase;

fn names(dialect: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(dialect);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn both_dialects_have_the_same_migration_file_names() {
    let sqlite = names("sqlite");
    let postgres = names("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, postgres,
        "migrations/sqlite and migrations/postgres must match"
    );
}

#[test]
fn migration_files_are_named_number_verb_object() {
    for name in names("sqlite") {
        let (number, rest) = name
            .split_once('_')
            .unwrap_or_else(|| panic!("{name}: no '_'"));
        assert!(
            number.len() == 4 && number.bytes().all(|b| b.is_ascii_digit()),
            "{name}: must start with a four-digit number"
        );
        let stem = rest
            .strip_suffix(".sql")
            .unwrap_or_else(|| panic!("{name}: must end in .sql"));
        assert!(
            stem.contains('_') && stem.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{name}: must be NNNN_verb_object.sql"
        );
    }
}

#[tokio::test]
async fn migrating_twice_is_harmless_and_a_store_reopens_its_file() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::open(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    let again = SqliteStore::open(db.url()).await.unwrap();
    tessera_app::ports::Store::ping(&again).await.unwrap();
    again.close().await;
}
