//! The HTML page: tables, summary and explanations around the charts.

use super::*;

pub(super) struct Table {
    pub(super) head: Vec<String>,
    pub(super) rows: Vec<(Option<&'static str>, Vec<String>)>,
}

impl Table {
    pub(super) fn new(head: &[&str]) -> Table {
        Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }
    pub(super) fn row(&mut self, cells: Vec<String>) {
        self.rows.push((None, cells));
    }
    pub(super) fn row_class(&mut self, class: &'static str, cells: Vec<String>) {
        self.rows.push((Some(class), cells));
    }
    pub(super) fn html(&self) -> String {
        let mut s = String::from("<table>\n<thead><tr>");
        for h in &self.head {
            let _ = write!(s, "<th>{}</th>", esc(h));
        }
        s.push_str("</tr></thead>\n<tbody>\n");
        for (class, cells) in &self.rows {
            match class {
                Some(c) => {
                    let _ = write!(s, "<tr class=\"{c}\">");
                }
                None => s.push_str("<tr>"),
            }
            for c in cells {
                // Numbers right-aligned, text left-aligned.
                let numeric = !c.is_empty()
                    && c.chars().all(|ch| {
                        ch.is_ascii_digit() || matches!(ch, '.' | '-' | '–' | '@' | ' ' | 'e' | '∞')
                    })
                    && c.chars()
                        .any(|ch| ch.is_ascii_digit() || ch == '–' || ch == '∞');
                if numeric || c == "–" {
                    let _ = write!(s, "<td class=\"n\">{}</td>", esc(c));
                } else {
                    let _ = write!(s, "<td>{}</td>", esc(c));
                }
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</tbody></table>\n");
        s
    }
}

pub(super) const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto; max-width: 1440px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2em; margin-top: 2em; } h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .86em; display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: .2em .55em; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th { background: #f2f2f2; position: sticky; top: 0; }
tr.unsafe td { color: #8a6d00; background: #fffbe6; }
tr.fail td { color: #a00; background: #ffecec; font-weight: bold; }
tr.best td { background: #eaf7ea; }
figure { margin: 1em 0 2em; } figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #444; max-width: 1100px; }
pre, code { background: #f6f6f6; } pre.verdict { white-space: pre; font-size: .85em; } pre { padding: .6em; overflow-x: auto; white-space: pre-wrap; }
.ok { color: #060; font-weight: bold; } .bad { color: #a00; font-weight: bold; }
details > summary { cursor: pointer; font-weight: bold; margin: .4em 0; }
nav ul { columns: 2; }
"#;

pub(super) fn figure_html(f: &Figure) -> String {
    let body = f.svg.find("<svg").map(|i| &f.svg[i..]).unwrap_or(&f.svg);
    format!(
        "<figure id=\"{id}\">\n{body}\n<figcaption>{cap} <a href=\"{file}\">{file}</a></figcaption>\n</figure>\n",
        id = esc(f.file.trim_end_matches(".svg")),
        body = body,
        cap = esc(&f.caption),
        file = esc(&f.file),
    )
}

pub(super) fn class(cx: &Ctx, s: &str) -> Option<&'static str> {
    if cx.failed.contains(s) {
        Some("fail")
    } else if cx.known_unsafe.contains_key(s) {
        Some("unsafe")
    } else {
        None
    }
}

pub(super) fn push_row(t: &mut Table, c: Option<&'static str>, cells: Vec<String>) {
    match c {
        Some(c) => t.row_class(c, cells),
        None => t.row(cells),
    }
}

/// Break-even of `(name, a, e)` pairs: `L* = (e_j - e_i) / (a_i - a_j)`.
pub(super) fn break_even(i: &Trip, j: &Trip) -> (Option<f64>, String) {
    let (ni, ai, ei) = (&i.0, i.1, i.2);
    let (nj, aj, ej) = (&j.0, j.1, j.2);
    let da = ai - aj;
    let de = ej - ei;
    let eps = 1e-9 * (ai.abs() + aj.abs() + ei.abs() + ej.abs() + 1.0);
    if da.abs() <= eps {
        let v = if de.abs() <= eps {
            "equal at every L".to_string()
        } else if de > 0.0 {
            format!("{ni} cheaper at every L (same switch cost, cheaper exit)")
        } else {
            format!("{nj} cheaper at every L (same switch cost, cheaper exit)")
        };
        return (None, v);
    }
    let l = de / da;
    if l > 0.0 {
        // Below l the one with the cheaper exit wins.
        let (cheap_exit, cheap_switch) = if ei < ej { (ni, nj) } else { (nj, ni) };
        (
            Some(l),
            format!(
                "{cheap_exit} cheaper below L = {}, {cheap_switch} above",
                num(l)
            ),
        )
    } else {
        let w = if ai + ei < aj + ej || (ai <= aj && ei <= ej) {
            ni
        } else {
            nj
        };
        (None, format!("{w} cheaper at every L ≥ 0"))
    }
}

pub(super) fn lifetime(a: f64, e: f64, l: f64) -> f64 {
    l * a + e
}

pub(super) fn build_html(
    cx: &Ctx,
    input: &ReportInput,
    figs: &BTreeMap<&'static str, Vec<Figure>>,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>lazymm report</title>\n<style>{STYLE}</style></head><body>\n\
         <h1>lazymm: lazy-TLB mm reference counting — which scheme to ship</h1>\n\
         <p>Produced by <code>{cmd}</code> (lazymm {ver}). Counts are exact and deterministic \
         for the seed; <em>time</em> is simulated on machine presets whose every parameter \
         has a source (<a href=\"#machines\">below</a>). {nruns} runs from <code>compare</code>, \
         {nsweep} count-sweep runs, {nmach} machine(s) in simulated time. Schemes: {schemes}. \
         Profiles: {archs}.</p>\n",
        cmd = esc(&input.command),
        ver = env!("CARGO_PKG_VERSION"),
        nruns = input.runs.len(),
        nsweep = input.sweep.len(),
        nmach = input.machines.len(),
        schemes = esc(&cx.schemes.join(", ")),
        archs = esc(&cx.archs.join(", ")),
    );
    h.push_str(
        "<nav><ul>\
         <li><a href=\"#summary\">Summary</a></li>\
         <li><a href=\"#scaling\">1. Scaling with CPU count</a></li>\
         <li><a href=\"#exit\">2. Exit cost</a></li>\
         <li><a href=\"#break-even\">3. Break-even: xchg per unlazy vs work per exit</a></li>\
         <li><a href=\"#traces\">4. Real traces</a></li>\
         <li><a href=\"#ledger\">5. Ledger</a></li>\
         <li><a href=\"#machines\">6. Machines and command</a></li>\
         <li><a href=\"#all-runs\">All runs</a></li>\
         </ul></nav>\n",
    );

    // ---- Summary ----
    h.push_str("<h2 id=\"summary\">Summary</h2>\n");
    h.push_str(&summary_html(cx));

    // ---- 1. Scaling ----
    h.push_str(
        "<h2 id=\"scaling\">1. Scaling with CPU count</h2>\n\
         <h3>In simulated time, per machine</h3>\n\
         <p>The published shape: on a shared mm, classic refcounting puts two RMWs on one \
         cache line per idle round trip; that line serves one transfer at a time, so refcount's \
         switches per second stop growing once its demand exceeds the line, while schemes \
         without shared-line traffic keep scaling with the CPUs (POWER8, 1536 threads: 1.83 M \
         vs ~118 M iterations/s published).</p>\n",
    );
    for f in figs.get("time-scaling").into_iter().flatten() {
        h.push_str(&figure_html(f));
    }
    h.push_str(&time_scaling_table(cx));
    h.push_str(
        "<h3>Exact counts, per profile (ctxswitch-threads solid, ctxswitch-processes dashed)</h3>\n\
         <p>Where the traffic is: shared-line RMWs and cache-line transfers per switch, counted \
         exactly by the deterministic executor. Every sweep run gives each CPU at least ~350 \
         switches; the slot schemes' small rise up to a few hundred CPUs is one-off per-CPU \
         work (first touch of each CPU's line, the final teardown) spread over fewer switches \
         per CPU, not contention.</p>\n",
    );
    for f in figs.get("scaling").into_iter().flatten() {
        h.push_str(&figure_html(f));
    }
    h.push_str(&scaling_table(cx));

    // ---- 2. Exit ----
    h.push_str("<h2 id=\"exit\">2. Exit cost</h2>\n<h3>In simulated time, per machine</h3>\n");
    for f in figs.get("time-exit").into_iter().flatten() {
        h.push_str(&figure_html(f));
    }
    h.push_str(&time_exit_table(cx));
    h.push_str("<h3>Exact counts, per profile</h3>\n");
    for f in figs.get("exit").into_iter().flatten() {
        h.push_str(&figure_html(f));
    }
    h.push_str(&exit_table(cx));

    // ---- 3. Break-even ----
    h.push_str(&break_even_html(cx, figs.get("break-even")));

    // ---- 4. Traces ----
    h.push_str("<h2 id=\"traces\">4. Real traces</h2>\n");
    if cx.traces.is_empty() {
        h.push_str("<p>No trace replays in this run (<code>--no-traces</code>?).</p>\n");
    }
    for f in figs.get("traces").into_iter().flatten() {
        h.push_str(&figure_html(f));
    }
    h.push_str(&traces_table(cx));

    // ---- 5. Ledger ----
    h.push_str(&ledger_html(cx));

    // ---- 6. Machines ----
    h.push_str(&machines_html(cx, input));

    // ---- All runs ----
    h.push_str(
        "<h2 id=\"all-runs\">All runs</h2>\n<p>Every run of <code>compare</code>; the sweep runs \
         and all fields are in <a href=\"data.json\">data.json</a>.</p>\n\
         <details><summary>Show the table</summary>\n",
    );
    let mut t = Table::new(&[
        "scheme",
        "workload",
        "arch",
        "cpus",
        "switches",
        "lazy_enters",
        "mm_exits",
        "count_rmw",
        "shared_rmw",
        "transfers",
        "fences",
        "ipis",
        "flush_ipis",
        "scan_steps",
        "uaf",
        "double_free",
        "leaked",
        "transfers/exit",
        "ipis/exit",
    ]);
    for r in cx.runs {
        let c = if r.clean() {
            None
        } else if r.known_unsafe.is_some() {
            Some("unsafe")
        } else {
            Some("fail")
        };
        push_row(
            &mut t,
            c,
            vec![
                r.scheme.clone(),
                r.workload.clone(),
                r.arch.clone(),
                r.cpus.to_string(),
                r.switches.to_string(),
                r.lazy_enters.to_string(),
                r.exits.to_string(),
                r.count_rmw.to_string(),
                r.shared_rmw.to_string(),
                r.coherence_transfers.to_string(),
                r.fences.to_string(),
                r.ipis.to_string(),
                r.flush_ipis.to_string(),
                r.scan_steps.to_string(),
                r.uaf.to_string(),
                r.double_free.to_string(),
                r.leaked.to_string(),
                opt(per(r.teardown_access.coherence_transfers, r.exits)),
                num(r.ipis_per_exit),
            ],
        );
    }
    h.push_str(&t.html());
    h.push_str("</details>\n</body></html>\n");
    h
}

pub(super) fn summary_html(cx: &Ctx) -> String {
    let mut h = String::new();
    let eligible = |s: &str| !cx.unsafe_or_failed(s);
    if cx.machines.is_empty() {
        h.push_str("<p>No machine was simulated in time (<code>--machine</code>).</p>\n");
    } else {
        h.push_str(
            "<p>Per machine preset, in simulated time (will-it-scale at one thread per hardware \
             thread, one exit with every other CPU lazy; picked among schemes whose ledger is \
             clean and that are not known unsafe; L: lazy round trips per process lifetime):</p>\n",
        );
        for mt in cx.machines {
            let _ = writeln!(
                h,
                "<pre class=\"verdict\">{}</pre>",
                esc(&timed::machine_lines(mt, &eligible).join("\n"))
            );
        }
    }
    let verdict_cx = Ctx::new_runs(cx.runs);
    let verdicts = verdicts(&verdict_cx);
    let has_baseline = cx.schemes.iter().any(|s| s == BASELINE);
    if !verdicts.is_empty() {
        h.push_str(
            "<p>Per profile, in exact counts (cache-line transfers of a run, switch path plus \
             teardown, IPIs apart; the round-based workloads and the traces are counted, not \
             timed):</p>\n<ul>\n",
        );
        for v in &verdicts {
            let lines = arch_lines(v, has_baseline);
            let _ = writeln!(
                h,
                "<li><b>{}</b>: <pre class=\"verdict\">{}</pre></li>",
                esc(&v.arch),
                esc(&lines[1..].join("\n"))
            );
        }
        h.push_str("</ul>\n");
    }
    // Decision table in time.
    if cx.machines.is_empty() {
        return h;
    }
    let mut t = Table::new(&[
        "machine",
        "scheme",
        "switches/s (preset size)",
        "vs refcount",
        "vs refcount (largest CPUs)",
        "a: us / lazy round trip",
        "e: exit us",
        "IPIs / exit",
        "exit walk IPIs/s per CPU",
        "break-even vs refcount",
        "ledger",
    ]);
    for mt in cx.machines {
        let n = mt.cpus;
        let max = mt.scaling.iter().map(|p| p.cpus_used).max().unwrap_or(n);
        for s in mt.schemes() {
            let w = mt.wis(&s, n);
            let e = mt.exit(&s, n);
            let walk = mt.walk.iter().find(|p| p.scheme == s);
            let be = mt.break_even.iter().find(|b| b.scheme == s);
            // This row's own runs decide its label (not the scheme's
            // hotplug runs elsewhere in the report).
            let (ledger, row_class) = mt.ledger_at(&s, n);
            push_row(
                &mut t,
                row_class,
                vec![
                    format!("{} ({n})", mt.spec.name),
                    s.clone(),
                    w.map(|w| timed::rate(w.switches_per_s))
                        .unwrap_or_else(|| "–".into()),
                    opt(mt.ratio(&s, n)),
                    mt.ratio(&s, max)
                        .map(|r| format!("{} @{max}", num(r)))
                        .unwrap_or_else(|| "–".into()),
                    opt(w.map(|w| w.us_per_lazy_round_trip)),
                    opt(e.map(|e| e.exit_us)),
                    opt(e.map(|e| (e.ipis + e.flush_ipis) as f64)),
                    opt(walk.map(|w| w.ipis_per_cpu_s)),
                    be.map(|b| b.verdict.clone()).unwrap_or_else(|| "–".into()),
                    ledger.into(),
                ],
            );
        }
    }
    h.push_str(
        "<p>Decision table in simulated time (at each preset's own size unless said; the break-even \
         model is in <a href=\"#break-even\">section 3</a>):</p>\n",
    );
    h.push_str(&t.html());
    h
}

/// Per machine: switches/s by CPU count, each scheme, with the ratio to
/// refcount.
pub(super) fn time_scaling_table(cx: &Ctx) -> String {
    let mut h = String::new();
    for mt in cx.machines {
        let counts: BTreeSet<usize> = mt.scaling.iter().map(|p| p.cpus_used).collect();
        let mut head = vec!["scheme".to_string()];
        head.extend(counts.iter().map(|c| {
            if *c > mt.cpus {
                format!("{c} CPUs (extrap.)")
            } else {
                format!("{c} CPUs")
            }
        }));
        let head_ref: Vec<&str> = head.iter().map(String::as_str).collect();
        let mut t = Table::new(&head_ref);
        for s in mt.schemes() {
            let mut row = vec![s.clone()];
            for c in &counts {
                let p = mt
                    .scaling
                    .iter()
                    .find(|p| p.scheme == s && p.cpus_used == *c);
                row.push(match p {
                    Some(p) => format!(
                        "{} ({}×)",
                        timed::rate(p.switches_per_s),
                        mt.ratio(&s, p.cpus_used)
                            .map(sig)
                            .unwrap_or_else(|| "–".into())
                    ),
                    None => "–".into(),
                });
            }
            let cleans = mt.scaling.iter().filter(|p| p.scheme == s).map(|p| p.clean);
            push_row(&mut t, mt.ledger(&s, cleans).1, row);
        }
        let _ = write!(
            h,
            "<details><summary>{}: switches per simulated second (ratio to refcount), by CPUs \
             busy</summary>\n{}</details>\n",
            esc(&mt.spec.name),
            t.html()
        );
    }
    h
}

/// Per machine: one exit with every other CPU lazy, and the exit walk.
pub(super) fn time_exit_table(cx: &Ctx) -> String {
    let mut t = Table::new(&[
        "machine",
        "CPUs",
        "scheme",
        "exit us",
        "vs refcount",
        "scheme IPIs",
        "flush IPIs",
        "scan steps",
        "walk: CPUs",
        "walk: exits/s",
        "walk: IPIs/s per CPU",
        "walk: mean exit us",
    ]);
    for mt in cx.machines {
        let n = mt.cpus;
        for s in mt.schemes() {
            let Some(e) = mt.exit(&s, n) else { continue };
            let base = mt.exit(BASELINE, n).map(|b| b.exit_us);
            let w = mt.walk.iter().find(|p| p.scheme == s);
            let cleans = [Some(e.clean), w.map(|w| w.clean)];
            push_row(
                &mut t,
                mt.ledger(&s, cleans.into_iter().flatten()).1,
                vec![
                    mt.spec.name.clone(),
                    n.to_string(),
                    s.clone(),
                    num(e.exit_us),
                    opt(base.filter(|b| *b > 0.0).map(|b| e.exit_us / b)),
                    e.ipis.to_string(),
                    e.flush_ipis.to_string(),
                    e.scan_steps.to_string(),
                    w.map(|w| w.cpus.to_string()).unwrap_or_else(|| "–".into()),
                    opt(w.map(|w| w.exits_per_s)),
                    opt(w.map(|w| w.ipis_per_cpu_s)),
                    opt(w.map(|w| w.mean_exit_us)),
                ],
            );
        }
    }
    format!(
        "<details open><summary>Exit cost in simulated time (each preset at its own size; walk: \
         PeterZ's adversarial exit under load, processes visiting {} CPUs, on at most {} CPUs: \
         larger presets cut by whole sockets)</summary>\n{}</details>\n",
        timed::WALK,
        timed::WALK_MAX_CPUS,
        t.html()
    )
}

pub(super) fn scaling_table(cx: &Ctx) -> String {
    let mut h = String::new();
    for (w, what) in [
        (THREADS, "ctxswitch-threads"),
        (PROCESSES, "ctxswitch-processes"),
    ] {
        let counts: BTreeSet<usize> = cx
            .source(w)
            .iter()
            .filter(|r| r.workload == w)
            .map(|r| r.cpus)
            .collect();
        if counts.is_empty() {
            continue;
        }
        let mut head = vec!["arch".to_string(), "scheme".to_string()];
        head.extend(counts.iter().map(|c| format!("{c} CPUs")));
        let head_ref: Vec<&str> = head.iter().map(String::as_str).collect();
        let mut t = Table::new(&head_ref);
        for arch in &cx.archs {
            for s in &cx.schemes {
                let pts: BTreeMap<usize, (f64, f64)> = cx
                    .source(w)
                    .iter()
                    .filter(|r| r.workload == w && &r.arch == arch && &r.scheme == s)
                    .map(|r| (r.cpus, (r.shared_rmw_per_switch, r.transfers_per_switch)))
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                let mut row = vec![arch.clone(), s.clone()];
                for c in &counts {
                    row.push(
                        pts.get(c)
                            .map(|(cy, tr)| format!("{} ({})", num(*cy), num(*tr)))
                            .unwrap_or_else(|| "–".into()),
                    );
                }
                push_row(&mut t, class(cx, s), row);
            }
        }
        let _ = write!(
            h,
            "<details><summary>{what}: shared-line RMWs per switch (coherence transfers per \
             switch), exact counts by CPU count</summary>\n{}</details>\n",
            t.html()
        );
    }
    h
}

pub(super) fn exit_table(cx: &Ctx) -> String {
    let mut t = Table::new(&[
        "arch",
        "workload",
        "cpus",
        "scheme",
        "mm_exits",
        "scheme IPIs/exit",
        "flush IPIs/exit",
        "scan steps/exit",
        "transfers/exit",
        "lazy enters/exit",
        "peak pinned",
        "frees deferred",
        "frees irqs-off",
    ]);
    let mut rows = 0;
    for arch in &cx.archs {
        let mut runs: Vec<&RunReport> = Vec::new();
        if let Some((cpus, src)) = cx.break_even_cpus(arch) {
            runs.extend(
                src.iter()
                    .filter(|r| r.workload == EXIT_STORM && &r.arch == arch && r.cpus == cpus),
            );
        }
        for tr in &cx.traces {
            runs.extend(cx.schemes.iter().filter_map(|s| cx.trace_run(tr, arch, s)));
        }
        for r in runs {
            rows += 1;
            push_row(
                &mut t,
                class(cx, &r.scheme),
                vec![
                    arch.clone(),
                    r.workload.clone(),
                    r.cpus.to_string(),
                    r.scheme.clone(),
                    r.exits.to_string(),
                    opt(per(r.ipis, r.exits)),
                    opt(per(r.flush_ipis, r.exits)),
                    opt((r.exits > 0).then_some(r.scan_steps_per_exit)),
                    opt(per(r.teardown_access.coherence_transfers, r.exits)),
                    opt((r.exits > 0).then_some(r.lazy_enters_per_exit)),
                    r.peak_pinned.to_string(),
                    r.frees_deferred.to_string(),
                    r.frees_irqs_off.to_string(),
                ],
            );
        }
    }
    if rows == 0 {
        return "<p>No exit-storm or trace runs.</p>\n".into();
    }
    format!(
        "<details open><summary>Exit cost table (exit-storm at the break-even CPU count, and \
         every trace)</summary>\n{}</details>\n",
        t.html()
    )
}

pub(super) fn break_even_html(cx: &Ctx, figs: Option<&Vec<Figure>>) -> String {
    let mut h = String::from(
        "<h2 id=\"break-even\">3. Break-even: an xchg on every unlazy vs work once per exit</h2>\n\
         <p>PeterZ, in the seed thread: <q>You do the xchg() on every unlazy, while the IPI would \
         be once per process exit.</q> Which is cheaper depends on how many lazy round trips a \
         process makes in its lifetime. The model, per machine preset, in simulated time:</p>\n\
         <pre>cost(L) = L × a + e\n\
         a = us of CPU per lazy round trip  = cpus_used / lazy round trips per s\n    \
         of will-it-scale context_switch1_threads -t CPUs/2 (every switch through idle)\n\
         e = us of one exit while every other CPU holds the mm lazily (IPIs included)\n\
         break-even between schemes i and j:  L* = (e_j − e_i) / (a_i − a_j), when L* &gt; 0\n\
         vs refcount: L* = (exit_us − exit_us(refcount)) / (switch path saved per lazy round trip)</pre>\n\
         <p>The exit is the adversarial one (the process was on every CPU), so e is an upper \
         bound for ordinary exits; the per-trace L is the trace's lazy enters per exit.</p>\n",
    );
    for mt in cx.machines {
        let inputs = mt.trips();
        if inputs.is_empty() {
            continue;
        }
        let cpus = mt.cpus;
        let _ = writeln!(h, "<h3>{} (N = {cpus} CPUs)</h3>", esc(&mt.spec.name));
        if let Some(f) = figs
            .into_iter()
            .flatten()
            .find(|f| f.file == format!("break-even-{}.svg", file_part(&mt.spec.name)))
        {
            h.push_str(&figure_html(f));
        }
        let traces = cx.trace_l(&mt.spec.arch);
        let mut head: Vec<String> = vec![
            "scheme".into(),
            "a: us / lazy round trip".into(),
            "e: us / exit".into(),
        ];
        for (n, l) in &traces {
            head.push(format!("us at {n} (L={})", short(*l)));
        }
        head.push("ledger".into());
        let head_ref: Vec<&str> = head.iter().map(String::as_str).collect();
        let mut t = Table::new(&head_ref);
        for i in &inputs {
            let mut row = vec![i.0.clone(), num(i.1), num(i.2)];
            for (_, l) in &traces {
                row.push(num(lifetime(i.1, i.2, *l)));
            }
            let (ledger, row_class) = mt.ledger_at(&i.0, cpus);
            row.push(ledger.into());
            push_row(&mut t, row_class, row);
        }
        h.push_str(&t.html());
        let mut p = Table::new(&["scheme i", "scheme j", "break-even L*", "verdict"]);
        for (k, i) in inputs.iter().enumerate() {
            for j in inputs.iter().skip(k + 1) {
                let (l, v) = break_even(i, j);
                let c = if mt.ledger_at(&i.0, cpus).1.is_some()
                    || mt.ledger_at(&j.0, cpus).1.is_some()
                {
                    Some("unsafe")
                } else {
                    None
                };
                push_row(
                    &mut p,
                    c,
                    vec![
                        i.0.clone(),
                        j.0.clone(),
                        l.map(num).unwrap_or_else(|| "none".into()),
                        v,
                    ],
                );
            }
        }
        if inputs.len() > 1 {
            h.push_str("<p>Break-even L between each pair of schemes:</p>\n");
            h.push_str(&p.html());
        }
    }
    if cx.machines.is_empty() {
        h.push_str("<p>No machine was simulated in time (<code>--machine</code>).</p>\n");
    }
    h
}

pub(super) fn traces_table(cx: &Ctx) -> String {
    if cx.traces.is_empty() {
        return String::new();
    }
    let mut t = Table::new(&[
        "trace",
        "arch",
        "cpus",
        "scheme",
        "switches",
        "lazy enters",
        "exits",
        "count RMW/switch",
        "shared RMW/switch",
        "transfers/switch",
        "IPIs/exit",
        "transfers/exit",
        "ledger",
    ]);
    for tr in &cx.traces {
        for arch in &cx.archs {
            for s in &cx.schemes {
                let Some(r) = cx.trace_run(tr, arch, s) else {
                    continue;
                };
                push_row(
                    &mut t,
                    class(cx, s),
                    vec![
                        tr.trim_start_matches("trace:").to_string(),
                        arch.clone(),
                        r.cpus.to_string(),
                        s.clone(),
                        r.switches.to_string(),
                        r.lazy_enters.to_string(),
                        r.exits.to_string(),
                        opt(per(r.count_rmw, r.switches)),
                        num(r.shared_rmw_per_switch),
                        num(r.transfers_per_switch),
                        opt(per(r.ipis + r.flush_ipis, r.exits)),
                        opt(per(r.teardown_access.coherence_transfers, r.exits)),
                        if r.clean() { "ok" } else { "VIOLATION" }.to_string(),
                    ],
                );
            }
        }
    }
    format!(
        "<details><summary>Trace table (every trace, profile and scheme)</summary>\n{}</details>\n",
        t.html()
    )
}

pub(super) fn ledger_html(cx: &Ctx) -> String {
    let mut h = String::from("<h2 id=\"ledger\">5. Ledger</h2>\n");
    let bad: Vec<&RunReport> = cx
        .runs
        .iter()
        .chain(cx.sweep)
        .filter(|r| !r.clean())
        .collect();
    let total = cx.runs.len() + cx.sweep.len();
    if bad.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"ok\">All clean: {total} runs, no use-after-free, no double free, no leak.</p>"
        );
        return h;
    }
    let unexpected = bad.iter().filter(|r| r.known_unsafe.is_none()).count();
    if unexpected == 0 {
        let _ = writeln!(
            h,
            "<p class=\"ok\">No unexpected failures: every violation below is from a scheme \
             declared known-unsafe (kept for its counterexample). {} of {total} runs have \
             violations.</p>",
            bad.len()
        );
    } else {
        let _ = writeln!(
            h,
            "<p class=\"bad\">{unexpected} run(s) of schemes NOT declared known-unsafe have \
             ledger violations — these schemes must not ship.</p>"
        );
    }
    // Per scheme summary.
    #[derive(Default)]
    struct Agg<'r> {
        runs: usize,
        uaf: u64,
        df: u64,
        leaked: u64,
        archs: BTreeSet<&'r str>,
        workloads: BTreeSet<&'r str>,
    }
    let mut per_scheme: BTreeMap<&str, Agg> = BTreeMap::new();
    for r in &bad {
        let e = per_scheme.entry(&r.scheme).or_default();
        e.runs += 1;
        e.uaf += r.uaf;
        e.df += r.double_free;
        e.leaked += r.leaked;
        e.archs.insert(&r.arch);
        e.workloads.insert(&r.workload);
    }
    let mut t = Table::new(&[
        "scheme",
        "runs with violations",
        "profiles",
        "workloads",
        "uaf",
        "double_free",
        "leaked",
        "known_unsafe",
    ]);
    for s in &cx.schemes {
        if let Some(e) = per_scheme.get(s.as_str()) {
            push_row(
                &mut t,
                Some(
                    if cx.known_unsafe.contains_key(s) && !cx.failed.contains(s) {
                        "unsafe"
                    } else {
                        "fail"
                    },
                ),
                vec![
                    s.clone(),
                    e.runs.to_string(),
                    e.archs.iter().copied().collect::<Vec<_>>().join(", "),
                    e.workloads.iter().copied().collect::<Vec<_>>().join(", "),
                    e.uaf.to_string(),
                    e.df.to_string(),
                    e.leaked.to_string(),
                    match cx.known_unsafe.get(s) {
                        Some(why) => {
                            let clean: Vec<&str> = cx
                                .archs
                                .iter()
                                .map(String::as_str)
                                .filter(|a| !e.archs.contains(a))
                                .collect();
                            format!(
                                "Fails here on {} only{}. Declared reason: {why}",
                                e.archs.iter().copied().collect::<Vec<_>>().join(", "),
                                if clean.is_empty() {
                                    String::new()
                                } else {
                                    format!(" (no violation on {})", clean.join(", "))
                                }
                            )
                        }
                        None => "NOT declared: unexpected failure".into(),
                    },
                ],
            );
        }
    }
    h.push_str(&t.html());
    let mut t = Table::new(&[
        "scheme",
        "workload",
        "arch",
        "cpus",
        "seed",
        "uaf",
        "double_free",
        "leaked",
        "known_unsafe",
        "first violation",
    ]);
    for r in &bad {
        push_row(
            &mut t,
            Some(if r.known_unsafe.is_some() {
                "unsafe"
            } else {
                "fail"
            }),
            vec![
                r.scheme.clone(),
                r.workload.clone(),
                r.arch.clone(),
                r.cpus.to_string(),
                r.seed.to_string(),
                r.uaf.to_string(),
                r.double_free.to_string(),
                r.leaked.to_string(),
                if r.known_unsafe.is_some() {
                    "known unsafe (reason above)".into()
                } else {
                    "UNEXPECTED".into()
                },
                r.violations.first().cloned().unwrap_or_default(),
            ],
        );
    }
    let _ = write!(
        h,
        "<details{}><summary>Every run with a violation ({})</summary>\n{}</details>\n",
        if unexpected > 0 { " open" } else { "" },
        bad.len(),
        t.html()
    );
    h
}

pub(super) fn machines_html(cx: &Ctx, input: &ReportInput) -> String {
    let mut h = String::from(
        "<h2 id=\"machines\">6. Machines and command</h2>\n\
         <p>Simulated time comes from <code>lazymm_sim::timing</code> (see docs/timing.md): the \
         same scheme code on per-CPU clocks, each cache line with an owner and sharers, a \
         transfer costing the topology distance, one transfer at a time per line. Every \
         parameter of every machine, with its source (ESTIMATE where no measurement of that \
         machine was published):</p>\n",
    );
    for mt in cx.machines {
        let mut t = Table::new(&["parameter", "value", "source"]);
        for (k, f) in mt.figures() {
            t.row(vec![k, num(f.value), f.source.clone()]);
        }
        let _ = write!(
            h,
            "<details><summary>{} — {} ({}, {} CPUs; from {})</summary>\n{}<p>{}</p></details>\n",
            esc(&mt.spec.name),
            esc(&mt.spec.description),
            esc(&mt.spec.arch),
            mt.cpus,
            esc(&mt.spec.origin),
            t.html(),
            esc(&mt.extrapolation)
        );
    }
    let _ = write!(
        h,
        "<p>Command:</p>\n<pre>{}</pre>\n\
         <p>Count sweep (<code>report::sweep_configs</code>, same seed): every scheme and profile; \
         ctxswitch-threads and ctxswitch-processes at 2, 4, …, {SWEEP_MAX_CPUS} CPUs with \
         max({MIN_ROUNDS}, 90000 / CPUs) rounds; exit-storm at 2, 4, …, \
         {EXIT_SWEEP_MAX_CPUS} CPUs with max(256, 4 × CPUs) rounds; the exit table uses \
         {BREAK_EVEN_CPUS} CPUs when those runs exist. Time sweep: per machine, 2, 4, … CPUs \
         and the preset's own size, then the scaled machine up to the same largest count.</p>\n",
        esc(&input.command)
    );
    h
}
