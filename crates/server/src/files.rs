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
use object_store::{ObjectStore, PutPayload, WriteMultipart};

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

/// Parts of a streamed upload in flight at once (5 MiB each).
const UPLOAD_PARTS: usize = 4;

/// Why a streamed write failed: its source, or the file store.
#[derive(Debug)]
pub enum Streamed<E> {
    Source(E),
    Store(FilesError),
}

/// A file read as [`std::io::Read`] on a blocking thread (never on the
/// runtime's own threads: reading waits for the next chunk).
pub struct ChunkReader {
    chunks: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = self.current.len().min(buf.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

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

    /// Writes a file from a stream of chunks, holding at most a few parts
    /// of it in memory (on S3, a multipart upload; on disk, a file renamed
    /// into place when complete), and says how many bytes it took. When
    /// the stream fails, what was written is dropped and its error returned.
    pub async fn put_stream<E>(
        &self,
        key: &str,
        mut chunks: impl futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
    ) -> Result<u64, Streamed<E>> {
        use futures_util::StreamExt;
        let failed = |e: object_store::Error| Streamed::Store(FilesError(e.to_string()));
        let upload = self
            .store
            .put_multipart(&Path::from(key))
            .await
            .map_err(failed)?;
        let mut write = WriteMultipart::new(upload);
        let mut bytes = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    let _ = write.abort().await;
                    return Err(Streamed::Source(e));
                }
            };
            bytes += chunk.len() as u64;
            if let Err(e) = write.wait_for_capacity(UPLOAD_PARTS).await {
                let _ = write.abort().await;
                return Err(failed(e));
            }
            write.put(chunk);
        }
        write.finish().await.map_err(failed)?;
        Ok(bytes)
    }

    /// Reads a file a chunk at a time from a blocking thread: the chunks
    /// come from a task on the current runtime, a few ahead of the reader.
    /// `None` when there is no such file.
    pub async fn reader(&self, key: &str) -> Result<Option<ChunkReader>, FilesError> {
        use futures_util::StreamExt;
        let mut stream = match self.store.get(&Path::from(key)).await {
            Ok(result) => result.into_stream(),
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(FilesError(e.to_string())),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()));
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        });
        Ok(Some(ChunkReader {
            chunks: rx,
            current: Bytes::new(),
        }))
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
