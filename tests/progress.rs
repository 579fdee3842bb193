//! Progress reporting: a status line on a terminal, nothing in a pipe or with `--quiet`
//! (issue 2: "a progress line while running on a TTY"). A terminal is made with `script`
//! (util-linux), which runs the command on a pseudo-terminal and copies what it prints.

mod common;

use common::*;

/// A producer that takes over a second, so that the 250 ms progress ticker fires.
const SLOW_PRODUCER: &str = "sh -c 'head -c 300000 /dev/zero; sleep 1.2; head -c 300000 /dev/zero'";

fn on_terminal(env: &Env, larder_args: &str) -> (i32, String) {
    let script =
        format!("script -qec \"timeout 60 $LARDER {larder_args} -- {SLOW_PRODUCER}\" /dev/null");
    let out = env.shell(&script).output().expect("run script");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn progress_line_is_drawn_on_a_terminal() {
    let env = Env::init();
    let (code, screen) = on_terminal(&env, "snapshot --name tty");
    assert_eq!(code, 0, "snapshot on a terminal failed:\n{screen}");
    // The line is redrawn in place: carriage return, erase line, counters.
    assert!(
        screen.contains("\r\x1b[2K") && screen.contains(" read, ") && screen.contains("MB/s"),
        "no progress line on the terminal:\n{screen:?}"
    );
    assert!(screen.contains("saved"), "no summary:\n{screen}");
}

#[test]
fn quiet_suppresses_the_progress_line() {
    let env = Env::init();
    let (code, screen) = on_terminal(&env, "snapshot --quiet --name tty");
    assert_eq!(code, 0, "snapshot failed:\n{screen}");
    assert!(
        !screen.contains("\x1b[2K") && !screen.contains(" read, "),
        "progress despite --quiet:\n{screen:?}"
    );
}

#[test]
fn nothing_but_the_summary_in_a_pipe() {
    let env = Env::init();
    let out = env
        .shell(&format!(
            "timeout 60 $LARDER snapshot --name pipe -- {SLOW_PRODUCER}"
        ))
        .output()
        .expect("run larder");
    assert_success(&out, "snapshot in a pipe");
    assert!(
        out.stderr.is_empty(),
        "stderr in a pipe should be empty: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.contains(&b'\r'), "progress on stdout in a pipe");
}
