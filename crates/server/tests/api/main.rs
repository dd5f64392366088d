//! ordo's API tests: each spawns the real server on a random port with its
//! own fresh database and talks to it over HTTP.

// Tests unwrap freely: a panic is a failed test with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actions;
mod admin;
mod auth;
mod browser;
mod buyer_page;
mod channels;
mod charges;
mod chat;
mod cli;
mod crash;
mod create;
mod events;
mod export;
mod fulfilment;
mod helpers;
mod idempotency;
mod imports;
mod list;
mod messaging;
mod meta;
mod migrate_data;
mod nodes;
mod operations;
mod payments;
mod pricing;
mod pricing_providers;
mod products;
mod provider;
mod provider_webhooks;
mod receipts;
mod roundtrip;
mod seed000;
mod stock;
mod stock_properties;
mod storefront;
mod validation;
mod webhooks;
