#!/usr/bin/env python3
"""Runs one sluice command on a file fed to its stdin and prints what it cost.

    measure.py NAME EVENTS INPUT -- COMMAND...

Prints one line: events/s (wall), CPU seconds (user + system, from the kernel's
accounting of the whole process), CPU seconds per million events, peak RSS, and the
CPU each thread used (by thread name, sampled from /proc/<pid>/task/*/stat
every 50 ms, so a thread's last 50 ms may be missing). On a machine shared with other
work, wall figures move with the load; CPU per event and the per-thread split do not
(much), so compare those. Fails if the command exits non-zero.
"""

import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def thread_ticks(pid, seen):
    """Adds each live thread's (name, user + system ticks) to `seen`, keyed by tid."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may hold spaces and parentheses: it ends at the last ')'.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seen[tid] = (name, int(fields[11]) + int(fields[12]))


def main():
    sep = sys.argv.index("--")
    name, events, data = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    command = sys.argv[sep + 1 :]
    load = open("/proc/loadavg").read().split()[:3]
    seen = {}
    with open(data, "rb") as stdin:
        start = time.monotonic()
        child = subprocess.Popen(
            command, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        os.set_blocking(child.stderr.fileno(), False)
        errors = b""
        while True:
            thread_ticks(child.pid, seen)
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            try:
                errors += child.stderr.read() or b""
            except (BlockingIOError, TypeError):
                pass
            time.sleep(0.05)
        wall = time.monotonic() - start
    errors += child.stderr.read() or b""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(errors.decode(errors="replace")[-2000:])
        sys.exit(f"{name}: exit status {code}")
    cpu = usage.ru_utime + usage.ru_stime
    by_name = {}
    for thread, ticks in seen.values():
        by_name.setdefault(thread, []).append(ticks / TICK)
    # Threads that share a name (a runtime's) are shown one by one: their split is the
    # point (one busy, one idle).
    split = ", ".join(
        f"{t} " + "+".join(f"{s:.2f}" for s in sorted(each, reverse=True))
        for t, each in sorted(by_name.items(), key=lambda kv: -sum(kv[1]))
        if sum(each) >= 0.01
    )
    print(
        f"{name:<22} {events / wall:>11,.0f} ev/s  wall {wall:6.2f}s  "
        f"cpu {cpu:6.2f}s ({usage.ru_utime:.2f} user + {usage.ru_stime:.2f} sys)  "
        f"{cpu / events * 1e6:6.2f} cpu-s/1M ev  peak RSS {usage.ru_maxrss / 1024:6.1f} MiB  "
        f"load {' '.join(load)}"
    )
    print(f"{'':<22} threads (cpu-s): {split}")


if __name__ == "__main__":
    main()
