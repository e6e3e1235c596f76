#!/usr/bin/env python3
"""Teardown-by-teardown check of `lazymm replay` against the hand-off kernel.

Inputs, from one `kernel/run.sh trace MODE` capture:
  KERNEL.lazytlb.txt   the kernel's lazy_tlb events (tracefs2perf.py):
                       <tid> <cpu> <time> <event> <fields>
  MODEL.jsonl          `lazymm replay TRACE --teardowns MODEL.jsonl`: one
                       teardown a line (trace, scheme, arch, line, tid, cpu,
                       event, self_takes, handoffs, handoff_cpus)

Each kernel `lazy_tlb_teardown` is the teardown run by task <tid>; each
model teardown names the task whose trace event ran it. They are matched
per task, in order. The report counts, for the matched pairs, equal and
different CPUs, self takes, hand-offs and the CPUs handed a reference (the
kernel's `lazy_tlb_handoff` events before the teardown event, the model's
`handoff_cpus`), and lists every teardown found on
one side only and every matched pair that differs (with the trace line).
The model's end-of-trace clean-up teardowns (`event` `end`, the mms still
alive when tracing stopped) have no kernel counterpart in the window and
are counted apart.

Usage: compare_teardowns.py KERNEL.lazytlb.txt MODEL.jsonl [--scheme S] [--arch A]
Exit status 0 when every teardown matches exactly (CPU, self take,
hand-offs and their CPUs), 1 otherwise, 2 on bad input (file, line and cause on stderr).
"""
import json
import re
import sys
from collections import defaultdict

FIELD = re.compile(r"(\w+)=(\S+)")


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(2)


def read_kernel(path):
    teardowns, handoffs, drops = [], 0, 0
    pending = defaultdict(list)  # tid -> CPUs handed a reference, until its teardown event
    with open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split(None, 4)
            if len(parts) < 4:
                fail(f"{path}:{n}: expected `<tid> <cpu> <time> <event> <fields>`")
            try:
                tid, cpu = int(parts[0]), int(parts[1])
            except ValueError:
                fail(f"{path}:{n}: bad tid or cpu {parts[0]!r} {parts[1]!r}")
            ev = parts[3]
            fields = dict(FIELD.findall(parts[4] if len(parts) > 4 else ""))
            if ev == "lazy_tlb_teardown":
                try:
                    teardowns.append({
                        "n": n, "tid": tid, "cpu": cpu,
                        "self_takes": int(fields["self_take"]),
                        "handoffs": int(fields["given"]),
                        "failed": int(fields["failed"]),
                        "handoff_cpus": sorted(pending.pop(tid, [])),
                    })
                except (KeyError, ValueError):
                    fail(f"{path}:{n}: lazy_tlb_teardown without self_take/given/failed")
            elif ev == "lazy_tlb_handoff":
                handoffs += 1
                try:
                    pending[tid].append(int(fields["cpu"]))
                except (KeyError, ValueError):
                    fail(f"{path}:{n}: lazy_tlb_handoff without cpu")
            elif ev == "lazy_tlb_handoff_drop":
                drops += 1
            else:
                fail(f"{path}:{n}: unexpected event {ev}")
    return teardowns, handoffs, drops


def read_model(path, scheme, arch):
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                t = json.loads(line)
            except json.JSONDecodeError as e:
                fail(f"{path}:{n}: not JSON: {e}")
            if (scheme and t.get("scheme") != scheme) or (arch and t.get("arch") != arch):
                continue
            for k in ("tid", "cpu", "event", "self_takes", "handoffs", "line", "handoff_cpus"):
                if k not in t:
                    fail(f"{path}:{n}: no `{k}`")
            t["handoff_cpus"] = sorted(t["handoff_cpus"])
            out.append(t)
    return out


def main(argv):
    args = argv[1:]
    scheme = arch = None
    for opt in ("--scheme", "--arch"):
        if opt in args:
            i = args.index(opt)
            if i + 1 >= len(args):
                fail(f"{opt} needs a value")
            val = args[i + 1]
            del args[i:i + 2]
            if opt == "--scheme":
                scheme = val
            else:
                arch = val
    if len(args) != 2:
        sys.stderr.write(__doc__)
        return 2
    kern, kh, kd = read_kernel(args[0])
    model_all = read_model(args[1], scheme, arch)
    end = [t for t in model_all if t["event"] == "end"]
    model = [t for t in model_all if t["event"] != "end"]
    by_tid_k, by_tid_m = defaultdict(list), defaultdict(list)
    for t in kern:
        by_tid_k[t["tid"]].append(t)
    for t in model:
        by_tid_m[t["tid"]].append(t)
    pairs, kernel_only, model_only = [], [], []
    for tid in sorted(set(by_tid_k) | set(by_tid_m)):
        a, b = by_tid_k.get(tid, []), by_tid_m.get(tid, [])
        pairs += list(zip(a, b))
        kernel_only += a[len(b):]
        model_only += b[len(a):]
    same = {"cpu": 0, "self_takes": 0, "handoffs": 0, "handoff_cpus": 0}
    differ = []
    for k, m in pairs:
        ok = True
        for f in same:
            if k[f] == m[f]:
                same[f] += 1
            else:
                ok = False
        if not ok:
            differ.append((k, m))
    sums = lambda ts, f: sum(t[f] for t in ts)
    print(f"kernel: {len(kern)} teardowns, {sums(kern, 'self_takes')} self takes, "
          f"{sums(kern, 'handoffs')} hand-offs given ({kh} lazy_tlb_handoff events), "
          f"{sums(kern, 'failed')} failed, {kd} handed references dropped")
    print(f"model:  {len(model)} teardowns in the trace (+{len(end)} at its end), "
          f"{sums(model, 'self_takes')} self takes, {sums(model, 'handoffs')} hand-offs "
          f"(+{sums(end, 'handoffs')} at the end)")
    print(f"matched by task: {len(pairs)}; same CPU {same['cpu']}, same self take "
          f"{same['self_takes']}, same hand-offs {same['handoffs']} (to the same CPUs "
          f"{same['handoff_cpus']}); "
          f"kernel only {len(kernel_only)}, model only {len(model_only)}")
    for t in kernel_only:
        print(f"  kernel only: tid {t['tid']} cpu {t['cpu']} self_take {t['self_takes']} "
              f"given {t['handoffs']} ({args[0]}:{t['n']})")
    for t in model_only:
        print(f"  model only:  tid {t['tid']} cpu {t['cpu']} self_take {t['self_takes']} "
              f"hand-offs {t['handoffs']} ({t['event']}, trace line {t['line']})")
    for k, m in differ:
        print(f"  differ: tid {k['tid']}: kernel cpu {k['cpu']} self_take {k['self_takes']} "
              f"given {k['handoffs']} to {k['handoff_cpus']} ({args[0]}:{k['n']}); model cpu "
              f"{m['cpu']} self_take {m['self_takes']} hand-offs {m['handoffs']} to "
              f"{m['handoff_cpus']} ({m['event']}, trace line {m['line']})")
    return 0 if not (kernel_only or model_only or differ) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
