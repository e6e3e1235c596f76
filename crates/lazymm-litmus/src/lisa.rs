//! A front end for herd's `LISA` litmus format (the generic assembly some
//! LKMM tests are written in), translated into the C litmus format.
//!
//! Supported instructions: `r[once|acquire|deref|lderef] reg addr`,
//! `w[once|release|assign] addr value`, `f[mb|wmb|rmb|sync|rcu_read_lock|
//! rcu_read_unlock]`, `mov reg value`, `mov reg (op a b)` with
//! `add|sub|xor|and|or|eq|neq`, and forward conditional branches
//! `b[] reg LABEL` (taken when the register is non-zero) with `LABEL:`;
//! as in herd for assembly, a branch makes every po-later event
//! control-dependent on the tested register.
//! Anything else is reported as unsupported.

use crate::parse::LitmusError;
use std::collections::BTreeSet;

fn unsup<T>(s: impl Into<String>) -> Result<T, LitmusError> {
    Err(LitmusError::Unsupported(s.into()))
}

fn syn<T>(line: usize, s: impl Into<String>) -> Result<T, LitmusError> {
    Err(LitmusError::Syntax {
        line,
        msg: s.into(),
    })
}

fn is_reg(s: &str) -> bool {
    s.len() > 1 && s.starts_with('r') && s[1..].chars().all(|c| c.is_ascii_digit())
}

fn is_ident(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_int(s: &str) -> bool {
    let t = s.strip_prefix('-').unwrap_or(s);
    !t.is_empty() && t.chars().all(|c| c.is_ascii_digit())
}

struct Thread {
    stmts: Vec<String>,
    regs: BTreeSet<String>,
    globals: BTreeSet<String>,
    /// Active forward branches: (target label, flag register set when taken).
    open: Vec<(String, String)>,
    /// Registers some earlier branch tested (herd: `ctrl` reaches every
    /// po-later event of an assembly thread).
    ctrl: Vec<String>,
    nflags: usize,
}

impl Thread {
    /// Emit a statement guarded by the active branches (skipped when one of
    /// them was taken) and control-dependent on every register an earlier
    /// branch tested.
    fn emit(&mut self, stmt: String) {
        let mut guard: Vec<String> = self.open.iter().map(|(_, f)| format!("!{f}")).collect();
        guard.extend(self.ctrl.iter().map(|r| format!("({r} | 1)")));
        if guard.is_empty() {
            self.stmts.push(stmt);
        } else {
            self.stmts
                .push(format!("if ({}) {{ {stmt} }}", guard.join(" && ")));
        }
    }

    fn operand(&mut self, s: &str, line: usize) -> Result<String, LitmusError> {
        if let Some((a, b)) = s.split_once('+') {
            // address arithmetic such as `x+r4`
            let a = self.operand(a, line)?;
            let b = self.operand(b, line)?;
            return Ok(format!("({a} + {b})"));
        }
        if is_reg(s) {
            self.regs.insert(s.to_string());
            Ok(s.to_string())
        } else if is_int(s) {
            Ok(s.to_string())
        } else if is_ident(s) {
            self.globals.insert(s.to_string());
            Ok(s.to_string())
        } else {
            syn(
                line,
                format!("expected a register, integer or variable, found `{s}`"),
            )
        }
    }

    fn instr(&mut self, cell: &str, line: usize) -> Result<(), LitmusError> {
        let cell = cell.trim();
        if cell.is_empty() {
            return Ok(());
        }
        if let Some(label) = cell.strip_suffix(':') {
            let label = label.trim();
            self.open.retain(|(l, _)| l != label);
            return Ok(());
        }
        let (op, rest) = match cell.find(char::is_whitespace) {
            Some(i) => (&cell[..i], cell[i..].trim()),
            None => (cell, ""),
        };
        let args: Vec<&str> = rest.split_whitespace().collect();
        let need = |n: usize| -> Result<(), LitmusError> {
            if args.len() == n {
                Ok(())
            } else {
                syn(
                    line,
                    format!("expected {n} operand(s) for `{op}`, found `{rest}`"),
                )
            }
        };
        match op {
            "r[once]" | "r[acquire]" | "r[deref]" | "r[lderef]" => {
                need(2)?;
                if !is_reg(args[0]) {
                    return syn(line, format!("expected a register, found `{}`", args[0]));
                }
                let d = self.operand(args[0], line)?;
                let a = self.operand(args[1], line)?;
                let e = match op {
                    "r[once]" => format!("READ_ONCE(*{a})"),
                    "r[acquire]" => format!("smp_load_acquire({a})"),
                    _ => format!("rcu_dereference(*{a})"),
                };
                self.emit(format!("{d} = {e};"));
            }
            "w[once]" | "w[release]" | "w[assign]" => {
                need(2)?;
                let a = self.operand(args[0], line)?;
                let v = self.operand(args[1], line)?;
                self.emit(match op {
                    "w[once]" => format!("WRITE_ONCE(*{a}, {v});"),
                    "w[release]" => format!("smp_store_release({a}, {v});"),
                    _ => format!("rcu_assign_pointer(*{a}, {v});"),
                });
            }
            "f[mb]" | "f[wmb]" | "f[rmb]" | "f[sync]" | "f[rcu_read_lock]"
            | "f[rcu_read_unlock]" => {
                need(0)?;
                self.emit(
                    match op {
                        "f[mb]" => "smp_mb();",
                        "f[wmb]" => "smp_wmb();",
                        "f[rmb]" => "smp_rmb();",
                        "f[sync]" => "synchronize_rcu();",
                        "f[rcu_read_lock]" => "rcu_read_lock();",
                        _ => "rcu_read_unlock();",
                    }
                    .into(),
                );
            }
            "mov" => {
                let (d, e) = match rest.split_once(char::is_whitespace) {
                    Some((d, e)) => (d.trim(), e.trim()),
                    None => return syn(line, format!("expected `mov reg value`, found `{cell}`")),
                };
                if !is_reg(d) {
                    return syn(line, format!("expected a register, found `{d}`"));
                }
                let d = self.operand(d, line)?;
                let e = if let Some(inner) = e.strip_prefix('(').and_then(|e| e.strip_suffix(')')) {
                    let p: Vec<&str> = inner.split_whitespace().collect();
                    if p.len() != 3 {
                        return syn(line, format!("expected `(op a b)`, found `{e}`"));
                    }
                    let o = match p[0] {
                        "add" => "+",
                        "sub" => "-",
                        "xor" => "^",
                        "and" => "&",
                        "or" => "|",
                        "eq" => "==",
                        "neq" => "!=",
                        x => return unsup(format!("LISA operator `{x}`")),
                    };
                    let a = self.operand(p[1], line)?;
                    let b = self.operand(p[2], line)?;
                    format!("({a} {o} {b})")
                } else {
                    self.operand(e, line)?
                };
                self.emit(format!("{d} = {e};"));
            }
            "b[]" => {
                need(2)?;
                if !is_reg(args[0]) {
                    return unsup("LISA branch on a non-register");
                }
                let r = self.operand(args[0], line)?;
                let flag = format!("lisa_b{}", self.nflags);
                self.nflags += 1;
                self.regs.insert(flag.clone());
                // taken only if this instruction itself is executed
                self.emit(format!("{flag} = ({r} != 0);"));
                self.open.push((args[1].to_string(), flag));
                if !self.ctrl.contains(&r) {
                    self.ctrl.push(r);
                }
            }
            _ => return unsup(format!("LISA instruction `{op}`")),
        }
        Ok(())
    }
}

/// Translate a LISA test into C litmus source (same header comment and
/// `Result:` line, same initial state and final condition).
pub fn to_c(src: &str) -> Result<String, LitmusError> {
    let lines: Vec<&str> = src.lines().collect();
    let hdr = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .ok_or(LitmusError::Syntax {
            line: 1,
            msg: "expected a header line".into(),
        })?;
    let name = lines[hdr].trim().trim_start_matches("LISA").trim();
    // the program table: from the line starting with `P0` to the final condition
    let start = match lines.iter().position(|l| {
        let t = l.trim_start();
        t.starts_with("P0")
            && (t[2..].trim_start().starts_with('|') || t[2..].trim_start().starts_with(';'))
    }) {
        Some(s) => s,
        None => return syn(hdr + 1, "expected the LISA program table (`P0 | P1 ... ;`)"),
    };
    let end = lines[start..]
        .iter()
        .position(|l| {
            let t = l.trim_start();
            ["exists", "~exists", "forall", "locations", "filter"]
                .iter()
                .any(|k| t.starts_with(k))
        })
        .map(|e| start + e)
        .unwrap_or(lines.len());
    let heads: Vec<&str> = lines[start]
        .trim()
        .trim_end_matches(';')
        .split('|')
        .map(str::trim)
        .collect();
    let mut threads: Vec<Thread> = Vec::new();
    for (i, h) in heads.iter().enumerate() {
        if *h != format!("P{i}") {
            return syn(
                start + 1,
                format!("expected `P{i}` in the table header, found `{h}`"),
            );
        }
        threads.push(Thread {
            stmts: Vec::new(),
            regs: BTreeSet::new(),
            globals: BTreeSet::new(),
            open: Vec::new(),
            ctrl: Vec::new(),
            nflags: 0,
        });
    }
    for (k, l) in lines.iter().enumerate().take(end).skip(start + 1) {
        // drop OCaml comments inside the table
        let mut l = l.to_string();
        while let Some(a) = l.find("(*") {
            match l[a..].find("*)") {
                Some(b) => l.replace_range(a..a + b + 2, ""),
                None => l.truncate(a),
            }
        }
        let t = l.trim();
        if t.is_empty() {
            continue;
        }
        let t = match t.strip_suffix(';') {
            Some(t) => t,
            None => return syn(k + 1, "expected `;` at the end of a program row"),
        };
        let cells: Vec<&str> = t.split('|').collect();
        if cells.len() != threads.len() {
            return syn(
                k + 1,
                format!("expected {} columns, found {}", threads.len(), cells.len()),
            );
        }
        for (th, c) in threads.iter_mut().zip(cells) {
            th.instr(c, k + 1)?;
        }
    }
    if threads.iter().any(|t| !t.open.is_empty()) {
        return unsup("LISA branch to a label that does not follow it");
    }
    // Initial state: the `{ ... }` block between the header and the table.
    let pre = lines[hdr + 1..start].join("\n");
    let mut out = format!("C {name}\n{pre}\n");
    let init_globals: BTreeSet<String> = {
        let open = pre.rfind('{').unwrap_or(0);
        pre[open..]
            .split([';', '{', '}', '\n'])
            .filter_map(|item| item.split('=').next())
            .map(str::trim)
            .filter(|s| is_ident(s))
            .map(String::from)
            .collect()
    };
    for (i, th) in threads.iter().enumerate() {
        let params: Vec<String> = th
            .globals
            .union(&init_globals)
            .map(|g| format!("int *{g}"))
            .collect();
        out.push_str(&format!("P{i}({})\n{{\n", params.join(", ")));
        for r in &th.regs {
            out.push_str(&format!("\tint {r};\n"));
        }
        for s in &th.stmts {
            out.push_str(&format!("\t{s}\n"));
        }
        out.push_str("}\n\n");
    }
    out.push_str(&lines[end..].join("\n"));
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_and_checks() {
        let src = "LISA t\n(* Result: Sometimes *)\n{\nx0 = 0;\nx1 = 0;\n}\n P0            | P1            ;\n w[once] x0 1  | r[once] r1 x1 ;\n w[once] x1 1  | b[] r1 L      ;\n               | r[once] r2 x0 ;\n               | L:            ;\nexists (1:r1=1 /\\ 1:r2=0)\n";
        let c = to_c(src).unwrap();
        let t = crate::parse(&c).unwrap();
        assert_eq!(t.threads.len(), 2);
        let o = crate::check(&t, &Default::default()).unwrap();
        assert_eq!(o.verdict, crate::Verdict::Sometimes);
    }
}
