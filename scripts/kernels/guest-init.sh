#!/bin/busybox sh
# /init of the kernel matrix's guest (scripts/kernels/run.sh packs it into the initramfs with a
# static busybox and the static musl binaries under /uringdb). Runs as PID 1 in a kernel booted
# by qemu; never run on the host.
#
# Console (ttyS0): everything, for the log. Results (ttyS1, a second serial port that the host
# writes to a file): one line per result, nothing else, so kernel messages cannot interleave:
#
#   @@kernel <release>
#   @@probe <json>                  crates/uring/examples/probe.rs
#   @@test <name> <rc> <passed> <failed> <seconds>
#   @@bench <json>                  crates/wal/examples/durable_bench.rs, per backend
#   @@phase io_uring_disabled=2     what follows runs with io_uring refused by the sysctl
#   @@phase io_uring_disabled=unsupported   (the sysctl exists from Linux 6.6 on)
#   @@phase seccomp                 what follows runs under examples/deny_io_uring
#   @@done
#
# Parameters come from the kernel command line: uringdb.tests=<file> (the list of test
# binaries to run, one name a line, in /uringdb), uringdb.test_timeout=<seconds per binary>,
# uringdb.bench_ms=<milliseconds per bench loop>, uringdb.threads=<libtest threads>.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys

res=/dev/ttyS1
say() { echo "@@$*" >"$res"; echo "@@$*"; }
finish() {
  sync
  umount /mnt 2>/dev/null
  say done
  poweroff -f
}

tests=tests-ci.txt
test_timeout=300
bench_ms=1000
threads=2
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    uringdb.tests=*) tests=${arg#*=} ;;
    uringdb.test_timeout=*) test_timeout=${arg#*=} ;;
    uringdb.bench_ms=*) bench_ms=${arg#*=} ;;
    uringdb.threads=*) threads=${arg#*=} ;;
  esac
done

say "kernel $(uname -r)"
# The tests run on ext4 on the emulated NVMe disk, not on the initramfs (tmpfs-like rootfs):
# fdatasync, fallocate and O_DIRECT behave as on a real file system there.
if ! mount -t ext4 /dev/nvme0n1 /mnt; then
  say "error could not mount /dev/nvme0n1 as ext4"
  finish
fi
mkdir -p /mnt/tmp
export TMPDIR=/mnt/tmp
export RUST_BACKTRACE=1
cd /uringdb || finish

say "probe $(./examples/probe)"

for name in $(cat "$tests"); do
  start=$(date +%s)
  out=/mnt/test-$name.log
  timeout -s KILL "$test_timeout" ./deps/"$name" --test-threads="$threads" >"$out" 2>&1
  rc=$?
  cat "$out"
  # libtest: "test result: ok. 13 passed; 0 failed; 0 ignored; ..."
  passed=$(sed -n 's/^test result: .* \([0-9][0-9]*\) passed;.*/\1/p' "$out" | tail -1)
  failed=$(sed -n 's/^test result: .* \([0-9][0-9]*\) failed;.*/\1/p' "$out" | tail -1)
  say "test $name $rc ${passed:-0} ${failed:-0} $(($(date +%s) - start))"
  rm -rf "$TMPDIR"/* "$out"
done

for backend in io_uring portable; do
  say "bench $(./examples/durable_bench --dir "$TMPDIR" --backend "$backend" --duration-ms "$bench_ms")"
done

# The automatic fallback on a real kernel that refuses io_uring.
if [ -w /proc/sys/kernel/io_uring_disabled ]; then
  echo 2 >/proc/sys/kernel/io_uring_disabled
  say "phase io_uring_disabled=$(cat /proc/sys/kernel/io_uring_disabled)"
  say "probe $(./examples/probe)"
  say "bench $(./examples/durable_bench --dir "$TMPDIR" --backend auto --duration-ms "$bench_ms")"
  say "bench $(./examples/durable_bench --dir "$TMPDIR" --backend io_uring --duration-ms "$bench_ms")"
  echo 0 >/proc/sys/kernel/io_uring_disabled
else
  say "phase io_uring_disabled=unsupported"
fi
say "phase seccomp"
say "probe $(./examples/deny_io_uring ./examples/probe)"
finish
