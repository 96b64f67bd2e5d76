//! Refresh rotation, reuse detection, the retry window, expiry and logout.

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Options, TestApp, assert_problem, s};

both_backends!(
    reused_refresh_token_revokes_the_session,
    |app: TestApp| async move {
        let (_, login) = app.signed_in_user("d1").await;
        let r1 = s(&login, "refresh_token");
        let res = app.refresh(&r1).await;
        assert_eq!(res.status(), StatusCode::OK);
        let rotated: Value = res.json().await.unwrap();
        let r2 = s(&rotated, "refresh_token");
        assert_ne!(r1, r2);
        assert_eq!(rotated["session_id"], login["session_id"]);

        assert_problem(app.refresh(&r1).await, 401, "refresh_token_reused").await;
        assert_problem(app.refresh(&r2).await, 401, "session_revoked").await;
        for token in [s(&login, "access_token"), s(&rotated, "access_token")] {
            assert_problem(app.get_auth("/v1/me", &token).await, 401, "session_revoked").await;
        }
        assert_eq!(app.count_events("refresh_token_reused").await, 1);
    }
);

both_backends!(
    of_sixteen_concurrent_refreshes_exactly_one_succeeds,
    |app: TestApp| async move {
        let (_, login) = app.signed_in_user("d1").await;
        let r1 = s(&login, "refresh_token");
        let app = std::sync::Arc::new(app);
        let calls = (0..16).map(|_| {
            let app = app.clone();
            let r1 = r1.clone();
            tokio::spawn(async move { app.refresh(&r1).await.status() })
        });
        let statuses: Vec<StatusCode> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == StatusCode::OK).count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED)
        );
    }
);

both_backends!(
    unknown_or_malformed_refresh_tokens_are_invalid,
    |app: TestApp| async move {
        assert_problem(app.refresh("garbage").await, 401, "invalid_refresh_token").await;
        let unknown = format!(
            "rt_{}",
            data_encoding::BASE64URL_NOPAD.encode(&crate::helpers::rand32())
        );
        assert_problem(app.refresh(&unknown).await, 401, "invalid_refresh_token").await;
        let res = app.post("/v1/auth/refresh", serde_json::json!({})).await;
        assert_problem(res, 400, "invalid_request").await;
    }
);

/// A server that hands the same successor back to a retry within 30 seconds.
fn with_retry_window() -> Options {
    Options {
        retry_window_secs: 30,
        ..Options::default()
    }
}

both_backends!(
    retry_window_returns_the_identical_successor_until_it_is_used,
    with_retry_window(),
    |app: TestApp| async move {
        let (_, login) = app.signed_in_user("d1").await;
        let r1 = s(&login, "refresh_token");
        let first: Value = app.refresh(&r1).await.json().await.unwrap();
        let r2 = s(&first, "refresh_token");

        // A lost response is retried: the very same successor comes back.
        app.clock.advance(time::Duration::seconds(10));
        let res = app.refresh(&r1).await;
        assert_eq!(res.status(), StatusCode::OK);
        let again: Value = res.json().await.unwrap();
        assert_eq!(s(&again, "refresh_token"), r2);
        assert_eq!(again["session_id"], login["session_id"]);

        // Once the successor has been used, the old token is reuse.
        let third: Value = app.refresh(&r2).await.json().await.unwrap();
        assert_problem(app.refresh(&r1).await, 401, "refresh_token_reused").await;
        assert_problem(
            app.refresh(&s(&third, "refresh_token")).await,
            401,
            "session_revoked",
        )
        .await;
    }
);

both_backends!(
    retry_window_past_its_length_counts_as_reuse,
    with_retry_window(),
    |app: TestApp| async move {
        let (_, login) = app.signed_in_user("d1").await;
        let r1 = s(&login, "refresh_token");
        assert_eq!(app.refresh(&r1).await.status(), StatusCode::OK);
        app.clock.advance(time::Duration::seconds(31));
        assert_problem(app.refresh(&r1).await, 401, "refresh_token_reused").await;
    }
);

both_backends!(
    an_idle_session_expires_and_activity_keeps_it_alive,
    |app: TestApp| async move {
        let (_, login) = app.signed_in_user("d1").await;
        let mut rt = s(&login, "refresh_token");
        for _ in 0..3 {
            app.clock.advance(time::Duration::days(6));
            let res = app.refresh(&rt).await;
            assert_eq!(res.status(), StatusCode::OK);
            rt = s(&res.json::<Value>().await.unwrap(), "refresh_token");
        }
        app.clock.advance(time::Duration::days(7));
        assert_problem(app.refresh(&rt).await, 401, "session_expired").await;
    }
);

both_backends!(
    a_session_ends_at_its_absolute_lifetime_despite_activity,
    |app: TestApp| async move {
        let (_, login) = app.signed_in_user("d1").await;
        let mut rt = s(&login, "refresh_token");
        // Refreshes on days 6, 12, 18, 24 and 29 keep it from idling out...
        for days in [6, 6, 6, 6, 5] {
            app.clock.advance(time::Duration::days(days));
            let res = app.refresh(&rt).await;
            assert_eq!(res.status(), StatusCode::OK);
            rt = s(&res.json::<Value>().await.unwrap(), "refresh_token");
        }
        // ...but day 30 is the end, though the last refresh was only a day ago.
        app.clock.advance(time::Duration::days(1));
        assert_problem(app.refresh(&rt).await, 401, "session_expired").await;
    }
);

both_backends!(logout_revokes_the_session, |app: TestApp| async move {
    let (_, login) = app.signed_in_user("d1").await;
    let at = s(&login, "access_token");
    let res = app
        .client
        .post(app.url("/v1/auth/logout"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(app.get_auth("/v1/me", &at).await, 401, "session_revoked").await;
    assert_problem(
        app.refresh(&s(&login, "refresh_token")).await,
        401,
        "session_revoked",
    )
    .await;
});
