//! Upgrading a database written by the release before organizations and people (migration
//! 0015): the fixtures were made by that release's daemon (scripts/make_upgrade_fixture.py),
//! a SQLite file and a pg_dump of a PostgreSQL database; the suite's PostgreSQL pass loads the
//! dump into a fresh database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mandate_store::{Role, Store};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/before-organizations.db"
);
const PG_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/before-organizations.pg.sql"
);

/// Runs `program args`, which must succeed.
fn run(program: &str, args: &[&str]) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn upgraded() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = if mandate_testkit::on_postgres() {
        let url = mandate_testkit::database_url(dir.path());
        for (flag, arg) in [("-f", PG_FIXTURE), ("-c", SESSION_SQL)] {
            run("psql", &[&url, "-v", "ON_ERROR_STOP=1", "-q", flag, arg]);
        }
        url
    } else {
        let path = dir.path().join("mandate.db");
        std::fs::copy(FIXTURE, &path).unwrap();
        let session = SESSION_SQL.replace("'\\x", "X'").replace("'::bytea", "'");
        run("sqlite3", &[&path.display().to_string(), &session]);
        format!("sqlite://{}", path.display())
    };
    (dir, Store::open(&url).await.unwrap())
}

/// A dashboard session of the fixture's bootstrap admin key, open when the database is
/// upgraded: it refers to api_keys, which migration 0024 rebuilds on SQLite.
const SESSION_SQL: &str =
    "INSERT INTO dashboard_sessions (token_hash, key_id, created_at, expires_at)
     SELECT '\\x0a0b'::bytea, id, 1, 32503680000 FROM api_keys WHERE label = 'bootstrap'";

#[tokio::test]
async fn an_open_dashboard_session_outlives_the_upgrade() {
    let (_dir, store) = upgraded().await;
    let key = store
        .dashboard_session(&[0x0a, 0x0b])
        .await
        .unwrap()
        .expect("the session is gone");
    // The rebuilt api_keys table still holds the key, with its role.
    let holder = store.key_holder(&key).await.unwrap().unwrap();
    assert_eq!(holder.key.role, Role::Admin);
}

#[tokio::test]
async fn keys_become_people_of_the_organizations_they_acted_for() {
    let (_dir, store) = upgraded().await;
    let orgs = store.organizations(None, None, 100).await.unwrap();
    let ids: Vec<&str> = orgs.iter().map(|o| o.id.as_str()).collect();
    // The idle operator of a CA with two firms goes to `unassigned`.
    assert_eq!(ids, ["org-a", "org-b", "unassigned"]);
    let a = &orgs[0];
    // The legal name is the newest mandate's operator; every operator named stays allowed.
    assert_eq!(a.legal_name, "Alpha Trading Europe SA");
    assert!(a.allows_operator("Alpha Trading AG"));
    assert!(!a.allows_operator("Beta Capital Ltd"));
    assert_eq!(a.approvals_required, 1);
    assert_eq!(orgs[1].legal_name, "Beta Capital Ltd");

    let people = store.people(None, None, 100).await.unwrap();
    let by_name = |name: &str| {
        people
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name} missing: {people:?}"))
    };
    let check = |name: &str, org: Option<&str>, role: Role| {
        let p = by_name(name);
        assert_eq!(p.organization.as_deref(), org, "{p:?}");
        assert_eq!(p.roles, [role], "{p:?}");
    };
    check("bootstrap", None, Role::Admin);
    check("Olivia (desk A)", Some("org-a"), Role::Operator);
    check("Carl (compliance A)", Some("org-a"), Role::Compliance);
    check("Otto (desk B)", Some("org-b"), Role::Operator);
    check("Clara (compliance B)", Some("org-b"), Role::Compliance);
    check("Audrey (auditor)", None, Role::Auditor);
    check("Idle operator", Some("unassigned"), Role::Operator);
    // A revoked key's person is disabled; nobody is made for the agent key.
    assert!(by_name("Former operator").disabled_at.is_some());
    assert!(by_name("Olivia (desk A)").disabled_at.is_none());
    assert_eq!(people.len(), 8);

    // Every key acts for its person (or its agent) now.
    let keys = store.api_keys(None, 100).await.unwrap();
    for k in &keys {
        let holder = store.key_holder(&k.id).await.unwrap().unwrap();
        if k.role == Role::Agent {
            assert!(k.person_id.is_none());
            assert_eq!(holder.agent_organization.as_deref(), Some("org-a"));
        } else {
            let person = holder.person.unwrap();
            assert_eq!(Some(&person.id), k.person_id.as_ref());
            assert!(person.roles.contains(&k.role));
        }
    }
    // Past decisions name their person.
    let carl = by_name("Carl (compliance A)").id.clone();
    let agent = store.agent_overview("a-bot").await.unwrap().unwrap();
    assert_eq!(agent.approved_version, Some(2));
    let approver_key = store.mandates("a-bot").await.unwrap()[0]
        .decided_by
        .clone()
        .unwrap();
    assert_eq!(
        store.person_of_key(&approver_key).await.unwrap(),
        Some(carl)
    );
    // The audit chain written before the upgrade still verifies, record by record.
    let mut chain = mandate_store::ChainCheck::default();
    let mut after = 0;
    loop {
        let page = store.audit_events(after, 100).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            chain.check(r).unwrap();
        }
    }
    assert!(chain.records() > 10);
}

#[tokio::test]
async fn the_records_written_before_the_audit_tree_become_its_first_leaves() {
    let (_dir, store) = upgraded().await;
    let records = {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let page = store.audit_events(after, 1000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.seq;
            all.extend(page);
        }
        all
    };
    assert!(records.len() > 5, "the fixture has history");
    assert_eq!(store.audit_tree_size().await.unwrap(), 0);
    let size = store.extend_audit_tree(5000).await.unwrap();
    assert_eq!(size, records.len() as u64);
    // The stored tree is the tree of the records and their salts, rebuilt independently.
    let seqs: Vec<i64> = records.iter().map(|r| r.seq).collect();
    let salts = store.audit_leaf_salts(&seqs).await.unwrap();
    let mut tree = mandate_store::TreeBuilder::default();
    for r in &records {
        tree.push(mandate_store::leaf_hash(
            &mandate_store::AuditFields::of(r),
            &salts[&r.seq],
        ))
        .unwrap();
    }
    assert_eq!(
        store.audit_tree_root(size).await.unwrap(),
        tree.root().unwrap()
    );
    // Their proofs hold, and the chain they were already in still checks.
    let proofs = store.audit_inclusion_proofs(&seqs, size).await.unwrap();
    let root = tree.root().unwrap();
    for (r, proof) in records.iter().zip(&proofs) {
        let leaf = mandate_store::leaf_hash(&mandate_store::AuditFields::of(r), &salts[&r.seq]);
        tlog_tiles::tlog::check_record(proof, size, root, (r.seq - 1) as u64, leaf).unwrap();
    }
    let mut chain = mandate_store::ChainCheck::default();
    for r in &records {
        chain.check(r).unwrap();
    }
    // A second extension finds nothing to add; the tree is append-only.
    assert_eq!(store.extend_audit_tree(5000).await.unwrap(), size);
}
