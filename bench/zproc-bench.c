/*  =========================================================================
    zproc-bench - how fast zproc is, against what this machine can do

    Prints one line per figure, "name value unit", with " ratio=R" where
    DESIGN.md ("Performance") sets a target as a ratio. The reference is
    measured in the same run: a raw libzmq DEALER/ROUTER round trip over
    ipc:// between two processes, the physical limit of a store that answers
    over libzmq, and for the mailboxes' one-way stream a raw PUSH to PULL
    stream of as many messages. Every figure of time or throughput also
    prints " unix=U": itself in unix socketpair round trips between two
    processes (raw_unix_rt, measured first), the physical limit of a
    kernel-mediated request/reply: a latency over that round trip, a
    throughput as the time of one operation over it. The same round trip
    with both processes pinned to one CPU, then to two, shows what a
    wake-up of another CPU costs on this machine. Every latency is the median of thousands of
    operations after a warm-up, each timed on its own with CLOCK_MONOTONIC;
    throughputs are operations over the wall time of the whole run. The
    *_curve figures come from a second context made with ZPROC_CURVE=1,
    each against its plain figure of the same run.

    Workers report their figures through the state itself: integers (ns)
    under "bench/res/NAME/WHAT", or the errno that stopped them under
    "bench/err/NAME". CLOCK_MONOTONIC is system-wide, so the start and end
    times of different workers can be compared.

    Usage: zproc-bench [--json] [--no-1m] [--pool] [--spawn] [--help]
    Progress goes to stderr; stdout carries the figures only. The exit
    status is 1 when any figure failed or a count was wrong.
    =========================================================================
*/

//  sched_setaffinity, for the pinned socketpair round trips
#define _GNU_SOURCE
#include <zproc/zproc.h>
#include <zmq.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <pthread.h>
#include <malloc.h>
#include <math.h>
#include "bench-time.h"
#include <time.h>
#include <inttypes.h>

//  Round trips, each timed: thousands where they are cheap
#define RAW_WARMUP      1000
#define RAW_ROUNDS      20000
#define RT_WARMUP       1000
#define RT_ROUNDS       10000
#define PING_WARMUP     500
#define PING_ROUNDS     5000
#define CALL_WARMUP     500         //  mailbox round trips
#define CALL_ROUNDS     5000

//  Throughputs
#define INCR_1          20000       //  incr by one worker
#define INCR_WORKERS    8
#define INCR_EACH       5000        //  incr by each of INCR_WORKERS
#define INCR_WARMUP     200         //  untimed incr on another key, each
#define STREAM_KEYS     50000
#define MAIL_WARMUP     1000        //  one-way messages, mailbox and raw libzmq
#define MAIL_COUNT      100000

//  Parked watchers: PARKERS processes of PARK_THREADS threads, each thread
//  with its own handle (a handle is single-threaded, and a blocked call
//  holds its thread)
#define PARKERS         4
#define PARK_THREADS    250
#define PARKED          (PARKERS * PARK_THREADS)

//  Process figures
#define SPAWN_ROUNDS    3           //  contexts, each with SPAWN_WORKERS
#define SPAWN_WORKERS   100
#define FORK_BATCHES    3           //  per round, SPAWN_WORKERS forks each
#define CTX_ROUNDS      20

//  The pool: tiny tasks (square a number) and tasks of POOL_SPIN_NS of CPU
#define POOL_TINY       100000
#define POOL_SPIN       1000
#define POOL_SPIN_NS    1000000
#define POOL_RUNS       5           //  Each workload, a new pool each time: medians

//  The big store
#define LOAD_KEYS       1000000
#define LOAD_VALUE_SIZE 32
#define LOADERS         8

//  Generous: a step that takes this long has failed, it is not slow
#define WAIT_MS         60000
//  The 1M-key load, at the store's ~15,000 writes/s on 2 cores, takes a
//  minute: its own deadline is generous too
#define LOAD_MS         600000
//  Parked watchers wait longer than any step; the parent releases them
#define PARK_MS         600000

//  Keys
#define GETSET_KEY      "bench/getset"
#define SMALL_VALUE     "0123456789abcdef"

//  What the mailbox driver sends its peer, one frame each; the peer counts
//  every other message (SMALL_VALUE)
#define MAIL_CALL       "call"      //  A request, answered with zp_worker_reply
#define MAIL_ECHO       "echo"      //  Sent back with zp_worker_send
#define MAIL_SYNC       "sync"      //  A request: the stream starts when it
                                    //  is answered, and the count from 0
#define MAIL_END        "end"       //  After the last counted message: a
                                    //  request, answered as the peer leaves


//  --------------------------------------------------------------------------
//  Figures: printed as they come (lines), or kept for one JSON object

typedef struct {
    char name [64];             //  Figure name
    double value;               //  Its value
    const char *unit;           //  Its unit, NULL for a plain number
    int precision;              //  Decimals printed
    double ratio;               //  Ratio to its reference, NAN when none
    double sockets;             //  In socketpair round trips, NAN when none
    char *error;                //  Why it failed, NULL when it did not
} figure_t;

#define MAX_FIGURES     64
static figure_t s_figures [MAX_FIGURES];
static size_t s_nfigures = 0;
static bool s_json = false;     //  --json
static bool s_failed = false;   //  Exit status 1
static double s_unix_us = NAN;  //  raw_unix_rt of this run, us

static figure_t *
s_figure_new (const char *name)
{
    assert (s_nfigures < MAX_FIGURES);
    figure_t *figure = &s_figures [s_nfigures++];
    snprintf (figure->name, sizeof figure->name, "%s", name);
    figure->ratio = NAN;
    figure->sockets = NAN;
    return figure;
}

static void
s_figure_print (figure_t *figure)
{
    if (s_json)
        return;                 //  Printed all at once at the end
    if (figure->error)
        printf ("%s FAILED (%s)\n", figure->name, figure->error);
    else {
        printf ("%s %.*f", figure->name, figure->precision, figure->value);
        if (figure->unit)
            printf (" %s", figure->unit);
        if (!isnan (figure->ratio))
            printf (" ratio=%.2f", figure->ratio);
        if (!isnan (figure->sockets))
            printf (" unix=%.2f", figure->sockets);
        printf ("\n");
    }
    //  Workers are forked after this: nothing may be left in the buffer
    fflush (stdout);
}

//  Report a figure; reference is the value it is compared with, NAN when
//  there is none (or when the reference itself failed)
static void
s_report (const char *name, double value, const char *unit, int precision, double reference)
{
    figure_t *figure = s_figure_new (name);
    figure->value = value;
    figure->unit = unit;
    figure->precision = precision;
    if (!isnan (reference) && reference > 0)
        figure->ratio = value / reference;
    //  The figure in socketpair round trips: a time in us, or the time of
    //  one operation of a throughput
    double us = NAN;
    if (unit && streq (unit, "us"))
        us = value;
    else
    if (unit && streq (unit, "ms"))
        us = value * 1e3;
    else
    if (unit && (streq (unit, "ops/s") || streq (unit, "msgs/s")) && value > 0)
        us = 1e6 / value;
    if (!isnan (us) && s_unix_us > 0 && strncmp (name, "raw_unix_rt", 11) != 0)
        figure->sockets = us / s_unix_us;
    s_figure_print (figure);
}

static void
s_report_failure (const char *name, const char *why)
{
    figure_t *figure = s_figure_new (name);
    figure->error = strdup (why);
    s_failed = true;
    s_figure_print (figure);
}

static void
s_report_errno (const char *name, int err)
{
    //  s_take's ENODATA: the worker died or lost the store before it could
    //  say why
    s_report_failure (name, err == ENODATA? "worker left no result": strerror (err));
}

static void
s_json_string (const char *text)
{
    putchar ('"');
    for (; *text; text++) {
        if (*text == '"' || *text == '\\')
            putchar ('\\');
        putchar (*text);
    }
    putchar ('"');
}

static void
s_json_print (void)
{
    printf ("{");
    for (size_t index = 0; index < s_nfigures; index++) {
        figure_t *figure = &s_figures [index];
        printf ("%s\"%s\": ", index? ", ": "", figure->name);
        if (figure->error) {
            printf ("null, \"%s_error\": ", figure->name);
            s_json_string (figure->error);
        }
        else {
            printf ("%.*f", figure->precision, figure->value);
            if (!isnan (figure->ratio))
                printf (", \"%s_ratio\": %.2f", figure->name, figure->ratio);
            if (!isnan (figure->sockets))
                printf (", \"%s_unix\": %.2f", figure->name, figure->sockets);
        }
    }
    printf ("}\n");
    fflush (stdout);
}

static void
s_figures_destroy (void)
{
    for (size_t index = 0; index < s_nfigures; index++)
        free (s_figures [index].error);
}


//  --------------------------------------------------------------------------
//  Time (the clock and the order of samples: bench-time.h)

static double
s_us (uint64_t ns)
{
    return ns / 1000.0;
}

static double
s_ms (uint64_t ns)
{
    return ns / 1e6;
}


//  --------------------------------------------------------------------------
//  Progress, on stderr

//  When the benchmark started, for the progress lines
static uint64_t s_started = 0;

static void
s_progress (const char *what)
{
    if (!s_started)
        s_started = s_now_ns ();
    fprintf (stderr, "running %s... (at %.1f s)\n", what, (s_now_ns () - s_started) / 1e9);
}


//  --------------------------------------------------------------------------
//  Results from workers, through the state

static void
s_put (zp_state_t *state, const char *name, const char *what, int64_t value)
{
    char key [128];
    snprintf (key, sizeof key, "bench/res/%s/%s", name, what);
    zp_state_set_int (state, key, value);
}

//  A worker that fails says why, so the parent reports the real errno
//  rather than "no result"
static void
s_put_error (zp_state_t *state, const char *name, int err)
{
    char key [128];
    snprintf (key, sizeof key, "bench/err/%s", name);
    zp_state_set_int (state, key, err? err: EIO);
}

//  The errno a worker left, 0 when it left none
static int
s_worker_error (zp_state_t *state, const char *name)
{
    char key [128];
    snprintf (key, sizeof key, "bench/err/%s", name);
    int64_t err = 0;
    return zp_state_get_int (state, key, &err) == 0 && err > 0? (int) err: 0;
}

//  The result a worker left; -1 with its errno, or ENODATA when it left
//  nothing (it crashed, or it could not reach the store)
static int
s_take (zp_state_t *state, const char *name, const char *what, int64_t *value)
{
    char key [128];
    snprintf (key, sizeof key, "bench/res/%s/%s", name, what);
    if (zp_state_get_int (state, key, value) == 0)
        return 0;
    int err = s_worker_error (state, name);
    errno = err? err: ENODATA;
    return -1;
}

//  Wait for a worker to end, until deadline (ns, CLOCK_MONOTONIC). One that
//  overstays is killed: the benchmark leaves no process behind. Returns
//  its exit code, or -1.
static int
s_join_by (zp_proc_t *proc, uint64_t deadline)
{
    if (!proc)
        return -1;
    uint64_t now = s_now_ns ();
    int code = zp_proc_wait (proc, now < deadline? (int) ((deadline - now) / 1000000): 0);
    if (code < 0) {
        zp_proc_kill (proc, SIGKILL);
        code = zp_proc_wait (proc, 10000);
    }
    return code;
}

static int
s_join (zp_proc_t *proc)
{
    return s_join_by (proc, s_now_ns () + WAIT_MS * 1000000ULL);
}

//  Workers that time their run from the same moment wait for this key
static int
s_await_go (zp_state_t *state, const char *go)
{
    return go? zp_state_get_when_equal_str (state, go, "1", WAIT_MS): 0;
}


//  --------------------------------------------------------------------------
//  A private directory for the raw reference's socket, as zproc makes one;
//  fills path (PATH_MAX), returns 0 or -1 with errno

static int
s_private_dir (char *path)
{
    const char *tmpdir = getenv ("TMPDIR");
    snprintf (path, PATH_MAX, "%s/zproc-bench-XXXXXX", tmpdir && *tmpdir? tmpdir: "/tmp");
    return mkdtemp (path)? 0: -1;
}

static int
s_read_full (int fd, void *buffer, size_t size)
{
    size_t done = 0;
    while (done < size) {
        ssize_t rc = read (fd, (char *) buffer + done, size - done);
        if (rc == 0)
            return errno = EPIPE, -1;
        if (rc < 0 && errno != EINTR)
            return -1;
        if (rc > 0)
            done += (size_t) rc;
    }
    return 0;
}

static int
s_write_full (int fd, const void *buffer, size_t size)
{
    size_t done = 0;
    while (done < size) {
        ssize_t rc = write (fd, (const char *) buffer + done, size - done);
        if (rc < 0 && errno != EINTR)
            return -1;
        if (rc > 0)
            done += (size_t) rc;
    }
    return 0;
}

//  What a raw child writes back: its value, or the errno that stopped it
typedef struct {
    int error;                  //  0, or errno
    uint64_t value;             //  ns: a median, or when a run started
} raw_result_t;

//  One side of a raw libzmq run, working on its socket; fd is a socket
//  pair to the other side. Returns 0 with *value (ns), or -1 with errno.
typedef int (raw_side_fn) (void *sock, int fd, uint64_t *value);

static void
s_raw_child_start (void)
{
    //  Die with the benchmark, as zproc's workers do
    prctl (PR_SET_PDEATHSIG, SIGKILL);
}

//  A plain libzmq socket with the benchmark's timeouts; NULL with errno
static void *
s_raw_socket (void *context, int type)
{
    void *sock = zmq_socket (context, type);
    int timeout = WAIT_MS, linger = 0;
    if (sock
    && (zmq_setsockopt (sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout) < 0
    ||  zmq_setsockopt (sock, ZMQ_SNDTIMEO, &timeout, sizeof timeout) < 0
    ||  zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger) < 0)) {
        int saved = errno;
        zmq_close (sock);
        return errno = saved, NULL;
    }
    return sock;
}

//  The forked side: its own context, a socket connected to endpoint
static void
s_raw_zmq_child (const char *endpoint, int type, raw_side_fn *side, int fd)
{
    raw_result_t result = { 0, 0 };
    void *context = zmq_ctx_new ();
    void *sock = context? s_raw_socket (context, type): NULL;
    if (!sock || zmq_connect (sock, endpoint) < 0)
        result.error = errno? errno: ENOMEM;
    else
    if (side (sock, fd, &result.value) < 0)
        result.error = errno? errno: EIO;
    s_write_full (fd, &result, sizeof result);
    close (fd);
    if (sock)
        zmq_close (sock);
    if (context)
        zmq_ctx_term (context);
}

//  Run child in a forked process, on a socket of child_type connected over
//  ipc:// to a socket of parent_type that parent works on here. Plain
//  libzmq on both sides: each makes its own context (CZMQ's is not
//  touched). Returns 0 with both values, or the errno that stopped a side.
static int
s_raw_zmq_run (int parent_type, raw_side_fn *parent, uint64_t *parent_value,
               int child_type, raw_side_fn *child, uint64_t *child_value)
{
    int err = 0;
    char dir [PATH_MAX], endpoint [PATH_MAX + 16], path [PATH_MAX + 16];
    bool made = s_private_dir (dir) == 0;
    snprintf (endpoint, sizeof endpoint, "ipc://%s/raw", dir);
    snprintf (path, sizeof path, "%s/raw", dir);
    void *context = made? zmq_ctx_new (): NULL;
    void *sock = context? s_raw_socket (context, parent_type): NULL;
    int pair [2] = { -1, -1 };
    pid_t pid = -1;
    if (!sock
    ||  zmq_bind (sock, endpoint) < 0
    ||  socketpair (AF_UNIX, SOCK_STREAM, 0, pair) < 0) {
        err = errno? errno: ENOMEM;
        goto done;
    }
    //  Bound before the fork, so the child's connect finds the socket file
    //  at once instead of retrying after libzmq's reconnect interval
    fflush (NULL);
    pid = fork ();
    if (pid == 0) {
        s_raw_child_start ();
        close (pair [0]);
        s_raw_zmq_child (endpoint, child_type, child, pair [1]);
        _exit (0);
    }
    close (pair [1]);
    pair [1] = -1;
    if (pid < 0) {
        err = errno;
        goto done;
    }
    //  A child that died closes its end: the read below fails, it does not
    //  block
    raw_result_t result;
    if (parent (sock, pair [0], parent_value) < 0
    ||  s_read_full (pair [0], &result, sizeof result) < 0)
        err = errno? errno: EIO;
    else
    if (result.error)
        err = result.error;
    else
        *child_value = result.value;

done:
    if (pid > 0) {
        if (err)
            kill (pid, SIGKILL);
        while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    for (int index = 0; index < 2; index++)
        if (pair [index] >= 0)
            close (pair [index]);
    if (sock)
        zmq_close (sock);
    if (context)
        zmq_ctx_term (context);
    if (made) {
        unlink (path);
        rmdir (dir);
    }
    return err;
}


//  --------------------------------------------------------------------------
//  1. raw_zmq_ipc_rt: DEALER in a forked child, timing each round trip,
//  ROUTER echoing in the parent

//  The child: *value is the median round trip
static int
s_raw_ping (void *dealer, int fd, uint64_t *value)
{
    uint64_t *samples = (uint64_t *) malloc (RAW_ROUNDS * sizeof (uint64_t));
    if (!samples)
        return errno = ENOMEM, -1;
    char buffer [64];
    for (int round = 0; round < RAW_WARMUP + RAW_ROUNDS; round++) {
        uint64_t start = s_now_ns ();
        errno = 0;
        if (zmq_send (dealer, SMALL_VALUE, 16, 0) != 16
        ||  zmq_recv (dealer, buffer, sizeof buffer, 0) != 16) {
            int saved = errno? errno: EPROTO;
            free (samples);
            return errno = saved, -1;
        }
        uint64_t end = s_now_ns ();
        if (round >= RAW_WARMUP)
            samples [round - RAW_WARMUP] = end - start;
    }
    *value = s_median_ns (samples, RAW_ROUNDS);
    free (samples);
    return 0;
}

//  The parent: echo every message back to its sender
static int
s_raw_echo (void *router, int fd, uint64_t *value)
{
    for (int round = 0; round < RAW_WARMUP + RAW_ROUNDS; round++) {
        zmq_msg_t id, body;
        zmq_msg_init (&id);
        zmq_msg_init (&body);
        if (zmq_msg_recv (&id, router, 0) < 0 || !zmq_msg_more (&id)
        ||  zmq_msg_recv (&body, router, 0) < 0
        ||  zmq_msg_send (&id, router, ZMQ_SNDMORE) < 0
        ||  zmq_msg_send (&body, router, 0) < 0) {
            int saved = errno? errno: EPROTO;
            zmq_msg_close (&id);
            zmq_msg_close (&body);
            return errno = saved, -1;
        }
    }
    *value = 0;
    return 0;
}

//  Returns the round trip in us, NAN when it failed
static double
s_bench_raw_zmq (void)
{
    s_progress ("raw_zmq_ipc_rt");
    uint64_t unused = 0, median = 0;
    int err = s_raw_zmq_run (ZMQ_ROUTER, s_raw_echo, &unused, ZMQ_DEALER, s_raw_ping, &median);
    if (err) {
        s_report_errno ("raw_zmq_ipc_rt", err);
        return NAN;
    }
    s_report ("raw_zmq_ipc_rt", s_us (median), "us", 2, NAN);
    return s_us (median);
}


//  --------------------------------------------------------------------------
//  2. raw_zmq_ipc_ops: PUSH in a forked child, PULL in the parent, one way.
//  The child sends MAIL_WARMUP messages, waits until the parent has them
//  all, then times MAIL_COUNT messages and an end marker, from its first
//  send to the parent's receipt of the marker: as mailbox_ops does.

//  The child: *value is when the timed stream started
static int
s_raw_source (void *push, int fd, uint64_t *value)
{
    for (int count = 0; count < MAIL_WARMUP; count++)
        if (zmq_send (push, SMALL_VALUE, 16, 0) != 16)
            return -1;
    char go;
    if (s_read_full (fd, &go, 1) < 0)
        return -1;
    *value = s_now_ns ();
    for (int count = 0; count < MAIL_COUNT; count++)
        if (zmq_send (push, SMALL_VALUE, 16, 0) != 16)
            return -1;
    if (zmq_send (push, MAIL_END, strlen (MAIL_END), 0) < 0)
        return -1;
    //  Connected until the parent has it all: libzmq 4.3 drops what the
    //  PULL side had not read yet when the connection closes
    return s_read_full (fd, &go, 1);
}

//  The parent: *value is when the end marker came
static int
s_raw_sink (void *pull, int fd, uint64_t *value)
{
    char buffer [64];
    for (int count = 0; count < MAIL_WARMUP; count++)
        if (zmq_recv (pull, buffer, sizeof buffer, 0) < 0)
            return -1;
    if (s_write_full (fd, "g", 1) < 0)
        return -1;
    int count = 0, size;
    while ((size = zmq_recv (pull, buffer, sizeof buffer, 0)) == 16)
        count++;
    *value = s_now_ns ();
    if (size > 0 && s_write_full (fd, "d", 1) < 0)
        return -1;
    if (size < 0)
        return -1;
    if (size != (int) strlen (MAIL_END) || count != MAIL_COUNT)
        return errno = EPROTO, -1;
    return 0;
}

//  Returns messages/s, NAN when it failed
static double
s_bench_raw_zmq_ops (void)
{
    s_progress ("raw_zmq_ipc_ops");
    uint64_t start = 0, end = 0;
    int err = s_raw_zmq_run (ZMQ_PULL, s_raw_sink, &end, ZMQ_PUSH, s_raw_source, &start);
    if (err) {
        s_report_errno ("raw_zmq_ipc_ops", err);
        return NAN;
    }
    double ops = MAIL_COUNT / ((end - start) / 1e9);
    s_report ("raw_zmq_ipc_ops", ops, "msgs/s", 0, NAN);
    return ops;
}


//  --------------------------------------------------------------------------
//  3. raw_unix_rt: 16 bytes each way over a socketpair, child echoing.
//  Measured first and again last (raw_unix_rt_end): on a shared VM the
//  round trip moves with where the scheduler puts the two processes (one
//  vCPU: a context switch, ~11 us here; two: the wake-up of a halted vCPU,
//  which this VM pays with an exit to the hypervisor, up to ~50 us), so a
//  run whose two figures differ much was taken while the machine changed.

//  raw_unix_rt_one_cpu and raw_unix_rt_two_cpus are the same ping-pong
//  with both processes pinned to one CPU, then each to its own: what a
//  round trip costs on this machine without a wake-up of another CPU and
//  with one each way. Where the others fall between the two says how the
//  scheduler placed them in that run.

//  Pin the calling process to cpu (-1: leave it as it is); 0 or -1
static int
s_pin (int cpu)
{
    if (cpu < 0)
        return 0;
    cpu_set_t set;
    CPU_ZERO (&set);
    CPU_SET (cpu, &set);
    return sched_setaffinity (0, sizeof set, &set);
}

//  The first run sets s_unix_us, the reference of every figure's unix=.
//  parent_cpu and child_cpu pin the two processes for this run (-1: not)
static void
s_bench_raw_unix (const char *name, int parent_cpu, int child_cpu)
{
    s_progress (name);
    cpu_set_t allowed;
    if (sched_getaffinity (0, sizeof allowed, &allowed) < 0 || s_pin (parent_cpu) < 0) {
        s_report_errno (name, errno);
        return;
    }
    int pair [2];
    if (socketpair (AF_UNIX, SOCK_STREAM, 0, pair) < 0) {
        s_report_errno (name, errno);
        return;
    }
    fflush (NULL);
    pid_t pid = fork ();
    if (pid == 0) {
        s_raw_child_start ();
        close (pair [0]);
        char buffer [16];
        for (int round = 0; s_pin (child_cpu) == 0 && round < RAW_WARMUP + RAW_ROUNDS; round++)
            if (s_read_full (pair [1], buffer, sizeof buffer) < 0
            ||  s_write_full (pair [1], buffer, sizeof buffer) < 0)
                break;
        _exit (0);
    }
    close (pair [1]);
    int err = pid < 0? errno: 0;
    uint64_t *samples = (uint64_t *) malloc (RAW_ROUNDS * sizeof (uint64_t));
    if (!err && !samples)
        err = ENOMEM;
    //  A child that died would otherwise leave us blocked in read
    struct timeval timeout = { WAIT_MS / 1000, 0 };
    setsockopt (pair [0], SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    char buffer [16];
    for (int round = 0; !err && round < RAW_WARMUP + RAW_ROUNDS; round++) {
        uint64_t start = s_now_ns ();
        if (s_write_full (pair [0], SMALL_VALUE, 16) < 0
        ||  s_read_full (pair [0], buffer, sizeof buffer) < 0) {
            err = errno;
            break;
        }
        uint64_t end = s_now_ns ();
        if (round >= RAW_WARMUP)
            samples [round - RAW_WARMUP] = end - start;
    }
    close (pair [0]);
    if (pid > 0) {
        if (err)
            kill (pid, SIGKILL);
        while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    sched_setaffinity (0, sizeof allowed, &allowed);
    if (err)
        s_report_errno (name, err);
    else {
        double us = s_us (s_median_ns (samples, RAW_ROUNDS));
        if (isnan (s_unix_us))
            s_unix_us = us;
        s_report (name, us, "us", 2, NAN);
    }
    free (samples);
}


//  --------------------------------------------------------------------------
//  4. get_rt, set_rt: one worker, one call at a time; get_rt_curve and
//  set_rt_curve are the same in a CURVE context (10.)

typedef struct {
    const char *get;            //  Figure name of the get round trip
    const char *set;            //  Figure name of the set round trip
} getset_job_t;

static void
s_getset_worker (zp_worker_t *worker, void *args)
{
    getset_job_t *job = (getset_job_t *) args;
    zp_state_t *state = zp_worker_state (worker);
    uint64_t *samples = (uint64_t *) malloc (RT_ROUNDS * sizeof (uint64_t));
    if (!samples) {
        s_put_error (state, job->get, ENOMEM);
        s_put_error (state, job->set, ENOMEM);
        return;
    }
    int err = 0;
    for (int round = 0; round < RT_WARMUP + RT_ROUNDS; round++) {
        uint64_t start = s_now_ns ();
        char *value = zp_state_get_str (state, GETSET_KEY);
        uint64_t end = s_now_ns ();
        if (!value) {
            err = errno;
            break;
        }
        free (value);
        if (round >= RT_WARMUP)
            samples [round - RT_WARMUP] = end - start;
    }
    if (err)
        s_put_error (state, job->get, err);
    else
        s_put (state, job->get, "median", (int64_t) s_median_ns (samples, RT_ROUNDS));

    err = 0;
    for (int round = 0; round < RT_WARMUP + RT_ROUNDS; round++) {
        uint64_t start = s_now_ns ();
        int rc = zp_state_set_str (state, "bench/set", SMALL_VALUE);
        uint64_t end = s_now_ns ();
        if (rc < 0) {
            err = errno;
            break;
        }
        if (round >= RT_WARMUP)
            samples [round - RT_WARMUP] = end - start;
    }
    if (err)
        s_put_error (state, job->set, err);
    else
        s_put (state, job->set, "median", (int64_t) s_median_ns (samples, RT_ROUNDS));
    free (samples);
}

//  Reports the get and set figures against reference [0] and [1] (us, NAN:
//  none), and stores them in us [0] and [1] (NAN when one failed)
static void
s_bench_getset (zp_ctx_t *ctx, getset_job_t *job, const double reference [2], double us [2])
{
    char what [64];
    snprintf (what, sizeof what, "%s, %s", job->get, job->set);
    s_progress (what);
    const char *names [] = { job->get, job->set };
    us [0] = us [1] = NAN;
    zp_state_t *state = zp_ctx_state (ctx);
    if (zp_state_set_str (state, GETSET_KEY, SMALL_VALUE) < 0) {
        int err = errno;
        s_report_errno (names [0], err);
        s_report_errno (names [1], err);
        return;
    }
    zp_proc_t *proc = zp_ctx_spawn (ctx, "getset", s_getset_worker, job);
    int err = proc? 0: errno;
    s_join (proc);
    for (int index = 0; index < 2; index++) {
        int64_t median;
        if (err)
            s_report_errno (names [index], err);
        else
        if (s_take (state, names [index], "median", &median) < 0)
            s_report_errno (names [index], errno);
        else {
            us [index] = s_us ((uint64_t) median);
            s_report (names [index], us [index], "us", 2, reference [index]);
        }
    }
}


//  --------------------------------------------------------------------------
//  5. incr_ops_1, incr_ops_8: workers hammering incr on one key, started
//  together by a "go" key; the run lasts from the first start to the last
//  end, in any worker

typedef struct {
    char name [32];             //  Result name
    const char *key;            //  Key to increment
    const char *go;             //  Start signal
    int count;                  //  Increments
    int batch;                  //  0: one zp_state_incr each; else batches of so many
} incr_job_t;

static void
s_incr_worker (zp_worker_t *worker, void *args)
{
    incr_job_t *job = (incr_job_t *) args;
    zp_state_t *state = zp_worker_state (worker);
    //  Warm up on another key, so the count of the timed key stays exact
    for (int count = 0; count < INCR_WARMUP; count++)
        if (zp_state_incr (state, "bench/incr-warmup", 1, NULL) < 0)
            goto failed;
    zp_txn_t *txn = job->batch? zp_txn_new (state): NULL;
    if (s_await_go (state, job->go) < 0 || (job->batch && !txn))
        goto failed;
    uint64_t start = s_now_ns ();
    for (int count = 0; count < job->count; count++) {
        if (!txn) {
            if (zp_state_incr (state, job->key, 1, NULL) < 0)
                goto failed;
        }
        else
        if (zp_txn_incr (txn, job->key, 1, NULL) < 0
        ||  ((count + 1) % job->batch == 0 && zp_txn_commit (txn) < 0))
            goto failed;
    }
    if (txn && zp_txn_commit (txn) < 0)
        goto failed;
    uint64_t end = s_now_ns ();
    zp_txn_destroy (&txn);
    s_put (state, job->name, "start", (int64_t) start);
    s_put (state, job->name, "end", (int64_t) end);
    return;

failed:
    s_put_error (state, job->name, errno);
    zp_txn_destroy (&txn);
}

//  Run workers incrementing key each count times; returns ops/s, or -1
//  with errno. *exact says whether the key ended at workers * count.
static double
s_incr_run (zp_ctx_t *ctx, const char *label, int workers, int count, int batch, bool *exact)
{
    zp_state_t *state = zp_ctx_state (ctx);
    incr_job_t jobs [INCR_WORKERS];
    zp_proc_t *procs [INCR_WORKERS] = { NULL };
    char key [64], go [64];
    snprintf (key, sizeof key, "bench/%s", label);
    snprintf (go, sizeof go, "bench/%s-go", label);
    int err = 0;
    for (int index = 0; index < workers && !err; index++) {
        snprintf (jobs [index].name, sizeof jobs [index].name, "%s-%d", label, index);
        jobs [index].key = key;
        jobs [index].go = go;
        jobs [index].count = count;
        jobs [index].batch = batch;
        procs [index] = zp_ctx_spawn (ctx, jobs [index].name, s_incr_worker, &jobs [index]);
        if (!procs [index])
            err = errno;
    }
    //  Go even when a spawn failed: the others then end at once instead
    //  of waiting for a go that would never come
    if (zp_state_set_str (state, go, "1") < 0 && !err)
        err = errno;
    for (int index = 0; index < workers; index++)
        s_join (procs [index]);
    if (err)
        return errno = err, -1;

    uint64_t first = UINT64_MAX, last = 0;
    for (int index = 0; index < workers; index++) {
        int64_t start, end;
        if (s_take (state, jobs [index].name, "start", &start) < 0
        ||  s_take (state, jobs [index].name, "end", &end) < 0)
            return -1;
        first = (uint64_t) start < first? (uint64_t) start: first;
        last = (uint64_t) end > last? (uint64_t) end: last;
    }
    int64_t total = 0;
    *exact = zp_state_get_int (state, key, &total) == 0
          && total == (int64_t) workers * count;
    if (!*exact)
        fprintf (stderr, "zproc-bench: %s counted %" PRId64 ", expected %" PRId64 "\n",
                 key, total, (int64_t) workers * count);
    return (double) workers * count / ((last - first) / 1e9);
}

static void
s_bench_incr (zp_ctx_t *ctx)
{
    bool exact_1 = false, exact_8 = false;
    s_progress ("incr_ops_1");
    double ops = s_incr_run (ctx, "incr1", 1, INCR_1, 0, &exact_1);
    if (ops < 0)
        s_report_errno ("incr_ops_1", errno);
    else
        s_report ("incr_ops_1", ops, "ops/s", 0, NAN);

    s_progress ("incr_ops_8");
    double ops_8 = s_incr_run (ctx, "incr8", INCR_WORKERS, INCR_EACH, 0, &exact_8);
    if (ops_8 < 0)
        s_report_errno ("incr_ops_8", errno);
    else
        s_report ("incr_ops_8", ops_8, "ops/s", 0, NAN);

    if (ops < 0 && ops_8 < 0)
        s_report_failure ("incr_count_ok", "no run completed");
    else {
        //  A run that failed outright is reported above; a wrong count in
        //  one that completed is the failure this line is for
        bool exact = (ops < 0 || exact_1) && (ops_8 < 0 || exact_8);
        s_report ("incr_count_ok", exact? 1: 0, NULL, 0, NAN);
        if (!exact)
            s_failed = true;
    }
}


//  --------------------------------------------------------------------------
//  6. wake_rt: a ping-pong between two workers. The leader sets its key
//  and waits for the follower's; the follower waits for the leader's key
//  and sets its own. One ping-pong is two wake-ups (set in one process,
//  get_when_change returning in the other), each of them a set's trip to
//  the store plus the store's wake-up of the watcher: so the wake-up
//  latency is the median ping-pong divided by two.

typedef struct {
    const char *name;           //  Result name
    const char *send;           //  Key this worker sets
    const char *wait;           //  Key this worker waits on
    bool leader;                //  Times the ping-pongs
} ping_job_t;

static void
s_ping_worker (zp_worker_t *worker, void *args)
{
    ping_job_t *job = (ping_job_t *) args;
    zp_state_t *state = zp_worker_state (worker);
    uint64_t *samples = (uint64_t *) malloc (PING_ROUNDS * sizeof (uint64_t));
    if (!samples) {
        if (job->leader)
            s_put_error (state, job->name, ENOMEM);
        return;
    }
    int err = 0;
    for (int round = 0; round < PING_WARMUP + PING_ROUNDS; round++) {
        char sent [16];
        snprintf (sent, sizeof sent, "%d", round);
        uint64_t start = s_now_ns ();
        char *value = NULL;
        if (job->leader) {
            if (zp_state_set_str (state, job->send, sent) < 0
            ||  !(value = zp_state_get_when_change (state, job->wait, WAIT_MS))) {
                err = errno;
                break;
            }
            //  Each wait must return the change made after it began: an
            //  older value would mean a stale wake-up, and a figure too
            //  good to be true
            if (strneq (value, sent))
                err = EPROTO;
        }
        else {
            if (!(value = zp_state_get_when_change (state, job->wait, WAIT_MS))
            ||  zp_state_set_str (state, job->send, value) < 0)
                err = errno;
        }
        uint64_t end = s_now_ns ();
        free (value);
        if (err)
            break;
        if (round >= PING_WARMUP)
            samples [round - PING_WARMUP] = end - start;
    }
    if (job->leader) {
        if (err)
            s_put_error (state, job->name, err);
        else
            s_put (state, job->name, "median", (int64_t) s_median_ns (samples, PING_ROUNDS));
    }
    free (samples);
}

//  Returns the wake-up latency in us (ping-pong / 2), or NAN with errno
static double
s_pingpong (zp_ctx_t *ctx, const char *label)
{
    char ping [64], pong [64], leader_name [64], follower_name [64];
    snprintf (ping, sizeof ping, "bench/%s/ping", label);
    snprintf (pong, sizeof pong, "bench/%s/pong", label);
    snprintf (leader_name, sizeof leader_name, "%s-leader", label);
    snprintf (follower_name, sizeof follower_name, "%s-follower", label);
    ping_job_t follower = { label, pong, ping, false };
    ping_job_t leader = { label, ping, pong, true };
    //  The follower first: whichever starts first, no ping is missed
    //  (a watcher counts every change its handle had not yet seen)
    zp_proc_t *procs [2] = { NULL, NULL };
    procs [0] = zp_ctx_spawn (ctx, follower_name, s_ping_worker, &follower);
    int err = procs [0]? 0: errno;
    if (!err) {
        procs [1] = zp_ctx_spawn (ctx, leader_name, s_ping_worker, &leader);
        err = procs [1]? 0: errno;
        if (err)
            //  Nobody will ever ping it
            zp_proc_kill (procs [0], SIGKILL);
    }
    s_join (procs [1]);
    //  A leader that gave up leaves the follower waiting for a ping
    if (procs [1] && s_worker_error (zp_ctx_state (ctx), label))
        zp_proc_kill (procs [0], SIGKILL);
    s_join (procs [0]);
    if (err)
        return errno = err, NAN;
    int64_t median;
    if (s_take (zp_ctx_state (ctx), label, "median", &median) < 0)
        return NAN;
    return s_us ((uint64_t) median) / 2;
}

static double
s_bench_wake (zp_ctx_t *ctx, double raw_us)
{
    s_progress ("wake_rt");
    double wake = s_pingpong (ctx, "wake");
    if (isnan (wake))
        s_report_errno ("wake_rt", errno);
    else
        s_report ("wake_rt", wake, "us", 2, raw_us);
    return wake;
}


//  --------------------------------------------------------------------------
//  7. predicate_wake_rt: the same ping-pong with PARKED watchers parked on
//  other keys, which must not slow an unrelated wake-up. Each parked
//  watcher is a thread with its own handle in one of PARKERS workers; it
//  counts itself in "bench/parked" before it parks, or, if it could not
//  connect, its worker counts it in "bench/park-failed". With CURVE on, the
//  threads present a certificate the parent admitted with zp_ctx_allow.

typedef struct {
    const char *endpoint;       //  The store
    const char *public_key;     //  Its CURVE key, or NULL
    zcert_t *cert;              //  Our admitted certificate, NULL without CURVE
    int index;                  //  This parker's number
} park_job_t;

typedef struct {
    park_job_t *job;            //  Our worker's job
    zcert_t *cert;              //  This thread's copy of the job's certificate
    int index;                  //  This thread's number
    pthread_mutex_t *mutex;     //  Guards the counts below
    pthread_cond_t *reported;   //  Signalled as each thread reports
    int *nreported;             //  Threads that parked or failed
    int *nfailed;               //  Threads that failed
    int *error;                 //  The first failure's errno
} parker_t;

static void
s_parker_report (parker_t *self, int err)
{
    pthread_mutex_lock (self->mutex);
    (*self->nreported)++;
    *self->nfailed += err != 0;
    if (err && !*self->error)
        *self->error = err;
    pthread_cond_signal (self->reported);
    pthread_mutex_unlock (self->mutex);
}

static void *
s_parker_thread (void *args)
{
    parker_t *self = (parker_t *) args;
    zp_state_t *state = self->cert
        ? zp_state_connect_cert (self->job->endpoint, self->job->public_key, self->cert)
        : zp_state_connect (self->job->endpoint, NULL);
    bool parked = false;
    if (state) {
        //  A thousand handles connecting at once may keep the store busy
        zp_state_set_timeout (state, WAIT_MS);
        parked = zp_state_incr (state, "bench/parked", 1, NULL) == 0;
    }
    s_parker_report (self, parked? 0: errno? errno: EIO);
    if (parked) {
        char key [64];
        snprintf (key, sizeof key, "bench/never/%d/%d", self->job->index, self->index);
        free (zp_state_get_when_change (state, key, PARK_MS));
    }
    zp_state_destroy (&state);
    return NULL;
}

static void
s_parker_worker (zp_worker_t *worker, void *args)
{
    park_job_t *job = (park_job_t *) args;
    pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t reported = PTHREAD_COND_INITIALIZER;
    int nreported = 0, nfailed = 0, error = 0;
    parker_t parkers [PARK_THREADS];
    pthread_t threads [PARK_THREADS];
    bool started [PARK_THREADS] = { false };
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    //  Small stacks: PARK_THREADS threads that only wait
    pthread_attr_setstacksize (&attr, 256 * 1024);
    for (int index = 0; index < PARK_THREADS; index++) {
        //  A copy per thread, made here: zcert_dup walks the metadata
        //  with the certificate's own cursor, which threads cannot share
        parkers [index] = (parker_t) {
            job, job->cert? zcert_dup (job->cert): NULL, index,
            &mutex, &reported, &nreported, &nfailed, &error
        };
        started [index] = pthread_create (&threads [index], &attr,
                                          s_parker_thread, &parkers [index]) == 0;
        if (!started [index])
            s_parker_report (&parkers [index], EAGAIN);
    }
    pthread_attr_destroy (&attr);
    pthread_mutex_lock (&mutex);
    while (nreported < PARK_THREADS)
        pthread_cond_wait (&reported, &mutex);
    pthread_mutex_unlock (&mutex);
    if (nfailed) {
        //  Why, before how many: the parent reads the errno once the count
        //  is complete
        s_put_error (zp_worker_state (worker), "parker", error);
        zp_state_incr (zp_worker_state (worker), "bench/park-failed", nfailed, NULL);
    }
    for (int index = 0; index < PARK_THREADS; index++) {
        if (started [index])
            pthread_join (threads [index], NULL);
        zcert_destroy (&parkers [index].cert);
    }
}

static bool
s_all_parked (zp_state_t *view, void *args)
{
    int64_t parked = 0, failed = 0;
    zp_state_get_int (view, "bench/parked", &parked);
    zp_state_get_int (view, "bench/park-failed", &failed);
    return parked + failed >= PARKED;
}

static void
s_bench_predicate (zp_ctx_t *ctx, double wake_us)
{
    s_progress ("predicate_wake_rt (parking 1000 watchers)");
    const char *name = "predicate_wake_rt";
    zp_state_t *state = zp_ctx_state (ctx);
    park_job_t jobs [PARKERS];
    zp_proc_t *procs [PARKERS] = { NULL };
    int err = 0;
    //  Outside the context's own processes, a handle needs a certificate
    //  the context admitted
    zcert_t *cert = NULL;
    if (zp_ctx_public_key (ctx)) {
        cert = zcert_new ();
        if (!cert || zp_ctx_allow (ctx, zcert_public_txt (cert)) < 0)
            err = errno? errno: ENOMEM;
    }
    for (int index = 0; index < PARKERS && !err; index++) {
        jobs [index] = (park_job_t) {
            zp_ctx_endpoint (ctx), zp_ctx_public_key (ctx), cert, index
        };
        char proc_name [32];
        snprintf (proc_name, sizeof proc_name, "parker-%d", index);
        procs [index] = zp_ctx_spawn (ctx, proc_name, s_parker_worker, &jobs [index]);
        if (!procs [index])
            err = errno;
    }
    int64_t failed = 0;
    if (!err && zp_state_get_when (state, s_all_parked, NULL, WAIT_MS) < 0)
        err = errno;
    if (!err && zp_state_get_int (state, "bench/park-failed", &failed) == 0 && failed > 0) {
        char why [128];
        snprintf (why, sizeof why, "%d of %d watchers could not park: %s", (int) failed,
                  PARKED, strerror (s_worker_error (state, "parker")));
        s_report_failure (name, why);
    }
    else
    if (!err) {
        //  Each thread sends its park request right after its count; the
        //  ping-pong's warm-up outlasts that last step by far
        double wake = s_pingpong (ctx, "parked");
        if (isnan (wake))
            s_report_errno (name, errno);
        else
            s_report (name, wake, "us", 2, wake_us);
    }
    else
        s_report_errno (name, err);

    //  Release every watcher: each thread then leaves, and its worker
    for (int parker = 0; parker < PARKERS; parker++) {
        if (!procs [parker])
            continue;
        for (int thread = 0; thread < PARK_THREADS; thread++) {
            char key [64];
            snprintf (key, sizeof key, "bench/never/%d/%d", parker, thread);
            zp_state_set_str (state, key, "x");
        }
    }
    for (int index = 0; index < PARKERS; index++)
        s_join (procs [index]);
    zcert_destroy (&cert);
}


//  --------------------------------------------------------------------------
//  8. watch_stream_ops: one worker sets STREAM_KEYS keys under a prefix, the
//  parent's watch reads every change

typedef struct {
    const char *go;             //  Start signal
} stream_job_t;

static void
s_stream_worker (zp_worker_t *worker, void *args)
{
    stream_job_t *job = (stream_job_t *) args;
    zp_state_t *state = zp_worker_state (worker);
    if (s_await_go (state, job->go) < 0)
        goto failed;
    for (int index = 0; index < STREAM_KEYS; index++) {
        char key [64];
        snprintf (key, sizeof key, "bench/stream/%06d", index);
        if (zp_state_set_str (state, key, "v") < 0)
            goto failed;
    }
    return;

failed:
    s_put_error (state, "stream", errno);
}

static void
s_bench_stream (zp_ctx_t *ctx)
{
    s_progress ("watch_stream_ops");
    const char *name = "watch_stream_ops";
    zp_state_t *state = zp_ctx_state (ctx);
    stream_job_t job = { "bench/stream-go" };
    char last [64];
    snprintf (last, sizeof last, "bench/stream/%06d", STREAM_KEYS - 1);
    //  The watch exists before the first change: it must see all of them
    zp_watch_t *watch = zp_watch_new (state, "bench/stream/");
    if (!watch) {
        int err = errno;
        s_report_errno (name, err);
        s_report_errno ("watch_gaps", err);
        return;
    }
    zp_proc_t *proc = zp_ctx_spawn (ctx, "stream", s_stream_worker, &job);
    int err = proc? 0: errno;
    if (!err && zp_state_set_str (state, job.go, "1") < 0)
        err = errno;
    uint64_t start = s_now_ns (), end = start;
    size_t count = 0, gaps = 0;
    while (!err) {
        char *key = NULL, *value = NULL;
        if (zp_watch_next (watch, &key, &value, WAIT_MS) < 0) {
            //  A gap is allowed by the contract, and counted
            if (errno == EAGAIN)
                gaps++;
            else
                err = errno;
            continue;
        }
        count++;
        bool done = streq (key, last);
        free (key);
        free (value);
        if (done)
            break;
    }
    end = s_now_ns ();
    zp_watch_destroy (&watch);
    s_join (proc);
    if (err) {
        //  The worker's own errno says more than our timeout
        if (err == ETIMEDOUT && s_worker_error (state, "stream"))
            err = s_worker_error (state, "stream");
        s_report_errno (name, err);
        s_report_errno ("watch_gaps", err);
        return;
    }
    if (count != STREAM_KEYS && !gaps) {
        char why [64];
        snprintf (why, sizeof why, "saw %zu of %d changes, no gap reported",
                  count, STREAM_KEYS);
        s_report_failure (name, why);
    }
    else
        s_report (name, count / ((end - start) / 1e9), "ops/s", 0, NAN);
    s_report ("watch_gaps", (double) gaps, NULL, 0, NAN);
}


//  --------------------------------------------------------------------------
//  9. mailbox_rt, mailbox_send_rt, mailbox_ops: a driver worker and its
//  peer. mailbox_rt: zp_worker_call, the peer answering with
//  zp_worker_reply; mailbox_send_rt: zp_worker_send, the peer sending the
//  message back with zp_worker_send, zp_worker_recv. mailbox_ops: the
//  driver sends MAIL_WARMUP messages, a sync call, then MAIL_COUNT messages
//  and an end marker, timed from its first send to the peer's receipt of
//  the marker, as raw_zmq_ipc_ops is. The marker is a call: the driver
//  stays until the peer has every message, as a sender that leaves early
//  may lose what the peer has not read yet (libzmq drops it with the
//  connection). Both report under "mail".

typedef struct {
    const char *peer;           //  The peer's name
    bool calls;                 //  Time the round trips too, not only the stream
} mail_job_t;

//  True when msg is the one-frame word
static bool
s_mail_is (zmsg_t *msg, const char *word)
{
    zframe_t *frame = zmsg_first (msg);
    return frame && zframe_streq (frame, word);
}

//  Send a one-frame message; 0, or -1 with errno
static int
s_mail_send (zp_worker_t *worker, const char *to, const char *word)
{
    zmsg_t *msg = zmsg_new ();
    if (!msg || zmsg_addstr (msg, word) < 0) {
        zmsg_destroy (&msg);
        return errno = ENOMEM, -1;
    }
    if (zp_worker_send (worker, to, &msg) == 0)
        return 0;
    int saved = errno;
    zmsg_destroy (&msg);
    return errno = saved, -1;
}

//  Call with a one-frame request, dropping the reply; 0, or -1 with errno
static int
s_mail_call (zp_worker_t *worker, const char *to, const char *word)
{
    zmsg_t *msg = zmsg_new ();
    if (!msg || zmsg_addstr (msg, word) < 0) {
        zmsg_destroy (&msg);
        return errno = ENOMEM, -1;
    }
    zmsg_t *reply = zp_worker_call (worker, to, &msg, WAIT_MS);
    int saved = errno;
    zmsg_destroy (&msg);
    if (!reply)
        return errno = saved, -1;
    zmsg_destroy (&reply);
    return 0;
}

//  Serves the driver until the end marker
static void
s_mail_peer (zp_worker_t *worker, void *args)
{
    zp_state_t *state = zp_worker_state (worker);
    int64_t count = 0;
    zmsg_t *msg;
    while ((msg = zp_worker_recv (worker, WAIT_MS))) {
        int rc = 0;
        if (s_mail_is (msg, MAIL_CALL))
            rc = zp_worker_reply (worker, &msg);
        else
        if (s_mail_is (msg, MAIL_ECHO))
            rc = zp_worker_send (worker, zp_worker_sender (worker), &msg);
        else
        if (s_mail_is (msg, MAIL_SYNC)) {
            count = 0;
            rc = zp_worker_reply (worker, &msg);
        }
        else
        if (s_mail_is (msg, MAIL_END)) {
            uint64_t end = s_now_ns ();
            s_put (state, "mail", "end", (int64_t) end);
            s_put (state, "mail", "count", count);
            if (zp_worker_reply (worker, &msg) == 0)
                return;
            rc = -1;
        }
        else
            count++;
        zmsg_destroy (&msg);
        if (rc < 0)
            break;
    }
    s_put_error (state, "mail", errno);
}

//  CALL_WARMUP + CALL_ROUNDS round trips to peer, by call or by send and
//  recv; samples gets CALL_ROUNDS. Returns 0, or -1 with errno.
static int
s_mail_round_trips (zp_worker_t *worker, const char *peer, bool call, uint64_t *samples)
{
    for (int round = 0; round < CALL_WARMUP + CALL_ROUNDS; round++) {
        zmsg_t *msg = zmsg_new ();
        if (!msg || zmsg_addstr (msg, call? MAIL_CALL: MAIL_ECHO) < 0) {
            zmsg_destroy (&msg);
            return errno = ENOMEM, -1;
        }
        uint64_t start = s_now_ns ();
        zmsg_t *back = NULL;
        if (call)
            back = zp_worker_call (worker, peer, &msg, WAIT_MS);
        else
        if (zp_worker_send (worker, peer, &msg) == 0)
            back = zp_worker_recv (worker, WAIT_MS);
        uint64_t end = s_now_ns ();
        int saved = errno;
        //  Left with us when the send failed
        zmsg_destroy (&msg);
        if (!back)
            return errno = saved, -1;
        zmsg_destroy (&back);
        if (round >= CALL_WARMUP)
            samples [round - CALL_WARMUP] = end - start;
    }
    return 0;
}

//  The stream: *start is when its first counted message was sent. Returns
//  0, or -1 with errno.
static int
s_mail_stream (zp_worker_t *worker, const char *peer, uint64_t *start)
{
    for (int count = 0; count < MAIL_WARMUP; count++)
        if (s_mail_send (worker, peer, SMALL_VALUE) < 0)
            return -1;
    //  The peer answers once it has taken the warm-up (a sender's order is
    //  kept): the timed stream starts on an empty mailbox
    if (s_mail_call (worker, peer, MAIL_SYNC) < 0)
        return -1;
    *start = s_now_ns ();
    for (int count = 0; count < MAIL_COUNT; count++)
        if (s_mail_send (worker, peer, SMALL_VALUE) < 0)
            return -1;
    return s_mail_call (worker, peer, MAIL_END);
}

static void
s_mail_driver (zp_worker_t *worker, void *args)
{
    mail_job_t *job = (mail_job_t *) args;
    zp_state_t *state = zp_worker_state (worker);
    uint64_t *samples = (uint64_t *) malloc (CALL_ROUNDS * sizeof (uint64_t));
    uint64_t start = 0;
    if (!samples) {
        errno = ENOMEM;
        goto failed;
    }
    if (job->calls) {
        if (s_mail_round_trips (worker, job->peer, true, samples) < 0)
            goto failed;
        s_put (state, "mail", "call_rt", (int64_t) s_median_ns (samples, CALL_ROUNDS));
        if (s_mail_round_trips (worker, job->peer, false, samples) < 0)
            goto failed;
        s_put (state, "mail", "send_rt", (int64_t) s_median_ns (samples, CALL_ROUNDS));
    }
    if (s_mail_stream (worker, job->peer, &start) < 0)
        goto failed;
    s_put (state, "mail", "start", (int64_t) start);
    free (samples);
    return;

failed:
    s_put_error (state, "mail", errno);
    free (samples);
}

//  Reports mailbox_rt and mailbox_send_rt against raw_us when calls, and
//  the stream as ops_name against ops_reference (NAN: none). Returns the
//  stream's messages/s, NAN when it failed.
static double
s_bench_mailbox (zp_ctx_t *ctx, bool calls, const char *ops_name, double raw_us,
                 double ops_reference)
{
    char what [64];
    snprintf (what, sizeof what, "%s%s", calls? "mailbox_rt, mailbox_send_rt, ": "",
              ops_name);
    s_progress (what);
    zp_state_t *state = zp_ctx_state (ctx);
    mail_job_t job = { "mail-peer", calls };
    //  The peer first: its mailbox is bound when the driver starts
    zp_proc_t *peer = zp_ctx_spawn (ctx, job.peer, s_mail_peer, NULL);
    zp_proc_t *driver = peer? zp_ctx_spawn (ctx, "mail-driver", s_mail_driver, &job): NULL;
    int err = driver? 0: errno;
    if (peer && !driver)
        zp_proc_kill (peer, SIGKILL);
    s_join (driver);
    //  The peer leaves with the end marker; one whose driver failed
    //  before is not waited for long
    s_join_by (peer, s_now_ns () + 5000 * 1000000ULL);

    const char *names [] = { "mailbox_rt", "mailbox_send_rt" };
    const char *whats [] = { "call_rt", "send_rt" };
    for (int index = 0; calls && index < 2; index++) {
        int64_t median;
        if (err)
            s_report_errno (names [index], err);
        else
        if (s_take (state, "mail", whats [index], &median) < 0)
            s_report_errno (names [index], errno);
        else
            s_report (names [index], s_us ((uint64_t) median), "us", 2, raw_us);
    }
    int64_t start, end, count;
    if (!err
    && (s_take (state, "mail", "start", &start) < 0
    ||  s_take (state, "mail", "end", &end) < 0
    ||  s_take (state, "mail", "count", &count) < 0))
        err = errno;
    if (err) {
        s_report_errno (ops_name, err);
        return NAN;
    }
    if (count != MAIL_COUNT) {
        char why [64];
        snprintf (why, sizeof why, "the peer counted %" PRId64 " of %d messages",
                  count, MAIL_COUNT);
        s_report_failure (ops_name, why);
        return NAN;
    }
    double ops = MAIL_COUNT / ((end - start) / 1e9);
    s_report (ops_name, ops, "msgs/s", 0, ops_reference);
    return ops;
}


//  --------------------------------------------------------------------------
//  10. get_rt_curve, set_rt_curve, mailbox_ops_curve: the same in a
//  context made with ZPROC_CURVE=1, each against its plain figure

static void
s_bench_curve (const double getset_us [2], double mailbox_ops)
{
    //  CURVE for this context only: the environment is as it was after
    const char *value = getenv ("ZPROC_CURVE");
    char *saved = value? strdup (value): NULL;
    setenv ("ZPROC_CURVE", "1", 1);
    zp_ctx_t *ctx = zp_ctx_new ();
    int err = ctx? 0: errno;
    if (saved)
        setenv ("ZPROC_CURVE", saved, 1);
    else
        unsetenv ("ZPROC_CURVE");
    free (saved);
    getset_job_t job = { "get_rt_curve", "set_rt_curve" };
    if (!ctx || !zp_ctx_public_key (ctx)) {
        const char *why = ctx? "CURVE is not on": strerror (err);
        s_report_failure (job.get, why);
        s_report_failure (job.set, why);
        s_report_failure ("mailbox_ops_curve", why);
        zp_ctx_destroy (&ctx);
        return;
    }
    double us [2];
    s_bench_getset (ctx, &job, getset_us, us);
    s_bench_mailbox (ctx, false, "mailbox_ops_curve", NAN, mailbox_ops);
    zp_ctx_destroy (&ctx);
}


//  --------------------------------------------------------------------------
//  11. fork_exit_wait_100_ms, spawn100_ms, start_all100_ms, shutdown100_ms, ctx_new_destroy_ms

//  A worker that does nothing until $TERM
static void
s_idle_worker (zp_worker_t *worker, void *args)
{
    zmsg_t *msg;
    while ((msg = zp_worker_recv (worker, -1)))
        zmsg_destroy (&msg);
}

//  SPAWN_WORKERS bare fork + _exit + waitpid; returns ns, 0 with errno
static uint64_t
s_fork_batch (void)
{
    fflush (NULL);
    uint64_t start = s_now_ns ();
    for (int index = 0; index < SPAWN_WORKERS; index++) {
        pid_t pid = fork ();
        if (pid == 0)
            _exit (0);
        if (pid < 0)
            return 0;
        int rc;
        while ((rc = waitpid (pid, NULL, 0)) < 0 && errno == EINTR)
            ;
        if (rc < 0)
            return 0;
    }
    return s_now_ns () - start;
}

static void
s_bench_spawn (void)
{
    s_progress ("fork_exit_wait_100_ms, spawn100_ms, start_all100_ms, shutdown100_ms");
    uint64_t forks [SPAWN_ROUNDS * FORK_BATCHES];
    uint64_t spawns [SPAWN_ROUNDS], starts [SPAWN_ROUNDS], shutdowns [SPAWN_ROUNDS];
    int fork_err = 0, spawn_err = 0, start_err = 0, shutdown_err = 0;
    size_t nforks = 0, rounds = 0;
    for (int round = 0; round < SPAWN_ROUNDS && !spawn_err; round++) {
        zp_ctx_t *ctx = zp_ctx_new ();
        if (!ctx) {
            spawn_err = shutdown_err = errno;
            break;
        }
        //  Bare forks from this process while a context (and its actor
        //  threads) exists, as the spawns below fork from it
        for (int batch = 0; batch < FORK_BATCHES && !fork_err; batch++) {
            uint64_t time = s_fork_batch ();
            if (time)
                forks [nforks++] = time;
            else
                fork_err = errno;
        }
        uint64_t start = s_now_ns ();
        for (int index = 0; index < SPAWN_WORKERS && !spawn_err; index++)
            if (!zp_ctx_spawn (ctx, NULL, s_idle_worker, NULL))
                spawn_err = errno;
        spawns [round] = s_now_ns () - start;
        start = s_now_ns ();
        zp_ctx_destroy (&ctx);
        shutdowns [round] = s_now_ns () - start;
        //  The same 100 registered, then forked together by start_all
        ctx = zp_ctx_new ();
        for (int index = 0; ctx && index < SPAWN_WORKERS && !start_err; index++)
            if (zp_ctx_process_factory (ctx, NULL, s_idle_worker, NULL) < 0)
                start_err = errno;
        start = s_now_ns ();
        if (!ctx || start_err || zp_ctx_start_all (ctx) < 0)
            start_err = start_err? start_err: errno;
        starts [round] = s_now_ns () - start;
        zp_ctx_destroy (&ctx);
        if (!spawn_err)
            rounds++;
    }
    double fork_ms = NAN;
    if (fork_err || !nforks)
        s_report_errno ("fork_exit_wait_100_ms", fork_err? fork_err: EIO);
    else {
        fork_ms = s_ms (s_median_ns (forks, nforks));
        s_report ("fork_exit_wait_100_ms", fork_ms, "ms", 2, NAN);
    }
    if (spawn_err) {
        s_report_errno ("spawn100_ms", spawn_err);
        s_report_errno ("shutdown100_ms", shutdown_err? shutdown_err: spawn_err);
    }
    else {
        s_report ("spawn100_ms", s_ms (s_median_ns (spawns, rounds)), "ms", 2, fork_ms);
        if (start_err)
            s_report_errno ("start_all100_ms", start_err);
        else
            s_report ("start_all100_ms", s_ms (s_median_ns (starts, rounds)), "ms", 2, fork_ms);
        s_report ("shutdown100_ms", s_ms (s_median_ns (shutdowns, rounds)), "ms", 2, NAN);
    }
}

static void
s_bench_ctx (void)
{
    s_progress ("ctx_new_destroy_ms");
    uint64_t samples [CTX_ROUNDS];
    for (int round = 0; round < CTX_ROUNDS; round++) {
        uint64_t start = s_now_ns ();
        zp_ctx_t *ctx = zp_ctx_new ();
        if (!ctx) {
            s_report_errno ("ctx_new_destroy_ms", errno);
            return;
        }
        zp_ctx_destroy (&ctx);
        samples [round] = s_now_ns () - start;
    }
    s_report ("ctx_new_destroy_ms", s_ms (s_median_ns (samples, CTX_ROUNDS)), "ms", 2, NAN);
}


//  --------------------------------------------------------------------------
//  The pool: zp_pool_map of POOL_TINY tiny tasks (square a number) and of
//  POOL_SPIN tasks of 1 ms of CPU each, on one worker per CPU. Each is
//  timed from zp_pool_new to the last result (_total_ms), then for a second
//  map on the started pool (_map_ms); the figures are the medians of
//  POOL_RUNS runs, each with a new pool, and pool_tiny_first_total_ms is the
//  first run alone, as a program that makes one pool sees it.
//  pool_tiny_cpu_ms is the CPU time of a whole run (pool creation, two maps,
//  destruction), ours and the pool workers': what the load of the machine
//  does not change; pool_destroy_ms the median zp_pool_destroy, workers
//  idle (the end of a tiny run). The 1 ms tasks are compared with
//  the ideal: their summed CPU time over min(workers, CPUs).

static zchunk_t *
s_pool_square (zp_worker_t *self, zchunk_t *input, void *props)
{
    int64_t number = 0;
    if (zchunk_size (input) != sizeof number)
        return NULL;
    memcpy (&number, zchunk_data (input), sizeof number);
    number *= number;
    return zchunk_new (&number, sizeof number);
}

//  Spin for POOL_SPIN_NS of this thread's CPU time
static zchunk_t *
s_pool_spin (zp_worker_t *self, zchunk_t *input, void *props)
{
    struct timespec now;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &now);
    uint64_t end = (uint64_t) now.tv_sec * 1000000000 + (uint64_t) now.tv_nsec + POOL_SPIN_NS;
    uint64_t cpu;
    do {
        clock_gettime (CLOCK_THREAD_CPUTIME_ID, &now);
        cpu = (uint64_t) now.tv_sec * 1000000000 + (uint64_t) now.tv_nsec;
    } while (cpu < end);
    return zchunk_dup (input);
}

//  CPU time used by this process (every thread) or by its reaped children
static uint64_t
s_cpu_ns (int who)
{
    struct rusage usage;
    getrusage (who, &usage);
    return ((uint64_t) usage.ru_utime.tv_sec + (uint64_t) usage.ru_stime.tv_sec) * 1000000000
         + ((uint64_t) usage.ru_utime.tv_usec + (uint64_t) usage.ru_stime.tv_usec) * 1000;
}

//  What one run measures, ns
typedef struct {
    uint64_t total;             //  From the pool's creation to the first map's end
    uint64_t map;               //  The second map
    uint64_t destroy;           //  zp_pool_destroy
    uint64_t cpu;               //  CPU time of it all, ours and the pool workers'
} pool_times_t;

//  One run: new pool, map (timed from the pool's creation), map again, end
static int
s_pool_run_once (zp_ctx_t *ctx, const char *name, zp_task_fn *fn, size_t count,
                 pool_times_t *times)
{
    zchunk_t **inputs = (zchunk_t **) calloc (count, sizeof (zchunk_t *));
    zchunk_t **outputs = (zchunk_t **) calloc (count, sizeof (zchunk_t *));
    int rc = inputs && outputs? 0: -1;
    for (size_t index = 0; rc == 0 && index < count; index++) {
        int64_t number = (int64_t) index;
        inputs [index] = zchunk_new (&number, sizeof number);
        rc = inputs [index]? 0: -1;
    }
    zp_pool_t *pool = NULL;
    uint64_t cpu = s_cpu_ns (RUSAGE_SELF) + s_cpu_ns (RUSAGE_CHILDREN);
    for (int round = 0; rc == 0 && round < 2; round++) {
        uint64_t start = s_now_ns ();
        if (round == 0 && !(pool = zp_pool_new (ctx, name, 0, fn, NULL)))
            rc = -1;
        if (rc == 0)
            rc = zp_pool_map (pool, inputs, count, outputs, WAIT_MS);
        *(round == 0? &times->total: &times->map) = s_now_ns () - start;
        //  The squares are checked: a wrong one is a failure
        for (size_t index = 0; index < count; index++) {
            int64_t value = -1;
            if (rc == 0 && zchunk_size (outputs [index]) == sizeof value)
                memcpy (&value, zchunk_data (outputs [index]), sizeof value);
            int64_t expected = fn == s_pool_square? (int64_t) (index * index): (int64_t) index;
            if (rc == 0 && value != expected) {
                errno = EPROTO;
                rc = -1;
            }
            zchunk_destroy (&outputs [index]);
        }
    }
    int saved = errno;
    uint64_t start = s_now_ns ();
    zp_pool_destroy (&pool);
    times->destroy = s_now_ns () - start;
    times->cpu = s_cpu_ns (RUSAGE_SELF) + s_cpu_ns (RUSAGE_CHILDREN) - cpu;
    for (size_t index = 0; inputs && index < count; index++)
        zchunk_destroy (&inputs [index]);
    free (inputs);
    free (outputs);
    errno = saved;
    return rc;
}

//  One workload, POOL_RUNS times: new pool, map, map again, end; the
//  medians, and the first run's total (the first pool of the process).
//  -1 with errno
static int
s_pool_run (zp_ctx_t *ctx, const char *name, zp_task_fn *fn, size_t count,
            uint64_t *first_ns, pool_times_t *medians)
{
    uint64_t totals [POOL_RUNS], maps [POOL_RUNS], destroys [POOL_RUNS], cpus [POOL_RUNS];
    for (int run = 0; run < POOL_RUNS; run++) {
        pool_times_t times;
        if (s_pool_run_once (ctx, name, fn, count, &times) < 0)
            return -1;
        totals [run] = times.total;
        maps [run] = times.map;
        destroys [run] = times.destroy;
        cpus [run] = times.cpu;
    }
    *first_ns = totals [0];
    medians->total = s_median_ns (totals, POOL_RUNS);
    medians->map = s_median_ns (maps, POOL_RUNS);
    medians->destroy = s_median_ns (destroys, POOL_RUNS);
    medians->cpu = s_median_ns (cpus, POOL_RUNS);
    return 0;
}

static void
s_bench_pool (void)
{
    s_progress ("pool");
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx) {
        s_report_errno ("pool_tiny_total_ms", errno);
        return;
    }
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    cpus = cpus > 0? cpus: 1;
    s_report ("pool_workers", (double) cpus, NULL, 0, NAN);
    uint64_t first;
    pool_times_t times;
    if (s_pool_run (ctx, "bench-tiny", s_pool_square, POOL_TINY, &first, &times) < 0) {
        s_report_errno ("pool_tiny_total_ms", errno);
        s_report_errno ("pool_tiny_map_ms", errno);
    }
    else {
        s_report ("pool_tiny_first_total_ms", s_ms (first), "ms", 1, NAN);
        s_report ("pool_tiny_total_ms", s_ms (times.total), "ms", 1, NAN);
        s_report ("pool_tiny_map_ms", s_ms (times.map), "ms", 1, NAN);
        s_report ("pool_tiny_map_ops", POOL_TINY / (times.map / 1e9), "ops/s", 0, NAN);
        s_report ("pool_tiny_cpu_ms", s_ms (times.cpu), "ms", 1, NAN);
        s_report ("pool_destroy_ms", s_ms (times.destroy), "ms", 2, NAN);
    }
    //  The workers are as many as the CPUs: the ideal is the CPU time over them
    double ideal = s_ms ((uint64_t) POOL_SPIN * POOL_SPIN_NS / (uint64_t) cpus);
    if (s_pool_run (ctx, "bench-spin", s_pool_spin, POOL_SPIN, &first, &times) < 0) {
        s_report_errno ("pool_1ms_total_ms", errno);
        s_report_errno ("pool_1ms_map_ms", errno);
    }
    else {
        s_report ("pool_1ms_ideal_ms", ideal, "ms", 1, NAN);
        s_report ("pool_1ms_total_ms", s_ms (times.total), "ms", 1, ideal);
        s_report ("pool_1ms_map_ms", s_ms (times.map), "ms", 1, ideal);
    }
    zp_ctx_destroy (&ctx);
}


//  --------------------------------------------------------------------------
//  12. load_1m_keys_s, rss_1m_keys_mb: LOAD_KEYS keys of 32-byte values.
//  One caller would take LOAD_KEYS round trips in a row; LOADERS workers
//  load disjoint ranges in parallel instead, which keeps the benchmark
//  short. The store is a thread of this process: its memory is our RSS.

typedef struct {
    char name [32];             //  Result name
    const char *go;             //  Start signal
    int first;                  //  First key number
    int count;                  //  Keys to load
} load_job_t;

static void
s_load_worker (zp_worker_t *worker, void *args)
{
    load_job_t *job = (load_job_t *) args;
    zp_state_t *state = zp_worker_state (worker);
    if (s_await_go (state, job->go) < 0)
        goto failed;
    uint64_t start = s_now_ns ();
    for (int index = job->first; index < job->first + job->count; index++) {
        char key [16], value [LOAD_VALUE_SIZE + 1];
        snprintf (key, sizeof key, "k%07d", index);
        snprintf (value, sizeof value, "v%0*d", LOAD_VALUE_SIZE - 1, index);
        if (zp_state_set_bytes (state, key, value, LOAD_VALUE_SIZE) < 0)
            goto failed;
    }
    uint64_t end = s_now_ns ();
    s_put (state, job->name, "start", (int64_t) start);
    s_put (state, job->name, "end", (int64_t) end);
    return;

failed:
    s_put_error (state, job->name, errno);
}

//  VmRSS of this process in kB, -1 when unknown
static long
s_rss_kb (void)
{
    FILE *file = fopen ("/proc/self/status", "r");
    if (!file)
        return -1;
    long rss = -1;
    char line [256];
    while (fgets (line, sizeof line, file))
        if (sscanf (line, "VmRSS: %ld kB", &rss) == 1)
            break;
    fclose (file);
    return rss;
}

static void
s_bench_load (void)
{
    s_progress ("load_1m_keys_s, rss_1m_keys_mb (8 workers in parallel)");
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx) {
        int err = errno;
        s_report_errno ("load_1m_keys_s", err);
        s_report_errno ("rss_1m_keys_mb", err);
        return;
    }
    zp_state_t *state = zp_ctx_state (ctx);
    //  Memory freed by the steps before would be reused by the store and
    //  hide part of its growth: hand it back first
    malloc_trim (0);
    long rss_before = s_rss_kb ();
    load_job_t jobs [LOADERS];
    zp_proc_t *procs [LOADERS] = { NULL };
    int err = 0;
    for (int index = 0; index < LOADERS && !err; index++) {
        jobs [index] = (load_job_t) {
            "", "bench/load-go", index * (LOAD_KEYS / LOADERS), LOAD_KEYS / LOADERS
        };
        snprintf (jobs [index].name, sizeof jobs [index].name, "load-%d", index);
        procs [index] = zp_ctx_spawn (ctx, jobs [index].name, s_load_worker, &jobs [index]);
        if (!procs [index])
            err = errno;
    }
    //  Go even when a spawn failed, so the others do not wait in vain
    if (zp_state_set_str (state, "bench/load-go", "1") < 0 && !err)
        err = errno;
    //  All the loaders share one deadline: the load is slow, not stuck,
    //  until LOAD_MS have passed
    uint64_t deadline = s_now_ns () + LOAD_MS * 1000000ULL;
    for (int index = 0; index < LOADERS; index++)
        s_join_by (procs [index], deadline);
    long rss_after = s_rss_kb ();

    uint64_t first = UINT64_MAX, last = 0;
    for (int index = 0; index < LOADERS && !err; index++) {
        int64_t start, end;
        if (s_take (state, jobs [index].name, "start", &start) < 0
        ||  s_take (state, jobs [index].name, "end", &end) < 0)
            err = errno;
        else {
            first = (uint64_t) start < first? (uint64_t) start: first;
            last = (uint64_t) end > last? (uint64_t) end: last;
        }
    }
    //  Every set returned 0 in its loader; the store agrees on the count
    //  and on a sample of values (listing a million keys back would cost
    //  seconds, for no more certainty)
    size_t loaded = 0;
    if (!err) {
        loaded = zp_state_size (state);
        int samples [] = { 0, LOAD_KEYS / 2 + 1, LOAD_KEYS - 1 };
        for (size_t index = 0; index < sizeof samples / sizeof samples [0]; index++) {
            char key [16], value [LOAD_VALUE_SIZE + 1];
            snprintf (key, sizeof key, "k%07d", samples [index]);
            snprintf (value, sizeof value, "v%0*d", LOAD_VALUE_SIZE - 1, samples [index]);
            zchunk_t *chunk = zp_state_get_bytes (state, key);
            if (!chunk || zchunk_size (chunk) != LOAD_VALUE_SIZE
            ||  memcmp (zchunk_data (chunk), value, LOAD_VALUE_SIZE) != 0)
                loaded = 0;
            zchunk_destroy (&chunk);
        }
    }
    if (err) {
        s_report_errno ("load_1m_keys_s", err);
        s_report_errno ("rss_1m_keys_mb", err);
    }
    else
    if (loaded < LOAD_KEYS) {
        char why [64];
        if (loaded)
            snprintf (why, sizeof why, "%zu keys of %d in the store", loaded, LOAD_KEYS);
        else
            snprintf (why, sizeof why, "a loaded value is wrong or missing");
        s_report_failure ("load_1m_keys_s", why);
        s_report_failure ("rss_1m_keys_mb", why);
    }
    else {
        s_report ("load_1m_keys_s", (last - first) / 1e9, "s", 2, NAN);
        if (rss_before < 0 || rss_after < 0)
            s_report_errno ("rss_1m_keys_mb", ENOENT);
        else
            s_report ("rss_1m_keys_mb", (rss_after - rss_before) / 1024.0, "MB", 1, NAN);
    }
    s_progress ("destroying the 1M-key context");
    zp_ctx_destroy (&ctx);
}


//  --------------------------------------------------------------------------
//  Batches, snapshots and replicas
//  replica_get_rt: a worker's get of an unchanged key through its replica,
//  ratio to get_rt (replica_get_speedup: the inverse). stale_get_rt,
//  replica_stale_get_rt: a worker's get right after another handle set the
//  key, without and with a replica (its worst case: every read brings it up
//  to date), interleaved, ratio replica to plain.
//  txn_incr_ops_8: 8 workers committing batches of 16 incr on one key,
//  counted per incr. snapshot_10k_ms: a snapshot of 10,000 keys of 32-byte
//  values; snapshot_10k_wire_bytes: its payload on the wire;
//  snapshot_10k_mem_bytes: the heap the view holds (a replica of those keys
//  holds the same).

#define REPLICA_KEY     "bench/rep/key"
#define PLAIN_KEY       "bench/plain/key"
#define TXN_BATCH       16
#define TXN_EACH        (TXN_BATCH * 1000)  //  incr by each of INCR_WORKERS
#define SNAP_KEYS       10000
#define SNAP_ROUNDS     20

//  One timed get of key on reader, after a set of it to round on writer
//  (writer NULL: no set); its ns in *sample. 0, or -1 with errno
static int
s_time_get (zp_state_t *reader, zp_state_t *writer, const char *key, int round,
            uint64_t *sample)
{
    if (writer && zp_state_set_int (writer, key, round) < 0)
        return -1;
    uint64_t start = s_now_ns ();
    char *value = zp_state_get_str (reader, key);
    *sample = s_now_ns () - start;
    if (!value)
        return -1;
    bool right = !writer || atoi (value) == round;
    free (value);
    return right? 0: (errno = EPROTO, -1);
}

//  The worker's handle keeps a replica of "bench/rep/". Reads of an
//  unchanged key of it, nothing changing meanwhile; then, interleaved round
//  by round so that both see the same machine, a read of a key outside it (a plain get) and a read of
//  a key in it (the replica must catch up), each right after another
//  handle's set of that key, in turns
static void
s_replica_worker (zp_worker_t *worker, void *args)
{
    zp_state_t *state = zp_worker_state (worker);
    zp_state_t *writer = zp_state_connect ((const char *) args, NULL);
    uint64_t *samples [3] = {
        (uint64_t *) malloc (RT_ROUNDS * sizeof (uint64_t)),
        (uint64_t *) malloc (RT_ROUNDS * sizeof (uint64_t)),
        (uint64_t *) malloc (RT_ROUNDS * sizeof (uint64_t))
    };
    const char *whats [3] = { "replica", "stale", "replica_stale" };
    errno = 0;
    int rc = writer && samples [0] && samples [1] && samples [2]
          && zp_state_replicate (state, "bench/rep/") == 0? 0: -1;
    //  Nothing changes meanwhile: every read is local
    for (int round = 0; round < RT_WARMUP + RT_ROUNDS && rc == 0; round++) {
        uint64_t sample;
        rc = s_time_get (state, NULL, REPLICA_KEY, 0, &sample);
        if (round >= RT_WARMUP)
            samples [0][round - RT_WARMUP] = sample;
    }
    for (int round = 0; round < RT_WARMUP + RT_ROUNDS && rc == 0; round++) {
        uint64_t sample [3];
        //  Which goes first alternates, so that neither gains by its place
        int first = 1 + round % 2;
        const char *keys [3] = { REPLICA_KEY, PLAIN_KEY, REPLICA_KEY };
        rc = s_time_get (state, writer, keys [first], round, &sample [first]) == 0
          && s_time_get (state, writer, keys [3 - first], round, &sample [3 - first]) == 0
           ? 0: -1;
        for (int index = 1; index < 3 && round >= RT_WARMUP; index++)
            samples [index][round - RT_WARMUP] = sample [index];
    }
    int err = rc < 0? (errno? errno: ENOMEM): 0;
    zp_state_destroy (&writer);
    if (err)
        s_put_error (state, "replica", err);
    for (int index = 0; index < 3; index++) {
        if (!err)
            s_put (state, "replica", whats [index],
                   (int64_t) s_median_ns (samples [index], RT_ROUNDS));
        free (samples [index]);
    }
}

static void
s_bench_replica (zp_ctx_t *ctx, double get_us)
{
    s_progress ("replica_get_rt, stale_get_rt, replica_stale_get_rt");
    const char *names [] = { "replica_get_rt", "stale_get_rt", "replica_stale_get_rt" };
    const char *whats [] = { "replica", "stale", "replica_stale" };
    zp_state_t *state = zp_ctx_state (ctx);
    zp_proc_t *proc = zp_state_set_int (state, REPLICA_KEY, 0) == 0
                    ? zp_ctx_spawn (ctx, "replica", s_replica_worker,
                                    (void *) zp_ctx_endpoint (ctx))
                    : NULL;
    int err = proc? 0: errno;
    s_join (proc);
    double us [3] = { NAN, NAN, NAN };
    for (int index = 0; index < 3; index++) {
        int64_t median;
        if (err || s_take (state, "replica", whats [index], &median) < 0)
            s_report_errno (names [index], err? err: errno);
        else
            us [index] = s_us ((uint64_t) median);
    }
    //  The ratios: to a plain get of this run, and replica to plain when
    //  every read follows a write
    if (!isnan (us [0])) {
        s_report (names [0], us [0], "us", 3, get_us);
        if (!isnan (get_us))
            s_report ("replica_get_speedup", get_us / us [0], "x", 0, NAN);
    }
    if (!isnan (us [1]))
        s_report (names [1], us [1], "us", 2, NAN);
    if (!isnan (us [2]))
        s_report (names [2], us [2], "us", 2, us [1]);
}

static void
s_bench_txn (zp_ctx_t *ctx)
{
    s_progress ("txn_incr_ops_8");
    bool exact = false;
    double ops = s_incr_run (ctx, "txn8", INCR_WORKERS, TXN_EACH, TXN_BATCH, &exact);
    if (ops < 0)
        s_report_errno ("txn_incr_ops_8", errno);
    else {
        s_report ("txn_incr_ops_8", ops, "ops/s", 0, NAN);
        s_report ("txn_count_ok", exact? 1: 0, NULL, 0, NAN);
        if (!exact)
            s_failed = true;
    }
}

static void
s_bench_snapshot (zp_ctx_t *ctx)
{
    s_progress ("snapshot_10k_ms, snapshot_10k_wire_bytes, snapshot_10k_mem_bytes");
    zp_state_t *state = zp_ctx_state (ctx);
    zp_txn_t *txn = zp_txn_new (state);
    uint64_t *samples = (uint64_t *) malloc (SNAP_ROUNDS * sizeof (uint64_t));
    //  The reply: its header frame, then one long frame holding, per key,
    //  an operation byte, the key's size, the key, the value's size and the
    //  value (doc/PROTOCOL.md, SINCE); ZMTP frames 2 and 9 bytes of framing
    size_t wire = 2 + 16 + 9;
    int rc = txn && samples? 0: -1;
    for (int index = 0; index < SNAP_KEYS && rc == 0; index++) {
        char key [32];
        snprintf (key, sizeof key, "bench/snap/%05d", index);
        rc = zp_txn_set_str (txn, key, SMALL_VALUE SMALL_VALUE);
        if (rc == 0 && (index + 1) % 1000 == 0)
            rc = zp_txn_commit (txn);
        wire += 2 + strlen (key) + 4 + 2 * strlen (SMALL_VALUE);
    }
    zp_state_t *view = NULL;
    for (int round = 0; round < SNAP_ROUNDS && rc == 0; round++) {
        zp_state_destroy (&view);
        uint64_t start = s_now_ns ();
        view = zp_state_snapshot (state, "bench/snap/");
        samples [round] = s_now_ns () - start;
        rc = view && zp_state_size (view) == SNAP_KEYS? 0: -1;
    }
    //  The view's heap: what malloc holds with it, less without it
    struct mallinfo2 with = mallinfo2 ();
    zp_state_destroy (&view);
    struct mallinfo2 without = mallinfo2 ();
    if (rc < 0)
        s_report_errno ("snapshot_10k_ms", errno? errno: EPROTO);
    else {
        s_report ("snapshot_10k_ms", s_ms (s_median_ns (samples, SNAP_ROUNDS)), "ms", 2, NAN);
        s_report ("snapshot_10k_wire_bytes", (double) wire, "bytes", 0, NAN);
        s_report ("snapshot_10k_mem_bytes", (double) (with.uordblks - without.uordblks),
                  "bytes", 0, NAN);
    }
    free (samples);
    zp_txn_destroy (&txn);
}


//  --------------------------------------------------------------------------
//  The steps that share one context: 4 to 9. getset_us and mailbox_ops get
//  the plain figures the CURVE ones are compared with (NAN: failed).

static void
s_bench_context_steps (double raw_us, double raw_ops, double getset_us [2],
                       double *mailbox_ops)
{
    getset_us [0] = getset_us [1] = *mailbox_ops = NAN;
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx) {
        int err = errno;
        const char *names [] = {
            "get_rt", "set_rt", "incr_ops_1", "incr_ops_8", "incr_count_ok",
            "replica_get_rt", "stale_get_rt", "replica_stale_get_rt", "txn_incr_ops_8",
            "txn_count_ok", "snapshot_10k_ms",
            "wake_rt", "predicate_wake_rt", "watch_stream_ops", "watch_gaps",
            "mailbox_rt", "mailbox_send_rt", "mailbox_ops"
        };
        for (size_t index = 0; index < sizeof names / sizeof names [0]; index++)
            s_report_errno (names [index], err);
        return;
    }
    getset_job_t job = { "get_rt", "set_rt" };
    const double raw [2] = { raw_us, raw_us };
    s_bench_getset (ctx, &job, raw, getset_us);
    s_bench_replica (ctx, getset_us [0]);
    s_bench_incr (ctx);
    s_bench_txn (ctx);
    s_bench_snapshot (ctx);
    double wake_us = s_bench_wake (ctx, raw_us);
    s_bench_predicate (ctx, wake_us);
    s_bench_stream (ctx);
    *mailbox_ops = s_bench_mailbox (ctx, true, "mailbox_ops", raw_us, raw_ops);
    zp_ctx_destroy (&ctx);
}


//  --------------------------------------------------------------------------

static void
s_usage (FILE *stream)
{
    fprintf (stream,
        "usage: zproc-bench [--json] [--no-1m] [--pool] [--spawn] [--help]\n"
        "  --json    print the figures as one JSON object {\"name\": value, ...}\n"
        "  --no-1m   skip the 1,000,000-key load (load_1m_keys_s, rss_1m_keys_mb)\n"
        "  --pool    only the pool figures (pool_*), after the raw_unix_rt ones\n"
        "  --spawn   only the spawn figures (fork_exit_wait_100_ms, spawn100_ms,\n"
        "            start_all100_ms, shutdown100_ms) and ctx_new_destroy_ms\n"
        "  --help    this text\n"
        "Prints one line per figure, 'name value unit [ratio=R]'; progress goes to\n"
        "stderr. Exit status 1 when a figure failed or a count was wrong.\n");
}

int
main (int argc, char *argv [])
{
    bool load = true, pool_only = false, spawn_only = false;
    for (int index = 1; index < argc; index++) {
        if (streq (argv [index], "--json"))
            s_json = true;
        else
        if (streq (argv [index], "--no-1m"))
            load = false;
        else
        if (streq (argv [index], "--pool"))
            pool_only = true;
        else
        if (streq (argv [index], "--spawn"))
            spawn_only = true;
        else
        if (streq (argv [index], "--help") || streq (argv [index], "-h")) {
            s_usage (stdout);
            return 0;
        }
        else {
            fprintf (stderr, "zproc-bench: unknown option '%s'\n", argv [index]);
            s_usage (stderr);
            return 2;
        }
    }
    //  The raw references first, before CZMQ starts any thread; the
    //  socketpair first of all, as every later figure is divided by it
    s_bench_raw_unix ("raw_unix_rt", -1, -1);
    s_bench_raw_unix ("raw_unix_rt_one_cpu", 0, 0);
    if (sysconf (_SC_NPROCESSORS_ONLN) > 1)
        s_bench_raw_unix ("raw_unix_rt_two_cpus", 0, 1);
    if (pool_only || spawn_only) {
        if (spawn_only) {
            s_bench_spawn ();
            s_bench_ctx ();
        }
        if (pool_only)
            s_bench_pool ();
        if (s_json)
            s_json_print ();
        s_figures_destroy ();
        return s_failed? 1: 0;
    }
    double raw_us = s_bench_raw_zmq ();
    double raw_ops = s_bench_raw_zmq_ops ();
    double getset_us [2], mailbox_ops;
    s_bench_context_steps (raw_us, raw_ops, getset_us, &mailbox_ops);
    s_bench_curve (getset_us, mailbox_ops);
    s_bench_spawn ();
    s_bench_ctx ();
    s_bench_pool ();
    if (load)
        s_bench_load ();
    s_bench_raw_unix ("raw_unix_rt_end", -1, -1);
    if (s_json)
        s_json_print ();
    s_figures_destroy ();
    return s_failed? 1: 0;
}
