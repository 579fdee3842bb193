//! A repository in an S3 bucket (or an S3-compatible server) or an Azure Blob container,
//! through `object_store`.
//!
//! Data path: pack writer → **backend** → bucket on the way in; catalog lookup → **backend**
//! range read on the way out. This file owns the only async code in larder: one small tokio
//! runtime per backend, and a `block_on` per call behind the synchronous [`Backend`] trait
//! (STYLE.md, "I/O and concurrency"). Nothing here may be called from inside async code.
//!
//! Keys map to `<prefix>/<object key>` in the bucket (`s3://bucket/prefix`) or container
//! (`az://container/prefix`). Every put is create-only (`If-None-Match: *` on S3's PutObject
//! and Azure's Put Blob), so an object once stored is never replaced (DESIGN.md, invariant 1).
//! The one exception is a staged object above [`MULTIPART_THRESHOLD`]: `object_store`
//! completes multipart uploads (Azure: Put Block List) unconditionally, so such a commit
//! checks that the key is free first and may still overwrite an object that appeared in the
//! meantime. Only packs are staged, and a pack is named by the hash of its bytes: an object
//! under the same name holds the same bytes, so that overwrite is harmless. (S3 itself takes
//! `If-None-Match: *` on CompleteMultipartUpload; `object_store` 0.14 does not send it.)
//!
//! Not every S3-compatible server honours `If-None-Match: *`; one that ignores it replaces
//! objects silently, and two hosts could then both believe they hold the exclusive lock.
//! [`Backend::probe_conditional_writes`] asks the server once (`larder init` does, before it
//! writes anything) by putting a probe object create-only twice.
//!
//! Retries: `object_store` retries reads, lists, deletes and upload parts ([`RetryConfig`]
//! set here explicitly). A create-only PUT is retried by this file instead, so that a retry
//! finding the key taken after an attempt that may have landed can read the object back and
//! tell its own write from another writer's.
//!
//! Each provider differs only in how its four clients are built ([`ObjectStoreBackend::s3`],
//! [`ObjectStoreBackend::azure`]) and in how it says that the bucket or container is missing.
//! Google Cloud Storage is not offered: no emulator that speaks the XML API `object_store`
//! uses for it can be installed for the tests (STYLE.md: the backend is tested on a real
//! server on 127.0.0.1).

use std::fmt;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::ClientConfigKey;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::client::HttpErrorKind;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ObjectStore, ObjectStoreExt, PutMode, PutPayload, RetryConfig, WriteMultipart,
};

use super::{
    Backend, ConditionalWrites, Error, IoProfile, ObjectInfo, ObjectKey, Prefix, StagedObject,
};

/// Staged objects up to this size are stored with one create-only PUT; larger ones with a
/// multipart upload. Above the default pack size (16 MiB plus its last blob and header), so
/// that default packs cost one request and stay create-only.
pub const MULTIPART_THRESHOLD: u64 = 32 * 1024 * 1024;

/// Part size of a multipart upload (S3 wants at least 5 MiB for every part but the last).
const PART_SIZE: usize = 8 * 1024 * 1024;

/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// Packs uploaded at once while the next is written: enough to hide a round trip behind
/// sealing, few enough that a night's memory and temporary space stay small (each in-flight
/// pack is a temporary file and, at commit, one pack in memory).
pub const UPLOADS_IN_FLIGHT: usize = 4;

/// Largest range read of adjacent blobs on restore and check.
pub const MAX_READ_RUN: u64 = 8 * 1024 * 1024;

/// Largest gap between two blobs read in one request (the bytes between are dropped): a
/// stream whose chunks are scattered through an older snapshot's packs (a changed dump)
/// skips a few chunks at a time, and each skip would otherwise cost a GET.
pub const MAX_READ_GAP: u64 = 256 * 1024;

/// Whole-request time limit of a pack upload (a PUT of up to [`MULTIPART_THRESHOLD`], or one
/// part), unless `AWS_TIMEOUT` (Azure: `AZURE_TIMEOUT`) says otherwise: enough for four
/// 16 MiB packs sharing a 1 Mbit/s uplink. Everything else keeps `object_store`'s 30 s.
pub const PACK_PUT_TIMEOUT: Duration = Duration::from_secs(600);

/// Write buffer of a staged object's temporary file.
const STAGE_BUFFER: usize = 1024 * 1024;

/// Tokio worker threads: the backend only waits on the network, it computes nothing.
const WORKER_THREADS: usize = 2;

/// Name of the conditional-write probe object under the repository prefix, before its random
/// hex suffix. Outside every listed folder, so no listing sees it while it exists.
pub const PROBE_PREFIX: &str = ".larder-probe-";

/// Default retries of one request (server errors, throttling, connection failures).
pub const DEFAULT_MAX_RETRIES: usize = 5;

/// The provider an [`ObjectStoreUrl`] names, by its scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `s3://bucket/prefix`: Amazon S3 or an S3-compatible server.
    S3,
    /// `az://container/prefix`: Azure Blob Storage (or Azurite).
    Azure,
}

impl Scheme {
    /// `s3` or `az`, as written before `://`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::S3 => "s3",
            Scheme::Azure => "az",
        }
    }

    /// What the provider calls the top level of its names: `bucket` or `container`.
    pub fn container_word(self) -> &'static str {
        match self {
            Scheme::S3 => "bucket",
            Scheme::Azure => "container",
        }
    }
}

/// An `s3://bucket/prefix` or `az://container/prefix` location, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStoreUrl {
    scheme: Scheme,
    bucket: String,
    prefix: String,
}

/// The URL type's name from before Azure; it parses `az://` too.
pub type S3Url = ObjectStoreUrl;

impl ObjectStoreUrl {
    /// Parses `s3://bucket`, `s3://bucket/some/prefix`, `az://container` or
    /// `az://container/some/prefix` (trailing slashes ignored).
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("s3://") {
            (Scheme::S3, rest)
        } else if let Some(rest) = url.strip_prefix("az://") {
            (Scheme::Azure, rest)
        } else {
            return Err(format!(
                "`{url}` is not an s3://bucket/prefix or az://container/prefix location"
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let name_bytes = |extra: &[u8]| {
            (3..=63).contains(&bucket.len())
                && bucket
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
        };
        match scheme {
            Scheme::S3 if !name_bytes(b"-.") => {
                return Err(format!(
                    "`{url}`: `{bucket}` is not a bucket name (3 to 63 lowercase letters, digits, `-` or `.`)"
                ));
            }
            // Azure: no dots, and a `-` neither first, last nor doubled.
            Scheme::Azure
                if !name_bytes(b"-")
                    || bucket.starts_with('-')
                    || bucket.ends_with('-')
                    || bucket.contains("--") =>
            {
                return Err(format!(
                    "`{url}`: `{bucket}` is not a container name (3 to 63 lowercase letters, digits or single `-` inside)"
                ));
            }
            _ => {}
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            Path::parse(prefix).map_err(|e| format!("`{url}`: bad prefix `{prefix}`: {e}"))?;
        }
        Ok(Self {
            scheme,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The provider.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The bucket (Azure: the container).
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The prefix inside the bucket, without slashes at either end (may be empty).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl fmt::Display for ObjectStoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// How to reach the bucket or container. S3 credentials, region and session tokens come from
/// the usual `AWS_*` variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, `AWS_REGION`, ...), Azure's from the `AZURE_*` ones
/// (`AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_ENDPOINT`,
/// `AZURE_STORAGE_USE_EMULATOR`, ...); these options override them.
#[derive(Debug, Clone)]
pub struct ObjectStoreOptions {
    /// A custom endpoint: for S3 a server (MinIO, a local test server, another provider) to
    /// which requests go path-style; for Azure the account's URL
    /// (`http://127.0.0.1:10000/devstoreaccount1` for Azurite). Plain `http://` is allowed
    /// only when it says so.
    pub endpoint: Option<String>,
    /// Retries of one request after a server error, throttling or a connection failure.
    pub max_retries: usize,
    /// Staged objects larger than this are uploaded in parts.
    pub multipart_threshold: u64,
    /// Further settings by `object_store`'s names for the provider (`aws_access_key_id`,
    /// `aws_region`, `aws_timeout`, `azure_storage_account_key`, ...), applied last. Tests use them; the CLI passes none.
    pub settings: Vec<(String, String)>,
}

impl Default for ObjectStoreOptions {
    fn default() -> Self {
        Self {
            endpoint: None,
            max_retries: DEFAULT_MAX_RETRIES,
            multipart_threshold: MULTIPART_THRESHOLD,
            settings: Vec::new(),
        }
    }
}

/// A repository under a prefix of an S3 bucket or an Azure Blob container.
pub struct ObjectStoreBackend {
    inner: Arc<Inner>,
}

/// What the backend and its staged objects share.
struct Inner {
    url: ObjectStoreUrl,
    /// The endpoint requests go to, or `AWS` / `Azure`, for messages.
    server: String,
    prefix: Path,
    /// Everything but create-only puts: `object_store` retries these itself.
    store: Arc<dyn ObjectStore>,
    /// Create-only puts, with no retries of its own: `put_create` retries them, because
    /// it must know whether an earlier attempt may have landed.
    strict: Arc<dyn ObjectStore>,
    /// `strict` for packs: the whole-request time limit is [`PACK_PUT_TIMEOUT`], not
    /// `object_store`'s 30 s, which a 16 MiB pack would exceed below ~18 Mbit/s of uplink
    /// with four uploads sharing it (unless the user set `AWS_TIMEOUT` / `AZURE_TIMEOUT`).
    bulk: Arc<dyn ObjectStore>,
    /// `store` for the parts of multipart uploads, with the same longer limit.
    parts: Arc<dyn ObjectStore>,
    retry: RetryConfig,
    multipart_threshold: u64,
    runtime: tokio::runtime::Runtime,
}

impl fmt::Debug for ObjectStoreBackend {
    // By hand: the store's own Debug would print its credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreBackend")
            .field("url", &self.inner.url.to_string())
            .finish_non_exhaustive()
    }
}

/// Builds one of a backend's clients from its provider's configured builder: with `retry`,
/// and with the pack time limit when `long` (see [`Inner`]'s fields).
type BuildClient<'a> = dyn Fn(RetryConfig, bool) -> Result<Arc<dyn ObjectStore>, String> + 'a;

impl ObjectStoreBackend {
    /// A backend for `url`, on the provider its scheme names. Sends no request: a wrong
    /// bucket, container or endpoint shows on first use.
    pub fn open(url: ObjectStoreUrl, opts: ObjectStoreOptions) -> Result<Self, Error> {
        match url.scheme() {
            Scheme::S3 => Self::s3(url, opts),
            Scheme::Azure => Self::azure(url, opts),
        }
    }

    /// A backend for an `s3://` `url`. Sends no request: a wrong bucket or endpoint shows on
    /// first use.
    pub fn s3(url: ObjectStoreUrl, opts: ObjectStoreOptions) -> Result<Self, Error> {
        let open_err = open_error(&url);
        if url.scheme() != Scheme::S3 {
            return Err(open_err("not an s3:// location".into()));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(url.bucket());
        if let Some(endpoint) = &opts.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
            if endpoint.starts_with("http://") {
                builder = builder.with_allow_http(true);
            }
        }
        for (k, v) in &opts.settings {
            let key: AmazonS3ConfigKey = k
                .parse()
                .map_err(|e| open_err(format!("setting `{k}`: {e}")))?;
            builder = builder.with_config(key, v);
        }
        // As `object_store` picks it: the S3-specific endpoint first.
        let server = builder
            .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint))
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "AWS".to_owned());
        let user_timeout = std::env::var_os("AWS_TIMEOUT").is_some()
            || opts
                .settings
                .iter()
                .any(|(k, _)| k == "timeout" || k == "aws_timeout");
        let build = |retry: RetryConfig, long: bool| {
            let mut b = builder.clone().with_retry(retry);
            if long && !user_timeout {
                b = b.with_config(
                    AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                    pack_put_timeout(),
                );
            }
            match b.build() {
                Ok(s) => Ok(Arc::new(s) as Arc<dyn ObjectStore>),
                Err(e) => Err(one_line(&e)),
            }
        };
        Self::with_clients(url, server, &opts, &build)
    }

    /// A backend for an `az://` `url`. The account, its key (or another credential) and the
    /// endpoint come from the `AZURE_*` variables; `AZURE_STORAGE_USE_EMULATOR=true` reaches
    /// Azurite (at `AZURITE_BLOB_STORAGE_URL`, default `http://127.0.0.1:10000`, with its
    /// well-known account). Sends no request: a wrong container or endpoint shows on first
    /// use.
    pub fn azure(url: ObjectStoreUrl, opts: ObjectStoreOptions) -> Result<Self, Error> {
        let open_err = open_error(&url);
        if url.scheme() != Scheme::Azure {
            return Err(open_err("not an az:// location".into()));
        }
        let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(url.bucket());
        if let Some(endpoint) = &opts.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
            if endpoint.starts_with("http://") {
                builder = builder.with_allow_http(true);
            }
        }
        for (k, v) in &opts.settings {
            let key: AzureConfigKey = k
                .parse()
                .map_err(|e| open_err(format!("setting `{k}`: {e}")))?;
            builder = builder.with_config(key, v);
        }
        let emulator = builder
            .get_config_value(&AzureConfigKey::UseEmulator)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        // As `object_store` picks it: the emulator ignores the endpoint setting.
        let server = if emulator {
            std::env::var("AZURITE_BLOB_STORAGE_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:10000".to_owned())
        } else {
            builder
                .get_config_value(&AzureConfigKey::Endpoint)
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "Azure".to_owned())
        };
        let user_timeout = std::env::var_os("AZURE_TIMEOUT").is_some()
            || opts
                .settings
                .iter()
                .any(|(k, _)| k == "timeout" || k == "azure_timeout");
        let build = |retry: RetryConfig, long: bool| {
            let mut b = builder.clone().with_retry(retry);
            if long && !user_timeout {
                b = b.with_config(
                    AzureConfigKey::Client(ClientConfigKey::Timeout),
                    pack_put_timeout(),
                );
            }
            match b.build() {
                Ok(s) => Ok(Arc::new(s) as Arc<dyn ObjectStore>),
                Err(e) => Err(one_line(&e)),
            }
        };
        Self::with_clients(url, server, &opts, &build)
    }

    /// The backend around the four clients `build` makes (see [`Inner`]).
    fn with_clients(
        url: ObjectStoreUrl,
        server: String,
        opts: &ObjectStoreOptions,
        build: &BuildClient<'_>,
    ) -> Result<Self, Error> {
        let open_err = open_error(&url);
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: opts.max_retries,
            retry_timeout: Duration::from_secs(120),
        };
        let no_retries = RetryConfig {
            max_retries: 0,
            ..retry.clone()
        };
        let strict = build(no_retries.clone(), false).map_err(&open_err)?;
        let bulk = build(no_retries, true).map_err(&open_err)?;
        let parts = build(retry.clone(), true).map_err(&open_err)?;
        let store = build(retry.clone(), false).map_err(&open_err)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("larder-s3")
            .enable_all()
            .build()
            .map_err(|e| open_err(format!("starting the I/O runtime: {e}")))?;
        let prefix = if url.prefix().is_empty() {
            Path::default()
        } else {
            Path::parse(url.prefix()).map_err(|e| open_err(e.to_string()))?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                url,
                server,
                prefix,
                store,
                strict,
                bulk,
                parts,
                retry,
                multipart_threshold: opts.multipart_threshold,
                runtime,
            }),
        })
    }

    /// Two create-only puts of different bytes under `key`: the second must be refused and
    /// must leave the first bytes in place.
    fn probe_at(&self, key: &ObjectKey, first: &[u8]) -> Result<ConditionalWrites, Error> {
        let ignored = || ConditionalWrites::Ignored {
            server: self.inner.server.clone(),
        };
        self.put(key, first)?;
        // Other bytes, so that `put_create`'s read-back after a lost answer cannot take a
        // refused second put for its own.
        match self.put(key, b"second put: must be refused") {
            Ok(()) => return Ok(ignored()),
            Err(Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        // A server that answers 412 but replaced the object anyway is no better.
        if self.get(key)? != first {
            return Ok(ignored());
        }
        Ok(ConditionalWrites::Honoured)
    }
}

impl Inner {
    fn path(&self, key: &str) -> Path {
        self.prefix
            .parts()
            .chain(key.split('/').filter(|s| !s.is_empty()).map(Into::into))
            .collect()
    }

    /// `s3://bucket/prefix/key` (or `az://...`), for messages.
    fn url_of(&self, key: &str) -> String {
        format!("{}/{key}", self.url)
    }

    /// Maps an `object_store` error to the backend's: missing and taken objects keep their
    /// variants, everything else is I/O naming the bucket (container) and the key, in one
    /// line.
    fn error(&self, op: &'static str, key: &str, e: object_store::Error) -> Error {
        let text = one_line(&e);
        // S3 and Azure answer 404 for a missing bucket or container too; that is no missing
        // object. Their error codes tell the two apart.
        let missing_bucket = match self.url.scheme() {
            Scheme::S3 => text.contains("NoSuchBucket"),
            Scheme::Azure => text.contains("ContainerNotFound"),
        };
        if missing_bucket {
            return Error::Io {
                op,
                key: self.url_of(key),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "{} `{}` does not exist",
                        self.url.scheme().container_word(),
                        self.url.bucket()
                    ),
                ),
            };
        }
        match e {
            object_store::Error::NotFound { .. } => Error::NotFound {
                key: key.to_owned(),
            },
            object_store::Error::AlreadyExists { .. } => Error::AlreadyExists {
                key: key.to_owned(),
            },
            e => {
                let kind = match transport_kind(&e) {
                    Some(HttpErrorKind::Timeout) => std::io::ErrorKind::TimedOut,
                    Some(HttpErrorKind::Connect) => std::io::ErrorKind::ConnectionRefused,
                    _ => match e {
                        object_store::Error::PermissionDenied { .. }
                        | object_store::Error::Unauthenticated { .. } => {
                            std::io::ErrorKind::PermissionDenied
                        }
                        _ => std::io::ErrorKind::Other,
                    },
                };
                Error::Io {
                    op,
                    key: self.url_of(key),
                    source: std::io::Error::new(kind, text),
                }
            }
        }
    }

    /// A create-only PUT of `data` under `key`, retried here rather than by `object_store`.
    ///
    /// A create-only PUT that failed after it was sent (no answer, a dropped connection, a
    /// server error) may still have stored the object; `object_store` would retry some of
    /// those and report the retry's "already exists" as if another writer held the key. Here
    /// every retry after such a failure that finds the key taken reads the object back: if
    /// it holds exactly `data`, it is this PUT that landed.
    fn put_create(&self, key: &str, data: PutPayload) -> Result<(), Error> {
        self.put_create_with(self.strict.as_ref(), key, data)
    }

    /// [`Inner::put_create`] through `store` (`strict`, or `bulk` for packs).
    fn put_create_with(
        &self,
        store: &dyn ObjectStore,
        key: &str,
        data: PutPayload,
    ) -> Result<(), Error> {
        let path = self.path(key);
        let mut maybe_landed = false;
        let mut backoff = self.retry.backoff.init_backoff;
        let start = Instant::now();
        let mut retries = 0;
        loop {
            let put =
                self.runtime
                    .block_on(store.put_opts(&path, data.clone(), PutMode::Create.into()));
            let e = match put {
                Ok(_) => return Ok(()),
                Err(e @ object_store::Error::AlreadyExists { .. }) if maybe_landed => {
                    let stored = self.get(key).map_err(|_| self.error("write", key, e))?;
                    return if stored.iter().eq(data.iter().flatten()) {
                        Ok(())
                    } else {
                        Err(Error::AlreadyExists {
                            key: key.to_owned(),
                        })
                    };
                }
                Err(e) => e,
            };
            // Generic: no answer, or an answer that is no verdict on the key (server
            // errors, throttling; also a malformed request, which then fails after the
            // retries). The other variants are the server's final word.
            let retry = matches!(e, object_store::Error::Generic { .. })
                && retries < self.retry.max_retries
                && start.elapsed() < self.retry.retry_timeout;
            if !retry {
                return Err(self.error("write", key, e));
            }
            // Only a failed connection surely sent nothing.
            maybe_landed |= transport_kind(&e) != Some(HttpErrorKind::Connect);
            retries += 1;
            std::thread::sleep(backoff);
            backoff = backoff
                .mul_f64(self.retry.backoff.base)
                .min(self.retry.backoff.max_backoff);
        }
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, Error> {
        let path = self.path(key);
        self.runtime
            .block_on(async { self.store.get(&path).await?.bytes().await })
            .map(Vec::from)
            .map_err(|e| self.error("read", key, e))
    }

    fn head(&self, key: &str) -> Result<u64, Error> {
        let path = self.path(key);
        self.runtime
            .block_on(self.store.head(&path))
            .map(|m| m.size)
            .map_err(|e| self.error("read", key, e))
    }

    /// Uploads `len` bytes of `file` under `key` in parts (see the module docs: checked to
    /// be free first, completed unconditionally).
    fn put_multipart(&self, key: &str, file: &mut std::fs::File, len: u64) -> Result<(), Error> {
        match self.head(key) {
            Ok(_) => {
                return Err(Error::AlreadyExists {
                    key: key.to_owned(),
                });
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let path = self.path(key);
        let local = |e: std::io::Error| Error::Io {
            op: "write",
            key: self.url_of(key),
            source: e,
        };
        file.seek(SeekFrom::Start(0)).map_err(local)?;
        let upload = self
            .runtime
            .block_on(self.parts.put_multipart(&path))
            .map_err(|e| self.error("write", key, e))?;
        let uploaded = self.runtime.block_on(async {
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut buf = vec![0u8; PART_SIZE];
            let mut left = len;
            while left > 0 {
                let n = usize::try_from(left.min(PART_SIZE as u64)).unwrap_or(PART_SIZE);
                // Reading the temporary file blocks this (calling) thread only; the parts
                // upload on the runtime's workers meanwhile.
                if let Err(e) = file.read_exact(&mut buf[..n]) {
                    let _ = w.abort().await;
                    return Err(local(e));
                }
                if let Err(e) = w.wait_for_capacity(PARTS_IN_FLIGHT).await {
                    let _ = w.abort().await;
                    return Err(self.error("write", key, e));
                }
                w.write(&buf[..n]);
                left -= n as u64;
            }
            w.finish().await.map_err(|e| self.error("write", key, e))
        });
        uploaded.map(|_| ())
    }
}

/// The error of a backend for `url` that cannot be opened, from its reason.
fn open_error(url: &ObjectStoreUrl) -> impl Fn(String) -> Error + use<> {
    let key = url.to_string();
    move |e| Error::Io {
        op: "open",
        key: key.clone(),
        source: std::io::Error::other(e),
    }
}

/// [`PACK_PUT_TIMEOUT`] as `object_store` reads a time limit.
fn pack_put_timeout() -> String {
    format!("{}s", PACK_PUT_TIMEOUT.as_secs())
}

/// The transport failure at the bottom of an `object_store` error, if it is one (the
/// request never reached the server, or its answer never came back).
fn transport_kind(e: &object_store::Error) -> Option<HttpErrorKind> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(h) = c.downcast_ref::<object_store::client::HttpError>() {
            return Some(h.kind());
        }
        cause = c.source();
    }
    None
}

/// An error's text on one line: S3 and Azure error bodies are XML documents spread over many
/// lines.
fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Backend for ObjectStoreBackend {
    fn location(&self) -> String {
        self.inner.url.to_string()
    }

    fn put(&self, key: &ObjectKey, data: &[u8]) -> Result<(), Error> {
        self.inner
            .put_create(key.as_str(), PutPayload::from(data.to_vec()))
    }

    fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, Error> {
        self.inner.get(key.as_str())
    }

    fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Vec<u8>, Error> {
        let k = key.as_str();
        let short = || Error::Io {
            op: "read",
            key: self.inner.url_of(k),
            source: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("object is shorter than byte {}", range.end),
            ),
        };
        if range.start >= range.end {
            // HTTP has no empty range; only the object's existence (and length) is asked.
            return if self.inner.head(k)? >= range.start {
                Ok(Vec::new())
            } else {
                Err(short())
            };
        }
        let path = self.inner.path(k);
        let got = self
            .inner
            .runtime
            .block_on(self.inner.store.get_range(&path, range.clone()));
        // A range that starts past the end is refused (416); one that ends past it comes
        // back cut short.
        let bytes = got.map_err(|e| self.inner.error("read", k, e))?;
        if (bytes.len() as u64) < range.end - range.start {
            return Err(short());
        }
        Ok(Vec::from(bytes))
    }

    fn list(&self, prefix: Prefix) -> Result<Vec<ObjectInfo>, Error> {
        let folder = prefix.as_str();
        let path = self.inner.path(folder);
        // S3 lists recursively: `packs/xx/<id>` needs no walk of the 256 folders.
        let listed = self
            .inner
            .runtime
            .block_on(self.inner.store.list(Some(&path)).try_collect::<Vec<_>>())
            .map_err(|e| self.inner.error("list", folder, e))?;
        let mut out = Vec::with_capacity(listed.len());
        for meta in listed {
            let Some(rest) = meta.location.prefix_match(&self.inner.prefix) else {
                continue;
            };
            let key = rest.map(|p| p.as_ref().to_owned()).collect::<Vec<_>>();
            out.push(ObjectInfo {
                key: ObjectKey::from_raw(key.join("/")),
                size: meta.size,
            });
        }
        Ok(out)
    }

    fn delete(&self, key: &ObjectKey) -> Result<(), Error> {
        let k = key.as_str();
        let path = self.inner.path(k);
        match self.inner.runtime.block_on(self.inner.store.delete(&path)) {
            Ok(()) => Ok(()),
            Err(e) => match self.inner.error("delete", k, e) {
                Error::NotFound { .. } => Ok(()),
                e => Err(e),
            },
        }
    }

    fn probe_conditional_writes(&self) -> Result<ConditionalWrites, Error> {
        let mut nonce = [0u8; 16];
        crate::crypto::random_fill(&mut nonce);
        let key = ObjectKey::from_raw(format!("{PROBE_PREFIX}{}", hex::encode(nonce)));
        let verdict = self.probe_at(&key, &nonce);
        // Removed whatever the verdict; the probe's own error comes first.
        let removed = self.delete(&key);
        let verdict = verdict?;
        removed?;
        Ok(verdict)
    }

    fn io_profile(&self) -> IoProfile {
        // Every request costs a round trip and is billed: several packs go up at once while
        // the next is sealed, and a restore reads up to half a default pack per GET.
        IoProfile {
            uploads_in_flight: UPLOADS_IN_FLIGHT,
            max_read_run: MAX_READ_RUN,
            max_read_gap: MAX_READ_GAP,
        }
    }

    fn stage(&self, _prefix: Prefix) -> Result<Box<dyn StagedObject>, Error> {
        // An unnamed temporary file: a crash leaves nothing behind, locally or in the bucket.
        let file = tempfile::tempfile().map_err(|e| Error::Io {
            op: "write",
            key: "a temporary file for a staged object".into(),
            source: e,
        })?;
        Ok(Box::new(StagedUpload {
            inner: self.inner.clone(),
            file: BufWriter::with_capacity(STAGE_BUFFER, file),
            len: 0,
        }))
    }
}

/// A staged object: its bytes collect in a temporary file and go up at `commit`.
struct StagedUpload {
    inner: Arc<Inner>,
    file: BufWriter<std::fs::File>,
    len: u64,
}

impl fmt::Debug for StagedUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StagedUpload")
            .field("url", &self.inner.url.to_string())
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl StagedObject for StagedUpload {
    fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        self.file.write_all(data).map_err(|e| Error::Io {
            op: "write",
            key: "a temporary file for a staged object".into(),
            source: e,
        })?;
        self.len += data.len() as u64;
        Ok(())
    }

    fn commit(self: Box<Self>, key: &ObjectKey) -> Result<(), Error> {
        let k = key.as_str();
        let local = |e: std::io::Error| Error::Io {
            op: "write",
            key: self.inner.url_of(k),
            source: e,
        };
        let mut file = self.file.into_inner().map_err(|e| local(e.into_error()))?;
        if self.len > self.inner.multipart_threshold {
            return self.inner.put_multipart(k, &mut file, self.len);
        }
        file.seek(SeekFrom::Start(0)).map_err(local)?;
        let mut data = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        file.read_to_end(&mut data).map_err(local)?;
        self.inner
            .put_create_with(self.inner.bulk.as_ref(), k, PutPayload::from(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = S3Url::parse("s3://my-bucket/a/b/").unwrap();
        assert_eq!((u.bucket(), u.prefix()), ("my-bucket", "a/b"));
        assert_eq!(u.to_string(), "s3://my-bucket/a/b");
        let u = S3Url::parse("s3://my-bucket").unwrap();
        assert_eq!((u.bucket(), u.prefix()), ("my-bucket", ""));
        assert_eq!(u.to_string(), "s3://my-bucket");
        assert!(S3Url::parse("s3://").is_err());
        assert!(S3Url::parse("s3://Upper/x").is_err());
        assert!(S3Url::parse("s3://bucket/a/../b").is_err());
        assert!(S3Url::parse("gs://bucket").is_err());
    }

    #[test]
    fn azure_urls() {
        let u = ObjectStoreUrl::parse("az://my-container/a/b/").unwrap();
        assert_eq!(u.scheme(), Scheme::Azure);
        assert_eq!((u.bucket(), u.prefix()), ("my-container", "a/b"));
        assert_eq!(u.to_string(), "az://my-container/a/b");
        assert_eq!(
            ObjectStoreUrl::parse("az://c0ntainer").unwrap().to_string(),
            "az://c0ntainer"
        );
        for bad in [
            "az://",
            "az://ab",
            "az://Upper",
            "az://dotted.name",
            "az://-lead",
            "az://trail-",
            "az://dou--ble",
            "az://ok-name/a/../b",
            "azure://container",
        ] {
            assert!(ObjectStoreUrl::parse(bad).is_err(), "{bad}");
        }
        // A backend is opened for its own scheme only.
        let opts = || ObjectStoreOptions {
            endpoint: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        };
        assert!(
            ObjectStoreBackend::s3(ObjectStoreUrl::parse("az://ctr").unwrap(), opts()).is_err()
        );
        let b = ObjectStoreBackend::open(
            ObjectStoreUrl::parse("az://ctr/repo").unwrap(),
            ObjectStoreOptions {
                settings: vec![
                    ("azure_storage_account_name".into(), "acct".into()),
                    ("azure_storage_account_key".into(), "a2V5".into()),
                ],
                ..opts()
            },
        )
        .unwrap();
        assert_eq!(b.inner.path("locks/x").as_ref(), "repo/locks/x");
        assert_eq!(b.location(), "az://ctr/repo");
    }

    #[test]
    fn keys_go_under_the_prefix() {
        let b = ObjectStoreBackend::s3(
            S3Url::parse("s3://bucket/repo/x").unwrap(),
            ObjectStoreOptions {
                endpoint: Some("http://127.0.0.1:9".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            b.inner.path("packs/ab/abcd").as_ref(),
            "repo/x/packs/ab/abcd"
        );
        assert_eq!(b.inner.path("packs/").as_ref(), "repo/x/packs");
        assert_eq!(b.location(), "s3://bucket/repo/x");
    }
}
