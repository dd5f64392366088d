//! The binary as an operator uses it: first run, admin commands, logs,
//! graceful shutdown.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::TestDb;
use serde_json::Value;

fn ordo(db: &TestDb, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(db.args())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_prints_a_key_and_a_curl_that_works_and_sigterm_is_graceful() {
    let db = TestDb::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(db.args())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("ORDO_LOG__LEVEL", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !printed.contains("More keys:") && Instant::now() < deadline {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        printed.push_str(&line);
    }
    let key = printed
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("ordo_"))
        .unwrap_or_else(|| panic!("no key in the first-run message:\n{printed}"))
        .to_string();
    // The printed curl, run as a user would paste it.
    let payload = printed
        .split("-d '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut created = None;
    while created.is_none() && Instant::now() < deadline {
        if let Ok(r) = client
            .post(format!("{base}/v1/orders"))
            .bearer_auth(&key)
            .header("Content-Type", "application/json")
            .body(payload.to_string())
            .send()
            .await
        {
            assert_eq!(r.status(), StatusCode::CREATED);
            created = Some(r.json::<Value>().await.unwrap());
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let order = created.expect("the curl of the first-run message creates an order");
    assert_eq!(order["buyer"]["channel_id"], "wa_2348012345678");

    // SIGTERM: in-flight work finishes and the process exits cleanly.
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.wait().unwrap();
    assert!(exit.success(), "ordo exits 0 on SIGTERM: {exit}");
    let mut logs = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("order created"), "{logs}");
    assert!(
        logs.contains("wa_…5678"),
        "buyer ids are logged masked:\n{logs}"
    );
    assert!(
        !logs.contains("2348012345678"),
        "the full buyer number never reaches the logs:\n{logs}"
    );
    assert!(
        logs.contains("request_id"),
        "requests are logged with their id"
    );

    // A second start is not a first run, and the order is still there.
    let (ok, out, _) = ordo(&db, &["tenants", "list"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 1);
    assert!(out.contains("\tdefault\t"));
}

#[test]
fn admin_commands_manage_tenants_and_keys() {
    let db = TestDb::blocking();
    let (ok, id, _) = ordo(&db, &["tenants", "create", "acme", "--name", "Acme Ltd"]);
    assert!(ok);
    assert!(id.trim().starts_with("ten_"));
    let (ok, _, err) = ordo(&db, &["tenants", "create", "acme"]);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    let (ok, _, err) = ordo(&db, &["tenants", "create", "Not A Slug"]);
    assert!(!ok);
    assert!(err.contains("not valid"), "{err}");

    let (ok, key, _) = ordo(
        &db,
        &[
            "keys", "create", "--tenant", "acme", "--role", "vendor", "--name", "shop 1",
        ],
    );
    assert!(ok);
    assert_eq!(key.lines().count(), 1, "the key is the only line on stdout");
    let (ok, _, err) = ordo(
        &db,
        &["keys", "create", "--tenant", "acme", "--role", "boss"],
    );
    assert!(!ok);
    assert!(
        err.contains("owner, admin, vendor, viewer, integration"),
        "{err}"
    );
    let (ok, _, err) = ordo(
        &db,
        &["keys", "create", "--tenant", "nobody", "--role", "owner"],
    );
    assert!(!ok);
    assert!(err.contains("no tenant"), "{err}");

    let (ok, list, _) = ordo(&db, &["keys", "list", "--tenant", "acme"]);
    assert!(ok);
    let line = list.lines().next().unwrap().to_string();
    assert!(
        line.contains("vendor") && line.contains("shop 1") && line.ends_with("active"),
        "{line}"
    );
    assert!(!list.contains(key.trim()), "secrets are never listed");
    let key_id = line.split('\t').next().unwrap();
    let (ok, _, _) = ordo(&db, &["keys", "revoke", "--tenant", "acme", key_id]);
    assert!(ok);
    let (_, list, _) = ordo(&db, &["keys", "list", "--tenant", "acme"]);
    assert!(list.contains("revoked"), "{list}");

    let (ok, _, err) = ordo(&db, &["migrate"]);
    assert!(ok);
    assert!(err.contains("up to date"));
    let (ok, example, _) = ordo(&db, &["config", "example"]);
    assert!(ok);
    assert!(example.contains("listen = \"127.0.0.1:8080\""));
}

#[test]
fn a_bad_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ordo.toml");
    std::fs::write(&file, "listen = \"not an address\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args([
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            dir.path().to_str().unwrap(),
            "migrate",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("configuration") && err.contains("listen"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "migrate"])
        .env("ORDO_LISTEN", "127.0.0.1:notaport")
        .output()
        .unwrap();
    assert!(!out.status.success());
}
