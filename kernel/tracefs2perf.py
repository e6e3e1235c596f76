#!/usr/bin/env python3
"""Convert the guest's tracefs capture to the `perf script` text that
`lazymm replay` reads (traces/FORMAT.md), plus the kernel-thread sidecar.

Input: the serial console log of a `run.sh trace` boot; kernel/initramfs/init
writes, between other console output:
    #LAZYMM-KTHREADS
    <tid per line>
    #LAZYMM-TRACE
    <the text of /sys/kernel/tracing/trace, options/record-tgid on>
    #LAZYMM-END

A tracefs line (record-tgid):
    <comm>-<tid> (<tgid>|-------) [<cpu>] <flags> <secs.usecs>: <event>: <fields>
becomes
    <comm:>16> <tgid>/<tid> [<cpu:03>] <secs.usecs>: sched:<event>: <fields>
The idle task (`<idle>-0`) becomes `swapper 0/0`; a task whose TGID tracefs
did not record keeps only its TID (the replay then treats it as its own
process, and says so). Event fields are the same text in tracefs and perf.

The lazy_tlb events of patch 0001: `lazy_tlb_exit_mm` (where exit_mm ran)
goes into the trace as `lazy_tlb:lazy_tlb_exit_mm`, which `lazymm replay`
reads; the others (`lazy_tlb_teardown`, `lazy_tlb_handoff`,
`lazy_tlb_handoff_drop`) go to OUT.lazytlb.txt, one line each:
    <tid> <cpu> <secs.usecs> <event> <fields>
for kernel/compare_teardowns.py.

With `trace_clock` `counter` (kernel/initramfs/init sets it: the TCG guest's
clock ticks in jiffies) tracefs prints a bare event number instead of
<secs.usecs>; it becomes the time <N / 10^6>.<N mod 10^6>, one microsecond
per event, so the trace keeps the kernel's exact global order.

Usage: tracefs2perf.py CAPTURE OUT.perf.txt OUT.kthreads.txt [OUT.lazytlb.txt]
(default OUT.lazytlb.txt: OUT.perf.txt with `.perf.txt` replaced)
Exit status 1, with the file, line and cause, on a bad kernel-thread line,
an unexpected event or a truncated capture; other lines inside the trace
(console messages) are skipped and listed on stderr.
"""
import re
import sys

LINE = re.compile(
    r"^\s*(?P<comm>.*)-(?P<tid>\d+)\s+\(\s*(?P<tgid>[-\d]+)\)\s+\[(?P<cpu>\d+)\]\s+"
    r"(?P<flags>\S+)\s+(?P<time>\d+(?:\.\d+)?):\s+(?P<event>\w+):\s(?P<fields>.*)$"
)
EVENTS = {
    "sched_switch", "sched_process_fork", "sched_process_exec", "sched_process_exit",
    "sched_process_free", "sched_wakeup_new", "sched_migrate_task",
}
LAZY_TRACE = {"lazy_tlb_exit_mm"}
LAZY_SIDECAR = {"lazy_tlb_teardown", "lazy_tlb_handoff", "lazy_tlb_handoff_drop"}


def main(argv):
    if len(argv) not in (4, 5):
        sys.stderr.write(__doc__)
        return 2
    src, out_trace, out_kthreads = argv[1:4]
    if len(argv) == 5:
        out_lazy = argv[4]
    elif out_trace.endswith(".perf.txt"):
        out_lazy = out_trace[: -len(".perf.txt")] + ".lazytlb.txt"
    else:
        out_lazy = out_trace + ".lazytlb.txt"
    section = None
    kthreads = set()
    lines = 0
    skipped = 0
    lazy_lines = 0
    with open(src, "rb") as f, open(out_trace, "w") as out, open(out_lazy, "w") as lazy:
        for n, raw in enumerate(f, 1):
            text = raw.decode("utf-8", "replace").rstrip("\r\n").rstrip("\r")
            if text.startswith("#LAZYMM-"):
                section = text[len("#LAZYMM-"):]
                continue
            if section == "KTHREADS":
                if text.strip():
                    try:
                        kthreads.add(int(text))
                    except ValueError:
                        print(f"{src}:{n}: bad kernel-thread TID {text!r}", file=sys.stderr)
                        return 1
                continue
            if section != "TRACE" or not text.strip() or text.lstrip().startswith("#"):
                continue
            m = LINE.match(text)
            if not m:
                # A console message that got between the trace lines.
                print(f"{src}:{n}: skipped, not a tracefs event line: {text[:100]!r}",
                      file=sys.stderr)
                skipped += 1
                continue
            time = m["time"]
            if "." not in time:
                time = f"{int(time) // 1000000}.{int(time) % 1000000:06d}"
            if m["event"] in LAZY_SIDECAR:
                lazy.write(f"{int(m['tid'])} {int(m['cpu'])} {time} {m['event']} "
                           f"{m['fields']}\n")
                lazy_lines += 1
                continue
            if m["event"] not in EVENTS and m["event"] not in LAZY_TRACE:
                print(f"{src}:{n}: unexpected event {m['event']}", file=sys.stderr)
                return 1
            system = "lazy_tlb" if m["event"] in LAZY_TRACE else "sched"
            comm, tid, tgid = m["comm"], int(m["tid"]), m["tgid"]
            if tid == 0:
                comm, ids = "swapper", "0/0"
            elif tgid.startswith("-"):
                ids = f"{tid}"
            else:
                ids = f"{int(tgid)}/{tid}"
            out.write(f"{comm[:15]:>16} {ids} [{int(m['cpu']):03d}] {time}: "
                      f"{system}:{m['event']}: {m['fields']}\n")
            lines += 1
    if section != "END":
        print(f"{src}: capture truncated (no #LAZYMM-END)", file=sys.stderr)
        return 1
    with open(out_kthreads, "w") as k:
        for t in sorted(kthreads):
            k.write(f"{t}\n")
    print(f"tracefs2perf: {lines} events, {len(kthreads)} kernel threads, "
          f"{skipped} other lines skipped -> {out_trace}; "
          f"{lazy_lines} lazy_tlb teardown events -> {out_lazy}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
