//! ordo's server: configuration, the HTTP API, the background work and the
//! command line, over the domain and the store.

pub mod api;
pub mod app;
pub mod cache;
pub mod catalog;
pub mod channels;
pub mod charging;
pub mod chatbot;
pub mod cli;
pub mod cli_bulk;
pub mod cli_users;
pub mod config;
pub mod files;
pub mod import_file;
pub mod imports;
pub mod jobs;
pub mod links;
pub mod messages;
pub mod orders;
pub mod pricing;
pub mod pricing_providers;
pub mod provider;
pub mod settings;
pub mod storefront;
pub mod telemetry;
pub mod web;
pub mod webhooks;

pub use app::App;
pub use config::Config;
