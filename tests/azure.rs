//! The object-store backend on Azure Blob Storage, against a real Azurite on 127.0.0.1
//! (started per test by `common/azurite.rs`): the backend conformance suite, a large staged
//! object going up in blocks, the conditional-write probe, one end-to-end run of the real
//! binary on an `az://container/prefix` repository, and the one-line error for a missing
//! container.
//!
//! Without Azurite these tests fail when `CI` is set and are skipped with a loud note
//! otherwise.

#![cfg(feature = "s3")]
#![allow(clippy::panic, clippy::unwrap_used, reason = "tests fail by panicking")]

#[path = "common/azurite.rs"]
mod azurite;
mod common;

use std::process::Output;

use azurite::AzuriteServer;
use common::*;
use larder::backend::object_store::{
    ObjectStoreBackend, ObjectStoreOptions, ObjectStoreUrl, PROBE_PREFIX,
};
use larder::backend::{Backend, ConditionalWrites, Error, ObjectKey, Prefix, conformance};
use larder::id::PackId;

/// A backend on `url` at `server`, with its account and key given as settings and the
/// account's URL as the endpoint (no emulator mode: every test has its own port).
fn backend(
    server: &AzuriteServer,
    url: &str,
    multipart_threshold: Option<u64>,
) -> ObjectStoreBackend {
    let settings = [
        ("azure_storage_account_name", azurite::ACCOUNT),
        ("azure_storage_account_key", azurite::ACCOUNT_KEY),
    ];
    let d = ObjectStoreOptions::default();
    let opts = ObjectStoreOptions {
        endpoint: Some(server.endpoint()),
        multipart_threshold: multipart_threshold.unwrap_or(d.multipart_threshold),
        settings: settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..d
    };
    ObjectStoreBackend::open(ObjectStoreUrl::parse(url).unwrap(), opts).unwrap()
}

#[test]
fn conformance_on_azurite() {
    let Some(server) = AzuriteServer::start("conformance_on_azurite") else {
        return;
    };
    server.create_container("larder-conformance");
    // Azurite honours `If-None-Match: *` on Put Blob (refuses it once the blob exists), so
    // the suite's create-only checks run against the server's own conditional write.
    conformance::run(&backend(&server, "az://larder-conformance/repo", None));
    // And at the root of a container.
    server.create_container("larder-root");
    conformance::run(&backend(&server, "az://larder-root", None));
}

#[test]
fn large_staged_objects_go_up_in_blocks() {
    let Some(server) = AzuriteServer::start("large_staged_objects_go_up_in_blocks") else {
        return;
    };
    server.create_container("larder-multipart");
    let b = backend(&server, "az://larder-multipart/r", Some(1024 * 1024));
    // Above the threshold and not a whole number of 8 MiB blocks: three blocks.
    let data = random_bytes(7, 17 * 1024 * 1024 + 12_345);
    let key = ObjectKey::pack(&PackId([0x5a; 32]));
    let mut s = b.stage(Prefix::Packs).unwrap();
    for piece in data.chunks(1_000_003) {
        s.write(piece).unwrap();
    }
    s.commit(&key).unwrap();
    assert_same_bytes(&b.get(&key).unwrap(), &data, "blob put in blocks");
    let at: usize = 9 * 1024 * 1024 - 3;
    let from = at as u64;
    assert_eq!(
        b.get_range(&key, from..from + 10).unwrap(),
        &data[at..at + 10],
        "a range across a block boundary"
    );
    assert_eq!(b.list(Prefix::Packs).unwrap()[0].size, data.len() as u64);
    // Checked to be free first, like a single put.
    let mut again = b.stage(Prefix::Packs).unwrap();
    again.write(&data[..2 * 1024 * 1024]).unwrap();
    assert!(
        matches!(again.commit(&key), Err(Error::AlreadyExists { .. })),
        "a block upload does not replace a stored blob"
    );
    assert_same_bytes(&b.get(&key).unwrap(), &data, "blob kept its bytes");
}

#[test]
fn conditional_writes_are_probed_and_the_probe_removed() {
    let Some(server) = AzuriteServer::start("conditional_writes_are_probed_and_the_probe_removed")
    else {
        return;
    };
    server.create_container("larder-probe");
    let b = backend(&server, "az://larder-probe/r", None);
    assert_eq!(
        b.probe_conditional_writes().unwrap(),
        ConditionalWrites::Honoured,
        "Azurite honours If-None-Match on Put Blob"
    );
    let left: Vec<String> = server.blobs("larder-probe");
    assert!(
        left.iter().all(|k| !k.contains(PROBE_PREFIX)),
        "the probe is removed: {left:?}"
    );
    assert_eq!(left, Vec::<String>::new());
}

/// `larder` on an Azure repository at `server`, through `object_store`'s emulator mode.
fn larder(env: &Env, server: &AzuriteServer, url: &str) -> assert_cmd::Command {
    let mut c = env.larder();
    for (v, _) in std::env::vars_os() {
        if v.to_str().is_some_and(azurite::is_azure_variable) {
            c.env_remove(v);
        }
    }
    c.envs(server.env()).env("LARDER_REPOSITORY", url);
    c
}

fn run(env: &Env, server: &AzuriteServer, url: &str, args: &[&str]) -> Output {
    larder(env, server, url)
        .args(args)
        .output()
        .expect("run larder")
}

#[test]
fn the_binary_backs_up_and_restores_on_azurite() {
    let Some(server) = AzuriteServer::start("the_binary_backs_up_and_restores_on_azurite") else {
        return;
    };
    server.create_container("larder-e2e");
    let url = "az://larder-e2e/repos/one";
    let env = Env::new();

    let mut init = vec!["init", "--pack-size", "1M"];
    init.extend(FAST_KDF);
    let out = run(&env, &server, url, &init);
    assert_success(&out, "init");
    assert!(String::from_utf8_lossy(&out.stdout).contains(url));

    let data = [text_bytes(1, 3 << 20), random_bytes(2, 2 << 20)].concat();
    let out = larder(&env, &server, url)
        .args(["--json", "snapshot", "--name", "db", "--stdin"])
        .write_stdin(data.clone())
        .output()
        .expect("run larder snapshot");
    assert_success(&out, "snapshot --stdin");
    let id = id_of(&parse_json(&out.stdout));

    let out = run(&env, &server, url, &["restore", &id]);
    assert_success(&out, "restore");
    assert_same_bytes(&out.stdout, &data, "restored stream");
    assert_success(
        &run(&env, &server, url, &["check", "--read-data"]),
        "check --read-data",
    );
    assert!(
        server
            .blobs("larder-e2e")
            .iter()
            .any(|k| k.starts_with("repos/one/packs/")),
        "packs are blobs under the prefix"
    );
}

#[test]
fn a_missing_container_is_one_line_naming_it() {
    let Some(server) = AzuriteServer::start("a_missing_container_is_one_line_naming_it") else {
        return;
    };
    let env = Env::new();
    let url = "az://larder-no-such-container/repo";
    let mut init = vec!["init"];
    init.extend(FAST_KDF);
    for args in [init, vec!["snapshots"]] {
        let out = run(&env, &server, url, &args);
        assert_failure(
            &out,
            1,
            &[
                "container `larder-no-such-container` does not exist",
                "az://",
            ],
        );
    }
}
