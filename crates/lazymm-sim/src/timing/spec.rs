//! Machine presets as data: the topology and latencies of one machine, every
//! figure with its source, read from a TOML file (`machines/*.toml` at the
//! repository root, or a user's own file).
//!
//! The files use a small subset of TOML, parsed here so that every error
//! names `file:line` and its cause: `# comments`, `[section]` headers,
//! `key = "string"`, and `key = { value = NUMBER, source = "..." }` for every
//! figure (a figure without a source is an error).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use lazymm::Arch;
use serde::Serialize;

/// One figure and where it comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure {
    /// The value (ns for latencies and costs, a count for topology).
    pub value: f64,
    /// Where the figure comes from.
    pub source: String,
}

/// A machine's topology. CPU ids are numbered core-major with SMT siblings
/// adjacent: `cpu = ((socket * dies + die) * cores + core) * smt + thread`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Topology {
    /// Sockets.
    pub sockets: Figure,
    /// Dies / CCXs / clusters (a shared L3 or cluster cache) per socket.
    pub dies_per_socket: Figure,
    /// Cores per die.
    pub cores_per_die: Figure,
    /// Hardware threads per core.
    pub smt: Figure,
    /// Sockets one interconnect hop apart (a node / drawer); sockets in
    /// different nodes are two hops apart.
    pub sockets_per_node: Figure,
}

/// One-way cache-line transfer latency by topology distance (ns).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latencies {
    /// SMT sibling (same core).
    pub smt: Figure,
    /// Another core of the same die / CCX / cluster.
    pub die: Figure,
    /// Another die of the same socket.
    pub socket: Figure,
    /// Another socket of the same node (one hop).
    pub node: Figure,
    /// A socket of another node (two hops).
    pub remote: Figure,
}

/// Per-operation costs (ns).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Costs {
    /// A load or store hitting a line this CPU has.
    pub load_hit: Figure,
    /// An atomic RMW on a line this CPU owns exclusively.
    pub rmw_local: Figure,
    /// A full fence.
    pub fence: Figure,
    /// Sending an IPI (sender side).
    pub ipi_send: Figure,
    /// From send to the handler starting on the target.
    pub ipi_delivery: Figure,
    /// The handler on the target (entry, handler, exit): delays what that
    /// CPU was doing.
    pub ipi_handler: Figure,
    /// From waking a task to its idle CPU starting the switch to it.
    pub wakeup: Figure,
    /// The non-scheme part of one context switch (scheduler, pipe read and
    /// write, idle entry or exit).
    pub switch: Figure,
    /// How much `switch` and `wakeup` vary from one to the next: each is
    /// drawn uniformly within +- this share of its figure (0..=1). Not
    /// given in a file: 0 (every one costs exactly its figure).
    pub spread: Figure,
}

/// How a cache line that several CPUs are queued for is handed on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Coherence {
    /// The topology levels whose shared cache serves a queued line to its
    /// own requesters before it goes on to a farther one: 0 none (strict
    /// arrival order), 1 the core (SMT siblings), 2 the die (CCX / L3
    /// cluster), 3 the socket. A queued requester within that distance of
    /// a requester ahead of it in the line's queue gets the line from that
    /// one, at that distance's latency. `None` in a file: 0.
    pub local_first: Figure,
    /// What a **steal** costs, as a multiple of the distance's latency: a
    /// store or RMW to a line another CPU holds modified while the
    /// requester has no copy (refcount's `mmdrop` after the other CPU's
    /// `mmgrab`), as opposed to a load miss or an upgrade of a line the
    /// requester shares (a hand-off's two halves). Published core-to-core
    /// figures measure one pattern and do not tell the two apart: 1 there.
    /// `this-machine` measures both (`calibrate.rs`, `handoff` and
    /// `steal`). Not given in a file: 1.
    pub steal: Figure,
    /// How long the previous owner of a line keeps it once a request to take
    /// it has started, as a fraction of that transfer: until the request
    /// reaches it, its own accesses still hit (two CPUs hammering one line
    /// run several RMWs per visit). Not given in a file: 0.5 (the request
    /// reaches the owner half-way). `this-machine` measures it
    /// (`calibrate.rs`, `contended`).
    pub hold: Figure,
}

/// A machine preset.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MachineSpec {
    /// Short name.
    pub name: String,
    /// One line for humans.
    pub description: String,
    /// The architecture profile its kernel uses.
    pub arch: String,
    /// Where it was read from.
    pub origin: String,
    /// Topology.
    pub topology: Topology,
    /// Transfer latencies.
    pub latency_ns: Latencies,
    /// Operation costs.
    pub cost_ns: Costs,
    /// Arbitration of a queued line (`[coherence]`, optional).
    pub coherence: Coherence,
    /// The kernel the machine's published figures were measured on, as
    /// lazymm kernel options (`KernelOptions::parse`: e.g. `no-mm-cid` for a
    /// kernel before `SCHED_MM_CID`); empty: Linux 6.12 as lazymm models it.
    pub kernel: String,
    /// Where `kernel` comes from (required when `kernel` is set).
    pub kernel_source: String,
}

/// A parse or validation error: `file:line: cause`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The file (or preset name).
    pub file: String,
    /// 1-based line; 0 when the error is about the whole file.
    pub line: usize,
    /// What is wrong.
    pub cause: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.cause)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.cause)
        }
    }
}

impl std::error::Error for SpecError {}

/// The presets shipped in `machines/`.
pub const PRESETS: [(&str, &str); 5] = [
    (
        "power8-16s",
        include_str!("../../../../machines/power8-16s.toml"),
    ),
    (
        "epyc-9654-2s",
        include_str!("../../../../machines/epyc-9654-2s.toml"),
    ),
    (
        "xeon-8480-2s",
        include_str!("../../../../machines/xeon-8480-2s.toml"),
    ),
    (
        "altra-q80-2s",
        include_str!("../../../../machines/altra-q80-2s.toml"),
    ),
    (
        "this-machine",
        include_str!("../../../../machines/this-machine.toml"),
    ),
];

/// Names of the shipped presets.
pub fn preset_names() -> Vec<&'static str> {
    PRESETS.iter().map(|p| p.0).collect()
}

#[derive(Clone, Debug)]
enum Value {
    Str(String),
    Fig(f64, Option<String>),
}

struct Entry {
    line: usize,
    value: Value,
    used: bool,
}

fn err(file: &str, line: usize, cause: impl Into<String>) -> SpecError {
    SpecError {
        file: file.into(),
        line,
        cause: cause.into(),
    }
}

/// Parses a quoted string at the start of `s`; returns it and the rest.
fn parse_string(s: &str) -> Option<(String, &str)> {
    let mut chars = s.char_indices();
    if chars.next()?.1 != '"' {
        return None;
    }
    let mut out = String::new();
    let mut esc = false;
    for (i, c) in chars {
        if esc {
            out.push(match c {
                'n' => '\n',
                't' => '\t',
                other => other,
            });
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == '"' {
            return Some((out, &s[i + 1..]));
        } else {
            out.push(c);
        }
    }
    None
}

fn strip_comment(s: &str) -> &str {
    let s = s.trim_start();
    if s.is_empty() || s.starts_with('#') {
        ""
    } else {
        s
    }
}

fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim().replace('_', "");
    let v: f64 = t.parse().ok()?;
    v.is_finite().then_some(v)
}

/// `{ value = N, source = "..." }`
fn parse_inline(
    file: &str,
    line: usize,
    s: &str,
) -> Result<(f64, Option<String>, usize), SpecError> {
    let mut rest = s[1..].trim_start();
    let mut value = None;
    let mut source = None;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            let consumed = s.len() - r.len();
            let Some(v) = value else {
                return Err(err(file, line, "inline table without `value`"));
            };
            return Ok((v, source, consumed));
        }
        let eq = rest
            .find('=')
            .ok_or_else(|| err(file, line, "expected `key = value` inside `{ }`"))?;
        let key = rest[..eq].trim();
        rest = rest[eq + 1..].trim_start();
        match key {
            "value" => {
                let end = rest.find([',', '}']).unwrap_or(rest.len());
                let v = parse_number(&rest[..end]).ok_or_else(|| {
                    err(
                        file,
                        line,
                        format!("`value` is not a finite number: `{}`", rest[..end].trim()),
                    )
                })?;
                value = Some(v);
                rest = &rest[end..];
            }
            "source" => {
                let (st, r) = parse_string(rest)
                    .ok_or_else(|| err(file, line, "`source` must be a quoted string"))?;
                source = Some(st);
                rest = r;
            }
            other => {
                return Err(err(
                    file,
                    line,
                    format!("unknown key `{other}` inside `{{ }}` (expected value, source)"),
                ))
            }
        }
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.starts_with('}') {
            return Err(err(file, line, "expected `,` or `}` inside `{ }`"));
        }
    }
}

fn parse_entries(file: &str, text: &str) -> Result<BTreeMap<String, Entry>, SpecError> {
    let mut out = BTreeMap::new();
    let mut section = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let s = strip_comment(raw).trim_end();
        if s.is_empty() {
            continue;
        }
        if let Some(h) = s.strip_prefix('[') {
            let h = strip_trailing_comment(h);
            let Some(name) = h.strip_suffix(']') else {
                return Err(err(file, line, "section header without closing `]`"));
            };
            section = name.trim().to_string();
            if section.is_empty() {
                return Err(err(file, line, "empty section name"));
            }
            continue;
        }
        let eq = s
            .find('=')
            .ok_or_else(|| err(file, line, format!("expected `key = value`, found `{s}`")))?;
        let key = s[..eq].trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(err(file, line, format!("bad key `{key}`")));
        }
        let v = s[eq + 1..].trim_start();
        let (value, rest) = if v.starts_with('"') {
            let (st, r) = parse_string(v).ok_or_else(|| err(file, line, "unterminated string"))?;
            (Value::Str(st), r)
        } else if v.starts_with('{') {
            let (x, src, used) = parse_inline(file, line, v)?;
            (Value::Fig(x, src), &v[used..])
        } else {
            let end = v.find('#').unwrap_or(v.len());
            let x = parse_number(&v[..end]).ok_or_else(|| {
                err(
                    file,
                    line,
                    format!(
                        "value `{}` is not a number, string or {{ value, source }} table",
                        v[..end].trim()
                    ),
                )
            })?;
            (Value::Fig(x, None), &v[end..])
        };
        if !strip_comment(rest).is_empty() {
            return Err(err(
                file,
                line,
                format!("unexpected text after the value: `{}`", rest.trim()),
            ));
        }
        let full = if section.is_empty() {
            key.to_string()
        } else {
            format!("{section}.{key}")
        };
        if let Some(prev) = out.get(&full) {
            let prev: &Entry = prev;
            return Err(err(
                file,
                line,
                format!("`{full}` given twice (first at line {})", prev.line),
            ));
        }
        out.insert(
            full,
            Entry {
                line,
                value,
                used: false,
            },
        );
    }
    Ok(out)
}

fn strip_trailing_comment(s: &str) -> &str {
    match s.find('#') {
        Some(i) => s[..i].trim_end(),
        None => s.trim_end(),
    }
}

struct Reader<'a> {
    file: &'a str,
    e: BTreeMap<String, Entry>,
}

impl Reader<'_> {
    fn string(&mut self, key: &str) -> Result<String, SpecError> {
        let e = self
            .e
            .get_mut(key)
            .ok_or_else(|| err(self.file, 0, format!("missing `{key}`")))?;
        e.used = true;
        match &e.value {
            Value::Str(s) => Ok(s.clone()),
            Value::Fig(..) => Err(err(
                self.file,
                e.line,
                format!("`{key}` must be a quoted string"),
            )),
        }
    }

    fn opt_string(&mut self, key: &str) -> Result<Option<String>, SpecError> {
        if self.e.contains_key(key) {
            self.string(key).map(Some)
        } else {
            Ok(None)
        }
    }

    /// An optional figure (at least 0): `key`'s if the file gives it (an
    /// error naming `key`, its line and `rule` if `ok` rejects its value),
    /// else `default` with `why` as its source.
    fn opt_fig(
        &mut self,
        key: &str,
        integer: bool,
        ok: impl Fn(f64) -> bool,
        rule: &str,
        default: f64,
        why: &str,
    ) -> Result<Figure, SpecError> {
        if !self.e.contains_key(key) {
            return Ok(Figure {
                value: default,
                source: why.into(),
            });
        }
        let f = self.fig(key, 0.0, integer)?;
        if !ok(f.value) {
            let line = self.e[key].line;
            return Err(err(
                self.file,
                line,
                format!("`{key}` = {} {rule}", f.value),
            ));
        }
        Ok(f)
    }

    fn fig(&mut self, key: &str, min: f64, integer: bool) -> Result<Figure, SpecError> {
        let file = self.file;
        let e = self.e.get_mut(key).ok_or_else(|| {
            err(
                file,
                0,
                format!("missing `{key}` (a {{ value = .., source = \"..\" }} table)"),
            )
        })?;
        e.used = true;
        match &e.value {
            Value::Str(_) => Err(err(file, e.line, format!("`{key}` must be {{ value = .., source = \"..\" }}, not a string"))),
            Value::Fig(_, None) => Err(err(file, e.line, format!("`{key}` has no source: write {{ value = .., source = \"where it comes from\" }}"))),
            Value::Fig(_, Some(s)) if s.trim().is_empty() => {
                Err(err(file, e.line, format!("`{key}` has an empty source")))
            }
            Value::Fig(v, Some(s)) => {
                if *v < min {
                    return Err(err(file, e.line, format!("`{key}` = {v} is below the minimum {min}")));
                }
                if integer && v.fract() != 0.0 {
                    return Err(err(file, e.line, format!("`{key}` = {v} must be a whole number")));
                }
                Ok(Figure {
                    value: *v,
                    source: s.clone(),
                })
            }
        }
    }
}

impl MachineSpec {
    /// Parses a machine file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<MachineSpec, SpecError> {
        let mut r = Reader {
            file,
            e: parse_entries(file, text)?,
        };
        let name = r.string("name")?;
        let description = r.string("description")?;
        let arch = r.string("arch")?;
        if Arch::parse(&arch).is_none() {
            let line = r.e["arch"].line;
            return Err(err(
                file,
                line,
                format!(
                    "unknown arch `{arch}` (valid: {})",
                    Arch::ALL
                        .iter()
                        .map(|a| a.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let topology = Topology {
            sockets: r.fig("topology.sockets", 1.0, true)?,
            dies_per_socket: r.fig("topology.dies_per_socket", 1.0, true)?,
            cores_per_die: r.fig("topology.cores_per_die", 1.0, true)?,
            smt: r.fig("topology.smt", 1.0, true)?,
            sockets_per_node: r.fig("topology.sockets_per_node", 1.0, true)?,
        };
        let latency_ns = Latencies {
            smt: r.fig("latency_ns.smt", 0.0, false)?,
            die: r.fig("latency_ns.die", 0.0, false)?,
            socket: r.fig("latency_ns.socket", 0.0, false)?,
            node: r.fig("latency_ns.node", 0.0, false)?,
            remote: r.fig("latency_ns.remote", 0.0, false)?,
        };
        let cost_ns = Costs {
            load_hit: r.fig("cost_ns.load_hit", 0.0, false)?,
            rmw_local: r.fig("cost_ns.rmw_local", 0.0, false)?,
            fence: r.fig("cost_ns.fence", 0.0, false)?,
            ipi_send: r.fig("cost_ns.ipi_send", 0.0, false)?,
            ipi_delivery: r.fig("cost_ns.ipi_delivery", 0.0, false)?,
            ipi_handler: r.fig("cost_ns.ipi_handler", 0.0, false)?,
            wakeup: r.fig("cost_ns.wakeup", 0.0, false)?,
            switch: r.fig("cost_ns.switch", 0.0, false)?,
            spread: r.opt_fig(
                "cost_ns.spread",
                false,
                |v| v <= 1.0,
                "must be at most 1 (a share of the switch and wake-up figures)",
                0.0,
                "not given: every switch and wake-up costs exactly its figure",
            )?,
        };
        let coherence = Coherence {
            local_first: r.opt_fig(
                "coherence.local_first",
                true,
                |v| v <= 3.0,
                "must be 0 (none), 1 (core), 2 (die) or 3 (socket)",
                0.0,
                "not given: a queued line is served in arrival order",
            )?,
            steal: r.opt_fig(
                "coherence.steal",
                false,
                |v| v > 0.0 && v <= 100.0,
                "must be above 0 and at most 100 (a multiple of the distance's latency)",
                1.0,
                "not given: a steal costs the distance's latency, as any transfer",
            )?,
            hold: r.opt_fig(
                "coherence.hold",
                false,
                |v| v <= 8.0,
                "must be at most 8 (a fraction of the transfer)",
                0.5,
                "not given: the request reaches the owner half-way through the transfer",
            )?,
        };
        let kernel = r.opt_string("kernel")?.unwrap_or_default();
        let kernel_source = r.opt_string("kernel_source")?.unwrap_or_default();
        if !kernel.is_empty() {
            let line = r.e["kernel"].line;
            if let Err(e) = lazymm::schemes::KernelOptions::parse(&kernel) {
                return Err(err(file, line, format!("`kernel`: {e}")));
            }
            if kernel_source.trim().is_empty() {
                return Err(err(file, line, "`kernel` needs a `kernel_source`"));
            }
        }
        if let Some((k, e)) = r.e.iter().find(|(_, e)| !e.used) {
            return Err(err(file, e.line, format!("unknown key `{k}`")));
        }
        let spec = MachineSpec {
            name,
            description,
            arch,
            origin: file.into(),
            topology,
            latency_ns,
            cost_ns,
            coherence,
            kernel,
            kernel_source,
        };
        let n = spec.cpus();
        if n > lazymm::runtime::MAX_CPUS {
            return Err(err(
                file,
                0,
                format!(
                    "the topology has {n} CPUs; the simulator takes at most {}",
                    lazymm::runtime::MAX_CPUS
                ),
            ));
        }
        let t = &spec.topology;
        if !(t.sockets.value as usize).is_multiple_of(t.sockets_per_node.value as usize) {
            let line = r.e["topology.sockets_per_node"].line;
            return Err(err(file, line, "sockets_per_node must divide sockets"));
        }
        Ok(spec)
    }

    /// A shipped preset by name, or a file path.
    pub fn load(name_or_file: &str) -> Result<MachineSpec, SpecError> {
        if let Some((n, text)) = PRESETS.iter().find(|p| p.0 == name_or_file) {
            return MachineSpec::parse(&format!("machines/{n}.toml"), text);
        }
        let p = Path::new(name_or_file);
        if !p.exists() {
            return Err(err(
                name_or_file,
                0,
                format!(
                    "no such preset or file (presets: {})",
                    preset_names().join(", ")
                ),
            ));
        }
        let text = std::fs::read_to_string(p)
            .map_err(|e| err(name_or_file, 0, format!("cannot read: {e}")))?;
        MachineSpec::parse(name_or_file, &text)
    }

    /// The architecture profile.
    pub fn arch(&self) -> Arch {
        Arch::parse(&self.arch).expect("validated at parse time")
    }

    /// Hardware threads.
    pub fn cpus(&self) -> usize {
        let t = &self.topology;
        (t.sockets.value * t.dies_per_socket.value * t.cores_per_die.value * t.smt.value) as usize
    }

    /// Cores (hardware threads / SMT).
    pub fn cores(&self) -> usize {
        self.cpus() / self.topology.smt.value as usize
    }

    /// Hardware threads per socket.
    pub fn cpus_per_socket(&self) -> usize {
        self.cpus() / self.topology.sockets.value as usize
    }

    /// The same machine grown (or cut) to `cpus` hardware threads by adding
    /// (or removing) whole sockets, **an extrapolation**: the added sockets
    /// form further nodes of `sockets_per_node` sockets each (the last one
    /// possibly partial), two hops from the others (`latency_ns.remote`),
    /// with every other figure unchanged.
    /// `cpus` is rounded up to whole sockets and capped at the simulator's
    /// 4096. The sockets figure's source says so.
    pub fn scaled(&self, cpus: usize) -> MachineSpec {
        let per = self.cpus_per_socket().max(1);
        let max_sockets = (lazymm::runtime::MAX_CPUS / per).max(1);
        let sockets = cpus.div_ceil(per).clamp(1, max_sockets);
        let mut s = self.clone();
        if sockets != self.topology.sockets.value as usize {
            let spn = (self.topology.sockets_per_node.value as usize).min(sockets);
            s.topology.sockets = Figure {
                value: sockets as f64,
                source: format!(
                    "EXTRAPOLATION of {} ({} sockets) to {} CPUs: whole sockets added, two hops apart",
                    self.name, self.topology.sockets.value, sockets * per
                ),
            };
            s.topology.sockets_per_node.value = spn as f64;
            s.name = format!("{}@{}", self.name, sockets * per);
        }
        s
    }

    /// Every figure with its key, for printing the parameters used.
    pub fn figures(&self) -> Vec<(String, &Figure)> {
        let t = &self.topology;
        let l = &self.latency_ns;
        let c = &self.cost_ns;
        let mut v: Vec<(String, &Figure)> = Vec::new();
        for (k, f) in [
            ("topology.sockets", &t.sockets),
            ("topology.dies_per_socket", &t.dies_per_socket),
            ("topology.cores_per_die", &t.cores_per_die),
            ("topology.smt", &t.smt),
            ("topology.sockets_per_node", &t.sockets_per_node),
            ("latency_ns.smt", &l.smt),
            ("latency_ns.die", &l.die),
            ("latency_ns.socket", &l.socket),
            ("latency_ns.node", &l.node),
            ("latency_ns.remote", &l.remote),
            ("cost_ns.load_hit", &c.load_hit),
            ("cost_ns.rmw_local", &c.rmw_local),
            ("cost_ns.fence", &c.fence),
            ("cost_ns.ipi_send", &c.ipi_send),
            ("cost_ns.ipi_delivery", &c.ipi_delivery),
            ("cost_ns.ipi_handler", &c.ipi_handler),
            ("cost_ns.wakeup", &c.wakeup),
            ("cost_ns.switch", &c.switch),
            ("cost_ns.spread", &c.spread),
            ("coherence.local_first", &self.coherence.local_first),
            ("coherence.steal", &self.coherence.steal),
            ("coherence.hold", &self.coherence.hold),
        ] {
            v.push((k.to_string(), f));
        }
        v
    }
}
