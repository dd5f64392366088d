//! The SQLite store keeps orders exactly as the domain made them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ordo_domain::contact::AddressText;
use ordo_domain::{
    Actor, Address, Buyer, Channel, Currency, EventType, ExternalIds, LineDraft, Namespace,
    NewOrder, Order, OrderDraft, OrderPatch, OrderReference, Refusal, Sku, Timestamp,
};
use ordo_store::sqlite::{SqliteOptions, SqliteStore};
use ordo_store::{Inserted, NewOrderRecord, OrderLookup, Renderer, Scope, Store, StoreError};

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
        }],
        shipping_address: Some(address.clone()),
        billing_address: Some(address),
        notes: Some("Leave at the gate; call first".into()),
        external_ids: ids,
        channel: Channel::Whatsapp,
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
    let dir = tempfile::tempdir().unwrap();
    let (store, applied) =
        SqliteStore::open(&dir.path().join("t.db"), SqliteOptions::default(), V1).unwrap();
    assert_eq!(applied, ["0001_core"]);
    let tenant = store.create_tenant("t", "T").await.unwrap();
    let (order, event) = full_order(tenant.id);
    let record = NewOrderRecord {
        order: order.clone(),
        event,
        actor: Actor::system(),
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
            Box::new(|o: &mut Order| {
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
            Box::new(|o: &mut Order| Ok(Some(o.confirm(Timestamp::now())?))),
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
            Box::new(|o: &mut Order| Ok(Some(o.complete(Timestamp::now())?))),
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
    let (reopened, applied) =
        SqliteStore::open(&dir.path().join("t.db"), SqliteOptions::default(), V2).unwrap();
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

#[tokio::test]
async fn two_processes_never_give_two_orders_one_reference() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let (server, _) = SqliteStore::open(&path, SqliteOptions::default(), V1).unwrap();
    let (import, _) = SqliteStore::open(&path, SqliteOptions::default(), V1).unwrap();
    let tenant = server.create_tenant("t", "T").await.unwrap();
    let first = server.next_reference(tenant.id).await.unwrap();
    assert_eq!(first.sequence(tenant.id), 1);
    assert_eq!(
        import.next_reference(tenant.id).await.unwrap(),
        first,
        "both read the same last number"
    );

    let record = |reference: OrderReference| {
        let (mut order, event) = full_order(tenant.id);
        order.reference = reference;
        order.external_ids.clear();
        NewOrderRecord {
            order,
            event,
            actor: Actor::system(),
            idempotency: None,
            rendered: None,
        }
    };
    assert!(matches!(
        server.insert_order(record(first.clone())).await,
        Ok(Inserted::Created(_))
    ));
    let clash = import.insert_order(record(first.clone())).await;
    assert!(
        matches!(clash, Err(StoreError::Conflict { ref field, .. }) if field == "reference"),
        "{clash:?}"
    );
    // The import reads the numbers again and moves on.
    let next = import.next_reference(tenant.id).await.unwrap();
    assert_eq!(next.sequence(tenant.id), 2);
    assert!(matches!(
        import.insert_order(record(next.clone())).await,
        Ok(Inserted::Created(_))
    ));
    let scope = Scope::tenant(tenant.id);
    assert!(server
        .order(&scope, &OrderLookup::Reference(next))
        .await
        .unwrap()
        .is_some());
    server.close().await;
    import.close().await;
}
