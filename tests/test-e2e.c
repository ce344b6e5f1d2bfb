/*  =========================================================================
    test-e2e - end to end: many workers on one key, watch streams,
    mailboxes, shutdown through $TERM, parent death and SIGINT
    =========================================================================
*/

#include "harness.h"
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#define OPEN_CTX() \
    zp_ctx_t *ctx = zp_ctx_new (); \
    ASSERT_NOT_NULL (ctx); \
    zp_state_t *state = zp_ctx_state (ctx); \
    ASSERT_NOT_NULL (state)

#define WORKERS         8
#define INCRS           2000
#define CAS_SUCCESSES   200
#define CHANGES         50

//  ---------------------------------------------------------------------------
//  Atomic operations under contention

static void
s_incr_worker (zp_worker_t *worker, void *props)
{
    zp_state_t *state = zp_worker_state (worker);
    int64_t previous = 0;
    int index;
    for (index = 0; index < INCRS; index++) {
        int64_t result = 0;
        ASSERT_EQ (zp_state_incr (state, "counter", 1, &result), 0);
        //  Every result is new: others only ever add
        ASSERT_GT (result, previous);
        ASSERT_LE (result, WORKERS * INCRS);
        previous = result;
    }
}

TEST_IMPL (e2e_incr_contention)
{
    OPEN_CTX ();
    zp_proc_t *procs [WORKERS];
    test_spawn (ctx, s_incr_worker, NULL, procs, WORKERS);
    int index;
    ASSERT_EQ (zp_ctx_wait_all (ctx, test_ms (30000)), 0);
    for (index = 0; index < WORKERS; index++)
        ASSERT_EQ (zp_proc_wait (procs [index], 0), 0);
    int64_t value = 0;
    ASSERT_EQ (zp_state_get_int (state, "counter", &value), 0);
    ASSERT_EQ (value, WORKERS * INCRS);
    zp_ctx_destroy (&ctx);
    return 0;
}


static void
s_cas_worker (zp_worker_t *worker, void *props)
{
    zp_state_t *state = zp_worker_state (worker);
    int successes = 0;
    while (successes < CAS_SUCCESSES) {
        char *current = zp_state_get_str (state, "cas");
        ASSERT_NOT_NULL (current);
        char next [32];
        snprintf (next, sizeof (next), "%lld", atoll (current) + 1);
        errno = 0;
        int rc = zp_state_cas_str (state, "cas", current, next);
        if (rc == 0)
            successes++;
        else
            ASSERT_ERRNO_EQ (EAGAIN);
        free (current);
    }
}

TEST_IMPL (e2e_cas_contention)
{
    OPEN_CTX ();
    ASSERT_EQ (zp_state_set_str (state, "cas", "0"), 0);
    zp_proc_t *procs [WORKERS];
    test_spawn (ctx, s_cas_worker, NULL, procs, WORKERS);
    int index;
    ASSERT_EQ (zp_ctx_wait_all (ctx, test_ms (30000)), 0);
    for (index = 0; index < WORKERS; index++)
        ASSERT_EQ (zp_proc_wait (procs [index], 0), 0);
    ASSERT_STATE_STR (state, "cas", "1600");
    zp_ctx_destroy (&ctx);
    return 0;
}


//  ---------------------------------------------------------------------------
//  A worker sees every one of 50 rapid changes, in order

static void
s_change_follower (zp_worker_t *worker, void *props)
{
    zp_state_t *state = zp_worker_state (worker);
    ASSERT_EQ (zp_state_set_str (state, "ready", "1"), 0);
    int index;
    for (index = 1; index <= CHANGES; index++) {
        char *value = zp_state_get_when_change (state, "n", test_ms (10000));
        if (!value || atoi (value) != index) {
            char report [128];
            snprintf (report, sizeof (report), "change %d: got %s (errno %s)", index,
                      value? value: "NULL", test_errno_name (errno));
            zp_state_set_str (state, "follower-error", report);
            free (value);
            ASSERT (!"the follower missed a change");
        }
        free (value);
    }
    ASSERT_EQ (zp_state_set_int (state, "seen", CHANGES), 0);
}

TEST_IMPL (e2e_watch_every_change)
{
    OPEN_CTX ();
    zp_proc_t *proc = zp_ctx_spawn (ctx, "follower", s_change_follower, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_state_get_when_available (state, "ready", test_ms (5000)), 0);
    int index;
    for (index = 1; index <= CHANGES; index++)
        ASSERT_EQ (zp_state_set_int (state, "n", index), 0);
    int status = zp_proc_wait (proc, test_ms (15000));
    char *error = zp_state_get_str (state, "follower-error");
    ASSERT_STR_EQ (error, NULL);
    ASSERT_EQ (status, 0);
    int64_t seen = 0;
    ASSERT_EQ (zp_state_get_int (state, "seen", &seen), 0);
    ASSERT_EQ (seen, CHANGES);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  The same through zp_watch in a worker
static void
s_watch_follower (zp_worker_t *worker, void *props)
{
    zp_state_t *state = zp_worker_state (worker);
    zp_watch_t *watch = zp_watch_new (state, "n");
    ASSERT_NOT_NULL (watch);
    ASSERT_EQ (zp_state_set_str (state, "ready", "1"), 0);
    int index;
    for (index = 1; index <= CHANGES; index++) {
        char *key = NULL, *value = NULL;
        ASSERT_EQ (zp_watch_next (watch, &key, &value, test_ms (10000)), 0);
        ASSERT_STR_EQ (key, "n");
        ASSERT_NOT_NULL (value);
        ASSERT_EQ (atoi (value), index);
        free (key);
        free (value);
    }
    zp_watch_destroy (&watch);
    ASSERT_EQ (zp_state_set_int (state, "seen", CHANGES), 0);
}

TEST_IMPL (e2e_watch_stream)
{
    OPEN_CTX ();
    zp_proc_t *proc = zp_ctx_spawn (ctx, "follower", s_watch_follower, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_state_get_when_available (state, "ready", test_ms (5000)), 0);
    int index;
    for (index = 1; index <= CHANGES; index++)
        ASSERT_EQ (zp_state_set_int (state, "n", index), 0);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (15000)), 0);
    int64_t seen = 0;
    ASSERT_EQ (zp_state_get_int (state, "seen", &seen), 0);
    ASSERT_EQ (seen, CHANGES);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  ---------------------------------------------------------------------------
//  Mailboxes

//  Receives one message and writes what it got into the state
static void
s_receiver (zp_worker_t *worker, void *props)
{
    zp_state_t *state = zp_worker_state (worker);
    const char *name = zp_worker_name (worker);
    //  Nothing received yet: no sender
    ASSERT_NULL (zp_worker_sender (worker));
    char key [128];
    snprintf (key, sizeof (key), "%s/ready", name);
    ASSERT_EQ (zp_state_set_str (state, key, "1"), 0);

    zmsg_t *msg = zp_worker_recv (worker, test_ms (5000));
    ASSERT_NOT_NULL (msg);
    snprintf (key, sizeof (key), "%s/frames", name);
    ASSERT_EQ (zp_state_set_int (state, key, (int64_t) zmsg_size (msg)), 0);
    char *body = zmsg_popstr (msg);
    ASSERT_NOT_NULL (body);
    snprintf (key, sizeof (key), "%s/body", name);
    ASSERT_EQ (zp_state_set_str (state, key, body), 0);
    free (body);
    if (zmsg_size (msg) > 0) {
        zframe_t *frame = zmsg_pop (msg);
        snprintf (key, sizeof (key), "%s/second", name);
        ASSERT_EQ (zp_state_set_bytes (state, key, zframe_data (frame),
                                       zframe_size (frame)), 0);
        zframe_destroy (&frame);
    }
    zmsg_destroy (&msg);
    const char *sender = zp_worker_sender (worker);
    ASSERT_NOT_NULL (sender);
    snprintf (key, sizeof (key), "%s/sender", name);
    ASSERT_EQ (zp_state_set_str (state, key, sender), 0);
}

TEST_IMPL (e2e_mailbox_from_parent)
{
    OPEN_CTX ();
    zp_proc_t *proc = zp_ctx_spawn (ctx, "inbox", s_receiver, NULL);
    ASSERT_NOT_NULL (proc);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "hello");
    const unsigned char binary [] = { 0, 1, 2, 0, 255 };
    zmsg_addmem (msg, binary, sizeof (binary));
    ASSERT_EQ (zp_proc_send (proc, &msg), 0);
    ASSERT_NULL (msg);

    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 0);
    ASSERT_STATE_STR (state, "inbox/body", "hello");
    int64_t frames = 0;
    ASSERT_EQ (zp_state_get_int (state, "inbox/frames", &frames), 0);
    ASSERT_EQ (frames, 2);
    zchunk_t *second = zp_state_get_bytes (state, "inbox/second");
    ASSERT_NOT_NULL (second);
    ASSERT_EQ (zchunk_size (second), sizeof (binary));
    ASSERT_EQ (memcmp (zchunk_data (second), binary, sizeof (binary)), 0);
    zchunk_destroy (&second);
    ASSERT_STATE_STR (state, "inbox/sender", "main");
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Sends to "bob", and checks that an unknown name is refused
static void
s_sender (zp_worker_t *worker, void *props)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "lost");
    ASSERT_FAIL_ERRNO (zp_worker_send (worker, "nobody", &msg), ENOENT);
    //  On failure the caller keeps the message
    ASSERT_NOT_NULL (msg);
    ASSERT_FAIL_ERRNO (zp_worker_send (worker, NULL, &msg), EINVAL);
    ASSERT_FAIL_ERRNO (zp_worker_send (worker, "bob", NULL), EINVAL);
    ASSERT_NOT_NULL (msg);
    zmsg_destroy (&msg);

    msg = zmsg_new ();
    zmsg_addstr (msg, "hi bob");
    ASSERT_EQ (zp_worker_send (worker, "bob", &msg), 0);
    ASSERT_NULL (msg);
    ASSERT_EQ (zp_state_set_str (zp_worker_state (worker), "alice/done", "1"), 0);
}

TEST_IMPL (e2e_mailbox_worker_to_worker)
{
    OPEN_CTX ();
    zp_proc_t *bob = zp_ctx_spawn (ctx, "bob", s_receiver, NULL);
    ASSERT_NOT_NULL (bob);
    zp_proc_t *alice = zp_ctx_spawn (ctx, "alice", s_sender, NULL);
    ASSERT_NOT_NULL (alice);
    ASSERT_EQ (zp_proc_wait (alice, test_ms (5000)), 0);
    ASSERT_EQ (zp_proc_wait (bob, test_ms (5000)), 0);
    ASSERT_STATE_STR (state, "alice/done", "1");
    ASSERT_STATE_STR (state, "bob/body", "hi bob");
    ASSERT_STATE_STR (state, "bob/sender", "alice");
    int64_t frames = 0;
    ASSERT_EQ (zp_state_get_int (state, "bob/frames", &frames), 0);
    ASSERT_EQ (frames, 1);
    zp_ctx_destroy (&ctx);
    return 0;
}


static void
s_recv_timeouts (zp_worker_t *worker, void *props)
{
    //  Nothing in the mailbox: 0 polls
    ASSERT_NULL_ERRNO (zp_worker_recv (worker, 0), ETIMEDOUT);
    int64_t start = test_now_ms ();
    ASSERT_NULL_ERRNO (zp_worker_recv (worker, 200), ETIMEDOUT);
    int64_t elapsed = test_now_ms () - start;
    ASSERT_GE (elapsed, 150);
    ASSERT_LE (elapsed, test_ms (5000));
    ASSERT_NULL (zp_worker_sender (worker));
    ASSERT_EQ (zp_state_set_str (zp_worker_state (worker), "checked", "1"), 0);
}

TEST_IMPL (e2e_mailbox_recv_timeout)
{
    OPEN_CTX ();
    zp_proc_t *proc = zp_ctx_spawn (ctx, "idle", s_recv_timeouts, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 0);
    ASSERT_STATE_STR (state, "checked", "1");
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Polls its mailbox socket, then reads what made it readable
static void
s_polling_receiver (zp_worker_t *worker, void *props)
{
    zsock_t *mailbox = zp_worker_mailbox (worker);
    ASSERT_NOT_NULL (mailbox);
    zpoller_t *poller = zpoller_new (mailbox, NULL);
    ASSERT_NOT_NULL (poller);
    ASSERT_NULL (zpoller_wait (poller, 50));
    ASSERT_EQ (zp_state_set_str (zp_worker_state (worker), "poller/ready", "1"), 0);
    ASSERT (zpoller_wait (poller, test_ms (5000)) == mailbox);
    zpoller_destroy (&poller);
    zmsg_t *msg = zp_worker_recv (worker, 0);
    ASSERT_NOT_NULL (msg);
    char *body = zmsg_popstr (msg);
    ASSERT_EQ (zp_state_set_str (zp_worker_state (worker), "poller/body", body), 0);
    free (body);
    zmsg_destroy (&msg);
}

TEST_IMPL (e2e_mailbox_poller)
{
    OPEN_CTX ();
    zp_proc_t *proc = zp_ctx_spawn (ctx, "poller", s_polling_receiver, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_state_get_when_available (state, "poller/ready", test_ms (5000)), 0);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "wake up");
    ASSERT_EQ (zp_proc_send (proc, &msg), 0);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 0);
    ASSERT_STATE_STR (state, "poller/body", "wake up");
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Reads messages, each body appended to "log", until recv fails; then
//  records its errno under "recv-errno"
static void
s_logger (zp_worker_t *worker, void *props)
{
    zp_state_t *state = zp_worker_state (worker);
    ASSERT_EQ (zp_state_set_str (state, "log", ""), 0);
    while (true) {
        zmsg_t *msg = zp_worker_recv (worker, test_ms (5000));
        if (!msg)
            break;
        char *body = zmsg_popstr (msg);
        char *log = zp_state_get_str (state, "log");
        ASSERT_NOT_NULL (body);
        ASSERT_NOT_NULL (log);
        char *joined = zsys_sprintf ("%s%s;", log, body);
        ASSERT_EQ (zp_state_set_str (state, "log", joined), 0);
        zstr_free (&joined);
        free (log);
        free (body);
        zmsg_destroy (&msg);
    }
    ASSERT_EQ (zp_state_set_str (state, "recv-errno", test_errno_name (errno)), 0);
}

TEST_IMPL (e2e_mailbox_term)
{
    //  A $TERM message makes zp_worker_recv return NULL with EINTR; the
    //  messages before it are delivered first, in order
    OPEN_CTX ();
    zp_proc_t *proc = zp_ctx_spawn (ctx, "logger", s_logger, NULL);
    ASSERT_NOT_NULL (proc);
    const char *bodies [] = { "one", "two", "three", "$TERM" };
    int index;
    for (index = 0; index < 4; index++) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addstr (msg, bodies [index]);
        ASSERT_EQ (zp_proc_send (proc, &msg), 0);
    }
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 0);
    ASSERT_STATE_STR (state, "log", "one;two;three;");
    ASSERT_STATE_STR (state, "recv-errno", "EINTR");
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Blocks in zp_worker_recv (-1), then writes the errno it got to a pipe
typedef struct {
    int pipe_out;               //  Write end of the errno pipe
} term_props_t;

static void
s_term_reporter (zp_worker_t *worker, void *props)
{
    term_props_t *self = (term_props_t *) props;
    ASSERT_EQ (zp_state_set_str (zp_worker_state (worker), "ready", "1"), 0);
    zmsg_t *msg = zp_worker_recv (worker, -1);
    int result [2] = { msg != NULL, errno };
    zmsg_destroy (&msg);
    ASSERT_EQ (write (self->pipe_out, result, sizeof (result)), sizeof (result));
}

TEST_IMPL (e2e_term_on_destroy)
{
    int fds [2];
    ASSERT_EQ (pipe (fds), 0);
    OPEN_CTX ();
    term_props_t props = { fds [1] };
    zp_proc_t *proc = zp_ctx_spawn (ctx, "waiter", s_term_reporter, &props);
    ASSERT_NOT_NULL (proc);
    close (fds [1]);
    ASSERT_EQ (zp_state_get_when_available (state, "ready", test_ms (5000)), 0);

    //  The worker answers $TERM at once: no need for the grace period
    int64_t start = test_now_ms ();
    zp_ctx_destroy (&ctx);
    ASSERT_LE (test_now_ms () - start, test_ms (5000));

    int result [2] = { -1, -1 };
    ASSERT_EQ (test_read_exact (fds [0], result, sizeof (result), test_ms (2000)), 0);
    ASSERT_EQ (result [0], 0);
    ASSERT_STR_EQ (test_errno_name (result [1]), "EINTR");
    close (fds [0]);
    ASSERT (test_no_children ());
    return 0;
}


//  ---------------------------------------------------------------------------
//  The parent dies or is interrupted: a helper process (a plain fork of
//  the test) plays the parent and reports its workers' pids and its
//  endpoint through a pipe

typedef struct {
    pid_t workers [2];          //  The helper's workers
    char endpoint [256];        //  The helper context's endpoint
} helper_report_t;

static void
s_helper_worker (zp_worker_t *worker, void *props)
{
    test_drain_mailbox (worker);
}

//  In the helper: make a context, two workers, report, then wait for them
//  (4 s). Exit 0 when wait_all was interrupted with EINTR, 14 when it
//  timed out, 13 when the workers exited, 15 on another error.
static void
s_helper_parent (int pipe_out)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx)
        _exit (10);
    zp_ctx_set_grace (ctx, 300);
    helper_report_t report;
    memset (&report, 0, sizeof (report));
    int index;
    for (index = 0; index < 2; index++) {
        zp_proc_t *proc = zp_ctx_spawn (ctx, NULL, s_helper_worker, NULL);
        if (!proc)
            _exit (11);
        report.workers [index] = zp_proc_pid (proc);
    }
    snprintf (report.endpoint, sizeof (report.endpoint), "%s", zp_ctx_endpoint (ctx));
    if (write (pipe_out, &report, sizeof (report)) != sizeof (report))
        _exit (12);
    int rc = zp_ctx_wait_all (ctx, test_ms (4000));
    int err = errno;
    zp_ctx_destroy (&ctx);
    exit (rc == -1 && err == EINTR? 0: rc == 0? 13: err == ETIMEDOUT? 14: 15);
}

static pid_t
s_start_helper (helper_report_t *report)
{
    int fds [2];
    ASSERT_EQ (pipe (fds), 0);
    pid_t helper = fork ();
    ASSERT (helper != -1);
    if (helper == 0) {
        close (fds [0]);
        s_helper_parent (fds [1]);
        _exit (16);
    }
    close (fds [1]);
    ASSERT_EQ (test_read_exact (fds [0], report, sizeof (*report), test_ms (10000)), 0);
    close (fds [0]);
    ASSERT_GT (report->workers [0], 0);
    ASSERT_GT (report->workers [1], 0);
    return helper;
}

//  Remove a socket directory someone left behind
static void
s_remove_dir (const char *dir)
{
    char *command = zsys_sprintf ("rm -rf '%s'", dir);
    if (system (command) != 0)
        fprintf (stderr, "could not remove %s\n", dir);
    zstr_free (&command);
}

TEST_IMPL (e2e_parent_killed)
{
    helper_report_t report;
    pid_t helper = s_start_helper (&report);
    //  SIGKILL the parent: every worker exits within a second
    ASSERT_EQ (kill (helper, SIGKILL), 0);
    ASSERT_EQ (test_wait_child (helper, test_ms (5000)), 128 + SIGKILL);
    int index;
    for (index = 0; index < 2; index++)
        ASSERT_EQ (test_wait_gone (report.workers [index], test_ms (2000)), 0);
    //  Nobody could remove the socket directory: clean it up ourselves
    char *dir = test_endpoint_dir (report.endpoint);
    ASSERT_NOT_NULL (dir);
    s_remove_dir (dir);
    free (dir);
    return 0;
}


TEST_IMPL (e2e_parent_sigint)
{
    helper_report_t report;
    pid_t helper = s_start_helper (&report);
    //  One SIGINT, as from a terminal. It may come just before the parent
    //  enters wait_all: a SIGINT once the context exists still counts.
    //  (Not twice: a second SIGINT during shutdown may rightly kill it.)
    ASSERT_EQ (kill (helper, SIGINT), 0);
    //  wait_all said EINTR (exit 0; 14 when wait_all timed out instead),
    //  destroy stopped and reaped the workers and removed the directory
    ASSERT_EQ (test_wait_child (helper, test_ms (12000)), 0);
    int index;
    for (index = 0; index < 2; index++)
        ASSERT_EQ (test_wait_gone (report.workers [index], 0), 0);
    char *dir = test_endpoint_dir (report.endpoint);
    ASSERT_NOT_NULL (dir);
    bool stale = test_path_exists (dir);
    if (stale)
        s_remove_dir (dir);
    ASSERT (!stale);
    free (dir);
    return 0;
}
