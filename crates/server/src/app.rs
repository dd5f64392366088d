//! Assembling and running the service.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ordo_domain::{ApiKeySecret, Role};
use ordo_store::postgres::PostgresStore;
use ordo_store::sqlite::SqliteStore;
use ordo_store::{ApiKey, DynStore, NewApiKey, Store, Tenant};
use tokio::net::TcpListener;

use crate::api::{self, auth::KeyCache};
use crate::config::{Config, Database};

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: DynStore,
    keys: KeyCache,
    settings: crate::settings::SettingsCache,
    /// Shops by slug, for the storefront (which has no key to name them).
    shops: crate::cache::TtlMap<String, Tenant>,
    /// Whether a tenant has any promotion at all (a shop without one is
    /// priced without reading them).
    has_promotions: crate::cache::TtlMap<ordo_domain::TenantId, bool>,
    storefront_limiter: crate::storefront::RateLimiter,
    /// Each tenant's key for signing buyers' order links.
    link_keys: crate::cache::TtlMap<ordo_domain::TenantId, std::sync::Arc<[u8]>>,
    files: crate::files::Files,
    providers: crate::provider::Providers,
    config: Config,
    /// Counts the events this node placed in the feed, so live streams wake.
    feed: tokio::sync::watch::Sender<u64>,
    /// Woken when an import is queued on this node, so it starts at once.
    imports_queued: tokio::sync::Notify,
}

impl AppState {
    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub fn keys(&self) -> &KeyCache {
        &self.inner.keys
    }

    pub fn settings(&self) -> &crate::settings::SettingsCache {
        &self.inner.settings
    }

    /// The tenant whose shop is `slug`; remembered for a few seconds.
    pub async fn shop(&self, slug: &str) -> Result<Option<Tenant>, ordo_store::StoreError> {
        if let Some(tenant) = self.inner.shops.get(slug) {
            return Ok(Some(tenant));
        }
        let found = self.store().tenant_by_slug(slug).await?;
        if let Some(tenant) = &found {
            self.inner.shops.put(slug.to_string(), tenant.clone());
        }
        Ok(found)
    }

    /// Whether the tenant has promotions, remembered for as long as its
    /// settings (a change on this node is seen at once).
    pub fn has_promotions(&self) -> &crate::cache::TtlMap<ordo_domain::TenantId, bool> {
        &self.inner.has_promotions
    }

    pub fn storefront_limiter(&self) -> &crate::storefront::RateLimiter {
        &self.inner.storefront_limiter
    }

    pub(crate) fn link_keys(
        &self,
    ) -> &crate::cache::TtlMap<ordo_domain::TenantId, std::sync::Arc<[u8]>> {
        &self.inner.link_keys
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn files(&self) -> &crate::files::Files {
        &self.inner.files
    }

    /// The payment provider client, with this node's circuit breakers.
    pub fn providers(&self) -> &crate::provider::Providers {
        &self.inner.providers
    }

    /// A receiver that changes whenever this node places events in the feed.
    pub fn feed_ticks(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.feed.subscribe()
    }

    pub(crate) fn imports_queued(&self) -> &tokio::sync::Notify {
        &self.inner.imports_queued
    }

    pub(crate) fn feed_placed(&self, n: u64) {
        self.inner.feed.send_modify(|total| *total += n);
    }

    pub(crate) fn store_handle(&self) -> DynStore {
        Arc::clone(&self.inner.store)
    }
}

/// An opened ordo: its configuration and store, ready to serve.
pub struct App {
    state: AppState,
}

impl App {
    /// Opens the database, applying migrations.
    pub async fn open(config: Config) -> anyhow::Result<App> {
        let database = config.database().map_err(anyhow::Error::msg)?;
        let (store, applied): (DynStore, _) = match &database {
            Database::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| {
                        format!("cannot create the data directory {}", dir.display())
                    })?;
                }
                let (store, applied) =
                    SqliteStore::open(path, config.sqlite_options(), api::orders::RENDERER)
                        .with_context(|| format!("cannot open {}", database.describe()))?;
                (Arc::new(store), applied)
            }
            Database::Postgres(url) => {
                let (store, applied) =
                    PostgresStore::open(url, config.postgres_options(), api::orders::RENDERER)
                        .await
                        .with_context(|| format!("cannot open {}", database.describe()))?;
                (Arc::new(store), applied)
            }
        };
        for name in &applied {
            tracing::info!(migration = %name, "applied migration");
        }
        let files = crate::files::Files::open(&config)?;
        Ok(App {
            state: AppState {
                inner: Arc::new(Inner {
                    store,
                    keys: KeyCache::new(),
                    settings: crate::settings::SettingsCache::new(),
                    shops: crate::cache::TtlMap::new(std::time::Duration::from_secs(30), 10_000),
                    has_promotions: crate::cache::TtlMap::new(
                        crate::settings::SettingsCache::TTL,
                        100_000,
                    ),
                    storefront_limiter: crate::storefront::RateLimiter::new(
                        config.storefront.requests_per_minute,
                        config.storefront.burst,
                    ),
                    link_keys: crate::cache::TtlMap::new(
                        std::time::Duration::from_secs(3600),
                        100_000,
                    ),
                    files,
                    providers: crate::provider::Providers::new(
                        crate::provider::Policy::from_config(&config.payments),
                        config.webhooks.allow_private_urls,
                    ),
                    config,
                    feed: tokio::sync::watch::channel(0).0,
                    imports_queued: tokio::sync::Notify::new(),
                }),
            },
        })
    }

    pub fn store(&self) -> DynStore {
        Arc::clone(&self.state.inner.store)
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// On the very first start (no tenant yet), creates the `default`
    /// tenant and an owner key, and returns them so the key can be shown once.
    pub async fn first_run(&self) -> anyhow::Result<Option<(Tenant, String)>> {
        let store = self.store();
        if !store.tenants().await?.is_empty() {
            return Ok(None);
        }
        let tenant = store.create_tenant("default", "Default shop").await?;
        let (_, secret) =
            create_key(store.as_ref(), &tenant, Role::Owner, "first-run owner key").await?;
        Ok(Some((tenant, secret)))
    }

    /// Serves HTTP on `listener` until `shutdown` completes, then finishes
    /// in-flight requests and queued writes.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        let router = api::router(state.clone());
        let poll = Duration::from_millis(state.config().jobs.poll_interval_ms.max(10));
        let (stop_worker, stopping) = tokio::sync::watch::channel(false);
        let background = Background::start()?;
        let mut worker = background
            .handle()
            .spawn(crate::jobs::run(state.clone(), poll, stopping));
        let sequencer = tokio::spawn(crate::jobs::sequence_events(state.clone()));
        let importer = background.handle().spawn(crate::imports::run(
            state.clone(),
            poll,
            stop_worker.subscribe(),
        ));
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        // Background work under way is finished, not cut off.
        let _ = stop_worker.send(true);
        if tokio::time::timeout(Duration::from_secs(30), &mut worker)
            .await
            .is_err()
        {
            tracing::warn!("background work did not finish within 30 s; its claims will run out and another node (or the next start) will do it");
            worker.abort();
        }
        sequencer.abort();
        // An import stops after the orders under way, saving how far it got.
        if tokio::time::timeout(Duration::from_secs(30), importer)
            .await
            .is_err()
        {
            tracing::warn!("an import did not stop within 30 s; it goes on from its last saved line at the next start");
        }
        drop(background);
        state.inner.store.close().await;
        served.context("the HTTP server failed")
    }
}

/// How much lower background threads' CPU priority is than the process's
/// (a `nice` increment, 0 to 19): when the machine is busy, requests and the
/// database writer go first, and deliveries take what is left.
pub const BACKGROUND_NICENESS: i32 = 10;

/// The runtime background work (webhook deliveries, jobs) runs on: its own
/// threads, at a lower CPU priority than the threads serving requests.
/// Dropped, it lets go of its threads without waiting (a runtime may not
/// block inside another).
struct Background {
    handle: tokio::runtime::Handle,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Background {
    fn start() -> anyhow::Result<Background> {
        let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("ordo-background")
            .on_thread_start(lower_priority())
            .enable_all()
            .build()
            .context("cannot start the background work's threads")?;
        Ok(Background {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What each background thread runs first: it lowers its own CPU priority
/// (on Linux `nice` is per thread) to [`BACKGROUND_NICENESS`] below the
/// calling thread's. The value is set, not added: a thread starts with the
/// niceness of the thread that made it, often another background thread.
fn lower_priority() -> impl Fn() + Send + Sync + 'static {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let target = getpriority_process(None).map(|now| (now + BACKGROUND_NICENESS).min(19));
        move || {
            if let Err(e) = target.and_then(|nice| setpriority_process(None, nice)) {
                tracing::debug!(error = %e, "could not lower a background thread's priority");
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        || {}
    }
}

/// Creates an API key and returns it with its secret, shown only this once.
pub async fn create_key(
    store: &dyn Store,
    tenant: &Tenant,
    role: Role,
    name: &str,
) -> anyhow::Result<(ApiKey, String)> {
    let secret = ApiKeySecret::generate(tenant.id);
    let key = store
        .create_api_key(NewApiKey {
            tenant_id: tenant.id,
            name: name.to_string(),
            role,
            hint: secret.hint(),
            secret_hash: secret.hash(),
        })
        .await?;
    Ok((key, secret.expose()))
}
