/*  =========================================================================
    test-promises - what the README promises, tried as a user would:
    contexts that come and go, exit codes that come back, a shutdown that
    asks before it forces, mail that outlives its sender
    =========================================================================
*/

#include "harness.h"
#include <signal.h>

//  One context made, used and destroyed; asserts each step
static void
s_ctx_cycle (int cycle)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx)
        test_fail (__FILE__, __LINE__, errno, "zp_ctx_new failed in cycle %d", cycle);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_EQ (zp_state_set_int (state, "cycle", cycle), 0);
    int64_t value = -1;
    ASSERT_EQ (zp_state_get_int (state, "cycle", &value), 0);
    ASSERT_EQ (value, cycle);
    zp_ctx_destroy (&ctx);
}


//  A context is never refused because another one just went: its inproc
//  endpoints must not be named after an address malloc hands out again
TEST_IMPL (promise_ctx_churn)
{
    for (int cycle = 0; cycle < 1000; cycle++)
        s_ctx_cycle (cycle);
    //  And with another context alive beside them
    zp_ctx_t *other = zp_ctx_new ();
    ASSERT_NOT_NULL (other);
    for (int cycle = 0; cycle < 200; cycle++) {
        s_ctx_cycle (cycle);
        ASSERT_EQ (zp_state_set_int (zp_ctx_state (other), "cycle", cycle), 0);
    }
    zp_ctx_destroy (&other);
    return 0;
}


//  ---------------------------------------------------------------------------
//  zp_ctx_wait_all passes a failure on

//  Exits with the code in props once "go/NAME" is set
static void
s_worker_exit_on_go (zp_worker_t *self, void *props)
{
    char key [64];
    snprintf (key, sizeof key, "go/%s", zp_worker_name (self));
    ASSERT_EQ (zp_state_get_when_available (zp_worker_state (self), key, test_ms (10000)), 0);
    if ((int) (intptr_t) props == 134)
        abort ();
    exit ((int) (intptr_t) props);
}

//  Let worker name go, and wait for its exit
static void
s_go (zp_ctx_t *ctx, const char *name, int expected)
{
    char key [64];
    snprintf (key, sizeof key, "go/%s", name);
    ASSERT_EQ (zp_state_set_str (zp_ctx_state (ctx), key, "1"), 0);
    ASSERT_EQ (zp_proc_wait (zp_ctx_proc (ctx, name), test_ms (10000)), expected);
}

//  Fails once (exit 5), then exits 0: restarted by a transient policy
static void
s_worker_fails_once (zp_worker_t *self, void *props)
{
    int64_t runs = 0;
    ASSERT_EQ (zp_state_incr (zp_worker_state (self), "runs", 1, &runs), 0);
    exit (runs == 1? 5: 0);
}

TEST_IMPL (promise_wait_all_status)
{
    //  Every worker exited with 0: 0
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "ok1", s_worker_exit_on_go, (void *) 0));
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "ok2", s_worker_exit_on_go, (void *) 0));
    s_go (ctx, "ok1", 0);
    s_go (ctx, "ok2", 0);
    ASSERT_EQ (zp_ctx_wait_all (ctx, test_ms (10000)), 0);
    zp_ctx_destroy (&ctx);

    //  The first to fail gives the status, whatever comes after it
    ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "ok", s_worker_exit_on_go, (void *) 0));
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "three", s_worker_exit_on_go, (void *) 3));
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "aborts", s_worker_exit_on_go, (void *) 134));
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "late", s_worker_exit_on_go, (void *) 0));
    s_go (ctx, "ok", 0);
    s_go (ctx, "three", 3);
    s_go (ctx, "aborts", 128 + SIGABRT);
    //  One still runs: a timeout is still a timeout
    ASSERT_FAIL_ERRNO (zp_ctx_wait_all (ctx, 100), ETIMEDOUT);
    s_go (ctx, "late", 0);
    ASSERT_EQ (zp_ctx_wait_all (ctx, test_ms (10000)), 3);
    ASSERT_EQ (zp_ctx_wait_all (ctx, 0), 3);
    zp_ctx_destroy (&ctx);

    //  A signal: 128 + signal, as zp_proc_wait gives it
    ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "aborts", s_worker_exit_on_go, (void *) 134));
    ASSERT_EQ (zp_state_set_str (zp_ctx_state (ctx), "go/aborts", "1"), 0);
    ASSERT_EQ (zp_ctx_wait_all (ctx, test_ms (10000)), 128 + SIGABRT);
    zp_ctx_destroy (&ctx);

    //  A worker restarted by its policy counts by its final exit
    ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    ASSERT_EQ (zp_ctx_set_restart (ctx, ZP_RESTART_TRANSIENT), 0);
    ASSERT_EQ (zp_ctx_set_backoff (ctx, 10, 100), 0);
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "flaky", s_worker_fails_once, NULL));
    ASSERT_EQ (zp_ctx_wait_all (ctx, test_ms (10000)), 0);
    int64_t runs = 0;
    ASSERT_EQ (zp_state_get_int (zp_ctx_state (ctx), "runs", &runs), 0);
    ASSERT_EQ (runs, 2);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  ---------------------------------------------------------------------------
//  Mail outlives its sender

#define BURST       2000

//  Sends count messages numbered from 0 to worker to; each send must
//  return 0
static void
s_send_numbered (zp_worker_t *self, const char *to, int count)
{
    for (int index = 0; index < count; index++) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addstrf (msg, "%d", index);
        if (zp_worker_send (self, to, &msg) != 0)
            test_fail (__FILE__, __LINE__, errno, "send %d failed", index);
    }
}

//  Reads until count numbered messages came or none came for a while, and
//  sets "received" to how many came in order
static void
s_read_numbered (zp_worker_t *self, int count)
{
    int received = 0;
    while (received < count) {
        zmsg_t *msg = zp_worker_recv (self, test_ms (3000));
        if (!msg) {
            fprintf (stderr, "reader: nothing after %d: %s\n", received, strerror (errno));
            break;
        }
        char *body = zmsg_popstr (msg);
        bool in_order = body && atoi (body) == received;
        if (!in_order)
            fprintf (stderr, "reader: message %d is %s\n", received, body? body: "(null)");
        zstr_free (&body);
        zmsg_destroy (&msg);
        if (!in_order)
            break;
        received++;
    }
    ASSERT_EQ (zp_state_set_int (zp_worker_state (self), "received", received), 0);
}

//  Sends BURST numbered messages to "reader" and exits at once
static void
s_worker_burst_and_exit (zp_worker_t *self, void *props)
{
    ASSERT_EQ (zp_state_set_str (zp_worker_state (self), "sending", "yes"), 0);
    s_send_numbered (self, "reader", BURST);
}

//  Starts reading a second after the sender started
static void
s_worker_late_reader (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    ASSERT_EQ (zp_state_get_when_available (state, "sending", test_ms (20000)), 0);
    zclock_sleep (1000);
    s_read_numbered (self, BURST);
}

TEST_IMPL (promise_mail_outlives_sender)
{
    for (int trial = 0; trial < 3; trial++) {
        zp_ctx_t *ctx = zp_ctx_new ();
        ASSERT_NOT_NULL (ctx);
        zp_proc_t *reader = zp_ctx_spawn (ctx, "reader", s_worker_late_reader, NULL);
        ASSERT_NOT_NULL (reader);
        zp_proc_t *sender = zp_ctx_spawn (ctx, "sender", s_worker_burst_and_exit, NULL);
        ASSERT_NOT_NULL (sender);
        ASSERT_EQ (zp_proc_wait (sender, test_ms (20000)), 0);
        ASSERT_EQ (zp_proc_wait (reader, test_ms (20000)), 0);
        int64_t received = -1;
        ASSERT_EQ (zp_state_get_int (zp_ctx_state (ctx), "received", &received), 0);
        if (received != BURST)
            test_fail (__FILE__, __LINE__, 0, "trial %d: %" PRId64 " of %d received in order",
                       trial, received, BURST);
        zp_ctx_destroy (&ctx);
    }
    return 0;
}


//  The same when the receiver has not looked at its mailbox yet (a forked
//  worker makes its mailbox socket on first need): a sender whose mail may
//  take 200 ms to leave exits at once, and its receiver, busy elsewhere
//  until then and long after, still gets all of it, in order
#define FEW         10

static void
s_worker_few_and_exit (zp_worker_t *self, void *props)
{
    zp_state_set_timeout (zp_worker_state (self), test_ms (200));
    s_send_numbered (self, "busy", FEW);
}

static void
s_worker_busy_reader (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    ASSERT_EQ (zp_state_get_when_equal_str (state, "sender", "gone", test_ms (20000)), 0);
    s_read_numbered (self, FEW);
}

TEST_IMPL (promise_mail_outlives_sender_busy)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    zp_proc_t *reader = zp_ctx_spawn (ctx, "busy", s_worker_busy_reader, NULL);
    ASSERT_NOT_NULL (reader);
    zp_proc_t *sender = zp_ctx_spawn (ctx, "sender", s_worker_few_and_exit, NULL);
    ASSERT_NOT_NULL (sender);
    //  Reaped: its linger is over, its mail delivered or dropped
    ASSERT_EQ (zp_proc_wait (sender, test_ms (20000)), 0);
    zclock_sleep (test_ms (300));
    ASSERT_EQ (zp_state_set_str (state, "sender", "gone"), 0);
    ASSERT_EQ (zp_proc_wait (reader, test_ms (20000)), 0);
    int64_t received = -1;
    ASSERT_EQ (zp_state_get_int (state, "received", &received), 0);
    ASSERT_EQ (received, FEW);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  ---------------------------------------------------------------------------
//  Shutdown asks before it forces: after a SIGINT in the parent, $TERM
//  reaches every worker, nested contexts included, and nothing is left

#include <dirent.h>

//  What each process of the tree reports on a pipe it inherited
typedef struct {
    pid_t pid;                  //  Who
    char event;                 //  'R' ready, 'T' left on $TERM, 'S' left on a signal
} shutdown_event_t;

#define SHUTDOWN_PROCESSES  8   //  6 workers, and one child in each of 2 nested contexts

static int s_events_fd = -1;    //  The pipe's write end, in the helper and its tree

static void
s_report (char event)
{
    shutdown_event_t report;
    memset (&report, 0, sizeof report);     //  No uninitialised padding on the pipe
    report.pid = getpid ();
    report.event = event;
    ASSERT_EQ (write (s_events_fd, &report, sizeof report), (ssize_t) sizeof report);
}

//  Read the mailbox until $TERM (or a signal) and report which it was
static void
s_drain_and_report (zp_worker_t *self)
{
    test_drain_mailbox (self);
    s_report (zsys_interrupted? 'S': 'T');
}

static void
s_worker_plain (zp_worker_t *self, void *props)
{
    s_report ('R');
    s_drain_and_report (self);
}

//  A worker with a context of its own (zp_ctx_new), and a worker in it
static void
s_worker_own_ctx (zp_worker_t *self, void *props)
{
    zp_ctx_t *inner = zp_ctx_new ();
    ASSERT_NOT_NULL (inner);
    ASSERT_NOT_NULL (zp_ctx_spawn (inner, "inner", s_worker_plain, NULL));
    s_report ('R');
    s_drain_and_report (self);
    zp_ctx_destroy (&inner);
}

//  A worker with a worker of its own (zp_worker_spawn)
static void
s_worker_spawner (zp_worker_t *self, void *props)
{
    ASSERT_NOT_NULL (zp_worker_spawn (self, NULL, s_worker_plain, NULL));
    s_report ('R');
    s_drain_and_report (self);
}

//  Ignores $TERM and SIGTERM: only SIGKILL stops it
static void
s_worker_stubborn (zp_worker_t *self, void *props)
{
    sigset_t blocked;
    sigemptyset (&blocked);
    sigaddset (&blocked, SIGTERM);
    sigprocmask (SIG_BLOCK, &blocked, NULL);
    s_report ('R');
    while (true)
        zclock_sleep (1000);
}

//  A worker with a context of its own whose worker must be killed
static void
s_worker_own_stubborn (zp_worker_t *self, void *props)
{
    zp_ctx_t *inner = zp_ctx_new ();
    ASSERT_NOT_NULL (inner);
    ASSERT_NOT_NULL (zp_ctx_spawn (inner, "stubborn", s_worker_stubborn, NULL));
    s_report ('R');
    s_drain_and_report (self);
    zp_ctx_destroy (&inner);
}

//  The parent: six workers (or the stubborn tree), then waits until
//  interrupted
static void
s_shutdown_parent (bool stubborn)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx)
        _exit (10);
    if (stubborn)
        ASSERT_NOT_NULL (zp_ctx_spawn (ctx, NULL, s_worker_own_stubborn, NULL));
    else {
        ASSERT_NOT_NULL (zp_ctx_spawn (ctx, NULL, s_worker_own_ctx, NULL));
        ASSERT_NOT_NULL (zp_ctx_spawn (ctx, NULL, s_worker_spawner, NULL));
        for (int index = 0; index < 4; index++)
            ASSERT_NOT_NULL (zp_ctx_spawn (ctx, NULL, s_worker_plain, NULL));
    }
    s_report ('R');
    int rc = zp_ctx_wait_all (ctx, test_ms (20000));
    int err = errno;
    zp_ctx_destroy (&ctx);
    _exit (rc == -1 && err == EINTR? 0: 11);
}

//  True when dir holds anything whose name starts with "zproc"
static bool
s_holds_zproc (const char *dir)
{
    DIR *handle = opendir (dir);
    ASSERT_NOT_NULL (handle);
    struct dirent *entry;
    bool found = false;
    while ((entry = readdir (handle)))
        if (strncmp (entry->d_name, "zproc", 5) == 0) {
            fprintf (stderr, "left in $TMPDIR: %s\n", entry->d_name);
            found = true;
        }
    closedir (handle);
    return found;
}

//  Start the parent (stubborn or not) with nprocesses in its tree, SIGINT
//  it, and check that every process is gone within limit_ms, that those
//  that read their mailbox left on $TERM (the stubborn one is killed), and
//  that $TMPDIR holds nothing of zproc
static void
s_shutdown_check (bool stubborn, int nprocesses, int limit_ms)
{
    char tmpdir [] = "/tmp/zproc-test-shutdown-XXXXXX";
    ASSERT_NOT_NULL (mkdtemp (tmpdir));
    ASSERT_EQ (setenv ("TMPDIR", tmpdir, 1), 0);
    int fds [2];
    ASSERT_EQ (pipe (fds), 0);
    pid_t helper = fork ();
    ASSERT (helper != -1);
    if (helper == 0) {
        close (fds [0]);
        s_events_fd = fds [1];
        s_shutdown_parent (stubborn);
    }
    close (fds [1]);
    //  Every process is ready, and the parent has spawned them all
    pid_t pids [SHUTDOWN_PROCESSES];
    int count = 0;
    for (int index = 0; index < nprocesses + 1; index++) {
        shutdown_event_t event;
        ASSERT_EQ (test_read_exact (fds [0], &event, sizeof event, test_ms (20000)), 0);
        ASSERT_EQ (event.event, 'R');
        if (event.pid != helper) {
            ASSERT_LT (count, SHUTDOWN_PROCESSES);
            pids [count++] = event.pid;
        }
    }
    ASSERT_EQ (count, nprocesses);
    //  One SIGINT, to the parent alone
    int64_t start = test_now_ms ();
    ASSERT_EQ (kill (helper, SIGINT), 0);
    ASSERT_EQ (test_wait_child (helper, test_ms (10000)), 0);
    for (int index = 0; index < nprocesses; index++)
        ASSERT_EQ (test_wait_gone (pids [index], test_ms (10000)), 0);
    int64_t elapsed = test_now_ms () - start;
    //  Every process that reads its mailbox left on $TERM, none on a signal
    for (int index = 0; index < nprocesses - stubborn; index++) {
        shutdown_event_t event;
        ASSERT_EQ (test_read_exact (fds [0], &event, sizeof event, test_ms (1000)), 0);
        if (event.event != 'T')
            test_fail (__FILE__, __LINE__, 0, "pid %d left with '%c'", (int) event.pid,
                       event.event);
    }
    close (fds [0]);
    ASSERT_LE (elapsed, test_ms (limit_ms));
    bool left = s_holds_zproc (tmpdir);
    char *command = zsys_sprintf ("rm -rf '%s'", tmpdir);
    ASSERT_EQ (system (command), 0);
    zstr_free (&command);
    ASSERT (!left);
}

TEST_IMPL (promise_shutdown_term)
{
    //  Within 1.5 s (scaled on a slow machine): no grace period ran out
    s_shutdown_check (false, SHUTDOWN_PROCESSES, 1500);
    return 0;
}

//  A worker's own context must kill a worker of its own: it finishes
//  (shorter grace periods) before the parent escalates to the worker
TEST_IMPL (promise_shutdown_nested_kill)
{
    s_shutdown_check (true, 2, 4000);
    return 0;
}


//  --------------------------------------------------------------------------
//  A worker that never made its mailbox is stopped on its control channel,
//  without the ZeroMQ context it would make only to read $TERM; one that
//  makes its mailbox after the stop came finds $TERM in it

//  What a stopped worker reports: how recv ended, whether it had ZeroMQ
//  threads, and whether its mailbox socket was readable when it looked
typedef struct {
    int recv_errno;
    bool zmq_threads;
    bool readable;
} stop_report_t;

#define STOP_WORKERS    3

//  True when a thread of ours is libzmq's (ZMQbg/IO/0, ZMQbg/Reaper)
static bool
s_has_zmq_threads (void)
{
    DIR *tasks = opendir ("/proc/self/task");
    ASSERT_NOT_NULL (tasks);
    bool found = false;
    struct dirent *entry;
    while (!found && (entry = readdir (tasks))) {
        if (entry->d_name [0] == '.')
            continue;
        char *path = zsys_sprintf ("/proc/self/task/%s/comm", entry->d_name);
        FILE *file = fopen (path, "r");
        char comm [32] = "";
        if (file && fgets (comm, sizeof comm, file))
            found = strncmp (comm, "ZMQbg", 5) == 0;
        if (file)
            fclose (file);
        zstr_free (&path);
    }
    closedir (tasks);
    return found;
}

static void
s_stop_send (void *props, const stop_report_t *report)
{
    int fd = (int) (intptr_t) props;
    ASSERT_EQ (write (fd, report, sizeof *report), (ssize_t) sizeof *report);
}

static void
s_worker_idle_stopped (zp_worker_t *self, void *props)
{
    stop_report_t report = { 0 };
    ASSERT_NULL (zp_worker_recv (self, -1));
    report.recv_errno = errno;
    report.zmq_threads = s_has_zmq_threads ();
    s_stop_send (props, &report);
}

//  Busy while the stop comes (its status says "stopping" once the reaper
//  is at it), then polls its mailbox as a zloop program would
static void
s_worker_busy_stopped (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    char *key = zsys_sprintf ("$proc/%s/status", zp_worker_name (self));
    char *status = NULL;
    while (!status || !streq (status, "stopping")) {
        zstr_free (&status);
        zclock_sleep (10);
        status = zp_state_get_str (state, key);
    }
    zstr_free (&status);
    zstr_free (&key);
    zclock_sleep (100);
    stop_report_t report = { 0 };
    zpoller_t *poller = zpoller_new (zp_worker_mailbox (self), NULL);
    ASSERT_NOT_NULL (poller);
    report.readable = zpoller_wait (poller, test_ms (5000)) != NULL;
    zpoller_destroy (&poller);
    ASSERT_NULL (zp_worker_recv (self, 0));
    report.recv_errno = errno;
    s_stop_send (props, &report);
}

static void
s_stop_check (zp_worker_fn *fn, bool idle)
{
    int fds [2];
    ASSERT_EQ (pipe (fds), 0);
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    //  Long enough that no SIGTERM comes while they are at it
    zp_ctx_set_grace (ctx, test_ms (10000));
    for (int index = 0; index < STOP_WORKERS; index++)
        ASSERT_NOT_NULL (zp_ctx_spawn (ctx, NULL, fn, (void *) (intptr_t) fds [1]));
    close (fds [1]);
    int64_t start = test_now_ms ();
    zp_ctx_destroy (&ctx);
    for (int index = 0; index < STOP_WORKERS; index++) {
        stop_report_t report;
        ASSERT_EQ (test_read_exact (fds [0], &report, sizeof report, 0), 0);
        ASSERT_EQ (report.recv_errno, EINTR);
        if (idle)
            ASSERT (!report.zmq_threads);
        else
            ASSERT (report.readable);
    }
    close (fds [0]);
    //  Stopped, not signalled after the grace period
    ASSERT_LT (test_now_ms () - start, test_ms (10000));
}

TEST_IMPL (promise_stop_idle_no_zmq)
{
    s_stop_check (s_worker_idle_stopped, true);
    return 0;
}

TEST_IMPL (promise_stop_busy_mailbox)
{
    s_stop_check (s_worker_busy_stopped, false);
    return 0;
}
