//! The command line: clap definitions, the shared context (repository, password, cache) and
//! one module per command. Thin: args → library options → one library call → render.

/// `println!` that returns the write error instead of panicking: a closed stdout (`larder
/// snapshots | head -1`) is an error (exit 1), never a panic.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use anyhow::Context as _;
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).context("writing to standard output")
    }};
}

pub mod cat;
pub mod check;
pub mod copy;
pub mod drill;
pub mod exit;
pub mod forget;
pub mod init;
pub mod key;
pub mod output;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod run;
pub mod snapshot;
pub mod snapshots;
pub mod stats;
pub mod status;
pub mod tree;
pub mod unlock;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use larder::backend::Backend;
use larder::backend::counting::{CountingBackend, RequestCounts};
use larder::backend::local::LocalBackend;
#[cfg(feature = "s3")]
use larder::backend::object_store::{
    ObjectStoreBackend, ObjectStoreOptions, ObjectStoreUrl, Scheme,
};
use larder::crypto::key_slot::Password;
use larder::format::lock::LockKind;
use larder::repo::Repo;
use larder::repo::lock::Lock;

/// larder: deduplicating, encrypted backups of database dumps.
#[derive(Debug, Parser)]
#[command(name = "larder", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// What to log when `RUST_LOG` is not set, from `-q` / `-v`.
    pub fn log_level(&self) -> tracing_subscriber::filter::LevelFilter {
        output::log_level(self.global.quiet, self.global.verbose)
    }
}

/// Options every command takes.
#[derive(Debug, clap::Args)]
struct Global {
    /// Repository location: a directory, `s3://bucket/prefix` (credentials and region from
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION) or
    /// `az://container/prefix` (AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY).
    #[arg(
        long,
        short = 'r',
        env = "LARDER_REPOSITORY",
        global = true,
        value_name = "PATH|URL"
    )]
    repo: Option<String>,
    /// S3-compatible endpoint for `s3://` repositories (MinIO, another provider, a test
    /// server); requests go path-style to it.
    #[arg(long, env = "AWS_ENDPOINT_URL", global = true, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// Read the password from the first line of this file.
    #[arg(long, env = "LARDER_PASSWORD_FILE", global = true, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Run this shell command and use its output as the password.
    #[arg(
        long,
        env = "LARDER_PASSWORD_COMMAND",
        global = true,
        value_name = "CMD"
    )]
    password_command: Option<String>,
    /// Where the local catalog cache lives (default: the platform cache directory).
    #[arg(long, env = "LARDER_CACHE_DIR", global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Configuration file (TOML): the repository, its password and the series `larder run`
    /// knows. Flags and environment variables win over it.
    #[arg(long, env = "LARDER_CONFIG", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// After `run`, `drill` and `status`: write the Prometheus textfile-collector file here
    /// (atomically; README "Metrics").
    #[arg(long, env = "LARDER_METRICS_FILE", global = true, value_name = "PATH")]
    metrics_file: Option<PathBuf>,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// No progress bar, even on a terminal; log only errors.
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    /// Log more on stderr: -v info, -vv debug, -vvv trace (RUST_LOG, if set, decides
    /// instead).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Wait this long for a conflicting lock to go away (`30s`, `30m`, `2h`) instead of
    /// failing at once with exit 11.
    #[arg(long, env = "LARDER_LOCK_WAIT", global = true, value_name = "DURATION", value_parser = parse_duration)]
    lock_wait: Option<std::time::Duration>,
}

/// The requests this run sends to its repository (every backend the CLI makes counts into
/// it); `--json` output reports them.
pub fn requests() -> Arc<RequestCounts> {
    static COUNTS: std::sync::OnceLock<Arc<RequestCounts>> = std::sync::OnceLock::new();
    COUNTS.get_or_init(Default::default).clone()
}

/// Parses `90`, `90s`, `30m`, `2h`, `1d` (whole numbers).
pub fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    larder::config::parse_duration(s)
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new repository.
    Init(init::Args),
    /// Store files and directories, or a stream (stdin, or a command's output), as a new
    /// snapshot.
    Snapshot(snapshot::Args),
    /// List snapshots.
    Snapshots(snapshots::Args),
    /// Show stored and raw size, compression and dedup ratios: for the repository, per
    /// series (name) and, with --snapshots, per snapshot. Read-only; takes no lock.
    Stats(stats::Args),
    /// Restore a snapshot: a stream to stdout or a file, a directory snapshot into --target;
    /// every blob verified.
    Restore(restore::Args),
    /// List the entries of a directory snapshot, like `ls -l`.
    Ls(tree::LsArgs),
    /// Compare two directory snapshots: added, removed and changed paths.
    Diff(tree::DiffArgs),
    /// Write one file of a directory snapshot to stdout.
    Dump(tree::DumpArgs),
    /// Manage key slots (passwords).
    #[command(subcommand)]
    Key(key::Command),
    /// Print a decrypted repository object as JSON (for debugging).
    Cat(cat::Args),
    /// Verify the repository: index, packs and every snapshot's blobs; with --read-data, the
    /// data itself. Damage is listed with the snapshots it affects; exit 14.
    Check(check::Args),
    /// Copy snapshots the destination lacks from another repository (an offsite replica),
    /// with the destination's keys; idempotent, and resumable after a kill.
    Copy(copy::Args),
    /// Run series of the --config file: snapshot, retention, scheduled prune, metrics and
    /// notifications; the one line for cron, a systemd timer or a CronJob.
    Run(run::Args),
    /// Per series: last good snapshot, age, size, dedup, last run and drill; exit 15 when a
    /// series is older than its max_age.
    Status(status::Args),
    /// Restore a series' newest good snapshot into its drill command (e.g. pg_restore
    /// --list), verifying every blob; record pass or fail in the repository.
    Drill(drill::Args),
    /// Remove stale locks (left by killed processes); `--remove-all` removes every lock.
    Unlock(unlock::Args),
    /// Remove snapshots by a retention policy (restic's semantics); --prune to free space.
    Forget(forget::Args),
    /// Delete data no snapshot needs: unused packs, and repack mostly-unused ones.
    Prune(prune::Args),
    /// Rebuild the index from pack headers, or mark snapshots that depend on lost data.
    #[command(subcommand)]
    Repair(repair::Command),
}

/// Runs one command; returns the exit code of a run that did not fail.
pub fn run(cli: Cli) -> Result<u8> {
    let config = match &cli.global.config {
        Some(path) => larder::config::Config::load(path)?,
        None => larder::config::Config::default(),
    };
    let ctx = Ctx {
        g: cli.global,
        config,
    };
    let done = match cli.command {
        Command::Init(a) => init::run(a, &ctx),
        Command::Snapshot(a) => return snapshot::run(a, &ctx),
        Command::Snapshots(a) => snapshots::run(a, &ctx),
        Command::Stats(a) => stats::run(a, &ctx),
        Command::Restore(a) => restore::run(a, &ctx),
        Command::Ls(a) => tree::ls(a, &ctx),
        Command::Diff(a) => tree::diff(a, &ctx),
        Command::Dump(a) => tree::dump(a, &ctx),
        Command::Key(c) => key::run(c, &ctx),
        Command::Cat(a) => cat::run(a, &ctx),
        Command::Check(a) => check::run(a, &ctx),
        Command::Copy(a) => return copy::run(a, &ctx),
        Command::Run(a) => return run::run(a, &ctx),
        Command::Status(a) => return status::run(a, &ctx),
        Command::Drill(a) => return drill::run(a, &ctx),
        Command::Unlock(a) => unlock::run(a, &ctx),
        Command::Forget(a) => forget::run(a, &ctx),
        Command::Prune(a) => prune::run(a, &ctx),
        Command::Repair(c) => repair::run(c, &ctx),
    };
    done.map(|()| exit::SUCCESS)
}

/// What every command shares: where the repository is and how to unlock it.
pub struct Ctx {
    g: Global,
    /// The `--config` file (empty without one).
    config: larder::config::Config,
}

impl Ctx {
    /// `--json` given?
    pub fn json(&self) -> bool {
        self.g.json
    }

    /// `--quiet` given?
    pub fn quiet(&self) -> bool {
        self.g.quiet
    }

    /// Progress lines wanted (not `--quiet`, not `--json`)?
    pub fn progress(&self) -> bool {
        !self.g.quiet && !self.g.json
    }

    /// The configuration file's contents (defaults without `--config`).
    pub fn config(&self) -> &larder::config::Config {
        &self.config
    }

    /// The repository location: `--repo` / `LARDER_REPOSITORY`, else the config's `url`.
    pub fn location(&self) -> Result<&str> {
        self.g
            .repo
            .as_deref()
            .filter(|r| !r.is_empty())
            .or(self.config.repository.url.as_deref())
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                anyhow::Error::new(larder::Error::InvalidArgument(
                    "no repository given: use --repo, set LARDER_REPOSITORY or `url` in the --config file".into(),
                ))
            })
    }

    /// The backend for the repository location: `s3://bucket/prefix` or a local directory.
    /// Sends no request; `LARDER_S3_RETRIES` overrides the retries of one S3 request.
    pub fn backend(&self) -> Result<Arc<dyn Backend>> {
        let loc = self.location()?;
        self.backend_at(loc, None, None)
    }

    /// The backend for `loc` (`s3_endpoint` overrides `--s3-endpoint`), counted into
    /// [`requests`] and, if given, into `also`.
    pub fn backend_at(
        &self,
        loc: &str,
        s3_endpoint: Option<&str>,
        also: Option<Arc<RequestCounts>>,
    ) -> Result<Arc<dyn Backend>> {
        let endpoint = s3_endpoint.or(self.g.s3_endpoint.as_deref()).or(self
            .config
            .repository
            .s3_endpoint
            .as_deref());
        let mut b: Arc<dyn Backend> = Arc::new(CountingBackend::new(
            raw_backend(loc, endpoint)?,
            requests(),
        ));
        if let Some(counts) = also {
            b = Arc::new(CountingBackend::new(b, counts));
        }
        Ok(b)
    }

    /// The cache directory for catalogs.
    pub fn cache_dir(&self) -> Result<PathBuf> {
        if let Some(d) = self
            .g
            .cache_dir
            .as_ref()
            .or(self.config.repository.cache_dir.as_ref())
        {
            return Ok(d.clone());
        }
        directories::BaseDirs::new()
            .map(|d| d.cache_dir().join("larder"))
            .context("cannot find a cache directory; set LARDER_CACHE_DIR or --cache-dir")
    }

    /// The password, from (in order) `--password-file`, `--password-command`,
    /// `LARDER_PASSWORD`, the config's `password_file` or `password_command`, or a prompt on
    /// a terminal.
    pub fn password(&self, confirm: bool) -> Result<Password> {
        let src = PasswordSource {
            file: self.g.password_file.as_deref(),
            command: self.g.password_command.as_deref(),
            env: "LARDER_PASSWORD",
            prompt: "enter repository password: ",
        };
        if let Some(p) = src.read()? {
            return Ok(p);
        }
        let repo = &self.config.repository;
        let from_config = PasswordSource {
            file: repo.password_file.as_deref(),
            command: repo.password_command.as_deref(),
            env: "",
            prompt: src.prompt,
        };
        if repo.password_file.is_some() || repo.password_command.is_some() {
            if let Some(p) = from_config.read()? {
                return Ok(p);
            }
        }
        prompt(src.prompt, confirm)
    }

    /// Opens the repository and syncs its catalog.
    pub fn open_repo(&self) -> Result<Repo> {
        let repo = self.open_repo_unwarned()?;
        refuse_unreadable(&repo)?;
        Ok(repo)
    }

    /// Opens the repository even when some index segments or snapshots cannot be read
    /// (they are left out of the catalog), for the commands that report and repair them
    /// (`check`, `repair`); every other command refuses such a repository.
    pub fn open_repo_unwarned(&self) -> Result<Repo> {
        let backend = self.backend()?;
        let password = self.password(false)?;
        let cache = self.cache_dir()?;
        Ok(Repo::open(backend, &password, &cache)?)
    }

    /// Opens the repository in `backend` with `password`, refusing one with unreadable
    /// index segments or snapshots as [`Ctx::open_repo`] does.
    pub fn open_repo_with(&self, backend: Arc<dyn Backend>, password: &Password) -> Result<Repo> {
        let repo = Repo::open(backend, password, &self.cache_dir()?)?;
        refuse_unreadable(&repo)?;
        Ok(repo)
    }

    /// Takes a lock on `repo` for `command`, waiting as long as `--lock-wait` says; stale
    /// locks taken over are noted on stderr.
    pub fn lock(&self, repo: &Repo, kind: LockKind, command: &str) -> Result<Lock> {
        let quiet = self.quiet();
        let mut note = |n: String| {
            if !quiet {
                eprintln!("larder: note: {n}");
            }
        };
        Ok(Lock::acquire(
            repo.backend().clone(),
            repo.keys().clone(),
            kind,
            command,
            self.lock_wait(),
            &mut note,
        )?)
    }
}

impl Ctx {
    /// `--lock-wait`, else the config's `lock_wait`, else none.
    pub fn lock_wait(&self) -> std::time::Duration {
        self.g
            .lock_wait
            .or(self.config.repository.lock_wait.map(|s| s.0))
            .unwrap_or_default()
    }

    /// Writes the metrics file (`--metrics-file`, else `[metrics] textfile`), if one is
    /// wanted, from `status`. A file that cannot be written is a warning on stderr, never a
    /// failed backup (the monitor sees `larder_metrics_generated_timestamp_seconds` age).
    pub fn write_metrics(&self, status: &larder::status::RepoStatus) {
        let Some(path) = self
            .g
            .metrics_file
            .as_ref()
            .or(self.config.metrics.textfile.as_ref())
        else {
            return;
        };
        let text = larder::metrics::render(self.location().unwrap_or_default(), status);
        if let Err(e) = larder::metrics::write_textfile(path, &text) {
            eprintln!("larder: warning: metrics file not written: {e}");
        }
    }

    /// `--host` given to a command, else the config's `[repository] host`.
    pub fn host(&self, flag: Option<String>) -> Option<String> {
        flag.or_else(|| self.config.repository.host.clone())
    }
}

/// Fails if opening `repo` left index segments or snapshots out of its catalog.
fn refuse_unreadable(repo: &Repo) -> Result<()> {
    let bad = &repo.sync_stats().unreadable;
    if let Some(first) = bad.first() {
        return Err(larder::Error::UnreadableObjects {
            count: bad.len(),
            first: first.clone(),
        }
        .into());
    }
    Ok(())
}

/// The storage under `loc`, uncounted: `s3://bucket/prefix`, `az://container/prefix` or a
/// local directory.
fn raw_backend(loc: &str, s3_endpoint: Option<&str>) -> Result<Arc<dyn Backend>> {
    #[cfg(feature = "s3")]
    if loc.starts_with("s3://") || loc.starts_with("az://") {
        let url = ObjectStoreUrl::parse(loc).map_err(larder::Error::InvalidArgument)?;
        let max_retries = match std::env::var("LARDER_S3_RETRIES") {
            Ok(n) => n.trim().parse().map_err(|_| {
                larder::Error::InvalidArgument(format!(
                    "LARDER_S3_RETRIES={n:?} is not a number of retries"
                ))
            })?,
            Err(_) => ObjectStoreOptions::default().max_retries,
        };
        // `--s3-endpoint` (and `AWS_ENDPOINT_URL`) names an S3 server; Azure's endpoint
        // comes from `AZURE_STORAGE_ENDPOINT` or `AZURE_STORAGE_USE_EMULATOR`.
        let endpoint = match url.scheme() {
            Scheme::S3 => s3_endpoint.filter(|e| !e.is_empty()).map(str::to_owned),
            Scheme::Azure => None,
        };
        let opts = ObjectStoreOptions {
            endpoint,
            max_retries,
            ..ObjectStoreOptions::default()
        };
        let backend = ObjectStoreBackend::open(url, opts).map_err(larder::Error::from)?;
        return Ok(Arc::new(backend));
    }
    #[cfg(not(feature = "s3"))]
    let _ = s3_endpoint;
    if let Some((scheme, _)) = loc.split_once("://") {
        return Err(larder::Error::InvalidArgument(format!(
            "repository `{loc}`: `{scheme}://` repositories are not supported; give a local directory, s3://bucket/prefix or az://container/prefix"
        ))
        .into());
    }
    Ok(Arc::new(LocalBackend::open(loc)))
}

/// Where a password comes from, in this order: a file, a command, an environment variable;
/// `read` answers `None` when none of them is set.
pub struct PasswordSource<'a> {
    /// Read the first line of this file.
    pub file: Option<&'a std::path::Path>,
    /// Run this shell command and take the first line of its output.
    pub command: Option<&'a str>,
    /// The variable holding the password itself.
    pub env: &'static str,
    /// What to ask on a terminal.
    pub prompt: &'static str,
}

impl PasswordSource<'_> {
    /// The password, if one of the sources is set.
    pub fn read(&self) -> Result<Option<Password>> {
        if let Some(f) = self.file {
            let s = std::fs::read(f).map_err(|e| {
                larder::Error::PasswordSource(format!("password file {}: {e}", f.display()))
            })?;
            return non_empty(first_line(s)).map(Some);
        }
        if let Some(cmd) = self.command {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .stderr(std::process::Stdio::inherit())
                .output()
                .map_err(|e| {
                    larder::Error::PasswordSource(format!("password command `{cmd}`: {e}"))
                })?;
            if !out.status.success() {
                return Err(larder::Error::PasswordSource(format!(
                    "password command `{cmd}` {}",
                    larder::backup::source::describe(out.status)
                ))
                .into());
            }
            return non_empty(first_line(out.stdout)).map(Some);
        }
        if let Some(Ok(p)) = (!self.env.is_empty()).then(|| std::env::var(self.env)) {
            return non_empty(p.into_bytes()).map(Some);
        }
        Ok(None)
    }
}

/// Asks on the terminal (twice if `confirm`); refuses when stdin is not a terminal.
pub fn prompt(text: &str, confirm: bool) -> Result<Password> {
    if !std::io::stdin().is_terminal() {
        return Err(larder::Error::NoPassword.into());
    }
    let p = rpassword::prompt_password(text).context("reading the password")?;
    if confirm {
        let again =
            rpassword::prompt_password("enter it again: ").context("reading the password")?;
        if again != p {
            bail!(larder::Error::PasswordSource(
                "the passwords do not match".into()
            ));
        }
    }
    non_empty(p.into_bytes())
}

pub fn first_line(mut b: Vec<u8>) -> Vec<u8> {
    if let Some(i) = b.iter().position(|&c| c == b'\n') {
        b.truncate(i);
    }
    if b.last() == Some(&b'\r') {
        b.pop();
    }
    b
}

pub fn non_empty(b: Vec<u8>) -> Result<Password> {
    if b.is_empty() {
        return Err(larder::Error::PasswordSource("the password is empty".into()).into());
    }
    Ok(Password::new(b))
}

/// Parses a size: bytes, or a number with a binary suffix (`K`, `KiB`, `M`, `MiB`, `G`, `GiB`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a size"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return Err(format!("`{s}`: unknown unit (use K, M or G)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("8K"), Ok(8192));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn first_line_strips_newline() {
        assert_eq!(first_line(b"pw\r\nrest".to_vec()), b"pw");
        assert_eq!(first_line(b"pw".to_vec()), b"pw");
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
