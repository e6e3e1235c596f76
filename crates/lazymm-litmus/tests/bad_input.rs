//! Bad input never panics: syntax errors name the line and what was
//! expected; garbage, truncations and mutations of real tests are reported,
//! not crashed on.

use lazymm_litmus::cli::{run, LitmusArgs};
use lazymm_litmus::{check, check_source, parse, LitmusError, Options, Status};
use proptest::prelude::*;
use std::path::Path;
use std::time::Duration;

const MP: &str = "C MP+pooncerelease+poacquireonce

(*
 * Result: Never
 *)

{}

P0(int *buf, int *flag) // Producer
{
\tWRITE_ONCE(*buf, 1);
\tsmp_store_release(flag, 1);
}

P1(int *buf, int *flag, spinlock_t *l) // Consumer
{
\tint r0;
\tint r1;

\tr0 = smp_load_acquire(flag);
\tif (r0 == 1) {
\t\tr1 = READ_ONCE(*buf);
\t} else {
\t\tr1 = cmpxchg(buf, 0, 2);
\t}
\tspin_lock(l);
\tspin_unlock(l);
}

locations [buf;]
exists (1:r0=1 /\\ 1:r1=0) (* Bad outcome. *)
";

fn opts() -> Options {
    Options {
        timeout: Some(Duration::from_millis(500)),
    }
}

#[test]
fn sample_parses_and_checks() {
    let t = parse(MP).expect("parses");
    let o = check(&t, &opts()).expect("checks");
    assert_eq!(o.verdict, lazymm_litmus::Verdict::Never);
}

#[test]
fn syntax_errors_name_line_and_expectation() {
    let cases = [
        (
            "C X\n{}\nP0(int *x)\n{\n\tWRITE_ONCE(*x, 1)\n}\nexists (x=1)\n",
            6,
            "expected `;`",
        ),
        (
            "C X\n{ x = ; }\nP0(int *x) { }\nexists (x=1)\n",
            2,
            "expected an initial value",
        ),
        (
            "C X\n{}\nP0(int *x) { int r0 = READ_ONCE(*x); }\nexists (0:r0 1)\n",
            4,
            "expected `=`",
        ),
        (
            "C X\n{}\nP0(int *x) {\n  if (READ_ONCE(*x) {\n  }\n}\nexists (x=1)\n",
            4,
            "expected `)`",
        ),
        ("", 1, "expected a header line"),
    ];
    for (src, line, what) in cases {
        match parse(src) {
            Err(LitmusError::Syntax { line: l, msg }) => {
                assert_eq!(l, line, "{src:?}: {msg}");
                assert!(msg.contains(what), "{src:?}: {msg}");
            }
            r => panic!("{src:?}: expected a syntax error, got {r:?}"),
        }
    }
    let rep = check_source(Path::new("t.litmus"), cases[0].0, &opts());
    assert_eq!(rep.status, Status::Error);
    assert!(rep.message.unwrap().starts_with("t.litmus:6: expected `;`"));
}

#[test]
fn unsupported_constructs_are_named() {
    let src = "C X\n{}\nP0(int *x) { while (1) { } }\nexists (x=1)\n";
    assert_eq!(
        parse(src),
        Err(LitmusError::Unsupported("`while` statement".into()))
    );
    let src = "C X\n{}\nP0(int *x) { kfree(x); }\nexists (x=1)\n";
    let rep = check_source(Path::new("k.litmus"), src, &opts());
    assert_eq!(rep.status, Status::Unsupported);
    assert_eq!(rep.message.as_deref(), Some("unsupported: call to `kfree`"));
    let rep = check_source(Path::new("p.litmus"), "PPC X\n{}\n", &opts());
    assert_eq!(rep.status, Status::Unsupported);
}

#[test]
fn timeout_is_reported() {
    // 8 threads x 4 independent reads: far too many executions for 1 ms.
    let mut src = String::from("C big\n{}\n");
    for t in 0..8 {
        src.push_str(&format!(
            "P{t}(int *a, int *b, int *c, int *d) {{ WRITE_ONCE(*a, {t}); WRITE_ONCE(*b, {t}); int r0 = READ_ONCE(*a); int r1 = READ_ONCE(*b); int r2 = READ_ONCE(*c); int r3 = READ_ONCE(*d); WRITE_ONCE(*c, 1); WRITE_ONCE(*d, 1); }}\n"
        ));
    }
    src.push_str("exists (0:r0=0)\n");
    let o = Options {
        timeout: Some(Duration::from_millis(1)),
    };
    let rep = check_source(Path::new("big.litmus"), &src, &o);
    assert_eq!(rep.status, Status::Timeout, "{:?}", rep.message);
    assert!(rep.message.unwrap().contains("too large to enumerate"));
}

#[test]
fn cli_exit_codes() {
    let dir = std::env::temp_dir().join(format!("lazymm-litmus-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.litmus");
    std::fs::write(&good, MP).unwrap();
    let bad = dir.join("bad.litmus");
    std::fs::write(&bad, MP.replace("Result: Never", "Result: Sometimes")).unwrap();
    let broken = dir.join("broken.litmus");
    std::fs::write(&broken, "C X\n{}\nP0(int *x) {\n").unwrap();
    let args = |p: &Path, json: bool| LitmusArgs {
        paths: vec![p.to_path_buf()],
        json,
        timeout: 10.0,
        jobs: Some(1),
        quiet: false,
    };
    assert_eq!(run(&args(&good, false)).unwrap(), 0);
    assert_eq!(run(&args(&good, true)).unwrap(), 0);
    assert_eq!(run(&args(&bad, false)).unwrap(), 1);
    assert_eq!(run(&args(&broken, false)).unwrap(), 2);
    assert_eq!(run(&args(&dir, true)).unwrap(), 2);
    std::fs::remove_dir_all(&dir).ok();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn garbage_never_panics(s in "\\PC{0,200}") {
        let _ = parse(&s);
        let _ = check_source(Path::new("g.litmus"), &s, &opts());
    }

    #[test]
    fn truncations_never_panic(n in 0usize..MP.len()) {
        let s = &MP[..n];
        let _ = check_source(Path::new("t.litmus"), s, &opts());
    }

    #[test]
    fn mutations_never_panic(pos in 0usize..MP.len(), len in 0usize..8, ins in "[-a-z0-9(){};:*/\\\\=~&|!<> \n]{0,6}") {
        let end = (pos + len).min(MP.len());
        let mut s = String::with_capacity(MP.len() + 8);
        s.push_str(&MP[..pos]);
        s.push_str(&ins);
        s.push_str(&MP[end..]);
        let _ = check_source(Path::new("m.litmus"), &s, &opts());
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!(
        "C X\n{{}}\nP0(int *x) {{ int r0 = {}1{}; }}\nexists (x=1)\n",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    match parse(&deep) {
        Err(LitmusError::Syntax { msg, .. }) => assert!(msg.contains("nested"), "{msg}"),
        r => panic!("{r:?}"),
    }
    let deep = format!(
        "C X\n{{}}\nP0(int *x) {{ {} }}\nexists (x=1)\n",
        "{".repeat(100_000)
    );
    assert!(matches!(parse(&deep), Err(LitmusError::Syntax { .. })));
    let deep = format!(
        "C X\n{{}}\nP0(int *x) {{ }}\nexists {}x=1\n",
        "~".repeat(100_000)
    );
    assert!(matches!(parse(&deep), Err(LitmusError::Syntax { .. })));
}

#[test]
fn long_chains_are_an_error_not_a_crash() {
    let chain = format!(
        "C X\n{{}}\nP0(int *x) {{ int r0 = 1{}; }}\nexists (x=1)\n",
        "+1".repeat(100_000)
    );
    assert!(matches!(parse(&chain), Err(LitmusError::Syntax { .. })));
    let chain = format!(
        "C X\n{{}}\nP0(int *x) {{ }}\nexists (x=1{})\n",
        " /\\ x=1".repeat(100_000)
    );
    assert!(matches!(parse(&chain), Err(LitmusError::Syntax { .. })));
}
