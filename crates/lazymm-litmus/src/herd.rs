//! Differential checking against `herd7` (the reference LKMM checker).
//!
//! [`herd_path`] finds the `herd7-lkmm` wrapper built by
//! `shared/tools/herd7/build.sh` (herd7 with the Linux 6.12 model files);
//! [`run_herd`] runs it on one file with a time limit and reads its verdict,
//! data-race flag and final states; [`compare`] sets them against lazymm's
//! [`FileReport`].  Used by the `differential` example, the differential
//! test and the generated-test property test.

use crate::{FileReport, Status, Verdict};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The `herd7-lkmm` wrapper: `$HERD7_LKMM` if set, else
/// `$HOME/.cache/herd7/bin/herd7-lkmm` (the default of `build.sh`), if it is
/// an existing file.
pub fn herd_path() -> Option<PathBuf> {
    let p = match std::env::var_os("HERD7_LKMM") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/herd7/bin/herd7-lkmm"),
    };
    p.is_file().then_some(p)
}

/// What herd7 said about one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HerdStatus {
    /// An `Observation` line was printed.
    Ok,
    /// herd7 refused the file (its message is kept).
    Error,
    /// Killed at the time limit.
    Timeout,
}

/// One herd7 run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HerdRun {
    pub status: HerdStatus,
    pub verdict: Option<Verdict>,
    pub data_race: bool,
    /// Final states, each normalised by [`normalize_state`].
    pub states: BTreeSet<String>,
    /// First line of herd7's error output (status `Error`).
    pub message: String,
    /// CPU time of the herd7 process (user + system), seconds.
    pub cpu_seconds: f64,
    pub wall_seconds: f64,
}

/// A state line `0:r0=1; x=2;` as a sorted list of `item=value` separated
/// by `; ` (herd7 and lazymm may list the items in another order).
pub fn normalize_state(line: &str) -> String {
    let mut items: Vec<String> = line
        .split(';')
        .map(|s| {
            // herd7 writes a location as `[x]`, lazymm as `x`
            let s: String = s.split_whitespace().collect();
            match s.split_once('=') {
                Some((k, v)) if k.starts_with('[') && k.ends_with(']') => {
                    format!("{}={v}", &k[1..k.len() - 1])
                }
                _ => s,
            }
        })
        .filter(|s| !s.is_empty())
        .collect();
    items.sort();
    // self-justified values are symbols (`S8`) whose numbers are herd7's
    // internal variable names: renamed S1, S2, ... by first appearance
    let mut syms: Vec<String> = Vec::new();
    for it in items.iter_mut() {
        if let Some((k, v)) = it.split_once('=') {
            let is_sym =
                v.len() > 1 && v.starts_with('S') && v[1..].bytes().all(|b| b.is_ascii_digit());
            if is_sym {
                let i = match syms.iter().position(|s| s == v) {
                    Some(i) => i,
                    None => {
                        syms.push(v.to_string());
                        syms.len() - 1
                    }
                };
                *it = format!("{k}=S{}", i + 1);
            }
        }
    }
    items.join("; ")
}

/// Read herd7's standard output.
pub fn parse_herd_output(out: &str) -> (Option<Verdict>, bool, BTreeSet<String>) {
    let mut verdict = None;
    let mut race = false;
    let mut states = BTreeSet::new();
    let mut in_states = false;
    for line in out.lines() {
        let t = line.trim();
        if t.starts_with("States ") {
            in_states = true;
            continue;
        }
        if in_states {
            if t == "Ok" || t == "No" || t.starts_with("Witnesses") || t.is_empty() {
                in_states = false;
            } else {
                // herd7 may prefix a state with its witness count (`1 :>`)
                let s = t.split_once(":>").map(|(_, s)| s).unwrap_or(t);
                states.insert(normalize_state(s));
                continue;
            }
        }
        if t == "Flag data-race" {
            race = true;
        }
        if let Some(rest) = t.strip_prefix("Observation ") {
            verdict = match rest.split_whitespace().nth(1) {
                Some("Never") => Some(Verdict::Never),
                Some("Sometimes") => Some(Verdict::Sometimes),
                Some("Always") => Some(Verdict::Always),
                _ => None,
            };
        }
    }
    (verdict, race, states)
}

/// Run herd7 on `file` (made absolute: the wrapper changes directory),
/// killing it after `timeout`.
pub fn run_herd(herd: &Path, file: &Path, timeout: Duration) -> HerdRun {
    let start = Instant::now();
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let mut run = HerdRun {
        status: HerdStatus::Error,
        verdict: None,
        data_race: false,
        states: BTreeSet::new(),
        message: String::new(),
        cpu_seconds: 0.0,
        wall_seconds: 0.0,
    };
    let dir = match tempdir() {
        Ok(d) => d,
        Err(e) => {
            run.message = format!("cannot create a temporary file: {e}");
            return run;
        }
    };
    let (out_path, err_path) = (dir.join("out"), dir.join("err"));
    let spawned = (|| {
        let out = std::fs::File::create(&out_path)?;
        let err = std::fs::File::create(&err_path)?;
        std::process::Command::new(herd)
            .arg(&file)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
    })();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            run.message = format!("cannot run {}: {e}", herd.display());
            let _ = std::fs::remove_dir_all(&dir);
            return run;
        }
    };
    let (timed_out, cpu) = wait_with_rusage(&mut child, timeout);
    run.cpu_seconds = cpu;
    run.wall_seconds = start.elapsed().as_secs_f64();
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    if timed_out {
        run.status = HerdStatus::Timeout;
        run.message = if cpu >= timeout.as_secs_f64() {
            format!(
                "herd7 did not finish within {:.0}s of CPU time",
                timeout.as_secs_f64()
            )
        } else {
            format!(
                "herd7 killed at the wall-time cap ({:.0}s) after only {cpu:.1}s of CPU time (machine overloaded)",
                run.wall_seconds
            )
        };
        return run;
    }
    let (verdict, race, states) = parse_herd_output(&out);
    run.data_race = race;
    run.states = states;
    run.verdict = verdict;
    if verdict.is_some() {
        run.status = HerdStatus::Ok;
    } else {
        run.message = err
            .lines()
            .chain(out.lines())
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output")
            .trim()
            .to_string();
    }
    run
}

fn tempdir() -> std::io::Result<PathBuf> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("lazymm-herd-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Wait for `child` (killing it after `timeout`); returns (timed out, CPU
/// seconds of the child).  The child is reaped with `wait4` to read its
/// resource usage.
fn wait_with_rusage(child: &mut std::process::Child, timeout: Duration) -> (bool, f64) {
    let pid = child.id() as libc::pid_t;
    let deadline = Instant::now() + timeout * 10;
    let mut killed = false;
    let mut sleep = Duration::from_micros(200);
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: an all-zero `rusage` is a valid value (plain integers).
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own unreaped child (std's `Child` never waits
        // for it here); `status` and `ru` are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
            return (killed, t(ru.ru_utime) + t(ru.ru_stime));
        }
        if r < 0 {
            // not our child any more (should not happen): fall back
            let _ = child.wait();
            return (killed, 0.0);
        }
        // the limit is on CPU time (as lazymm's), so that the load of the
        // machine does not decide; wall time is capped at 10x the limit
        if !killed && (proc_cpu_seconds(pid) > timeout.as_secs_f64() || Instant::now() > deadline) {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(sleep);
        sleep = (sleep * 2).min(Duration::from_millis(5));
    }
}

/// CPU time (user + system) of a running process, from `/proc/PID/stat`
/// (clock ticks of 1/100 s); 0 if unreadable.
fn proc_cpu_seconds(pid: libc::pid_t) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // fields after the `(comm)`: state is field 3, utime 14, stime 15
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / hz
}

/// How lazymm and herd7 compare on one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Diff {
    /// Same verdict, data-race flag and set of final states.
    Agree,
    /// Both decided; the verdicts differ.
    Verdict,
    /// Same verdict; the data-race flags differ.
    Race,
    /// Same verdict and flag; the state sets differ.
    States,
    /// herd7 refused the file; lazymm reported it unsupported or an error too.
    BothRefuse,
    /// herd7 refused the file; lazymm decided it (an extension).
    HerdRefuses,
    /// herd7 decided; lazymm said unsupported (allowed, never a wrong answer).
    LazymmUnsupported,
    /// herd7 decided; lazymm reported a syntax error.
    LazymmError,
    /// lazymm timed out (herd7 finished or not).
    LazymmTimeout,
    /// herd7 timed out, lazymm finished.
    HerdTimeout,
}

impl Diff {
    /// A real disagreement: both decided and something differs.
    pub fn is_disagreement(&self) -> bool {
        matches!(self, Diff::Verdict | Diff::Race | Diff::States)
    }
}

/// Compare herd7's run with lazymm's report on the same file.
pub fn compare(h: &HerdRun, l: &FileReport) -> Diff {
    match (&h.status, &l.status) {
        (_, Status::Timeout) => Diff::LazymmTimeout,
        (HerdStatus::Timeout, _) => Diff::HerdTimeout,
        (HerdStatus::Error, Status::Ok) => Diff::HerdRefuses,
        (HerdStatus::Error, _) => Diff::BothRefuse,
        (HerdStatus::Ok, Status::Unsupported) => Diff::LazymmUnsupported,
        (HerdStatus::Ok, Status::Error) => Diff::LazymmError,
        (HerdStatus::Ok, Status::Ok) => {
            let Some(o) = &l.outcome else {
                return Diff::LazymmError;
            };
            if Some(o.verdict) != h.verdict {
                Diff::Verdict
            } else if o.data_race != h.data_race {
                Diff::Race
            } else if (o.state_count > crate::check::MAX_LISTED_STATES
                && o.state_count != h.states.len())
                || (o.state_count <= crate::check::MAX_LISTED_STATES
                    && lazymm_states(l) != h.states)
            {
                Diff::States
            } else {
                Diff::Agree
            }
        }
    }
}

/// lazymm's final states, normalised like herd7's.
pub fn lazymm_states(l: &FileReport) -> BTreeSet<String> {
    l.outcome
        .iter()
        .flat_map(|o| o.states.iter())
        .map(|s| normalize_state(s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_herd_output() {
        let out = "Test SB Allowed\nStates 2\n0:r0=0; 1:r0=1;\n1:r0=0; 0:r0=1;\nOk\nWitnesses\n\
                   Positive: 1 Negative: 3\nFlag data-race\nCondition exists (0:r0=0)\n\
                   Observation SB Sometimes 1 3\nTime SB 0.01\n";
        let (v, race, states) = parse_herd_output(out);
        assert_eq!(v, Some(Verdict::Sometimes));
        assert!(race);
        assert_eq!(
            states.into_iter().collect::<Vec<_>>(),
            vec!["0:r0=0; 1:r0=1", "0:r0=1; 1:r0=0"]
        );
        assert_eq!(parse_herd_output("Warning: Unknown macro foo\n").0, None);
    }

    #[test]
    fn symbols_are_renamed_by_first_appearance() {
        assert_eq!(normalize_state("1:r1=S8; 0:r1=S8;"), "0:r1=S1; 1:r1=S1");
        assert_eq!(normalize_state("[b]=S16; [a]=S9; c=S"), "a=S1; b=S2; c=S");
    }
}

/// One file of a differential run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DiffRow {
    pub file: PathBuf,
    pub diff: Diff,
    pub herd: HerdRun,
    /// lazymm's report (its `seconds` is wall time).
    pub lazymm: FileReport,
    /// CPU time of lazymm's check of this file (thread CPU time), seconds.
    pub lazymm_cpu_seconds: f64,
}

impl DiffRow {
    /// One line: how the two checkers' answers differ on this file.
    pub fn describe(&self) -> String {
        format!(
            "{:?}: {} (herd7 {:?} {:?} race {} {:?}; lazymm {:?} {:?} {:?})",
            self.diff,
            self.file.display(),
            self.herd.status,
            self.herd.verdict,
            self.herd.data_race,
            self.herd.message,
            self.lazymm.status,
            self.lazymm
                .outcome
                .as_ref()
                .map(|o| (o.verdict, o.data_race)),
            self.lazymm.message,
        )
    }
}

/// Options of a differential run.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    pub herd: PathBuf,
    /// Time limit per test for each checker.
    pub timeout: Duration,
    pub jobs: usize,
    /// Directory caching herd7's results by file content (herd7 is slow
    /// and its answer depends only on the file); `None`: always run herd7.
    pub cache: Option<PathBuf>,
}

/// Run both checkers on every file (in parallel over files, one checker
/// after the other per file); rows come back in input order.
pub fn differential(files: &[PathBuf], opts: &DiffOptions) -> Vec<DiffRow> {
    let lopts = crate::Options {
        timeout: Some(opts.timeout),
    };
    crate::par_map(files, opts.jobs, |f| diff_one(f, opts, &lopts))
}

fn diff_one(file: &Path, opts: &DiffOptions, lopts: &crate::Options) -> DiffRow {
    let herd = cached_herd(file, opts);
    let c0 = crate::thread_cpu_seconds();
    let lazymm = crate::check_file(file, lopts);
    let lazymm_cpu_seconds = crate::thread_cpu_seconds() - c0;
    DiffRow {
        file: file.to_path_buf(),
        diff: compare(&herd, &lazymm),
        herd,
        lazymm,
        lazymm_cpu_seconds,
    }
}

/// FNV-1a, 64 bits (a stable hash for the cache key).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The cache entry of `file` (same content, same time limit).
fn cache_key(dir: &Path, file: &Path, timeout: Duration) -> PathBuf {
    let content = std::fs::read(file).unwrap_or_default();
    dir.join(format!("{:016x}-{}.json", fnv(&content), timeout.as_secs()))
}

/// Whether herd7's result for `file` is in the cache of `opts`.
pub fn is_cached(file: &Path, opts: &DiffOptions) -> bool {
    opts.cache
        .as_ref()
        .is_some_and(|d| cache_lookup(d, file, opts.timeout).is_some())
}

/// herd7's answer for `file` under the limit `timeout`, from the cache
/// `dir`: the entry of that limit; else a run under another limit that says
/// the same thing — a run that *finished* in at most `timeout` of CPU (its
/// answer does not depend on the limit), or one that reached a limit of at
/// least `timeout` (then it would have reached `timeout` too: counted as a
/// time-out at `timeout`).  Runs killed at the wall-time cap never count.
fn cache_lookup(dir: &Path, file: &Path, timeout: Duration) -> Option<HerdRun> {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| serde_json::from_str::<CachedRun>(&s).ok())
            .map(HerdRun::from)
    };
    let key = cache_key(dir, file, timeout);
    if let Some(h) = read(&key).filter(|h| !wall_killed(h, timeout)) {
        return Some(h);
    }
    // `<hash>-<limit>.json` for the other limits
    let name = key.file_name()?.to_str()?.to_string();
    let hash = name.split('-').next()?;
    let mut others: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let n = e.file_name().into_string().ok()?;
            let limit = n
                .strip_prefix(hash)?
                .strip_prefix('-')?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            Some((limit, e.path()))
        })
        .collect();
    others.sort();
    let t = timeout.as_secs_f64();
    let mut timed_out = None;
    for (limit, p) in others {
        let Some(h) = read(&p) else { continue };
        let limit = Duration::from_secs(limit);
        if h.status != HerdStatus::Timeout && h.cpu_seconds <= t {
            return Some(h);
        }
        if h.status == HerdStatus::Timeout && !wall_killed(&h, limit) && limit >= timeout {
            timed_out.get_or_insert(HerdRun {
                cpu_seconds: t,
                message: format!("herd7 did not finish within {t:.0}s of CPU time"),
                ..h
            });
        }
    }
    timed_out
}

/// herd7's answer for `file`: from the cache of `opts` if it has one (see
/// [`cache_lookup`]), else by running herd7 (and caching its answer).
pub fn cached_herd(file: &Path, opts: &DiffOptions) -> HerdRun {
    // an unreadable file has no content to key the cache with (and herd7
    // would report something about another file): an error, not cached
    if let Err(e) = std::fs::metadata(file) {
        return HerdRun {
            status: HerdStatus::Error,
            verdict: None,
            data_race: false,
            states: BTreeSet::new(),
            message: format!("{}: {e}", file.display()),
            cpu_seconds: 0.0,
            wall_seconds: 0.0,
        };
    }
    let Some(dir) = &opts.cache else {
        return run_herd(&opts.herd, file, opts.timeout);
    };
    if let Some(h) = cache_lookup(dir, file, opts.timeout) {
        return h;
    }
    let key = cache_key(dir, file, opts.timeout);
    let h = run_herd(&opts.herd, file, opts.timeout);
    // a run that printed nothing was killed from outside, and one killed at
    // the wall-time cap before its CPU limit says only that the machine was
    // overloaded: neither is herd7's answer, neither is cached
    if (h.status == HerdStatus::Error && h.message == "no output") || wall_killed(&h, opts.timeout)
    {
        return h;
    }
    if std::fs::create_dir_all(dir).is_ok() {
        if let Ok(s) = serde_json::to_string(&h) {
            let _ = std::fs::write(&key, s);
        }
    }
    h
}

/// A time-out that is not herd7's: killed at the wall-time cap with less
/// CPU time than the limit (also what older caches hold from runs limited
/// on wall time).
fn wall_killed(h: &HerdRun, timeout: Duration) -> bool {
    h.status == HerdStatus::Timeout && h.cpu_seconds < timeout.as_secs_f64() * 0.99
}

/// [`HerdRun`] as read back from the cache.
#[derive(serde::Deserialize)]
struct CachedRun {
    status: String,
    verdict: Option<String>,
    data_race: bool,
    states: BTreeSet<String>,
    message: String,
    cpu_seconds: f64,
    wall_seconds: f64,
}

impl From<CachedRun> for HerdRun {
    fn from(c: CachedRun) -> Self {
        HerdRun {
            status: match c.status.as_str() {
                "ok" => HerdStatus::Ok,
                "timeout" => HerdStatus::Timeout,
                _ => HerdStatus::Error,
            },
            verdict: match c.verdict.as_deref() {
                Some("Never") => Some(Verdict::Never),
                Some("Sometimes") => Some(Verdict::Sometimes),
                Some("Always") => Some(Verdict::Always),
                _ => None,
            },
            data_race: c.data_race,
            // re-normalised: the cache may predate a change of `normalize_state`
            states: c.states.iter().map(|s| normalize_state(s)).collect(),
            message: c.message,
            cpu_seconds: c.cpu_seconds,
            wall_seconds: c.wall_seconds,
        }
    }
}

/// Totals of a differential run over one corpus.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DiffSummary {
    pub files: usize,
    pub agree: usize,
    pub verdict: usize,
    pub race: usize,
    pub states: usize,
    pub both_refuse: usize,
    pub herd_refuses: usize,
    pub lazymm_unsupported: usize,
    pub lazymm_errors: usize,
    pub lazymm_timeouts: usize,
    pub herd_timeouts: usize,
    pub herd_cpu_seconds: f64,
    pub lazymm_cpu_seconds: f64,
    /// herd7 CPU time / lazymm CPU time over the same files.
    pub ratio: f64,
    /// The same ratio over the files both checkers finished (no timeout of
    /// either): a timed-out run counts only its limit.
    pub ratio_both_finished: f64,
}

/// Sum up rows.
pub fn diff_summary(rows: &[DiffRow]) -> DiffSummary {
    let mut s = DiffSummary {
        files: rows.len(),
        ..Default::default()
    };
    let mut both = (0.0, 0.0);
    for r in rows {
        *match r.diff {
            Diff::Agree => &mut s.agree,
            Diff::Verdict => &mut s.verdict,
            Diff::Race => &mut s.race,
            Diff::States => &mut s.states,
            Diff::BothRefuse => &mut s.both_refuse,
            Diff::HerdRefuses => &mut s.herd_refuses,
            Diff::LazymmUnsupported => &mut s.lazymm_unsupported,
            Diff::LazymmError => &mut s.lazymm_errors,
            Diff::LazymmTimeout => &mut s.lazymm_timeouts,
            Diff::HerdTimeout => &mut s.herd_timeouts,
        } += 1;
        if r.herd.status == HerdStatus::Timeout && r.diff == Diff::LazymmTimeout {
            s.herd_timeouts += 1;
        }
        s.herd_cpu_seconds += r.herd.cpu_seconds;
        s.lazymm_cpu_seconds += r.lazymm_cpu_seconds;
        if r.herd.status != HerdStatus::Timeout && r.lazymm.status != Status::Timeout {
            both.0 += r.herd.cpu_seconds;
            both.1 += r.lazymm_cpu_seconds;
        }
    }
    s.ratio_both_finished = if both.1 > 0.0 { both.0 / both.1 } else { 0.0 };
    s.ratio = if s.lazymm_cpu_seconds > 0.0 {
        s.herd_cpu_seconds / s.lazymm_cpu_seconds
    } else {
        0.0
    };
    s
}
