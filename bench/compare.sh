#!/usr/bin/env bash
#  compare.sh - zproc against Redis and Python's multiprocessing.Manager
#
#  The same workloads on one machine, one side-by-side table:
#    get and set round trips, one client, one call at a time (us)
#    incr on one key by 8 clients at once, unpipelined (ops/s), final count,
#    against two Redis references (below)
#    watch wake-up: a change in one process seen by another (us)
#    replica read of an unchanged key (us), against a GET
#    batches of 16 incr by 8 clients (incr/s), against unpipelined INCR
#    a pool map of 100,000 tiny tasks and of 1,000 tasks of 1 ms of CPU,
#    against Python's multiprocessing.Pool.map with as many workers
#  zproc's figures come from bench/zproc-bench --json --no-1m; Redis runs on a
#  unix socket in a temporary directory, driven by redis-benchmark and by
#  bench/redis-ref.c (built here with gcc and libhiredis: GET and SET round
#  trips timed one by one, since redis-benchmark's median comes in 8 us
#  steps; INCR from 8 processes; the wake-up); Python's come
#  from a script run here. What is missing is installed with apt-get.
#
#  zproc's incr_ops_8 is 8 forked worker processes, each doing one blocking
#  incr round trip after another. Redis' figure for it is shown twice:
#    redis-benchmark -c 8 -P 1: one client process driving 8 connections
#      from one event loop, the usual published Redis figure; its client
#      side wakes once for many replies, so it is not like for like;
#    redis-ref incr: 8 forked processes, each with its own blocking hiredis
#      connection, unpipelined INCR after a common start, timed as zproc's
#      (first start to last end): what a multi-process program that shares
#      a counter in Redis runs, the like-for-like reference.
#  Both rows carry the same zproc figure; both Redis counts are checked.
#
#  Usage: bench/compare.sh [--pool] [--help]
#  The table goes to stdout, progress to stderr.

set -eu

usage () {
    cat <<'EOF'
usage: bench/compare.sh [--pool] [--help]
Runs the same workloads on zproc, Redis and Python's multiprocessing.Manager
and prints one table with the ratios:
  get / set round trip, one client, one call at a time     (us)
  incr on one key by 8 clients at once, final count checked (ops/s); Redis
    both as redis-benchmark -c 8 (8 connections of one process) and as 8
    processes with a blocking hiredis connection each (like zproc's workers)
  watch wake-up: set in one process, seen in another        (us)
  replica read of an unchanged key, against a GET           (us)
  batches of 16 incr by 8 clients, against INCR             (incr/s)
and a second table: zp_pool_map against multiprocessing.Pool.map, as many
workers as CPUs, 100,000 tiny tasks (square a number) and 1,000 tasks of
1 ms of CPU each, from pool creation to the last result and for a map alone
on a started pool (ms); the 1 ms tasks also against the ideal, their CPU time
over min(workers, CPUs).
  --pool    the pool table only (no Redis, no Manager): seconds, not minutes
zproc: bench/zproc-bench --json --no-1m (built with make when needed).
Redis: redis-server on a unix socket in a temporary directory (stopped at the
end), redis-benchmark, and bench/redis-ref.c on libhiredis.
Python: a Manager().dict() used from child processes; a Pool() for the pool.
Missing tools (redis-server, redis-tools, libhiredis-dev, python3, gcc) are
installed with apt-get install -y (as root, or through sudo).
The table goes to stdout, progress to stderr; it takes a minute or two.
EOF
}

pool_only=0
case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    --pool) pool_only=1 ;;
    "") ;;
    *) usage >&2; exit 2 ;;
esac

#  Counts, kept small enough for the whole run to stay near two minutes
REDIS_RT_COUNT=20000        #  redis-benchmark GET and SET, one client
REDIS_INCR_COUNT=100000     #  redis-benchmark INCR, 8 clients
INCR_PROCS=8                #  redis-ref incr: processes, as zproc-bench's
INCR_EACH=5000              #  INCR_WORKERS and INCR_EACH
WATCH_ROUNDS=5000           #  redis-ref watch ping-pongs, after
WATCH_WARMUP=500            #  these

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")

say () {
    printf 'compare: %s\n' "$*" >&2
}

die () {
    say "$*"
    exit 1
}


#  ---------------------------------------------------------------------------
#  What is missing, installed with apt-get

has_hiredis () {
    printf '#include <hiredis/hiredis.h>\n' | gcc -E -x c - >/dev/null 2>&1
}

missing=""
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
if [ "$pool_only" = 0 ]; then
    command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
    if ! command -v redis-benchmark >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
        missing="$missing redis-tools"
    fi
    command -v gcc >/dev/null 2>&1 || missing="$missing gcc libc6-dev"
    if ! command -v gcc >/dev/null 2>&1 || ! has_hiredis; then
        missing="$missing libhiredis-dev"
    fi
fi
if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        sudo=""
    elif command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        die "missing:$missing; install them (apt-get install$missing) or run as root"
    fi
    say "installing$missing"
    # shellcheck disable=SC2086  # one word per package
    $sudo apt-get update -qq >&2
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >&2
fi


#  ---------------------------------------------------------------------------
#  A temporary directory, and Redis in it: both gone at the end, whatever
#  happens

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zproc-compare.XXXXXX")
redis_pid=""

cleanup () {
    status=$?
    trap - EXIT INT TERM
    if [ -n "$redis_pid" ]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


#  ---------------------------------------------------------------------------
#  zproc

bench="$top/bench/zproc-bench"
if [ -f "$top/Makefile" ]; then
    say "building bench/zproc-bench"
    if ! make -C "$top" bench/zproc-bench >&2; then
        [ -x "$bench" ] || die "cannot build bench/zproc-bench"
        say "make failed: using the bench/zproc-bench already built"
    fi
elif [ ! -x "$bench" ]; then
    die "no bench/zproc-bench: run ./autogen.sh && ./configure && make in $top first"
fi
if [ "$pool_only" = 1 ]; then
    bench_args="--json --pool"
else
    bench_args="--json --no-1m"
fi
say "running bench/zproc-bench $bench_args"
# shellcheck disable=SC2086  # two options
if ! "$bench" $bench_args >"$tmp/zproc.json"; then
    failed=$(python3 -c '
import json, sys
figures = json.load(open(sys.argv[1]))
print("; ".join("%s: %s" % (name[:-6], why) for name, why in figures.items()
                if name.endswith("_error")) or "a count was wrong")
' "$tmp/zproc.json" 2>/dev/null) || failed="no figures"
    say "zproc-bench reported a failure ($failed): failed figures show as n/a"
fi


#  ---------------------------------------------------------------------------
#  Python's multiprocessing.Pool: the pool workloads

cat >"$tmp/pool.py" <<'EOF'
#  zproc-bench's pool workloads on a multiprocessing.Pool of one worker per
#  CPU (the default start method): each timed from Pool() to the last result
#  of map, then a second map on the started pool; medians of RUNS runs, a
#  new pool each. Prints one JSON object.
import json
import multiprocessing as mp
import os
import resource
import time

TINY, SPIN, SPIN_NS, RUNS = 100000, 1000, 1000000, 5


def square(number):
    return number * number


#  1 ms of this thread's CPU time, as zproc-bench's task
def spin(number):
    end = time.thread_time_ns() + SPIN_NS
    while time.thread_time_ns() < end:
        pass
    return number


#  CPU time of this process (every thread) and of its reaped children, ms
def cpu():
    return sum(usage.ru_utime + usage.ru_stime
               for usage in (resource.getrusage(resource.RUSAGE_SELF),
                             resource.getrusage(resource.RUSAGE_CHILDREN))) * 1000


def run(task, count, workers):
    data = list(range(count))
    expected = [task(number) for number in data[:100]] if task is square else data[:100]
    used = cpu()
    start = time.perf_counter()
    with mp.Pool(workers) as pool:
        first = pool.map(task, data)
        total = time.perf_counter() - start
        start = time.perf_counter()
        second = pool.map(task, data)
        alone = time.perf_counter() - start
    used = cpu() - used
    if first[:100] != expected or second[:100] != expected or len(second) != count:
        raise ValueError("wrong results")
    return total * 1000, alone * 1000, used


#  The first run's total (the first pool of the process: what a program
#  that makes one pool sees), then the medians of the totals and the maps
def medians(task, count, workers):
    runs = [run(task, count, workers) for _ in range(RUNS)]
    return (runs[0][0],) + tuple(sorted(times)[RUNS // 2] for times in zip(*runs))


def main():
    workers = os.cpu_count() or 1
    out = {"workers": workers, "start_method": mp.get_start_method()}
    out["tiny_first_total_ms"], out["tiny_total_ms"], out["tiny_map_ms"], \
        out["tiny_cpu_ms"] = medians(square, TINY, workers)
    _, out["spin_total_ms"], out["spin_map_ms"], _ = medians(spin, SPIN, workers)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
EOF
say "python: multiprocessing.Pool.map, 100,000 tiny tasks and 1,000 x 1 ms"
python3 "$tmp/pool.py" >"$tmp/pool.json" || say "the Python pool run failed: its figures show as n/a"

if [ "$pool_only" = 0 ]; then

#  ---------------------------------------------------------------------------
#  Redis, on a unix socket

say "building bench/redis-ref.c"
gcc -O2 -Wall -o "$tmp/redis-ref" "$here/redis-ref.c" -lhiredis

sock="$tmp/redis.sock"
say "starting redis-server on $sock"
redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 \
             --save '' --appendonly no --daemonize no \
             --dir "$tmp" --logfile "$tmp/redis.log" &
redis_pid=$!
tries=0
until redis-cli -s "$sock" ping 2>/dev/null | grep -q PONG; do
    if ! kill -0 "$redis_pid" 2>/dev/null; then
        cat "$tmp/redis.log" >&2 2>/dev/null || true
        redis_pid=""
        die "redis-server did not start"
    fi
    tries=$((tries + 1))
    [ "$tries" -lt 100 ] || die "redis-server did not answer PING within 10 s"
    sleep 0.1
done
redis_version=$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')

#  One figure of test TEST (a custom command: the last test) in FILE,
#  redis-benchmark's CSV: us, its median latency in us when it reports one,
#  else 1e6 / rps; or rps. Nothing when the file holds no such test.
csv_figure () {
    python3 - "$1" "$2" "$3" <<'EOF'
import csv, sys
path, test, what = sys.argv[1:4]
rows = [row for row in csv.reader(open(path)) if row]
head = rows[0] if rows and rows[0][0] == "test" else ["test", "rps"]
data = [row for row in rows if row[0] != "test"]
chosen = [row for row in data if row[0].lower() == test.lower()] or data[-1:]
if not chosen:
    sys.exit(0)
row = dict(zip(head, chosen[0]))
rps = float(row["rps"])
if what == "rps":
    print("%.0f" % rps)
elif "p50_latency_ms" in row:
    print("%.2f" % (float(row["p50_latency_ms"]) * 1000))
else:
    print("%.2f" % (1e6 / rps))
EOF
}

say "redis: GET, SET round trips (redis-ref rt, one hiredis connection, $REDIS_RT_COUNT each)"
redis_rt=$("$tmp/redis-ref" rt "$sock" "$REDIS_RT_COUNT") || redis_rt=""
#  "GET SET", us; nothing when the run failed
redis_get=${redis_rt% *}
redis_set=${redis_rt#* }
say "redis: GET, SET p50 of redis-benchmark -c 1 -P 1 -n $REDIS_RT_COUNT, for the notes"
redis-benchmark -s "$sock" -t set,get -c 1 -P 1 -n "$REDIS_RT_COUNT" -d 16 --csv \
    >"$tmp/getset.csv"
benchmark_get=$(csv_figure "$tmp/getset.csv" GET us)
benchmark_set=$(csv_figure "$tmp/getset.csv" SET us)

say "redis: INCR on one key, 8 clients (redis-benchmark -c 8 -n $REDIS_INCR_COUNT)"
redis-cli -s "$sock" del counter >/dev/null
redis-benchmark -s "$sock" -c 8 -P 1 -n "$REDIS_INCR_COUNT" --csv incr counter \
    >"$tmp/incr.csv"
redis_incr=$(csv_figure "$tmp/incr.csv" "incr counter" rps)
redis_count=$(redis-cli -s "$sock" get counter)
if [ "$redis_count" = "$REDIS_INCR_COUNT" ]; then
    redis_exact=1
else
    redis_exact=0
    say "redis counted $redis_count, expected $REDIS_INCR_COUNT"
fi

say "redis: INCR on one key, $INCR_PROCS processes x $INCR_EACH (redis-ref incr, hiredis)"
redis_procs=$("$tmp/redis-ref" incr "$sock" "$INCR_PROCS" "$INCR_EACH") || redis_procs=""
#  "INCR/s exact", exact 1 or 0; nothing when the run failed
redis_incr_procs=${redis_procs% *}
redis_procs_exact=${redis_procs#* }

say "redis: watch wake-up (keyspace notifications, $WATCH_ROUNDS ping-pongs)"
redis_wake=$("$tmp/redis-ref" watch "$sock" "$WATCH_ROUNDS" "$WATCH_WARMUP") || redis_wake=""

kill "$redis_pid"
wait "$redis_pid" 2>/dev/null || true
redis_pid=""


#  ---------------------------------------------------------------------------
#  Python's multiprocessing.Manager

cat >"$tmp/manager.py" <<'EOF'
#  The workloads on a multiprocessing.Manager, every call from a child
#  process; prints one JSON object. Latencies are medians after a warm-up.
import json
import multiprocessing as mp
import sys
import time

RT_WARMUP, RT_ROUNDS = 500, 5000
INCR_PROCS, INCR_EACH = 8, 1000
PING_WARMUP, PING_ROUNDS = 200, 2000
VALUE = "0123456789abcdef"
WAIT_S = 30


def now():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def median(samples):
    samples = sorted(samples)
    half = len(samples) // 2
    if len(samples) % 2:
        return samples[half]
    return (samples[half - 1] + samples[half]) / 2


def getset(store, results):
    def get():
        return store["key"]

    def put():
        store["key"] = VALUE

    for name, call in (("get", get), ("set", put)):
        samples = []
        for turn in range(RT_WARMUP + RT_ROUNDS):
            start = now()
            call()
            end = now()
            if turn >= RT_WARMUP:
                samples.append(end - start)
        results[name] = median(samples) / 1000


#  What users do: a read-modify-write under a Manager lock
def incr(store, lock, go, results, index):
    go.wait()
    start = now()
    for _ in range(INCR_EACH):
        with lock:
            store["counter"] = store["counter"] + 1
    results["incr-%d" % index] = (start, now())


#  No change notification in a Manager: a Condition ping-pong
def pingpong(store, cond, leader, results):
    samples = []
    with cond:
        for turn in range(PING_WARMUP + PING_ROUNDS):
            start = now()
            if leader:
                store["ping"] = turn
                cond.notify()
                if not cond.wait_for(lambda: store.get("pong") == turn, WAIT_S):
                    raise TimeoutError("no pong %d" % turn)
            else:
                if not cond.wait_for(lambda: store.get("ping") == turn, WAIT_S):
                    raise TimeoutError("no ping %d" % turn)
                store["pong"] = turn
                cond.notify()
            if turn >= PING_WARMUP:
                samples.append(now() - start)
    if leader:
        results["wake"] = median(samples) / 2 / 1000


def run(procs):
    for proc in procs:
        proc.start()
    return procs


def joined(procs):
    for proc in procs:
        proc.join(120)
    return all(proc.exitcode == 0 for proc in procs)


def main():
    out = {}
    with mp.Manager() as manager:
        store = manager.dict({"key": VALUE, "counter": 0})
        results = manager.dict()

        print("compare: python: get, set round trips", file=sys.stderr)
        if joined(run([mp.Process(target=getset, args=(store, results))])):
            out["get"], out["set"] = results["get"], results["set"]

        print("compare: python: incr on one key under a Manager lock, %d processes"
              % INCR_PROCS, file=sys.stderr)
        lock, go = manager.Lock(), mp.Event()
        procs = run([mp.Process(target=incr, args=(store, lock, go, results, index))
                     for index in range(INCR_PROCS)])
        go.set()
        if joined(procs):
            times = [results["incr-%d" % index] for index in range(INCR_PROCS)]
            first = min(start for start, _ in times)
            last = max(end for _, end in times)
            out["incr"] = INCR_PROCS * INCR_EACH / ((last - first) / 1e9)
            out["incr_each"] = INCR_EACH
            out["incr_exact"] = int(store["counter"] == INCR_PROCS * INCR_EACH)
            if not out["incr_exact"]:
                print("compare: python counted %d, expected %d"
                      % (store["counter"], INCR_PROCS * INCR_EACH), file=sys.stderr)

        print("compare: python: wake-up, a Manager Condition ping-pong", file=sys.stderr)
        cond = manager.Condition()
        if joined(run([mp.Process(target=pingpong, args=(store, cond, leader, results))
                       for leader in (False, True)])):
            out["wake"] = results["wake"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
EOF
say "python: multiprocessing.Manager (Python $(python3 -c 'import platform; print(platform.python_version())'))"
python3 "$tmp/manager.py" >"$tmp/python.json" || say "the Python run failed: its figures show as n/a"


#  ---------------------------------------------------------------------------
#  The table

python3 - "$tmp/zproc.json" "$tmp/python.json" \
    "$redis_get" "$redis_set" "$redis_incr" "$redis_exact" "$redis_wake" \
    "$redis_incr_procs" "$redis_procs_exact" \
    "$redis_version" "$REDIS_INCR_COUNT" "$INCR_PROCS" "$INCR_EACH" \
    "$benchmark_get" "$benchmark_set" <<'EOF'
import json, sys

def load(path):
    try:
        with open(path) as file:
            return json.loads(file.read() or "{}")
    except (OSError, ValueError):
        return {}

def number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None

zproc, python = load(sys.argv[1]), load(sys.argv[2])
redis = dict(zip(("get", "set", "incr", "incr_exact", "wake", "incr_procs", "procs_exact"),
                 map(number, sys.argv[3:10])))
redis_version, redis_count, incr_procs, incr_each = sys.argv[10:14]
benchmark_get, benchmark_set = (number(text) for text in sys.argv[14:16])
#  Exact when every Redis run that counted counted right
counted = [exact for exact in (redis["incr_exact"], redis["procs_exact"]) if exact is not None]
redis_exact = min(counted) if counted else None

rows = [
    ("get round trip, 1 client (us)", "get_rt", redis["get"], python.get("get")),
    ("set round trip, 1 client (us)", "set_rt", redis["set"], python.get("set")),
    ("incr, 8 clients (redis-benchmark -c 8), one key (ops/s)", "incr_ops_8", redis["incr"],
     python.get("incr")),
    ("incr, 8 client processes (hiredis), one key (ops/s)", "incr_ops_8", redis["incr_procs"],
     python.get("incr")),
    ("incr final count exact", "incr_count_ok", redis_exact, python.get("incr_exact")),
    ("watch wake-up (us)", "wake_rt", redis["wake"], python.get("wake")),
    ("replica get, unchanged key (us)", "replica_get_rt", redis["get"], python.get("get")),
    ("batches of 16 incr, 8 clients (incr/s)", "txn_incr_ops_8", redis["incr"],
     python.get("incr")),
]
unix_us = zproc.get("raw_unix_rt")

def cell(value, exact):
    if value is None:
        return "n/a"
    if exact:
        return "yes" if value else "NO"
    if value < 1:
        return "%.3f" % value
    return "%.0f" % value if value >= 1000 else "%.1f" % value

def ratio(value, other, exact):
    if exact or value is None or not other:
        return ""
    quotient = value / other
    return "%.2f" % quotient if quotient >= 0.01 else "%.5f" % quotient

head = ("workload", "zproc", "redis", "python-manager", "zproc/redis", "zproc/python",
        "zproc/socketpair", "redis/socketpair")
table = [head]
for name, figure, r, p in rows:
    exact = name.startswith("incr final")
    z = zproc.get(figure)
    #  In socketpair round trips: a latency over it, a throughput's time of
    #  one operation over it (zproc-bench prints its own as NAME_unix)
    r_unix = None
    if r and unix_us and not exact:
        r_unix = (r if name.endswith("(us)") else 1e6 / r) / unix_us
    table.append((name, cell(z, exact), cell(r, exact), cell(p, exact),
                  ratio(z, r, exact), ratio(z, p, exact),
                  "" if exact or zproc.get(figure + "_unix") is None
                  else "%.2f" % zproc[figure + "_unix"],
                  "" if r_unix is None else "%.2f" % r_unix))
widths = [max(len(row[column]) for row in table) for column in range(len(head))]
for index, row in enumerate(table):
    print(" | ".join(text.ljust(widths[0]) if column == 0 else text.rjust(widths[column])
                     for column, text in enumerate(row)))
    if index == 0:
        print("-+-".join("-" * width for width in widths))
print("""
Ratios are zproc's figure over the other's: for latencies (us) below 1 means
zproc is faster, for throughputs (ops/s) above 1 means zproc is faster.
The /socketpair columns give each figure in unix socketpair round trips
between two processes (raw_unix_rt of the same zproc-bench run, %s us): a
latency over it, a throughput's time of one operation over it.
zproc: bench/zproc-bench --json --no-1m: get_rt, set_rt (medians, one worker),
  incr_ops_8 and incr_count_ok (8 workers), wake_rt (set -> get_when_change
  ping-pong between two workers / 2), replica_get_rt (a worker's get of an
  unchanged key through zp_state_replicate: no round trip; against a GET),
  txn_incr_ops_8 (8 workers committing zp_txn batches of 16 incr on one key,
  counted per incr; against 8 clients' unpipelined INCR).
redis %s on a unix socket: GET and SET (16-byte value) are bench/redis-ref.c
  rt, one blocking hiredis connection, each round trip timed on its own, the
  medians, as zproc-bench times its own (redis-benchmark -c 1 -P 1 in the same
  run: p50 GET %s, SET %s us, from a histogram that counts in 8 us steps at
  such latencies); INCR on one key by 8 unpipelined clients, twice:
  redis-benchmark -c 8 -P 1, %s in all, is one process driving 8 connections
  from one event loop (its client side wakes once for many replies: not like
  for like); 8 client processes is bench/redis-ref.c incr, %s forked
  processes x %s, each on its own blocking hiredis connection, timed as
  zproc's workers (first start to last end): what a multi-process program
  sharing a counter in Redis runs. zproc's figure is the same on both rows.
  Wake-up: keyspace notifications (notify-keyspace-events K$), SET ->
  SUBSCRIBE ping-pong / 2 (bench/redis-ref.c watch); a notice carries no
  value, zproc's wake-up does.
python-manager: a Manager().dict() proxy used from child processes (medians);
  incr is a read-modify-write under a Manager().Lock() by 8 processes x %s.
  A Manager has no change notification: its wake-up is a Manager().Condition()
  notify/wait ping-pong / 2 (each turn also reads and writes the dict).""" % (
    "%.1f" % unix_us if unix_us else "n/a", redis_version,
    cell(benchmark_get, False), cell(benchmark_set, False), redis_count, incr_procs, incr_each,
    python.get("incr_each", "n")))
EOF
fi     #  pool_only


#  ---------------------------------------------------------------------------
#  The pool table

python3 - "$tmp/zproc.json" "$tmp/pool.json" <<'EOF'
import json, sys

def load(path):
    try:
        with open(path) as file:
            return json.loads(file.read() or "{}")
    except (OSError, ValueError):
        return {}

zproc, python = load(sys.argv[1]), load(sys.argv[2])
ideal = zproc.get("pool_1ms_ideal_ms")
rows = [
    #  DESIGN.md: a pool map of 100,000 tiny tasks >= 5 x Python's Pool.map
    ("100,000 tiny tasks, first pool: creation to last", "pool_tiny_first_total_ms",
     "tiny_first_total_ms", ">= 5"),
    ("100,000 tiny tasks, creation to last result", "pool_tiny_total_ms", "tiny_total_ms",
     ">= 5"),
    ("100,000 tiny tasks, map alone", "pool_tiny_map_ms", "tiny_map_ms", ">= 5"),
    ("100,000 tiny tasks, CPU time of a run", "pool_tiny_cpu_ms", "tiny_cpu_ms", ""),
    ("1,000 x 1 ms of CPU, creation to last result", "pool_1ms_total_ms", "spin_total_ms", ""),
    ("1,000 x 1 ms of CPU, map alone", "pool_1ms_map_ms", "spin_map_ms",
     "zproc/ideal <= 1.10"),
]

def cell(value):
    return "n/a" if value is None else "%.1f" % value

head = ("pool workload (ms)", "zproc", "python-pool", "python/zproc", "target",
        "ideal", "zproc/ideal", "python/ideal")
table = [head]
for name, zname, pname, target in rows:
    z, p = zproc.get(zname), python.get(pname)
    spin = zname.startswith("pool_1ms")
    table.append((name, cell(z), cell(p), "%.2f" % (p / z) if z and p else "", target,
                  cell(ideal) if spin else "",
                  "%.2f" % (z / ideal) if spin and z and ideal else "",
                  "%.2f" % (p / ideal) if spin and p and ideal else ""))
widths = [max(len(row[column]) for row in table) for column in range(len(head))]
print()
for index, row in enumerate(table):
    print(" | ".join(text.ljust(widths[0]) if column == 0 else text.rjust(widths[column])
                     for column, text in enumerate(row)))
    if index == 0:
        print("-+-".join("-" * width for width in widths))
print("""
Times in ms; python/zproc above 1 means zproc is faster (its rate over
Python's). Both pools have %s workers (one per CPU), zproc's made by
zp_pool_new (..., 0, ...), Python's by multiprocessing.Pool() (start method
%s); each workload is timed from the pool's creation to the last result of a
first map, then for a second map on the started pool (medians of 5 runs, a
new pool each; "first pool" is the first of those runs alone, what a program
that makes one pool sees: for Python it includes importing multiprocessing's
pool machinery). Tiny task: square a
number (zproc: an 8-byte integer in, one out); 1 ms task: spin until the
thread has used 1 ms of CPU. ideal: the tasks' CPU time over min(workers,
CPUs), reached only on an otherwise idle machine. CPU time of a run: pool
creation, the two maps and the pool's end, the parent's (every thread) and
its workers' (getrusage): on a loaded machine, where the times above depend on
the other processes, what one map costs.""" % (
    zproc.get("pool_workers", "n/a"), python.get("start_method", "n/a")))
EOF

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
printf 'machine: nproc=%s (%s), kernel %s %s; %s\n' "$(nproc)" "${cpu:-cpu unknown}" \
    "$(uname -sr)" "$(uname -m)" "$(date -u '+%Y-%m-%d %H:%M UTC')"
