#!/bin/bash
# kernel/config.sh SRC OUT MODE: writes OUT/.config for MODE.
# MODE: stock | handoff | debug (hand-off + KASAN + lockdep + DEBUG_VM) |
#       stock-debug (refcount + KASAN + lockdep + DEBUG_VM) | mutant (= debug config)
# A tinyconfig base plus what the 4-CPU QEMU stress needs.
set -euo pipefail
SRC=$1 OUT=$2 MODE=$3
mkdir -p "$OUT"
make -s -C "$SRC" O="$OUT" tinyconfig >/dev/null
C="$SRC/scripts/config --file $OUT/.config"
$C -e 64BIT -e SMP --set-val NR_CPUS 8 -e HOTPLUG_CPU \
   -e PRINTK -e BUG -e TTY -e SERIAL_8250 -e SERIAL_8250_CONSOLE \
   -e BLK_DEV_INITRD -e RD_GZIP -e BINFMT_ELF -e BINFMT_SCRIPT \
   -e PROC_FS -e SYSFS -e DEVTMPFS -e DEVTMPFS_MOUNT -e FUTEX -e EPOLL \
   -e MULTIUSER -e HYPERVISOR_GUEST -e PARAVIRT -e KVM_GUEST \
   -e HIGH_RES_TIMERS -e PERF_EVENTS -e POSIX_TIMERS -e KALLSYMS \
   -e DEBUG_KERNEL -e DEBUG_FS -e FTRACE -e ENABLE_DEFAULT_TRACERS \
   -e MMU_LAZY_TLB_STATS -e RUNTIME_TESTING_MENU -e TEST_LAZY_TLB -d SLUB_TINY -e SLUB \
   -e PANIC_ON_OOPS --set-val PANIC_TIMEOUT -1
case "$MODE" in
stock|stock-debug) $C -d MMU_LAZY_TLB_HANDOFF ;;
handoff|debug|mutant) $C -e MMU_LAZY_TLB_HANDOFF ;;
*) echo "config.sh: unknown mode $MODE" >&2; exit 2 ;;
esac
case "$MODE" in
debug|stock-debug|mutant)
	$C -e KASAN -e KASAN_GENERIC -e KASAN_INLINE -e STACKTRACE \
	   -e PROVE_LOCKING -e DEBUG_VM -e DEBUG_ATOMIC_SLEEP \
	   -e DEBUG_LIST -e SCHED_DEBUG ;;
esac
make -s -C "$SRC" O="$OUT" olddefconfig >/dev/null
# Fail early if an option did not stick (a dependency missing).
for o in SMP KASAN_OR_NOT MMU_LAZY_TLB_STATS TEST_LAZY_TLB BUG PRINTK DEBUG_FS TRACING; do
	[ "$o" = KASAN_OR_NOT ] && continue
	grep -q "^CONFIG_$o=y" "$OUT/.config" || { echo "config.sh: CONFIG_$o not set" >&2; exit 1; }
done
case "$MODE" in
stock|stock-debug) grep -q '^CONFIG_MMU_LAZY_TLB_REFCOUNT=y' "$OUT/.config" ;;
*) grep -q '^CONFIG_MMU_LAZY_TLB_HANDOFF=y' "$OUT/.config" ;;
esac || { echo "config.sh: lazy TLB mode did not stick" >&2; exit 1; }
case "$MODE" in
debug|stock-debug|mutant) for o in KASAN PROVE_LOCKING DEBUG_VM; do
	grep -q "^CONFIG_$o=y" "$OUT/.config" || { echo "config.sh: CONFIG_$o not set" >&2; exit 1; }; done ;;
esac
echo "config.sh: $OUT/.config ($MODE)"
