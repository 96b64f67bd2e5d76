//! Migration 0006 on a database that already holds events: `migrate()` links them into
//! per-user chains in the order they were written, resumes a run that stopped part-way,
//! and leaves chains that later events extend.

use serde_json::json;
use sqlx::types::Json;
use tessera_adapters::testing::TestDatabase;
use tessera_adapters::{PgStore, SqliteStore};
use tessera_app::audit::{ChainHash, link};
use tessera_app::ports::{ChainedEvent, NewUser, SecurityEvent, Store};
use tessera_core::Email;
use tessera_core::event::EventKind;
use tessera_core::ids::{EventId, SessionId, UserId};
use tessera_core::password::PasswordHash;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const T0: OffsetDateTime = datetime!(2026-03-01 09:15:30.123456 UTC);
const CHAIN_MIGRATION: i64 = 6;

fn user() -> NewUser {
    let id = Uuid::new_v4();
    NewUser {
        id: UserId::from_uuid(id),
        email: Email::parse(&format!("{}@example.com", id.simple())).unwrap(),
        password_hash: PasswordHash::from_stored(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        ),
        created_at: T0,
    }
}

/// Events as an older release wrote them: two users interleaved, several in one
/// microsecond (their write order must decide), and one written after a later one.
fn legacy_events(a: UserId, b: UserId) -> Vec<SecurityEvent> {
    let at = |user, secs: i64, kind| SecurityEvent {
        id: EventId::from_uuid(Uuid::new_v4()),
        user_id: user,
        kind,
        at: T0 + Duration::seconds(secs),
        ip: Some("192.0.2.9".parse().unwrap()),
        user_agent: Some("Old/1.0".into()),
        session_id: Some(SessionId::from_uuid(Uuid::new_v4())),
        detail: json!({"z": 1, "a": [true, null]}),
    };
    vec![
        at(a, 0, EventKind::UserRegistered),
        at(b, 0, EventKind::UserRegistered),
        at(a, 5, EventKind::LoginSucceeded),
        at(a, 5, EventKind::NewDevice),
        at(b, 9, EventKind::LoginFailed),
        at(a, 3, EventKind::SessionRevoked),
    ]
}

/// `written`'s events of `user` in the order the migration must chain them.
fn expected_order(written: &[SecurityEvent], user: UserId) -> Vec<SecurityEvent> {
    let mut mine: Vec<(usize, SecurityEvent)> = written
        .iter()
        .cloned()
        .enumerate()
        .filter(|(_, e)| e.user_id == user)
        .collect();
    mine.sort_by_key(|(i, e)| (e.at, *i));
    mine.into_iter().map(|(_, e)| e).collect()
}

async fn assert_chained<S: Store>(
    store: &S,
    user: UserId,
    expected: &[SecurityEvent],
) -> Vec<ChainedEvent> {
    let chain = store.audit_events(user, 0, 100).await.unwrap();
    assert_eq!(
        chain.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        expected,
        "chained in write order"
    );
    let mut prev = ChainHash::GENESIS;
    for (i, e) in chain.iter().enumerate() {
        assert_eq!(e.index, i as i64 + 1);
        assert_eq!(e.prev_hash, prev);
        assert_eq!(e.hash, link(&prev, e.index, &e.event));
        prev = e.hash;
    }
    let bounds = store.audit_chains(None, 10).await.unwrap();
    let mine = bounds.iter().find(|b| b.user_id == user).unwrap();
    assert_eq!(
        (mine.head_index, mine.head_hash),
        (chain.len() as i64, prev)
    );
    chain
}

/// What the test needs besides the ports: the schema as it was, raw writes as an older
/// release made them, and the state a crash between link batches leaves.
trait Legacy: Store {
    async fn migrate_before_chain(&self);
    async fn migrate_all(&self);
    async fn insert_legacy(&self, e: &SecurityEvent);
    /// Unlinks `user`'s events from `index` on and puts the head on the event before (or
    /// removes the head when nothing stays linked).
    async fn unlink_from(&self, user: UserId, index: i64, head: ChainHash);
}

impl Legacy for PgStore {
    async fn migrate_before_chain(&self) {
        self.migrate_before(CHAIN_MIGRATION).await.unwrap();
    }
    async fn migrate_all(&self) {
        self.migrate().await.unwrap();
    }
    async fn insert_legacy(&self, e: &SecurityEvent) {
        sqlx::query(
            "INSERT INTO security_events (id, user_id, kind, at, ip, user_agent, session_id, \
             detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(e.id.as_uuid())
        .bind(e.user_id.as_uuid())
        .bind(e.kind.as_str())
        .bind(e.at)
        .bind(e.ip.map(|ip| ip.to_string()))
        .bind(e.user_agent.as_deref())
        .bind(e.session_id.as_ref().map(SessionId::as_uuid))
        .bind(Json(&e.detail))
        .execute(self.pool())
        .await
        .unwrap();
    }
    async fn unlink_from(&self, user: UserId, index: i64, head: ChainHash) {
        sqlx::query(
            "UPDATE security_events SET chain_index = NULL, prev_hash = NULL, hash = NULL \
             WHERE user_id = $1 AND chain_index >= $2",
        )
        .bind(user.as_uuid())
        .bind(index)
        .execute(self.pool())
        .await
        .unwrap();
        sqlx::query(if index == 1 {
            "DELETE FROM audit_chains WHERE user_id = $1 AND $2 = $2 AND $3 = $3"
        } else {
            "UPDATE audit_chains SET head_index = $2, head_hash = $3 WHERE user_id = $1"
        })
        .bind(user.as_uuid())
        .bind(index - 1)
        .bind(&head.0[..])
        .execute(self.pool())
        .await
        .unwrap();
    }
}

impl Legacy for SqliteStore {
    async fn migrate_before_chain(&self) {
        self.migrate_before(CHAIN_MIGRATION).await.unwrap();
    }
    async fn migrate_all(&self) {
        self.migrate().await.unwrap();
    }
    async fn insert_legacy(&self, e: &SecurityEvent) {
        sqlx::query(
            "INSERT INTO security_events (id, user_id, kind, at, ip, user_agent, session_id, \
             detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(e.id.as_uuid())
        .bind(e.user_id.as_uuid())
        .bind(e.kind.as_str())
        .bind(i64::try_from(e.at.unix_timestamp_nanos() / 1_000).unwrap())
        .bind(e.ip.map(|ip| ip.to_string()))
        .bind(e.user_agent.as_deref())
        .bind(e.session_id.as_ref().map(SessionId::as_uuid))
        .bind(Json(&e.detail))
        .execute(self.pool())
        .await
        .unwrap();
    }
    async fn unlink_from(&self, user: UserId, index: i64, head: ChainHash) {
        sqlx::query(
            "UPDATE security_events SET chain_index = NULL, prev_hash = NULL, hash = NULL \
             WHERE user_id = ?1 AND chain_index >= ?2",
        )
        .bind(user.as_uuid())
        .bind(index)
        .execute(self.pool())
        .await
        .unwrap();
        sqlx::query(if index == 1 {
            "DELETE FROM audit_chains WHERE user_id = ?1 AND ?2 = ?2 AND ?3 = ?3"
        } else {
            "UPDATE audit_chains SET head_index = ?2, head_hash = ?3 WHERE user_id = ?1"
        })
        .bind(user.as_uuid())
        .bind(index - 1)
        .bind(&head.0[..])
        .execute(self.pool())
        .await
        .unwrap();
    }
}

/// Events written before migration 0006 end up chained per user in write order; the state
/// a crash between batches leaves (one user not linked at all, another's last event not
/// yet) is finished by the next migrate with the very same hashes; a later event extends
/// the chain.
async fn events_written_before_the_chain_are_linked_by_migrate<S: Legacy>(store: S) {
    store.migrate_before_chain().await;
    let (a, b) = (user(), user());
    store.insert_user(&a).await.unwrap();
    store.insert_user(&b).await.unwrap();
    let written = legacy_events(a.id, b.id);
    for e in &written {
        store.insert_legacy(e).await;
    }
    store.migrate_all().await;
    let chain_a = assert_chained(&store, a.id, &expected_order(&written, a.id)).await;
    let chain_b = assert_chained(&store, b.id, &expected_order(&written, b.id)).await;

    let last = chain_a.len() as i64;
    store
        .unlink_from(a.id, last, chain_a[chain_a.len() - 2].hash)
        .await;
    store.unlink_from(b.id, 1, ChainHash::GENESIS).await;
    assert!(store.audit_events(b.id, 0, 100).await.unwrap().is_empty());
    store.migrate_all().await;
    assert_eq!(
        assert_chained(&store, a.id, &expected_order(&written, a.id)).await,
        chain_a
    );
    assert_eq!(
        assert_chained(&store, b.id, &expected_order(&written, b.id)).await,
        chain_b
    );
    store.migrate_all().await;
    assert_eq!(store.audit_events(a.id, 0, 100).await.unwrap(), chain_a);

    let next = SecurityEvent {
        at: T0 + Duration::minutes(1),
        id: EventId::from_uuid(Uuid::new_v4()),
        ..written[0].clone()
    };
    store.insert_event(&next, None).await.unwrap();
    let mut order = expected_order(&written, a.id);
    order.push(next);
    assert_chained(&store, a.id, &order).await;
}

#[tokio::test]
async fn sqlite_links_events_written_before_the_chain() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.unwrap();
    events_written_before_the_chain_are_linked_by_migrate(store).await;
}

#[tokio::test]
async fn postgres_links_events_written_before_the_chain() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let store = PgStore::connect(db.url()).await.unwrap();
    events_written_before_the_chain_are_linked_by_migrate(store).await;
}
