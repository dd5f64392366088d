//! Every store keeps orders exactly as the domain made them.
//!
//! These tests run on the embedded database, or on PostgreSQL when
//! `TEST_ORDO_POSTGRES` names a server (`./scripts/test` runs both).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ordo_domain::contact::AddressText;
use ordo_domain::{
    Actor, Address, Buyer, Channel, Currency, EventType, ExternalIds, LineDraft, Namespace,
    NewOrder, Order, OrderDraft, OrderPatch, OrderReference, Refusal, Sku, Timestamp,
};
use ordo_store::postgres::{PostgresOptions, PostgresStore};
use ordo_store::sqlite::{SqliteOptions, SqliteStore};
use ordo_store::{
    DynStore, Inserted, JobClaim, JobOutcome, NewJob, NewOrderRecord, OrderLookup, Renderer, Scope,
    StoreError,
};

/// A fresh, empty database of the backend under test.
enum Database {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Database {
    async fn fresh() -> Database {
        let Some(server) = std::env::var("TEST_ORDO_POSTGRES")
            .ok()
            .filter(|s| !s.is_empty())
        else {
            return Database::Sqlite(tempfile::tempdir().unwrap());
        };
        let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .expect("connect to TEST_ORDO_POSTGRES");
        tokio::spawn(connection);
        let name = format!(
            "ordo_store_{}",
            ordo_domain::TenantId::new().to_string().to_lowercase()
        );
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let (scheme, rest) = server.split_once("://").unwrap();
        let host = rest.split(['/', '?']).next().unwrap();
        Database::Postgres(format!("{scheme}://{host}/{name}"))
    }

    /// Opens a store on the database (another node or process, if one is
    /// open already) and returns it with the migrations it applied.
    async fn open(&self, renderer: Renderer) -> (DynStore, Vec<String>) {
        match self {
            Database::Sqlite(dir) => {
                let (store, applied) =
                    SqliteStore::open(&dir.path().join("t.db"), SqliteOptions::default(), renderer)
                        .unwrap();
                (std::sync::Arc::new(store), applied)
            }
            Database::Postgres(url) => {
                let (store, applied) =
                    PostgresStore::open(url, PostgresOptions::default(), renderer)
                        .await
                        .unwrap();
                (std::sync::Arc::new(store), applied)
            }
        }
    }
}

fn render_v1(order: &Order) -> Vec<u8> {
    format!("v1 {} {}", order.id, order.version).into_bytes()
}

fn render_v2(order: &Order) -> Vec<u8> {
    format!("v2 {} {}", order.id, order.version).into_bytes()
}

const V1: Renderer = Renderer {
    version: 1,
    render: render_v1,
};
const V2: Renderer = Renderer {
    version: 2,
    render: render_v2,
};

fn full_order(tenant: ordo_domain::TenantId) -> (Order, ordo_domain::EventDraft) {
    let address = Address::parse(AddressText {
        name: Some("Ada Obi"),
        company: Some("Obi & Sons"),
        line1: "1 Marina",
        line2: Some("Flat 2"),
        city: "Lagos",
        region: Some("LA"),
        postal_code: Some("101001"),
        country: "NG",
        phone: Some("+2348012345678"),
    })
    .unwrap();
    let mut ids = ExternalIds::new();
    ids.insert(
        Namespace::parse("com.acme.order-id").unwrap(),
        "WEB-1 ünïcødé".into(),
    );
    let draft = OrderDraft {
        currency: Currency::parse("KWD").unwrap(),
        buyer: Buyer::parse(
            Some("Ada “Obi”"),
            Some("+2348012345678"),
            Some("ada@example.com"),
            Some("wa_2348012345678"),
        )
        .unwrap(),
        lines: vec![LineDraft {
            sku: Some(Sku::parse("SKU-A/1").unwrap()),
            name: "Dates — Medjool 🌴".into(),
            description: Some("line\nbreak".into()),
            quantity: 3,
            unit_price: 1_255,
            attributes: BTreeMap::from([
                ("size".into(), "L".into()),
                ("colour".into(), "brown".into()),
            ]),
            product_id: None,
            catalog_price: None,
            instances: (1..=3)
                .map(|n| ordo_domain::Instance {
                    serial: Some(format!("IMEI-35987654321012{n}")),
                    refers_to: None,
                })
                .collect(),
            tax_class: None,
            weight_grams: 0,
            tax_rate: ordo_domain::pricing::Rate::parse("7.5").unwrap(),
        }],
        shipping_address: Some(address.clone()),
        billing_address: Some(address),
        notes: Some("Leave at the gate; call first".into()),
        external_ids: ids,
        channel: Channel::Whatsapp,
        pricing: ordo_domain::pricing::PriceBasis {
            taxes_included: true,
            promotions: vec![ordo_domain::pricing::AppliedPromotion {
                id: ordo_domain::PromotionId::new(),
                name: "Ramadan 10 %".into(),
                code: Some(ordo_domain::pricing::Code::parse("ramadan").unwrap()),
                discount: ordo_domain::pricing::Discount::Percentage(
                    ordo_domain::pricing::Rate::parse("10").unwrap(),
                ),
                skus: vec![Sku::parse("SKU-A/1").unwrap()],
                amount: 0,
                // Not counted: the test's tenant has no such promotion.
                limited: false,
                external_id: Some("crm-77".into()),
            }],
            shipping: Some(ordo_domain::pricing::ShippingCharge {
                name: "Kuwait City".into(),
                amount: 1_500,
                tax_rate: ordo_domain::pricing::Rate::parse("5").unwrap(),
                tax: 0,
            }),
            fallbacks: vec![ordo_domain::pricing::Fallback {
                provider: "tax".into(),
                error: "timed out".into(),
            }],
        },
    };
    Order::create(
        draft,
        NewOrder {
            tenant_id: tenant,
            reference: OrderReference::from_sequence(tenant, 1).unwrap(),
            created_by: Actor::api_key("key_x", "owner"),
            now: Timestamp::now(),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn every_field_round_trips_exactly() {
    let db = Database::fresh().await;
    let (store, applied) = db.open(V1).await;
    assert_eq!(applied.first().map(String::as_str), Some("0001_core"));
    let tenant = store.create_tenant("t", "T").await.unwrap();
    let (order, event) = full_order(tenant.id);
    let record = NewOrderRecord {
        order: order.clone(),
        event,
        actor: Actor::system(),
        notify: false,
        idempotency: None,
        rendered: None,
    };
    let Inserted::Created(stored) = store.insert_order(record).await.unwrap() else {
        panic!("not created")
    };
    assert_eq!(*stored, order);
    let scope = Scope::tenant(tenant.id);
    for lookup in [
        OrderLookup::Id(order.id),
        OrderLookup::Reference(order.reference.clone()),
        OrderLookup::External(
            Namespace::parse("com.acme.order-id").unwrap(),
            "WEB-1 ünïcødé".into(),
        ),
    ] {
        assert_eq!(
            store.order(&scope, &lookup).await.unwrap().as_ref(),
            Some(&order),
            "{lookup:?}"
        );
        let rendered = store
            .rendered_order(&scope, &lookup)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rendered.json, render_v1(&order), "{lookup:?}");
        assert_eq!(rendered.version, 1);
    }

    // A change is stored as made, with its event, in one go.
    let changed = store
        .change_order(
            scope.clone(),
            OrderLookup::Id(order.id),
            Some(1),
            Actor::system(),
            ordo_store::OrderChange::new(|o: &mut Order, _| {
                Ok(o.edit(
                    OrderPatch {
                        notes: Some(None),
                        ..Default::default()
                    },
                    Timestamp::now(),
                )?)
            }),
        )
        .await
        .unwrap();
    assert_eq!(changed.order.version, 2);
    assert_eq!(
        store
            .order(&scope, &OrderLookup::Id(order.id))
            .await
            .unwrap(),
        Some(changed.order.clone())
    );
    let events = store.order_events(&scope, order.id).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.event_type).collect::<Vec<_>>(),
        [EventType::OrderCreated, EventType::OrderUpdated]
    );
    assert_eq!(events[1], changed.event.unwrap());

    // A stale version and a refused change leave the order as it was.
    let stale = store
        .change_order(
            scope.clone(),
            OrderLookup::Id(order.id),
            Some(1),
            Actor::system(),
            ordo_store::OrderChange::new(|o: &mut Order, _| Ok(Some(o.confirm(Timestamp::now())?))),
        )
        .await;
    assert!(matches!(
        stale,
        Err(StoreError::VersionMismatch {
            expected: 1,
            current: 2
        })
    ));
    let refused = store
        .change_order(
            scope.clone(),
            OrderLookup::Id(order.id),
            None,
            Actor::system(),
            ordo_store::OrderChange::new(|o: &mut Order, _| {
                Ok(Some(o.complete(Timestamp::now())?))
            }),
        )
        .await;
    assert!(matches!(
        refused,
        Err(StoreError::Refused(Refusal::Transition(_)))
    ));
    assert_eq!(
        store
            .order(&scope, &OrderLookup::Id(order.id))
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    assert_eq!(store.order_events(&scope, order.id).await.unwrap().len(), 2);

    // Another tenant sees nothing.
    let other = store.create_tenant("u", "U").await.unwrap();
    assert_eq!(
        store
            .order(&Scope::tenant(other.id), &OrderLookup::Id(order.id))
            .await
            .unwrap(),
        None
    );

    // The stored rendering follows the change.
    let rendered = store
        .rendered_order(&scope, &OrderLookup::Id(order.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rendered.json, render_v1(&changed.order));
    store.close().await;

    // And all of it is still there after reopening; a newer renderer
    // renders the old rows afresh.
    let (reopened, applied) = db.open(V2).await;
    assert!(applied.is_empty());
    assert_eq!(
        reopened
            .order(&scope, &OrderLookup::Id(order.id))
            .await
            .unwrap(),
        Some(changed.order.clone())
    );
    let rendered = reopened
        .rendered_order(&scope, &OrderLookup::Id(order.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rendered.json, render_v2(&changed.order));
    let page = reopened
        .rendered_orders(
            &scope,
            &ordo_store::OrderQuery {
                filter: Default::default(),
                sort: Default::default(),
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].json, render_v2(&changed.order));
    reopened.close().await;
}

/// Inserts orders with references from `store`, taking a new reference
/// when one turns out to be taken (as the server does).
async fn insert_with_references(
    store: DynStore,
    tenant: ordo_domain::TenantId,
    n: usize,
) -> Vec<OrderReference> {
    let mut references = Vec::new();
    for _ in 0..n {
        let mut attempts = 0;
        loop {
            let reference = store.next_reference(tenant).await.unwrap();
            let (mut order, event) = full_order(tenant);
            order.id = ordo_domain::OrderId::new();
            order.reference = reference.clone();
            order.external_ids.clear();
            let record = NewOrderRecord {
                order,
                event,
                actor: Actor::system(),
                notify: false,
                idempotency: None,
                rendered: None,
            };
            match store.insert_order(record).await {
                Ok(Inserted::Created(_)) => {
                    references.push(reference);
                    break;
                }
                Err(StoreError::Conflict { field, .. }) if field == "reference" && attempts < 5 => {
                    attempts += 1;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    references
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_never_give_two_orders_one_reference() {
    let db = Database::fresh().await;
    let (a, _) = db.open(V1).await;
    let (b, _) = db.open(V1).await;
    let tenant = a.create_tenant("t", "T").await.unwrap();
    let mut tasks = Vec::new();
    for store in [&a, &b, &a, &b] {
        tasks.push(tokio::spawn(insert_with_references(
            std::sync::Arc::clone(store),
            tenant.id,
            40,
        )));
    }
    let mut all = std::collections::BTreeSet::new();
    for t in tasks {
        for r in t.await.unwrap() {
            assert!(all.insert(r.to_string()), "{r} was handed out twice");
        }
    }
    assert_eq!(all.len(), 160);
    let scope = Scope::tenant(tenant.id);
    assert_eq!(
        b.count_orders(&scope, &Default::default()).await.unwrap(),
        160
    );
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_number_taken_behind_the_counters_back_is_skipped() {
    let db = Database::fresh().await;
    let (store, _) = db.open(V1).await;
    let tenant = store.create_tenant("t", "T").await.unwrap();
    let record = |reference: OrderReference| {
        let (mut order, event) = full_order(tenant.id);
        order.id = ordo_domain::OrderId::new();
        order.reference = reference;
        order.external_ids.clear();
        NewOrderRecord {
            order,
            event,
            actor: Actor::system(),
            notify: false,
            idempotency: None,
            rendered: None,
        }
    };
    let first = store.next_reference(tenant.id).await.unwrap();
    assert_eq!(first.sequence(tenant.id), 1);
    // An order written with number 2 without asking the counter (as an
    // older ordo or a hand-made import would).
    let two = OrderReference::from_sequence(tenant.id, 2).unwrap();
    assert!(matches!(
        store.insert_order(record(two)).await,
        Ok(Inserted::Created(_))
    ));
    let second = store.next_reference(tenant.id).await.unwrap();
    assert_eq!(second.sequence(tenant.id), 2);
    let clash = store.insert_order(record(second)).await;
    assert!(
        matches!(clash, Err(StoreError::Conflict { ref field, .. }) if field == "reference"),
        "{clash:?}"
    );
    // The store drops its block and takes the next one past every stored order.
    let next = store.next_reference(tenant.id).await.unwrap();
    assert!(next.sequence(tenant.id) > 2);
    assert!(matches!(
        store.insert_order(record(next.clone())).await,
        Ok(Inserted::Created(_))
    ));
    store.close().await;
}

fn claim(node: &str, now: Timestamp) -> JobClaim {
    JobClaim {
        node: node.into(),
        kinds: vec!["deliver".into()],
        limit: 10,
        lease_ms: 30_000,
        now,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_is_claimed_by_one_node_at_a_time() {
    let db = Database::fresh().await;
    let (a, _) = db.open(V1).await;
    let (b, _) = db.open(V1).await;
    let tenant = a.create_tenant("t", "T").await.unwrap();
    let now = Timestamp::now();
    for i in 0..60 {
        let job = NewJob {
            tenant_id: Some(tenant.id),
            key: format!("delivery-{i}"),
            kind: "deliver".into(),
            payload: serde_json::json!({"n": i, "text": "田中太郎 🌴"}),
            run_at: now,
        };
        assert!(a.schedule_job(job.clone()).await.unwrap());
        assert!(!b.schedule_job(job).await.unwrap(), "scheduled once");
    }
    // Work of another kind, and work not yet due, is not claimed.
    a.schedule_job(NewJob {
        tenant_id: None,
        key: "later".into(),
        kind: "deliver".into(),
        payload: serde_json::json!({}),
        run_at: now.plus_millis(60_000),
    })
    .await
    .unwrap();
    a.schedule_job(NewJob {
        tenant_id: None,
        key: "other".into(),
        kind: "expire".into(),
        payload: serde_json::json!({}),
        run_at: now,
    })
    .await
    .unwrap();

    // Four pollers on two nodes claim at once until nothing is left.
    let mut pollers = Vec::new();
    for (i, store) in [&a, &b, &a, &b].into_iter().enumerate() {
        let store = std::sync::Arc::clone(store);
        pollers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let jobs = store
                    .claim_jobs(claim(&format!("node-{i}"), now))
                    .await
                    .unwrap();
                if jobs.is_empty() {
                    return mine;
                }
                mine.extend(jobs);
            }
        }));
    }
    let mut claimed = Vec::new();
    for p in pollers {
        claimed.extend(p.await.unwrap());
    }
    let mut keys: Vec<&str> = claimed.iter().map(|j| j.key.as_str()).collect();
    keys.sort_unstable();
    let before = keys.len();
    keys.dedup();
    assert_eq!(before, keys.len(), "no job was claimed twice");
    assert_eq!(keys.len(), 60, "every due job was claimed");
    let job = claimed.iter().find(|j| j.key == "delivery-7").unwrap();
    assert_eq!(
        job.payload,
        serde_json::json!({"n": 7, "text": "田中太郎 🌴"})
    );
    assert_eq!(job.tenant_id, Some(tenant.id));

    // Nothing is claimable while the claims hold.
    assert!(a.claim_jobs(claim("late", now)).await.unwrap().is_empty());
    for job in &claimed {
        assert!(b.finish_job(job, JobOutcome::Done).await.unwrap());
    }
    assert!(a
        .claim_jobs(claim("late", now.plus_millis(120_000)))
        .await
        .unwrap()
        .iter()
        .all(|j| j.key == "later"));
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_dead_nodes_job_is_claimed_again_and_its_late_finish_changes_nothing() {
    let db = Database::fresh().await;
    let (a, _) = db.open(V1).await;
    let (b, _) = db.open(V1).await;
    let now = Timestamp::now();
    a.schedule_job(NewJob {
        tenant_id: None,
        key: "prune".into(),
        kind: "deliver".into(),
        payload: serde_json::json!({}),
        run_at: now,
    })
    .await
    .unwrap();
    let first = a.claim_jobs(claim("a", now)).await.unwrap();
    assert_eq!(first.len(), 1);
    // Node a dies holding the claim. Until the lease runs out, nobody else
    // gets the job; after, node b does.
    assert!(b
        .claim_jobs(claim("b", now.plus_millis(29_000)))
        .await
        .unwrap()
        .is_empty());
    let second = b
        .claim_jobs(claim("b", now.plus_millis(30_000)))
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].claim, first[0].claim);
    // Node a comes back and tries to finish: its claim is gone.
    assert!(!a.finish_job(&first[0], JobOutcome::Done).await.unwrap());

    // A failure is retried later, counting attempts; periodic work runs again.
    let retry_at = now.plus_millis(40_000);
    assert!(b
        .finish_job(
            &second[0],
            JobOutcome::Retry {
                at: retry_at,
                error: "receiver answered 503".into()
            }
        )
        .await
        .unwrap());
    assert!(b
        .claim_jobs(claim("b", now.plus_millis(39_999)))
        .await
        .unwrap()
        .is_empty());
    let third = a.claim_jobs(claim("a", retry_at)).await.unwrap();
    assert_eq!(third[0].attempts, 1);
    assert!(a
        .finish_job(&third[0], JobOutcome::Again(now.plus_millis(3_600_000)))
        .await
        .unwrap());
    let fourth = b
        .claim_jobs(claim("b", now.plus_millis(3_600_000)))
        .await
        .unwrap();
    assert_eq!(fourth[0].attempts, 0);
    a.close().await;
    b.close().await;
}

fn endpoint(tenant: ordo_domain::TenantId, now: Timestamp) -> ordo_domain::WebhookEndpoint {
    ordo_domain::WebhookEndpoint {
        tenant_id: tenant,
        id: ordo_domain::WebhookEndpointId::new(),
        url: ordo_domain::WebhookUrl::parse("https://example.com/", false).unwrap(),
        description: None,
        event_types: vec![],
        active: true,
        secret: ordo_domain::WebhookSecret::generate(),
        previous_secret: None,
        created_at: now,
        updated_at: now,
        disabled: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_fan_each_event_out_once() {
    let db = Database::fresh().await;
    let (a, _) = db.open(V1).await;
    let (b, _) = db.open(V1).await;
    let tenant = a.create_tenant("t", "T").await.unwrap();
    let now = Timestamp::now().plus_millis(-60_000);
    let endpoint = endpoint(tenant.id, now);
    a.save_webhook_endpoint(endpoint.clone(), true)
        .await
        .unwrap();
    let writer = tokio::spawn(insert_with_references(
        std::sync::Arc::clone(&a),
        tenant.id,
        60,
    ));
    let fanners: Vec<_> = [&a, &b, &a, &b]
        .into_iter()
        .map(|store| {
            let store = std::sync::Arc::clone(store);
            tokio::spawn(async move {
                let mut made = 0;
                for _ in 0..400 {
                    let _ = store.sequence_events(1000).await.unwrap();
                    made += store.fan_out_events(7).await.unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
                made
            })
        })
        .collect();
    writer.await.unwrap();
    let mut made = 0;
    for f in fanners {
        made += f.await.unwrap();
    }
    // Whatever is left after the writers stopped.
    for _ in 0..20 {
        a.sequence_events(1000).await.unwrap();
        made += a.fan_out_events(1000).await.unwrap();
    }
    let deliveries = b
        .webhook_deliveries(
            tenant.id,
            &ordo_store::DeliveryQuery {
                endpoint_id: Some(endpoint.id),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(made, 60);
    assert_eq!(deliveries.len(), 60);
    let mut events: Vec<_> = deliveries.iter().map(|d| d.event_id).collect();
    events.sort();
    events.dedup();
    assert_eq!(events.len(), 60, "each event once");
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_batch_of_deliveries_is_read_with_its_events_and_finished_in_one_write() {
    let db = Database::fresh().await;
    let (a, _) = db.open(V1).await;
    let (b, _) = db.open(V1).await;
    let tenant = a.create_tenant("t", "T").await.unwrap();
    let now = Timestamp::now().plus_millis(-60_000);
    a.save_webhook_endpoint(endpoint(tenant.id, now), true)
        .await
        .unwrap();
    insert_with_references(std::sync::Arc::clone(&a), tenant.id, 3).await;
    a.sequence_events(1000).await.unwrap();
    assert_eq!(a.fan_out_events(1000).await.unwrap(), 3);
    let claim = |node: &str, at: Timestamp| JobClaim {
        kinds: Vec::new(),
        ..claim(node, at)
    };
    let outgoing = a
        .claim_deliveries(claim("a", Timestamp::now()))
        .await
        .unwrap();
    assert_eq!(outgoing.len(), 3);
    assert!(b
        .claim_deliveries(claim("b", Timestamp::now()))
        .await
        .unwrap()
        .is_empty());
    let jobs: Vec<_> = outgoing.iter().map(|o| o.job.clone()).collect();
    for o in &outgoing {
        assert_eq!(o.job.key, o.delivery.id.to_string());
        assert_eq!(o.job.attempts, 0);
        let event = o.event.as_ref().expect("the event");
        assert_eq!(event.event.id, o.delivery.event_id);
        assert_eq!(event.position, o.delivery.position);
        assert_eq!(
            String::from_utf8_lossy(&event.order),
            format!("v1 {} 1", o.delivery.order_id),
            "the order as it was right after the event"
        );
    }

    // The first job's lease runs out and node b takes it over; node a's
    // finish of it then ends nothing, but its attempt is kept.
    let taken: Vec<_> = b
        .claim_deliveries(JobClaim {
            limit: 1,
            ..claim("b", Timestamp::now().plus_millis(31_000))
        })
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.job)
        .collect();
    assert_eq!(taken.len(), 1);
    let attempt = |code: u16| ordo_store::DeliveryAttempt {
        at: Timestamp::now(),
        status_code: Some(code),
        latency_ms: 12,
        error: (code >= 300).then(|| format!("the receiver answered {code}")),
        response_excerpt: Some("ok 田中".into()),
    };
    let retry_at = Timestamp::now().plus_millis(3_600_000);
    // The others: one to retry later, one given up.
    let mut others = jobs.iter().filter(|j| j.key != taken[0].key);
    let (retried, dead) = (others.next().unwrap(), others.next().unwrap());
    let succeeded = jobs.iter().find(|j| j.key == taken[0].key).unwrap();
    let finished = vec![
        ordo_store::FinishedDelivery {
            job: succeeded.clone(),
            outcome: JobOutcome::Done,
            attempt: attempt(200),
            status: ordo_store::DeliveryStatus::Succeeded,
        },
        ordo_store::FinishedDelivery {
            job: retried.clone(),
            outcome: JobOutcome::Retry {
                at: retry_at,
                error: "503".into(),
            },
            attempt: attempt(503),
            status: ordo_store::DeliveryStatus::Failed,
        },
        ordo_store::FinishedDelivery {
            job: dead.clone(),
            outcome: JobOutcome::Dead {
                error: "410".into(),
            },
            attempt: attempt(410),
            status: ordo_store::DeliveryStatus::Dead,
        },
    ];
    let ended = a.finish_deliveries(finished.clone()).await.unwrap();
    assert_eq!(ended, [false, true, true]);
    for (i, f) in finished.iter().enumerate() {
        let (_, id) = ordo_store::delivery_of(&f.job).unwrap();
        let stored = b.webhook_delivery(tenant.id, id).await.unwrap().unwrap();
        if i == 0 {
            // Node b's now: the attempt counts, the status is b's to set.
            assert_eq!(stored.status, ordo_store::DeliveryStatus::Pending);
        } else {
            assert_eq!(stored.status, f.status);
            assert_eq!(stored.last_status_code, f.attempt.status_code);
        }
        assert_eq!(stored.attempts, 1);
        let attempts = b.delivery_attempts(tenant.id, id).await.unwrap();
        assert_eq!(attempts, [(1, f.attempt.clone())]);
    }
    // The one node b took over is still b's to finish; the retried one
    // comes back at its time; the dead one never does.
    let after = b
        .finish_deliveries(vec![ordo_store::FinishedDelivery {
            job: taken[0].clone(),
            ..finished[0].clone()
        }])
        .await
        .unwrap();
    assert_eq!(after, [true]);
    let later = b.claim_deliveries(claim("c", retry_at)).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].job.key, retried.key);
    assert_eq!(later[0].job.attempts, 1, "one failure so far");
    assert_eq!(later[0].delivery.attempts, 1);
    // A retry by hand: due now, a fresh maximum age, no failures.
    let retry_now = Timestamp::now().plus_millis(7_200_000);
    b.retry_delivery(tenant.id, later[0].delivery.id, retry_now)
        .await
        .unwrap()
        .unwrap();
    let again = b
        .claim_deliveries(claim("d", retry_now.plus_millis(31_000)))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].job.attempts, 0);
    assert_eq!(again[0].job.created_at, retry_now);
    assert_eq!(b.delivery_backlog().await.unwrap().0, 1);
    a.close().await;
    b.close().await;
}

fn product(
    tenant: ordo_domain::TenantId,
    sku: &str,
    on_hand: i64,
) -> (ordo_domain::Product, Option<ordo_domain::StockMovement>) {
    let mut attributes = BTreeMap::new();
    attributes.insert("size".to_string(), vec!["S".to_string(), "M".to_string()]);
    ordo_domain::ProductDraft {
        sku: Sku::parse(sku).unwrap(),
        name: format!("Ankara dress {sku}"),
        description: Some("Cotton, hand-dyed".into()),
        currency: Currency::parse("NGN").unwrap(),
        price: 1_250_050,
        attributes,
        variant_of: None,
        image_url: Some("https://cdn.example.com/a.jpg".into()),
        active: true,
        track_stock: true,
        tax_class: ordo_domain::pricing::TaxClass::parse("reduced").unwrap(),
        weight_grams: 450,
        on_hand,
    }
    .into_product(
        tenant,
        Actor::api_key("key_test", "owner"),
        Timestamp::now(),
    )
}

fn adjust(delta: i64) -> ordo_store::ProductChange {
    Box::new(move |p: &mut ordo_domain::Product| {
        let movement = p.adjust(
            ordo_domain::StockChange::Delta(delta),
            "restock".into(),
            Actor::api_key("key_test", "owner"),
            Timestamp::now(),
        )?;
        Ok(Some(movement))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_round_trip_and_their_stock_changes_one_at_a_time() {
    let db = Database::fresh().await;
    let (a, _) = db.open(V1).await;
    let (b, _) = db.open(V1).await;
    let tenant = a.create_tenant("shop", "Shop").await.unwrap();
    let other = a.create_tenant("other", "Other").await.unwrap();

    let (dress, first) = product(tenant.id, "DRESS-1", 10);
    a.insert_product(dress.clone(), first.clone())
        .await
        .unwrap();
    let sku = dress.sku.clone();
    assert_eq!(a.product(tenant.id, &sku).await.unwrap().unwrap(), dress);
    // A SKU is unique in its tenant, not across tenants.
    let (again, again_first) = product(tenant.id, "DRESS-1", 1);
    let again = a.insert_product(again, again_first).await;
    assert!(
        matches!(&again, Err(StoreError::Conflict { field, value }) if field == "sku" && value == "DRESS-1"),
        "{again:?}"
    );
    let (theirs, theirs_first) = product(other.id, "DRESS-1", 3);
    b.insert_product(theirs, theirs_first).await.unwrap();
    assert_eq!(a.product(other.id, &sku).await.unwrap().unwrap().on_hand, 3);

    // 100 adjustments from two nodes at once: none lost.
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = std::sync::Arc::clone(if i % 2 == 0 { &a } else { &b });
        let (tenant, sku) = (tenant.id, sku.clone());
        tasks.push(tokio::spawn(async move {
            store.change_product(tenant, sku, None, adjust(1)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let now = a.product(tenant.id, &sku).await.unwrap().unwrap();
    assert_eq!((now.on_hand, now.version), (110, 101));
    let moves = b
        .stock_movements(tenant.id, dress.id, page(None, 500))
        .await
        .unwrap();
    // The first units came in with the product, recorded as a movement.
    assert_eq!(moves.len(), 101);
    assert_eq!(Some(&moves[0]), first.as_ref());
    assert_eq!((moves[0].on_hand_change, moves[0].on_hand), (10, 10));
    let mut seen: Vec<i64> = moves.iter().map(|m| m.on_hand).collect();
    seen.sort_unstable();
    assert_eq!(seen, (10..=110).collect::<Vec<_>>());
    let rest = b
        .stock_movements(tenant.id, dress.id, page(Some(moves[49].id), 500))
        .await
        .unwrap();
    assert_eq!(rest, moves[50..]);
    // Newest first, before a cursor.
    let newest = ordo_store::MovementPage {
        after: None,
        limit: 3,
        newest_first: true,
    };
    let latest = b
        .stock_movements(tenant.id, dress.id, newest)
        .await
        .unwrap();
    assert_eq!(
        latest,
        [moves[100].clone(), moves[99].clone(), moves[98].clone()]
    );
    let before = ordo_store::MovementPage {
        after: Some(moves[98].id),
        ..newest
    };
    let older = b
        .stock_movements(tenant.id, dress.id, before)
        .await
        .unwrap();
    assert_eq!(
        older,
        [moves[97].clone(), moves[96].clone(), moves[95].clone()]
    );
    assert_eq!(
        moves.iter().map(|m| m.on_hand_change).sum::<i64>(),
        110,
        "every unit on hand is accounted for by a movement"
    );

    // A stale version changes nothing; a refused change neither.
    let stale = a
        .change_product(tenant.id, sku.clone(), Some(7), adjust(1))
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::VersionMismatch {
                expected: 7,
                current: 101
            })
        ),
        "{stale:?}"
    );
    let refused = a
        .change_product(tenant.id, sku.clone(), None, adjust(-111))
        .await;
    assert!(matches!(refused, Err(StoreError::Stock(_))), "{refused:?}");
    // The database itself refuses more reserved than on hand.
    let oversell: ordo_store::ProductChange = Box::new(|p: &mut ordo_domain::Product| {
        p.reserved = p.on_hand + 1;
        p.version += 1;
        Ok(None)
    });
    assert!(a
        .change_product(tenant.id, sku.clone(), None, oversell)
        .await
        .is_err());
    let after = b.product(tenant.id, &sku).await.unwrap().unwrap();
    assert_eq!(
        (after.on_hand, after.reserved, after.version),
        (110, 0, 101)
    );
    // Nothing of the other tenant moved.
    assert_eq!(b.product(other.id, &sku).await.unwrap().unwrap().on_hand, 3);
    assert!(b
        .stock_movements(other.id, dress.id, page(None, 10))
        .await
        .unwrap()
        .is_empty());
    a.close().await;
    b.close().await;
}

/// A page of stock movements, oldest first.
fn page(after: Option<ordo_domain::StockMovementId>, limit: u32) -> ordo_store::MovementPage {
    ordo_store::MovementPage {
        after,
        limit,
        newest_first: false,
    }
}

#[tokio::test]
async fn products_are_listed_by_sku_with_filters() {
    let db = Database::fresh().await;
    let (store, _) = db.open(V1).await;
    let tenant = store.create_tenant("shop", "Shop").await.unwrap();
    let other = store.create_tenant("other", "Other").await.unwrap();
    for (sku, on_hand) in [("TEE-S", 0), ("TEE-M", 4), ("CAP_1", 2), ("BAG.1", 1)] {
        let (mut p, first) = product(tenant.id, sku, on_hand);
        if sku.starts_with("TEE") {
            p.variant_of = Some(Sku::parse("TEE").unwrap());
        }
        store.insert_product(p, first).await.unwrap();
    }
    let (theirs, theirs_first) = product(other.id, "TEE-L", 9);
    store.insert_product(theirs, theirs_first).await.unwrap();
    let archive: ordo_store::ProductChange = Box::new(|p: &mut ordo_domain::Product| {
        p.archive(Timestamp::now());
        Ok(None)
    });
    store
        .change_product(tenant.id, Sku::parse("CAP_1").unwrap(), None, archive)
        .await
        .unwrap();
    let list = |q: ordo_store::ProductQuery| {
        let store = &store;
        async move {
            store
                .products(tenant.id, &q)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.sku.as_str().to_string())
                .collect::<Vec<_>>()
        }
    };
    let q = |f: &dyn Fn(&mut ordo_store::ProductQuery)| {
        let mut q = ordo_store::ProductQuery {
            limit: 50,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    assert_eq!(list(q(&|_| {})).await, ["BAG.1", "CAP_1", "TEE-M", "TEE-S"]);
    assert_eq!(
        list(q(&|q| q.archived = Some(false))).await,
        ["BAG.1", "TEE-M", "TEE-S"]
    );
    assert_eq!(list(q(&|q| q.archived = Some(true))).await, ["CAP_1"]);
    assert_eq!(list(q(&|q| q.active = Some(false))).await, ["CAP_1"]);
    assert_eq!(list(q(&|q| q.in_stock = Some(false))).await, ["TEE-S"]);
    assert_eq!(
        list(q(&|q| q.in_stock = Some(true))).await,
        ["BAG.1", "CAP_1", "TEE-M"]
    );
    assert_eq!(
        list(q(&|q| q.variant_of = Some(Sku::parse("TEE").unwrap()))).await,
        ["TEE-M", "TEE-S"]
    );
    // Low stock: tracked products with at most so many available.
    assert_eq!(
        list(q(&|q| q.available_lte = Some(1))).await,
        ["BAG.1", "TEE-S"]
    );
    assert_eq!(
        list(q(&|q| {
            q.available_lte = Some(2);
            q.archived = Some(false);
        }))
        .await,
        ["BAG.1", "TEE-S"]
    );
    // Search is by SKU or name, without regard to case, wildcards literal.
    assert_eq!(
        list(q(&|q| q.q = Some("tee-".into()))).await,
        ["TEE-M", "TEE-S"]
    );
    assert!(list(q(&|q| q.q = Some("%".into()))).await.is_empty());
    assert_eq!(list(q(&|q| q.q = Some("_".into()))).await, ["CAP_1"]);
    assert_eq!(
        list(q(&|q| q.q = Some("ankara DRESS cap".into()))).await,
        ["CAP_1"]
    );
    // Pages go by SKU.
    let first = list(q(&|q| q.limit = 2)).await;
    assert_eq!(first, ["BAG.1", "CAP_1"]);
    assert_eq!(
        list(q(&|q| {
            q.limit = 2;
            q.after = Some(Sku::parse("CAP_1").unwrap());
        }))
        .await,
        ["TEE-M", "TEE-S"]
    );
    store.close().await;
}
