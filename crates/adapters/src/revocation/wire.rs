//! The text of one revocation message, as it travels on the Redis channel:
//!
//! ```text
//!   <session id> <session id> user:<user id> …      (any order, space-separated)
//! ```
//!
//! Session ids go bare, as they did before messages could name users, so a message naming
//! only sessions reads the same on every version. A user id carries `user:`, which a node
//! that knows only session ids cannot parse: such a node then flushes its whole cache
//! (which is what every version does with a message it cannot read) rather than ignore a
//! change it cannot name. Ids only: never a token.

use tessera_app::ports::Changes;
use tessera_core::ids::{SessionId, UserId};

const USER: &str = "user:";

/// The message's text; empty when there is nothing to say.
pub(crate) fn encode(changes: &Changes<'_>) -> String {
    let sessions = changes.sessions.iter().map(SessionId::to_string);
    let users = changes.users.iter().map(|u| format!("{USER}{u}"));
    sessions.chain(users).collect::<Vec<_>>().join(" ")
}

/// What a message names, or `None` when any part of it is unreadable (the caller then
/// trusts nothing it cached).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) sessions: Vec<SessionId>,
    pub(crate) users: Vec<UserId>,
}

pub(crate) fn decode(payload: &str) -> Option<Decoded> {
    let mut decoded = Decoded::default();
    for word in payload.split_whitespace() {
        match word.strip_prefix(USER) {
            Some(user) => decoded.users.push(user.parse().ok()?),
            None => decoded.sessions.push(word.parse().ok()?),
        }
    }
    Some(decoded)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sid(n: u8) -> SessionId {
        SessionId::from_random([n; 16])
    }

    fn uid(n: u8) -> UserId {
        UserId::from_random([n; 16])
    }

    #[test]
    fn sessions_and_users_read_back_as_sent() {
        let (sessions, users) = ([sid(1), sid(2)], [uid(3)]);
        let text = encode(&Changes {
            sessions: &sessions,
            users: &users,
        });
        assert_eq!(
            decode(&text),
            Some(Decoded {
                sessions: sessions.to_vec(),
                users: users.to_vec(),
            })
        );
        assert!(text.contains(&format!("user:{}", uid(3))), "{text}");
    }

    #[test]
    fn a_message_naming_only_sessions_is_the_old_format() {
        let sessions = [sid(1), sid(2)];
        let text = encode(&Changes {
            sessions: &sessions,
            users: &[],
        });
        assert_eq!(text, format!("{} {}", sid(1), sid(2)));
    }

    #[test]
    fn a_node_that_knows_only_session_ids_cannot_read_a_user_id() {
        // What a node from before user views does with each word: parse it as a session id
        // (and, failing, flush everything it cached).
        let users = [uid(3)];
        let text = encode(&Changes {
            sessions: &[],
            users: &users,
        });
        let old: Result<Vec<SessionId>, _> = text.split_whitespace().map(str::parse).collect();
        assert!(old.is_err(), "{text}");
    }

    #[test]
    fn any_unreadable_word_makes_the_whole_message_unreadable() {
        for text in [
            format!("{} nonsense", sid(1)),
            format!("user:{} user:nonsense", uid(1)),
            "user:".to_owned(),
            format!("group:{}", uid(1)),
        ] {
            assert_eq!(decode(&text), None, "{text}");
        }
        assert_eq!(decode(""), Some(Decoded::default()));
    }
}
