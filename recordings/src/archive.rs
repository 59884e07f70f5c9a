//! Where recordings are kept: an `object_store` behind `CALLFLEET_RECORDINGS_URL`.
//!
//! `file:///abs/dir` (the embedded default is the data dir; keys start with `recordings/`) keeps
//! them in a local directory; `s3://bucket[/prefix]` in any S3-compatible store, configured by the usual
//! `AWS_*` settings (endpoint, region, keys, `AWS_ALLOW_HTTP` for a store on loopback), which
//! the caller passes in (they come from the fleet's configuration, so a config file can carry
//! them too). A `put` of an existing key replaces it with the same bytes (keys are derived from
//! the recording, see `fleet_domain::recording`), so a copy that runs twice leaves one object.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, PutPayload};

use crate::MediaError;

/// `CALLFLEET_RECORDINGS_URL` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveConfigError {
    #[error("CALLFLEET_RECORDINGS_URL: not a URL ({0})")]
    NotAUrl(#[source] url::ParseError),
    #[error("CALLFLEET_RECORDINGS_URL: unsupported scheme {0:?} (file:// or s3://)")]
    Scheme(String),
    #[error("CALLFLEET_RECORDINGS_URL: the directory cannot be used")]
    Directory(#[source] std::io::Error),
    #[error("CALLFLEET_RECORDINGS_URL: {0}")]
    Store(#[source] object_store::Error),
}

/// The recordings' object store; cheap to clone.
#[derive(Clone)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    /// The URL without credentials or query, for logs.
    describe: String,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive").field("at", &self.describe).finish_non_exhaustive()
    }
}

impl Archive {
    /// Opens the store `url` names; `options` are `AWS_*` settings (names as in the
    /// environment) for an `s3://` URL.
    pub fn open(url: &str, options: &[(String, String)]) -> Result<Self, ArchiveConfigError> {
        let parsed = url::Url::parse(url).map_err(ArchiveConfigError::NotAUrl)?;
        match parsed.scheme() {
            "file" => {
                let dir = parsed.to_file_path().map_err(|()| ArchiveConfigError::Scheme("file".into()))?;
                Self::local(&dir)
            }
            "s3" | "s3a" => {
                let mut builder = AmazonS3Builder::new();
                for (key, value) in options {
                    if let Ok(key) = key.to_ascii_lowercase().parse() {
                        builder = builder.with_config(key, value);
                    }
                }
                let bucket = parsed.host_str().unwrap_or_default().to_owned();
                let store = builder.with_bucket_name(&bucket).build().map_err(ArchiveConfigError::Store)?;
                let prefix = parsed.path().trim_matches('/').to_owned();
                let describe = format!("s3://{bucket}/{prefix}");
                let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(store)
                } else {
                    Arc::new(PrefixStore::new(store, prefix.as_str()))
                };
                Ok(Self { store, describe })
            }
            other => Err(ArchiveConfigError::Scheme(other.to_owned())),
        }
    }

    /// A local directory (created if missing).
    pub fn local(dir: &Path) -> Result<Self, ArchiveConfigError> {
        std::fs::create_dir_all(dir).map_err(ArchiveConfigError::Directory)?;
        let store = LocalFileSystem::new_with_prefix(dir).map_err(ArchiveConfigError::Store)?;
        Ok(Self { store: Arc::new(store), describe: format!("file://{}", dir.display()) })
    }

    /// Where it is, for logs (no credentials).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Writes (or replaces) `key`.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), MediaError> {
        let path = object_path(key)?;
        self.store
            .put(&path, PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|source| MediaError::Storage { what: "put", source })
    }

    /// Reads `key`.
    pub async fn get(&self, key: &str) -> Result<Bytes, MediaError> {
        let path = object_path(key)?;
        let got =
            self.store.get(&path).await.map_err(|source| MediaError::Storage { what: "get", source })?;
        got.bytes().await.map_err(|source| MediaError::Storage { what: "get", source })
    }

    /// Deletes `key`; a key that is already gone counts as deleted.
    pub async fn delete(&self, key: &str) -> Result<(), MediaError> {
        let path = object_path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(MediaError::Storage { what: "delete", source }),
        }
    }
}

fn object_path(key: &str) -> Result<ObjectPath, MediaError> {
    ObjectPath::parse(key).map_err(|e| MediaError::Permanent { message: format!("object key {key:?}: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_archive_keeps_replaces_and_deletes() {
        let dir = std::env::temp_dir().join(format!("callfleet-archive-{}", std::process::id()));
        let archive = Archive::open(&format!("file://{}", dir.display()), &[]).unwrap();
        archive.put("recordings/o/s/r.mp3", Bytes::from_static(b"one")).await.unwrap();
        archive.put("recordings/o/s/r.mp3", Bytes::from_static(b"two")).await.unwrap();
        assert_eq!(archive.get("recordings/o/s/r.mp3").await.unwrap(), Bytes::from_static(b"two"));
        assert_eq!(std::fs::read(dir.join("recordings/o/s/r.mp3")).unwrap(), b"two");
        archive.delete("recordings/o/s/r.mp3").await.unwrap();
        archive.delete("recordings/o/s/r.mp3").await.unwrap();
        assert!(matches!(archive.get("recordings/o/s/r.mp3").await, Err(MediaError::Storage { .. })));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(matches!(Archive::open("ftp://x/y", &[]), Err(ArchiveConfigError::Scheme(s)) if s == "ftp"));
        assert!(matches!(Archive::open("not a url", &[]), Err(ArchiveConfigError::NotAUrl(_))));
    }
}
