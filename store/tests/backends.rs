//! The store against a real SQLite file, or a real PostgreSQL database when the suite runs on
//! PostgreSQL (`MANDATE_TEST_PG_URL`, see `mandate-testkit`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mandate_store::{
    AgentFilter, AgentStatus, AuditEvent, CaRole, CertStatus, Decider, MandateStatus, NewAgent,
    NewApiKey, NewCaCert, NewCertificate, Role, Store, StoreError,
};
use serde_json::json;

struct Db {
    _dir: tempfile::TempDir,
    url: String,
}

async fn open() -> (Db, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = if mandate_testkit::on_postgres() {
        mandate_testkit::database_url(dir.path())
    } else {
        format!("sqlite://{}", dir.path().join("sub/m.db").display())
    };
    let store = Store::open(&url).await.unwrap();
    (Db { _dir: dir, url }, store)
}

fn ev(action: &str, subject: &str) -> AuditEvent {
    AuditEvent::new("test", action, subject, json!({}))
}

fn ca_cert(role: CaRole, key: &str) -> NewCaCert {
    NewCaCert {
        key_id: key.into(),
        key_label: format!("label-{key}"),
        key_kind: "ec-p256".into(),
        role,
        spki: vec![1, 2, 3],
        subject: format!("CN={key}"),
        serial: key.into(),
        der: key.as_bytes().to_vec(),
        sha256: format!("sha-{key}"),
        ski: vec![9],
        not_before: 0,
        not_after: 10,
    }
}

/// A decider of an organization that needs one approval.
fn one(key_id: &str) -> Decider<'_> {
    Decider {
        key_id,
        person_id: None,
        approvals_required: 1,
        retirement: mandate_store::Retirement::AtOnce,
    }
}

fn admin_key() -> NewApiKey {
    NewApiKey {
        id: "admin1".into(),
        secret_hash: vec![0; 32],
        role: Role::Admin,
        agent_id: None,
        person_id: Some("admin".into()),
        label: "bootstrap".into(),
        created_by: None,
    }
}

async fn init_ca(store: &Store) -> i64 {
    store
        .insert_ca_hierarchy(
            &ca_cert(CaRole::Root, "aa"),
            &ca_cert(CaRole::Intermediate, "bb"),
            &admin_key(),
            &[ev("ca.initialised", "ca")],
        )
        .await
        .unwrap();
    store
        .active_ca(CaRole::Intermediate)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// A reservation of `serial` for bot-1 (mandate version 1), issued by `issuer`.
fn new_cert(serial: &str, issuer: i64) -> NewCertificate {
    NewCertificate {
        serial: serial.into(),
        agent_id: "bot-1".into(),
        mandate_version: 1,
        issuer_id: issuer,
        tbs: vec![1],
        not_before: 1,
        not_after: 2,
        requested_by: "op1".into(),
        profile: None,
    }
}

/// Approves version 1 of agent `id` (certificates are reserved only for approved agents).
async fn approve_v1(store: &Store, id: &str) {
    store
        .decide_mandate(
            id,
            1,
            true,
            &one("comp1"),
            None,
            &ev("mandate.approved", id),
        )
        .await
        .unwrap();
}

fn agent(id: &str) -> NewAgent {
    NewAgent {
        id: id.into(),
        name: "Bot".into(),
        organization: "acme".into(),
        created_by: "op1".into(),
        mandate_json: r#"{"agentId":"x"}"#.into(),
    }
}

#[tokio::test]
async fn ca_hierarchy_is_stored_once() {
    let (_d, store) = open().await;
    assert!(!store.ca_initialised().await.unwrap());
    init_ca(&store).await;
    assert!(store.ca_initialised().await.unwrap());
    let again = store
        .insert_ca_hierarchy(
            &ca_cert(CaRole::Root, "cc"),
            &ca_cert(CaRole::Intermediate, "dd"),
            &admin_key(),
            &[],
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(store.ca_certificates().await.unwrap().len(), 2);
    assert_eq!(
        store.api_key("admin1").await.unwrap().unwrap().role,
        Role::Admin
    );
}

#[tokio::test]
async fn agent_lifecycle_and_versions() {
    let (_d, store) = open().await;
    init_ca(&store).await;
    let a = store
        .create_agent(&agent("bot-1"), &ev("agent.registered", "bot-1"))
        .await
        .unwrap();
    assert_eq!(a.status, AgentStatus::PendingApproval);
    let dup = store
        .create_agent(&agent("bot-1"), &ev("agent.registered", "bot-1"))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert!(
        store
            .agent_with_approved_mandate("bot-1")
            .await
            .unwrap()
            .unwrap()
            .1
            .is_none()
    );

    store
        .decide_mandate(
            "bot-1",
            1,
            true,
            &one("comp1"),
            Some("ok"),
            &ev("mandate.approved", "bot-1"),
        )
        .await
        .unwrap();
    let twice = store
        .decide_mandate(
            "bot-1",
            1,
            true,
            &one("comp1"),
            None,
            &ev("mandate.approved", "bot-1"),
        )
        .await;
    assert!(matches!(twice, Err(StoreError::WrongState(_))), "{twice:?}");
    assert_eq!(
        store.agent("bot-1").await.unwrap().unwrap().status,
        AgentStatus::Active
    );
    assert_eq!(
        store
            .agent_with_approved_mandate("bot-1")
            .await
            .unwrap()
            .unwrap()
            .1
            .unwrap()
            .version,
        1
    );

    let v2 = store
        .submit_mandate("bot-1", r#"{"agentId":"y"}"#, "op1")
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    // Until v2 is approved, v1 stays the approved one.
    assert_eq!(
        store
            .agent_with_approved_mandate("bot-1")
            .await
            .unwrap()
            .unwrap()
            .1
            .unwrap()
            .version,
        1
    );
    store
        .decide_mandate(
            "bot-1",
            2,
            true,
            &one("comp1"),
            None,
            &ev("mandate.approved", "bot-1"),
        )
        .await
        .unwrap();
    let all = store.mandates("bot-1").await.unwrap();
    assert_eq!(all[0].status, MandateStatus::Approved);
    assert_eq!(all[1].status, MandateStatus::Superseded);

    store
        .create_agent(&agent("bot-2"), &ev("agent.registered", "bot-2"))
        .await
        .unwrap();
    let page = store.list_agent_overviews(None, None, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    let next = store
        .list_agent_overviews(None, Some(&page[0].agent.id), 10)
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].agent.id, "bot-2");
    assert_eq!(next[0].latest.version, 1);
    assert_eq!(next[0].approved_version, None);
    let one = store.agent_overview("bot-1").await.unwrap().unwrap();
    assert_eq!((one.latest.version, one.approved_version), (2, Some(2)));

    // Filters combine, on both backends: state, the latest version's state, and a search
    // whose LIKE wildcards are plain characters.
    let mut odd = agent("odd_bot");
    odd.name = "Desk 100% Alpha".into();
    store
        .create_agent(&odd, &ev("agent.registered", "odd_bot"))
        .await
        .unwrap();
    let ids = |rows: Vec<mandate_store::AgentOverview>| -> Vec<String> {
        rows.into_iter().map(|r| r.agent.id).collect()
    };
    let find = |filter: AgentFilter<'static>| {
        let store = store.clone();
        async move { store.find_agent_overviews(&filter, None, 10).await.unwrap() }
    };
    let pending = AgentFilter {
        mandate_status: Some(MandateStatus::PendingApproval),
        ..AgentFilter::default()
    };
    assert_eq!(ids(find(pending).await), ["bot-2", "odd_bot"]);
    let active = AgentFilter {
        status: Some(AgentStatus::Active),
        ..AgentFilter::default()
    };
    assert_eq!(ids(find(active).await), ["bot-1"]);
    let search = |q: &'static str| AgentFilter {
        search: Some(q),
        ..AgentFilter::default()
    };
    assert_eq!(ids(find(search("BOT-")).await), ["bot-1", "bot-2"]);
    assert_eq!(ids(find(search("100%")).await), ["odd_bot"]);
    assert_eq!(ids(find(search("%")).await), ["odd_bot"]);
    assert_eq!(ids(find(search("_")).await), ["odd_bot"]);
    assert!(find(search("t_2")).await.is_empty(), "_ is no wildcard");
    let other_org = AgentFilter {
        organization: Some("other"),
        ..AgentFilter::default()
    };
    assert!(find(other_org).await.is_empty());
}

#[tokio::test]
async fn certificate_reserve_then_complete() {
    let (_d, store) = open().await;
    let issuer = init_ca(&store).await;
    store
        .create_agent(&agent("bot-1"), &ev("agent.registered", "bot-1"))
        .await
        .unwrap();
    approve_v1(&store, "bot-1").await;
    let cert = new_cert("4f00", issuer);
    store
        .reserve_certificate(&cert, &ev("certificate.reserved", "4f00"))
        .await
        .unwrap();
    let dup = store
        .reserve_certificate(&cert, &ev("certificate.reserved", "4f00"))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert_eq!(
        store.certificate("4f00").await.unwrap().unwrap().status,
        CertStatus::Reserved
    );
    store
        .complete_certificate("4f00", b"der", "abc", &ev("certificate.issued", "4f00"))
        .await
        .unwrap();
    let row = store.certificate("4f00").await.unwrap().unwrap();
    assert_eq!(row.status, CertStatus::Issued);
    assert_eq!(row.der.as_deref(), Some(&b"der"[..]));
    let again = store
        .complete_certificate("4f00", b"der", "abc", &ev("certificate.issued", "4f00"))
        .await;
    assert!(matches!(again, Err(StoreError::WrongState(_))), "{again:?}");
    assert_eq!(
        store
            .agent_certificates("bot-1", None, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    let events = store.audit_events(0, 100).await.unwrap();
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "ca.initialised",
            "agent.registered",
            "mandate.approved",
            "certificate.reserved",
            "certificate.issued"
        ]
    );
}

#[tokio::test]
async fn audit_events_refuse_update_and_delete() {
    let (dir, store) = open().await;
    init_ca(&store).await;
    // A second, independent connection: the refusal must come from the database itself.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&dir.url).await.unwrap();
    for sql in [
        "UPDATE audit_events SET actor = 'mallory'",
        "DELETE FROM audit_events",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(store.audit_events(0, 10).await.unwrap()[0].actor, "test");
}

#[tokio::test]
async fn agent_key_needs_an_agent() {
    let (_d, store) = open().await;
    init_ca(&store).await;
    let key = NewApiKey {
        id: "k2".into(),
        secret_hash: vec![0; 32],
        role: Role::Agent,
        agent_id: Some("ghost".into()),
        person_id: None,
        label: "x".into(),
        created_by: Some("admin1".into()),
    };
    let r = store
        .insert_api_key(&key, &ev("api_key.created", "k2"))
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
}

#[tokio::test]
async fn concurrent_writes_commit_together_and_failures_stay_isolated() {
    let (dir, store) = open().await;
    init_ca(&store).await;
    // 200 registrations at once, every id twice: the group-commit writer batches them; each
    // duplicate must fail alone (its savepoint rolled back) without taking its batch with it.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("bot-{}", i % 100);
            store
                .create_agent(&agent(&id), &ev("agent.registered", &id))
                .await
        }));
    }
    let mut ok = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict(_)) => conflicts += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, conflicts), (100, 100));
    assert_eq!(
        store
            .list_agent_overviews(None, None, 1000)
            .await
            .unwrap()
            .len(),
        100
    );
    let registered = store
        .audit_events(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "agent.registered")
        .count();
    assert_eq!(
        registered, 100,
        "a failed write left its audit event behind"
    );
    // Everything acknowledged is in the file: a fresh handle sees it.
    store.close().await;
    let again = Store::open(&dir.url).await.unwrap();
    assert_eq!(
        again
            .list_agent_overviews(None, None, 1000)
            .await
            .unwrap()
            .len(),
        100
    );
}

#[tokio::test]
async fn writes_after_close_fail_cleanly() {
    let (_d, store) = open().await;
    store.close().await;
    let r = store
        .create_agent(&agent("late"), &ev("agent.registered", "late"))
        .await;
    assert!(r.is_err());
}

#[tokio::test]
async fn batched_reservations_with_collisions_leave_no_trace_of_the_refused() {
    let (_d, store) = open().await;
    let issuer = init_ca(&store).await;
    store
        .create_agent(&agent("bot-1"), &ev("agent.registered", "bot-1"))
        .await
        .unwrap();
    approve_v1(&store, "bot-1").await;
    let mut tasks = Vec::new();
    for i in 0..300 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let serial = format!("{:04x}", 0x4000 + i % 150);
            let cert = new_cert(&serial, issuer);
            let r = store
                .reserve_certificate(&cert, &ev("certificate.reserved", &serial))
                .await;
            // Completing twice: the second is refused by its first statement.
            if r.is_ok() {
                let done = store
                    .complete_certificate(&serial, b"d", "h", &ev("certificate.issued", &serial))
                    .await;
                let twice = store
                    .complete_certificate(&serial, b"d", "h", &ev("certificate.issued", &serial))
                    .await;
                assert!(done.is_ok() && matches!(twice, Err(StoreError::WrongState(_))));
            }
            r.is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 150);
    assert_eq!(
        store
            .agent_certificates("bot-1", None, 1000)
            .await
            .unwrap()
            .len(),
        150
    );
    let events = store.audit_events(0, 10_000).await.unwrap();
    let count = |a: &str| events.iter().filter(|e| e.action == a).count();
    assert_eq!(count("certificate.reserved"), 150);
    assert_eq!(count("certificate.issued"), 150);
}

#[tokio::test]
async fn revocation_is_idempotent_and_the_kill_switch_suspends_and_revokes() {
    use mandate_store::{KillScope, Revocation};
    let (_d, store) = open().await;
    let issuer = init_ca(&store).await;
    for id in ["bot-1", "bot-2"] {
        store
            .create_agent(&agent(id), &ev("agent.registered", id))
            .await
            .unwrap();
        approve_v1(&store, id).await;
    }
    for serial in ["5001", "5002", "5003"] {
        store
            .reserve_certificate(
                &new_cert(serial, issuer),
                &ev("certificate.reserved", serial),
            )
            .await
            .unwrap();
        store
            .complete_certificate(serial, b"d", serial, &ev("certificate.issued", serial))
            .await
            .unwrap();
    }
    let first = store
        .revoke_certificate("5001", 1, "op1", json!({"reason": 1}))
        .await
        .unwrap();
    let Revocation::Revoked(row) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        (row.status, row.revocation_reason, row.revoked_by.as_deref()),
        (CertStatus::Revoked, Some(1), Some("op1"))
    );
    let again = store
        .revoke_certificate("5001", 4, "op2", json!({"reason": 4}))
        .await
        .unwrap();
    let Revocation::AlreadyRevoked(row) = again else {
        panic!("{again:?}")
    };
    assert_eq!(
        row.revocation_reason,
        Some(1),
        "the first revocation stands"
    );
    let missing = store.revoke_certificate("dead", 1, "op1", json!({})).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    // bot-1 and bot-2 are both organization "acme"; the certificates all belong to bot-1.
    let k = store
        .pull_kill_switch(KillScope::Operator, "acme", "comp1", "rogue desk", None)
        .await
        .unwrap();
    assert_eq!(k.agents, ["bot-1", "bot-2"]);
    assert_eq!(
        k.certificates_revoked,
        ["5002", "5003"],
        "5001 was revoked already"
    );
    for id in ["bot-1", "bot-2"] {
        assert_eq!(
            store.agent(id).await.unwrap().unwrap().status,
            AgentStatus::Suspended
        );
    }
    assert_eq!(
        store
            .certificate("5002")
            .await
            .unwrap()
            .unwrap()
            .revocation_reason,
        Some(9)
    );
    let nobody = store
        .pull_kill_switch(KillScope::Agent, "ghost", "comp1", "x", None)
        .await;
    assert!(matches!(nobody, Err(StoreError::NotFound(_))), "{nobody:?}");

    store
        .reinstate_agent("bot-2", &ev("agent.reinstated", "bot-2"))
        .await
        .unwrap();
    assert_eq!(
        store.agent("bot-2").await.unwrap().unwrap().status,
        AgentStatus::Active
    );
    let twice = store
        .reinstate_agent("bot-2", &ev("agent.reinstated", "bot-2"))
        .await;
    assert!(matches!(twice, Err(StoreError::WrongState(_))), "{twice:?}");

    let events = store.audit_events(0, 1000).await.unwrap();
    let count = |a: &str| events.iter().filter(|e| e.action == a).count();
    assert_eq!(count("certificate.revoked"), 3);
    assert_eq!(count("agent.suspended"), 2);
    assert_eq!(count("kill_switch.pulled"), 1);
    assert_eq!(count("agent.reinstated"), 1);
    let revoked = events
        .iter()
        .find(|e| e.action == "certificate.revoked")
        .unwrap();
    assert_eq!(revoked.cert_fingerprint.as_deref(), Some("5001"));
}

#[tokio::test]
async fn crl_numbers_only_grow_and_an_older_crl_never_replaces_a_newer_one() {
    use mandate_store::StoredCrl;
    let (_d, store) = open().await;
    let issuer = init_ca(&store).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.reserve_crl_number(issuer).await.unwrap()
        }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap());
    }
    numbers.sort();
    assert_eq!(
        numbers,
        (1..=20).collect::<Vec<i64>>(),
        "each number handed out once"
    );
    let crl = |n: i64| StoredCrl {
        number: n,
        this_update: n,
        next_update: n + 10,
        der: vec![n as u8],
    };
    assert!(store.save_crl(issuer, crl(7), 0, "h7").await.unwrap());
    assert!(
        !store.save_crl(issuer, crl(5), 0, "h5").await.unwrap(),
        "older lost the race"
    );
    assert_eq!(
        store.published_crl(issuer).await.unwrap().unwrap().number,
        7
    );
    assert!(store.save_crl(issuer, crl(9), 0, "h9").await.unwrap());
    assert_eq!(
        store.published_crl(issuer).await.unwrap().unwrap().der,
        vec![9]
    );
    let events = store.audit_events(0, 100).await.unwrap();
    assert_eq!(
        events.iter().filter(|e| e.action == "crl.issued").count(),
        2
    );
}

#[tokio::test]
async fn presigned_responses_follow_revocations_and_the_feed_misses_nothing() {
    use mandate_store::{FeedCursor, PresignedSet};
    let (_d, store) = open().await;
    let issuer = init_ca(&store).await;
    store
        .create_agent(&agent("bot-1"), &ev("agent.registered", "bot-1"))
        .await
        .unwrap();
    approve_v1(&store, "bot-1").await;
    let now = mandate_store::now_unix();
    assert!(store.ocsp_due(now, 10).await.unwrap().is_empty());
    for serial in ["6001", "6002", "6003"] {
        store
            .reserve_certificate(
                &new_cert(serial, issuer),
                &ev("certificate.reserved", serial),
            )
            .await
            .unwrap();
    }
    assert!(
        store.ocsp_due(now + 5, 10).await.unwrap().is_empty(),
        "reserved certificates get no responses"
    );
    for serial in ["6001", "6002", "6003"] {
        store
            .complete_certificate(serial, b"d", serial, &ev("certificate.issued", serial))
            .await
            .unwrap();
    }
    let start = store.presigned_feed_end().await.unwrap();
    assert_eq!(start, FeedCursor::default());
    let due = store.ocsp_due(now + 5, 10).await.unwrap();
    assert_eq!(due.len(), 3);
    assert!(due.iter().all(|d| d.status == CertStatus::Issued));
    let sign = |d: &mandate_store::OcspDue, tag: u8, refresh: Option<i64>| PresignedSet {
        due: d.clone(),
        this_update: now,
        next_update: now + 100,
        refresh_at: refresh,
        responses: vec![("sha1", vec![tag, 1]), ("sha256", vec![tag, 2])],
    };
    // 6001 is revoked between reading it (good) and saving its responses.
    store
        .revoke_certificate("6001", 1, "op1", json!({}))
        .await
        .unwrap();
    let saved = store
        .save_presigned(due.iter().map(|d| sign(d, 1, Some(now + 50))).collect())
        .await
        .unwrap();
    assert_eq!(saved, 2, "the stale good answer for 6001 is not stored");
    assert!(
        store
            .presigned_response("6001", "sha1")
            .await
            .unwrap()
            .is_none()
    );
    let good = store
        .presigned_response("6002", "sha256")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((good.status, good.der), (CertStatus::Issued, vec![1, 2]));
    // Only the revocation is due now, and first.
    let due = store.ocsp_due(now + 5, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].serial.as_str(), due[0].status),
        ("6001", CertStatus::Revoked)
    );
    assert_eq!(
        store
            .save_presigned(vec![sign(&due[0], 2, None)])
            .await
            .unwrap(),
        1
    );
    assert!(
        store.ocsp_due(now + 60, 10).await.unwrap().len() == 2,
        "refresh at +50"
    );
    // Read the feed two rows at a time: nothing skipped, nothing twice, in commit order.
    let mut cursor = start;
    let mut seen = Vec::new();
    loop {
        let page = store.presigned_changes(&cursor, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        cursor = FeedCursor {
            seq: last.seq,
            serial: last.serial.clone(),
            hash: last.hash.clone(),
        };
        seen.extend(page.into_iter().map(|r| (r.serial, r.hash, r.status)));
    }
    assert_eq!(seen.len(), 6);
    assert_eq!(
        seen[4..],
        [
            ("6001".into(), "sha1".into(), CertStatus::Revoked),
            ("6001".into(), "sha256".into(), CertStatus::Revoked)
        ]
    );
    assert_eq!(cursor, store.presigned_feed_end().await.unwrap());
    // A good answer signed before the revocation can never replace the revoked one.
    let stale = mandate_store::OcspDue {
        status: CertStatus::Issued,
        ..due[0].clone()
    };
    store
        .save_presigned(vec![sign(&stale, 3, None)])
        .await
        .unwrap();
    let still = store
        .presigned_response("6001", "sha1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((still.status, still.der), (CertStatus::Revoked, vec![2, 1]));
}

/// Two store handles on one database stand for two nodes, each with its own writer: with
/// both writing at once, no serial is taken twice, every CRL number is handed out once, and
/// the audit hash chain (each record names the one before) stays whole. On PostgreSQL this is
/// the advisory lock every write batch holds; on SQLite, the file's write lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_on_one_database_keep_serials_crl_numbers_and_the_audit_chain() {
    let (db, first) = open().await;
    let issuer = init_ca(&first).await;
    first
        .create_agent(&agent("bot-1"), &ev("agent.registered", "bot-1"))
        .await
        .unwrap();
    approve_v1(&first, "bot-1").await;
    let second = Store::open(&db.url).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            // Both nodes try every serial of 0x5000..0x5064: each is taken exactly once.
            let serial = format!("{:04x}", 0x5000 + i % 100);
            let reserved = store
                .reserve_certificate(
                    &new_cert(&serial, issuer),
                    &ev("certificate.reserved", &serial),
                )
                .await;
            let number = store.reserve_crl_number(issuer).await.unwrap();
            store
                .record_audit_event(&ev("test.write", &format!("w{i}")))
                .await
                .unwrap();
            (reserved.is_ok(), number)
        }));
    }
    let mut taken = 0;
    let mut numbers = Vec::new();
    for t in tasks {
        let (ok, n) = t.await.unwrap();
        taken += usize::from(ok);
        numbers.push(n);
    }
    assert_eq!(taken, 100, "each serial reserved by exactly one writer");
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (1..=200).collect::<Vec<i64>>(),
        "CRL numbers handed out once"
    );
    let records = first.audit_events(0, 10_000).await.unwrap();
    let mut check = mandate_store::ChainCheck::default();
    for r in &records {
        check.check(r).unwrap();
    }
    assert!(
        records.iter().filter(|r| r.action == "test.write").count() == 200,
        "every audit record kept"
    );
    second.close().await;
}

/// A NULL and then a number in the same REAL parameter of a cached statement, and back: on
/// PostgreSQL this once failed with "incorrect binary data format" (sqlx's Any driver bound
/// the NULL as FLOAT4; see store/src/nullable.rs).
#[tokio::test]
async fn optional_scores_alternate_between_null_and_numbers() {
    let (_d, store) = open().await;
    init_ca(&store).await;
    for score in [None, Some(0.25), None, Some(0.875)] {
        let e = ev("test.scored", "s");
        let e = match score {
            Some(s) => e.with_risk_score(s),
            None => e,
        };
        store.record_audit_event(&e).await.unwrap();
    }
    let got: Vec<Option<f64>> = store
        .audit_events(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "test.scored")
        .map(|r| r.risk_score)
        .collect();
    assert_eq!(got, [None, Some(0.25), None, Some(0.875)]);
}

/// The kill switch and issuance are serialised: a reservation after it is refused, and a
/// certificate signed across it is stored revoked and reported as not issued.
#[tokio::test]
async fn issuance_across_a_kill_switch_never_yields_an_issued_certificate() {
    let (_d, store) = open().await;
    let issuer = init_ca(&store).await;
    store
        .create_agent(&agent("bot-1"), &ev("agent.registered", "bot-1"))
        .await
        .unwrap();
    approve_v1(&store, "bot-1").await;
    // Reserved, then the kill switch, then the HSM's signature arrives.
    store
        .reserve_certificate(
            &new_cert("aa01", issuer),
            &ev("certificate.reserved", "aa01"),
        )
        .await
        .unwrap();
    store
        .pull_kill_switch(
            mandate_store::KillScope::Agent,
            "bot-1",
            "op1",
            "drill",
            None,
        )
        .await
        .unwrap();
    let issued = store
        .complete_certificate("aa01", b"der", "h1", &ev("certificate.issued", "aa01"))
        .await
        .unwrap();
    assert!(!issued);
    let row = store.certificate("aa01").await.unwrap().unwrap();
    assert_eq!(row.status, CertStatus::Revoked);
    assert_eq!(row.der.as_deref(), Some(&b"der"[..]));
    // After the kill switch, nothing can be reserved.
    let refused = store
        .reserve_certificate(
            &new_cert("aa02", issuer),
            &ev("certificate.reserved", "aa02"),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::WrongState(_))),
        "{refused:?}"
    );
    assert!(store.certificate("aa02").await.unwrap().is_none());
    let actions: Vec<String> = store
        .audit_events(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions.last().map(String::as_str),
        Some("certificate.withheld")
    );
}
