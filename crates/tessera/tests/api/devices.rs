//! The device dashboard API: listing, remote revocation, revoke-others, security events.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{PASSWORD, TestApp, assert_cut_off, assert_problem, s};

const FIREFOX_MAC: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// Signs `email` in on `device` with a given user agent.
async fn login_as(app: &TestApp, email: &str, device: &str, ua: &str) -> Value {
    let res = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("user-agent", ua)
        .json(&json!({"email": email, "password": PASSWORD, "device_id": device, "device_name": format!("{device} name")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn sessions(app: &TestApp, access_token: &str) -> Vec<Value> {
    let res = app.get_auth("/v1/sessions", access_token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["sessions"].as_array().unwrap().clone()
}

both_backends!(
    the_dashboard_lists_live_sessions_newest_first_with_the_current_one_marked,
    |app: TestApp| async move {
        app.register("ana@example.com", PASSWORD).await;
        let laptop = login_as(&app, "ana@example.com", "laptop", FIREFOX_MAC).await;
        let phone = login_as(&app, "ana@example.com", "phone", SAFARI_IPHONE).await;
        app.clock.advance(time::Duration::seconds(60));
        // The laptop refreshes last, so it is the most recently seen.
        let laptop: Value = app
            .refresh(&s(&laptop, "refresh_token"))
            .await
            .json()
            .await
            .unwrap();

        let list = sessions(&app, &s(&phone, "access_token")).await;
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["device_id"], "laptop");
        assert_eq!(list[0]["device_label"], "Firefox on macOS");
        assert_eq!(list[0]["user_agent"], FIREFOX_MAC);
        assert_eq!(list[0]["device_name"], "laptop name");
        assert_eq!(list[0]["current"], false);
        assert_eq!(list[1]["device_id"], "phone");
        assert_eq!(list[1]["device_label"], "Safari on iPhone");
        assert_eq!(list[1]["current"], true);
        assert_eq!(list[1]["session_id"], phone["session_id"]);
        for row in &list {
            assert_eq!(row["ip"], "127.0.0.1");
            for field in ["created_at", "last_seen_at", "expires_at"] {
                let t = s(row, field);
                assert!(
                    time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                        .is_ok(),
                    "{field}: {t}"
                );
                assert!(t.ends_with('Z'), "UTC: {t}");
            }
            assert!(row["mfa_verified_at"].is_null());
        }
        assert!(s(&list[0], "last_seen_at") > s(&list[1], "last_seen_at"));
        let _ = laptop;
    }
);

both_backends!(
    revoking_a_device_cuts_off_its_refresh_and_access_tokens,
    |app: TestApp| async move {
        app.register("ana@example.com", PASSWORD).await;
        let laptop = login_as(&app, "ana@example.com", "laptop", FIREFOX_MAC).await;
        let phone = login_as(&app, "ana@example.com", "phone", SAFARI_IPHONE).await;
        let res = app
            .client
            .delete(app.url(&format!("/v1/sessions/{}", s(&phone, "session_id"))))
            .bearer_auth(s(&laptop, "access_token"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_cut_off(&app, &phone).await;
        let list = sessions(&app, &s(&laptop, "access_token")).await;
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["current"], true);

        // The event names the revoked session, not the one that revoked it.
        let events: Value = app
            .get_auth("/v1/security-events", &s(&laptop, "access_token"))
            .await
            .json()
            .await
            .unwrap();
        let revoked = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "session_revoked")
            .unwrap();
        assert_eq!(revoked["session_id"], phone["session_id"]);
        assert_eq!(revoked["detail"]["reason"], "revoked_by_user");

        // Already revoked: nothing left to revoke.
        let res = app
            .client
            .delete(app.url(&format!("/v1/sessions/{}", s(&phone, "session_id"))))
            .bearer_auth(s(&laptop, "access_token"))
            .send()
            .await
            .unwrap();
        assert_problem(res, 404, "not_found").await;
    }
);

both_backends!(
    another_users_or_an_unknown_session_is_not_found,
    |app: TestApp| async move {
        let (_, mine) = app.signed_in_user("d1").await;
        let (_, theirs) = app.signed_in_user("d1").await;
        for id in [
            s(&theirs, "session_id"),
            uuid::Uuid::new_v4().to_string(),
            "not-a-uuid".to_owned(),
        ] {
            let res = app
                .client
                .delete(app.url(&format!("/v1/sessions/{id}")))
                .bearer_auth(s(&mine, "access_token"))
                .send()
                .await
                .unwrap();
            assert_problem(res, 404, "not_found").await;
        }
        // Their session is untouched.
        assert_eq!(
            app.get_auth("/v1/me", &s(&theirs, "access_token"))
                .await
                .status(),
            StatusCode::OK
        );
    }
);

both_backends!(
    signing_out_all_other_devices_keeps_only_this_one,
    |app: TestApp| async move {
        app.register("ana@example.com", PASSWORD).await;
        let a = login_as(&app, "ana@example.com", "a", FIREFOX_MAC).await;
        let b = login_as(&app, "ana@example.com", "b", SAFARI_IPHONE).await;
        let c = login_as(&app, "ana@example.com", "c", "curl/8.5.0").await;
        let res = app
            .client
            .post(app.url("/v1/sessions/revoke-others"))
            .bearer_auth(s(&a, "access_token"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.json::<Value>().await.unwrap(), json!({"revoked": 2}));
        for other in [&b, &c] {
            assert_cut_off(&app, other).await;
        }
        assert_eq!(
            app.get_auth("/v1/me", &s(&a, "access_token"))
                .await
                .status(),
            StatusCode::OK
        );
        assert_eq!(sessions(&app, &s(&a, "access_token")).await.len(), 1);
    }
);

both_backends!(
    security_events_are_the_callers_own_newest_first_and_bounded,
    |app: TestApp| async move {
        let (email, login) = app.signed_in_user("d1").await;
        let at = s(&login, "access_token");
        app.login(&email, "wrong password", "d2").await;
        app.signed_in_user("d9").await; // someone else's events must not show
        let body: Value = app
            .get_auth("/v1/security-events", &at)
            .await
            .json()
            .await
            .unwrap();
        let events = body["events"].as_array().unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "login_failed",
                "new_device",
                "login_succeeded",
                "user_registered"
            ]
        );
        let first = &events[0];
        assert_eq!(first["ip"], "127.0.0.1");
        assert!(uuid::Uuid::parse_str(first["id"].as_str().unwrap()).is_ok());
        assert!(s(first, "at").ends_with('Z'));
        assert_eq!(events[2]["session_id"], login["session_id"]);

        let body: Value = app
            .get_auth("/v1/security-events?limit=2", &at)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["events"].as_array().unwrap().len(), 2);
        for bad in ["0", "201", "ten", "1&limit=2"] {
            let res = app
                .get_auth(&format!("/v1/security-events?limit={bad}"), &at)
                .await;
            let problem = assert_problem(res, 400, "invalid_request").await;
            assert!(problem["detail"].as_str().unwrap().contains("limit"));
        }
    }
);

both_backends!(
    a_device_name_that_could_spoof_the_device_list_is_refused,
    |app: TestApp| async move {
        let (email, _) = app.signed_in_user("d1").await;
        for spoof in [
            "Ana's \u{202E}enohp",
            "Ana's\u{200B}phone",
            "\u{2066}Ana's phone\u{2069}",
            "phone\u{0007}",
        ] {
            let res = app
                .post(
                    "/v1/auth/login",
                    json!({"email": email, "password": PASSWORD, "device_id": "d2", "device_name": spoof}),
                )
                .await;
            let problem = assert_problem(res, 400, "invalid_request").await;
            assert!(s(&problem, "detail").contains("device_name"), "{problem}");
        }
        // Nothing was opened: only the first sign-in happened.
        assert_eq!(app.count_events("login_succeeded").await, 1);
    }
);
