//! ordo's API tests: each spawns the real server on a random port with its
//! own fresh database and talks to it over HTTP.

mod actions;
mod auth;
mod crash;
mod create;
mod helpers;
mod idempotency;
mod list;
mod operations;
mod seed000;
mod validation;
