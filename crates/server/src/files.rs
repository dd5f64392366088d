//! Where uploaded files (payment receipts) live: a directory on the local
//! disk by default, S3-compatible object storage when configured (needed
//! when several nodes serve one database). Files are written before the
//! order that names them, and removed again if that change is refused, so
//! an order never names a file that is not there.

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};

use crate::config::{Config, FilesBackend};

/// The file store.
#[derive(Clone)]
pub struct Files {
    store: Arc<dyn ObjectStore>,
    /// `disk` or `s3`, for logs and `/readyz`.
    backend: &'static str,
}

/// A file store failure: the store is unreachable or refused.
#[derive(Debug, thiserror::Error)]
#[error("the file store failed: {0}")]
pub struct FilesError(String);

impl Files {
    /// The file store `config` names; the disk directory is created.
    pub fn open(config: &Config) -> anyhow::Result<Files> {
        let files = &config.files;
        match files.backend {
            FilesBackend::Disk => {
                let dir = files
                    .dir
                    .clone()
                    .unwrap_or_else(|| config.data_dir.join("files"));
                std::fs::create_dir_all(&dir).with_context(|| {
                    format!("cannot create the files directory {}", dir.display())
                })?;
                let store = LocalFileSystem::new_with_prefix(&dir)
                    .with_context(|| format!("cannot use {} for files", dir.display()))?;
                Ok(Files {
                    store: Arc::new(store),
                    backend: "disk",
                })
            }
            FilesBackend::S3 => {
                if files.s3_bucket.is_empty() {
                    anyhow::bail!("files.backend is s3 but files.s3_bucket is not set");
                }
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&files.s3_bucket)
                    .with_region(&files.s3_region)
                    .with_allow_http(files.s3_allow_http);
                if !files.s3_endpoint.is_empty() {
                    builder = builder
                        .with_endpoint(&files.s3_endpoint)
                        .with_virtual_hosted_style_request(false);
                }
                if !files.s3_access_key_id.is_empty() {
                    builder = builder
                        .with_access_key_id(&files.s3_access_key_id)
                        .with_secret_access_key(&files.s3_secret_access_key);
                }
                let store = builder
                    .build()
                    .context("cannot configure the S3 file store")?;
                Ok(Files {
                    store: Arc::new(store),
                    backend: "s3",
                })
            }
        }
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    pub async fn put(&self, key: &str, content: Bytes) -> Result<(), FilesError> {
        self.store
            .put(&Path::from(key), PutPayload::from_bytes(content))
            .await
            .map(|_| ())
            .map_err(|e| FilesError(e.to_string()))
    }

    /// The file's content; `None` when there is no such file.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, FilesError> {
        match self.store.get(&Path::from(key)).await {
            Ok(result) => result
                .bytes()
                .await
                .map(Some)
                .map_err(|e| FilesError(e.to_string())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(FilesError(e.to_string())),
        }
    }

    /// Removes a file; one already gone is fine.
    pub async fn delete(&self, key: &str) -> Result<(), FilesError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(FilesError(e.to_string())),
        }
    }
}
