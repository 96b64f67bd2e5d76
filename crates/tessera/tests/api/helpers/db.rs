//! The server's database read and written straight, for set-up and for checking what was
//! stored. [`Db`] is the one place the tests tell SQLite from Postgres: every helper goes
//! through it with the same statement, or names the statement of each dialect.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, FromRow, PgPool, SqlitePool};

use super::TestApp;

type Blob = Vec<u8>;

/// A connection pool to one test database, of its own dialect.
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code on the pool whatever its dialect (the types differ, the text not).
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

impl Db {
    /// The database of `app`.
    pub async fn open(app: &TestApp) -> Self {
        Self::connect(app.db.url()).await
    }

    /// The database at `url` (`sqlite:…` or `postgres:…`).
    pub async fn connect(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Self::Sqlite(SqlitePool::connect(url).await.unwrap())
        } else {
            Self::Postgres(PgPool::connect(url).await.unwrap())
        }
    }

    /// The statement written for this database's dialect.
    pub fn dialect<'a>(&self, sqlite: &'a str, postgres: &'a str) -> &'a str {
        match self {
            Self::Sqlite(_) => sqlite,
            Self::Postgres(_) => postgres,
        }
    }

    /// A user id as a literal of this dialect (a 16-byte blob in SQLite, a uuid in Postgres).
    pub fn uuid_literal(&self, id: uuid::Uuid) -> String {
        self.dialect(&format!("X'{}'", id.simple()), &format!("'{id}'"))
            .to_owned()
    }

    /// Runs one statement with text parameters; rows affected.
    pub async fn execute(&self, sql: &str, binds: &[&str]) -> u64 {
        on_pool!(self, pool => {
            let mut q = sqlx::query(AssertSqlSafe(sql.to_owned()));
            for b in binds {
                q = q.bind(b.to_string());
            }
            q.execute(pool).await.unwrap().rows_affected()
        })
    }

    /// [`execute`](Self::execute) of the statement written for this dialect.
    pub async fn execute_each(&self, sqlite: &str, postgres: &str, binds: &[&str]) -> u64 {
        self.execute(self.dialect(sqlite, postgres), binds).await
    }

    /// Every row of a query with text parameters.
    pub async fn rows<T>(&self, sql: &str, binds: &[&str]) -> Vec<T>
    where
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        on_pool!(self, pool => {
            let mut q = sqlx::query_as::<_, T>(AssertSqlSafe(sql.to_owned()));
            for b in binds {
                q = q.bind(b.to_string());
            }
            q.fetch_all(pool).await.unwrap()
        })
    }

    /// Rows of `from` (a table, with any `WHERE` after it).
    pub async fn count(&self, from: &str) -> i64 {
        let rows: Vec<(i64,)> = self
            .rows(&format!("SELECT COUNT(*) FROM {from}"), &[])
            .await;
        rows[0].0
    }
}

impl TestApp {
    /// [`sql`](Self::sql) without waiting for the server to notice.
    pub async fn sql_unwatched(&self, statement: &str) {
        Db::open(self).await.execute(statement, &[]).await;
    }

    /// Gives a user a role straight in the database (the admin API needs an admin first).
    pub async fn grant_role(&self, user_id: &str, role: &str) {
        let id = uuid::Uuid::parse_str(user_id).unwrap();
        let literal = Db::open(self).await.uuid_literal(id);
        self.sql(&format!(
            "INSERT INTO user_roles (user_id, role) VALUES ({literal}, '{role}')"
        ))
        .await;
    }

    /// Every text and blob column of the user's TOTP row, as lossy text.
    pub async fn raw_totp_row(&self) -> String {
        let rows: Vec<(Option<Blob>, Option<Blob>)> = Db::open(self)
            .await
            .rows("SELECT sealed_secret, pending_sealed FROM user_totp", &[])
            .await;
        assert!(!rows.is_empty(), "no TOTP row stored");
        rows.into_iter()
            .flat_map(|(sealed, pending)| [sealed, pending])
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The client IPs recorded on events of one kind, oldest first.
    pub async fn event_ips(&self, kind: &str) -> Vec<String> {
        let rows: Vec<(String,)> = Db::open(self)
            .await
            .rows(
                "SELECT ip FROM security_events WHERE kind = $1 ORDER BY at",
                &[kind],
            )
            .await;
        rows.into_iter().map(|(ip,)| ip).collect()
    }

    /// Counts recorded security events of one kind, straight from the database.
    pub async fn count_events(&self, kind: &str) -> i64 {
        let rows: Vec<(i64,)> = Db::open(self)
            .await
            .rows(
                "SELECT COUNT(*) FROM security_events WHERE kind = $1",
                &[kind],
            )
            .await;
        rows[0].0
    }

    /// Rows of `table`, straight from the database.
    pub async fn count_rows(&self, table: &str) -> i64 {
        Db::open(self).await.count(table).await
    }
}
