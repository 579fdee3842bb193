//! `larder init`: create a repository.
//!
//! On an object store it first checks that the server keeps create-only puts (locks rest on
//! them) and refuses one that does not, unless told otherwise; nothing of that is recorded in
//! the repository.

use std::sync::Arc;

use anyhow::Result;
use larder::backend::local::LocalBackend;
use larder::backend::{Backend, ConditionalWrites};
use larder::format::config::ChunkerParams;
use larder::format::key_slot::KdfParams;
use larder::repo::{self, InitOptions};
use serde_json::json;

use super::{Ctx, output, parse_size};

/// Chunker, pack and key settings fixed at creation.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Smallest chunk (default 1K).
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    chunk_min: Option<u64>,
    /// Target average chunk (default 4K).
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    chunk_avg: Option<u64>,
    /// Largest chunk (default 32K).
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    chunk_max: Option<u64>,
    /// Cut every stream with the chunk sizes above. By default a series whose stream
    /// compresses 32 times or more and changes at so many places that small chunks store
    /// more than large ones is cut in ~1 MiB chunks instead (format-spec/chunker.md,
    /// "Coarse chunking"); that is also off when --chunk-avg is 1M or more.
    #[arg(long)]
    no_coarse_chunking: bool,
    /// Target pack size (default 16M).
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pack_size: Option<u64>,
    /// Default zstd level for new data (-7 to 22, default 3).
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(i32).range(-7..=22))]
    compression: Option<i32>,
    /// Argon2id memory in MiB for the first key slot (default 64, floor 19).
    #[arg(long, value_name = "MIB")]
    kdf_memory: Option<u32>,
    /// Argon2id passes (default 3, floor 2).
    #[arg(long, value_name = "N")]
    kdf_iterations: Option<u32>,
    /// Argon2id lanes (default 2).
    #[arg(long, value_name = "N")]
    kdf_parallelism: Option<u32>,
    /// Create the repository even on an S3 server that ignores conditional writes
    /// (`If-None-Match`): there two hosts can both take the exclusive lock, and objects can
    /// be replaced. The check still runs and warns; nothing is recorded in the repository.
    #[arg(long)]
    unsafe_no_conditional_writes: bool,
    /// Take the chunker parameters and chunk identity (blob id and chunker keys, not the
    /// encryption key) of the repository given by --from, so that `copy` between the two
    /// moves blobs by id instead of cutting everything again.
    #[arg(long, requires = "from", conflicts_with_all = ["chunk_min", "chunk_avg", "chunk_max", "no_coarse_chunking"])]
    copy_chunker_params: bool,
    #[command(flatten)]
    from: super::copy::FromArgs,
}

fn u32_size(v: Option<u64>, default: u32, what: &str) -> Result<u32> {
    match v {
        None => Ok(default),
        Some(v) => u32::try_from(v)
            .map_err(|_| larder::Error::InvalidArgument(format!("{what} {v} is too large")).into()),
    }
}

/// Parses the settings into `InitOptions`.
pub fn options(a: &Args) -> Result<InitOptions> {
    let d = InitOptions::default();
    let chunker = ChunkerParams {
        min_size: u32_size(a.chunk_min, d.chunker.min_size, "--chunk-min")?,
        avg_size: u32_size(a.chunk_avg, d.chunker.avg_size, "--chunk-avg")?,
        max_size: u32_size(a.chunk_max, d.chunker.max_size, "--chunk-max")?,
        ..d.chunker
    };
    chunker
        .validate()
        .map_err(|e| larder::Error::InvalidArgument(format!("chunk sizes: {e}")))?;
    let kdf = KdfParams {
        m_cost: a
            .kdf_memory
            .map_or(d.kdf.m_cost, |m| m.saturating_mul(1024)),
        t_cost: a.kdf_iterations.unwrap_or(d.kdf.t_cost),
        p_cost: a.kdf_parallelism.unwrap_or(d.kdf.p_cost),
    };
    if !kdf.in_range() {
        return Err(larder::Error::KdfParams(format!(
            "{kdf} (floor {}, ceiling {})",
            KdfParams::FLOOR,
            KdfParams::CEILING
        ))
        .into());
    }
    let coarse_chunking = d
        .coarse_chunking
        .filter(|c| !a.no_coarse_chunking && c.chunker.avg_size > chunker.avg_size);
    Ok(InitOptions {
        chunker,
        coarse_chunking,
        pack_size: u32_size(a.pack_size, d.pack_size, "--pack-size")?,
        zstd_level: a.compression.unwrap_or(d.zstd_level),
        kdf,
        host: d.host,
        chunk_identity: None,
    })
}

/// Refuses storage that does not keep create-only puts; with `unsafe_ok` it only warns.
fn check_conditional_writes(b: &dyn Backend, unsafe_ok: bool) -> Result<()> {
    let server = match b.probe_conditional_writes().map_err(larder::Error::from)? {
        ConditionalWrites::Honoured => return Ok(()),
        ConditionalWrites::Ignored { server } => server,
    };
    let problem = format!(
        "the S3 server at {server} does not honour conditional writes (If-None-Match); \
         locks and create-only objects are not safe there"
    );
    if !unsafe_ok {
        anyhow::bail!("{problem}; pass --unsafe-no-conditional-writes to init anyway");
    }
    // Even with --quiet: the repository is being created unsafe on purpose, but visibly.
    eprintln!("larder: warning: {problem}; creating the repository anyway");
    Ok(())
}

/// Runs `init`.
pub fn run(a: Args, ctx: &Ctx) -> Result<()> {
    let opts = options(&a)?;
    let location = ctx.location()?.to_owned();
    // An object store has no folders to make: its backend is the one every command opens.
    let remote = if location.contains("://") {
        let b = ctx.backend()?;
        // Before the password prompt and before anything is written.
        check_conditional_writes(b.as_ref(), a.unsafe_no_conditional_writes)?;
        Some(b)
    } else {
        None
    };
    let password = ctx.password(true)?;
    let mut opts = opts;
    if a.copy_chunker_params {
        let src = a.from.open(ctx, &password, None)?;
        opts.chunker = src.config().chunker;
        opts.coarse_chunking = src.config().coarse_chunking;
        opts.chunk_identity = Some(src.keys().identity().clone());
    } else if a.from.from.is_some() {
        return Err(larder::Error::InvalidArgument(
            "--from is used by init only with --copy-chunker-params".into(),
        )
        .into());
    }
    let backend: Arc<dyn Backend> = match remote {
        Some(b) => b,
        None => Arc::new(LocalBackend::create(&location)?),
    };
    let id = repo::init(backend.as_ref(), &password, &opts)?;
    if ctx.json() {
        output::json(&json!({
            "repository": location,
            "id": id,
            "chunker": opts.chunker,
            "coarse_chunking": opts.coarse_chunking,
            "pack_size": opts.pack_size,
            "zstd_level": opts.zstd_level,
            "shared_chunk_identity": opts.chunk_identity.is_some(),
        }))
    } else {
        outln!("created repository {} at {location}", id.short())?;
        outln!("keep the password safe: without it the data cannot be read back")?;
        Ok(())
    }
}
