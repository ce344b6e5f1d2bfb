/*  =========================================================================
    test-proc - spawning, waiting for, killing and reaping workers
    (zp_ctx_spawn, zp_proc, zp_ctx_process_factory, zp_ctx_destroy)
    =========================================================================
*/

#include "harness.h"
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define OPEN_CTX() \
    zp_ctx_t *ctx = zp_ctx_new (); \
    ASSERT_NOT_NULL (ctx); \
    zp_state_t *state = zp_ctx_state (ctx); \
    ASSERT_NOT_NULL (state)

//  ---------------------------------------------------------------------------
//  Worker roles

//  Records its name and pid under "<name>/name" and "<name>/pid", returns
static void
s_worker_report (zp_worker_t *worker, void *props)
{
    zp_state_t *state = zp_worker_state (worker);
    const char *name = zp_worker_name (worker);
    ASSERT_NOT_NULL (state);
    ASSERT_NOT_NULL (name);
    char key [128];
    snprintf (key, sizeof (key), "%s/name", name);
    ASSERT_EQ (zp_state_set_str (state, key, name), 0);
    snprintf (key, sizeof (key), "%s/pid", name);
    ASSERT_EQ (zp_state_set_int (state, key, (int64_t) getpid ()), 0);
}

static void
s_worker_return (zp_worker_t *worker, void *props)
{
}

static void
s_worker_exit3 (zp_worker_t *worker, void *props)
{
    exit (3);
}

static void
s_worker_segv (zp_worker_t *worker, void *props)
{
    signal (SIGSEGV, SIG_DFL);
    raise (SIGSEGV);
    //  Should it be blocked, a fault cannot be
    volatile int *volatile nowhere = NULL;
    *nowhere = 0;
}

static void
s_worker_abort (zp_worker_t *worker, void *props)
{
    signal (SIGABRT, SIG_DFL);
    abort ();
}

//  Says "ready/<name>", then reads its mailbox until $TERM (or any error)
static void
s_worker_mailbox_until_term (zp_worker_t *worker, void *props)
{
    zp_state_t *state = zp_worker_state (worker);
    char key [128];
    snprintf (key, sizeof (key), "ready/%s", zp_worker_name (worker));
    ASSERT_EQ (zp_state_set_str (state, key, "1"), 0);
    test_drain_mailbox (worker);
}

//  Says "ready/<name>", then blocks in a watcher that never fires
static void
s_worker_watch_forever (zp_worker_t *worker, void *props)
{
    zp_state_t *state = zp_worker_state (worker);
    char key [128];
    snprintf (key, sizeof (key), "ready/%s", zp_worker_name (worker));
    ASSERT_EQ (zp_state_set_str (state, key, "1"), 0);
    char *value = zp_state_get_when_change (state, "never", -1);
    free (value);
}

//  Says "ready/<name>", then never answers anything: ignores SIGTERM and
//  SIGINT and never reads its mailbox
static void
s_worker_deaf (zp_worker_t *worker, void *props)
{
    signal (SIGTERM, SIG_IGN);
    signal (SIGINT, SIG_IGN);
    zp_state_t *state = zp_worker_state (worker);
    char key [128];
    snprintf (key, sizeof (key), "ready/%s", zp_worker_name (worker));
    ASSERT_EQ (zp_state_set_str (state, key, "1"), 0);
    while (true)
        pause ();
}

//  Wait until worker name has said it is ready
static void
s_wait_ready (zp_state_t *state, const char *name)
{
    char key [128];
    snprintf (key, sizeof (key), "ready/%s", name);
    ASSERT_EQ (zp_state_get_when_available (state, key, test_ms (5000)), 0);
}

//  ---------------------------------------------------------------------------

TEST_IMPL (proc_spawn_named)
{
    OPEN_CTX ();
    zp_proc_t *proc = zp_ctx_spawn (ctx, "alpha", s_worker_report, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_STR_EQ (zp_proc_name (proc), "alpha");
    pid_t pid = zp_proc_pid (proc);
    ASSERT_GT (pid, 0);
    ASSERT_NE (pid, getpid ());
    ASSERT (zp_ctx_proc (ctx, "alpha") == proc);
    ASSERT_NULL_ERRNO (zp_ctx_proc (ctx, "beta"), ENOENT);

    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 0);
    //  The worker knew its own name and pid
    ASSERT_STATE_STR (state, "alpha/name", "alpha");
    int64_t reported = 0;
    ASSERT_EQ (zp_state_get_int (state, "alpha/pid", &reported), 0);
    ASSERT_EQ (reported, pid);
    //  The handle stays valid after the worker exited
    ASSERT_STR_EQ (zp_proc_name (proc), "alpha");
    ASSERT_EQ (zp_proc_pid (proc), pid);
    ASSERT (!zp_proc_running (proc));
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (proc_spawn_unnamed)
{
    OPEN_CTX ();
    zp_proc_t *first = zp_ctx_spawn (ctx, NULL, s_worker_report, NULL);
    ASSERT_NOT_NULL (first);
    zp_proc_t *second = zp_ctx_spawn (ctx, NULL, s_worker_report, NULL);
    ASSERT_NOT_NULL (second);
    const char *names [2] = { zp_proc_name (first), zp_proc_name (second) };
    zp_proc_t *procs [2] = { first, second };
    int index;
    for (index = 0; index < 2; index++) {
        //  "worker-N"
        ASSERT_NOT_NULL (names [index]);
        ASSERT_EQ (strncmp (names [index], "worker-", 7), 0);
        ASSERT_GT (strlen (names [index]), 7);
        ASSERT_EQ (strspn (names [index] + 7, "0123456789"), strlen (names [index] + 7));
        ASSERT (zp_ctx_proc (ctx, names [index]) == procs [index]);
    }
    ASSERT (strcmp (names [0], names [1]) != 0);
    ASSERT_NE (zp_proc_pid (first), zp_proc_pid (second));

    for (index = 0; index < 2; index++) {
        ASSERT_EQ (zp_proc_wait (procs [index], test_ms (5000)), 0);
        //  zp_worker_name in the child is the parent's zp_proc_name
        char key [128];
        snprintf (key, sizeof (key), "%s/name", names [index]);
        ASSERT_STATE_STR (state, key, names [index]);
        snprintf (key, sizeof (key), "%s/pid", names [index]);
        int64_t pid = 0;
        ASSERT_EQ (zp_state_get_int (state, key, &pid), 0);
        ASSERT_EQ (pid, zp_proc_pid (procs [index]));
    }
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (proc_spawn_invalid)
{
    OPEN_CTX ();
    ASSERT_NULL_ERRNO (zp_ctx_spawn (NULL, "x", s_worker_return, NULL), EINVAL);
    ASSERT_NULL_ERRNO (zp_ctx_spawn (ctx, "x", NULL, NULL), EINVAL);
    ASSERT_NULL_ERRNO (zp_ctx_spawn (ctx, "bad name", s_worker_return, NULL), EINVAL);
    ASSERT_NULL_ERRNO (zp_ctx_spawn (ctx, "bad/name", s_worker_return, NULL), EINVAL);
    char longest [ZP_NAME_MAX + 2];
    memset (longest, 'n', sizeof (longest));
    longest [ZP_NAME_MAX + 1] = 0;
    ASSERT_NULL_ERRNO (zp_ctx_spawn (ctx, longest, s_worker_return, NULL), EINVAL);
    ASSERT_EQ (zp_ctx_running (ctx), 0);

    //  A name of ZP_NAME_MAX bytes in [A-Za-z0-9._-] is fine...
    longest [ZP_NAME_MAX] = 0;
    longest [0] = 'A';
    longest [1] = '.';
    longest [2] = '_';
    longest [3] = '-';
    longest [4] = '9';
    zp_proc_t *proc = zp_ctx_spawn (ctx, longest, s_worker_mailbox_until_term, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_STR_EQ (zp_proc_name (proc), longest);
    //  ... once: the name is then taken
    ASSERT_NULL_ERRNO (zp_ctx_spawn (ctx, longest, s_worker_return, NULL), EINVAL);
    ASSERT_EQ (zp_ctx_running (ctx), 1);
    s_wait_ready (state, longest);
    zp_ctx_set_grace (ctx, 200);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (proc_exit_zero)
{
    OPEN_CTX ();
    zp_proc_t *proc = zp_ctx_spawn (ctx, "returns", s_worker_return, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 0);
    ASSERT (!zp_proc_running (proc));
    //  The status stays
    ASSERT_EQ (zp_proc_wait (proc, 0), 0);
    ASSERT_EQ (zp_proc_wait (proc, -1), 0);
    ASSERT_EQ (zp_ctx_running (ctx), 0);
    ASSERT_EQ (zp_ctx_wait_all (ctx, 0), 0);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (proc_exit_code)
{
    OPEN_CTX ();
    zp_proc_t *proc = zp_ctx_spawn (ctx, "three", s_worker_exit3, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 3);
    ASSERT_EQ (zp_proc_wait (proc, 0), 3);
    ASSERT (!zp_proc_running (proc));
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (proc_crash_segv)
{
    OPEN_CTX ();
    ASSERT_EQ (zp_state_set_str (state, "before", "1"), 0);
    zp_proc_t *proc = zp_ctx_spawn (ctx, "crasher", s_worker_segv, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 128 + SIGSEGV);

    //  The store keeps serving, and other workers keep working
    ASSERT_STATE_STR (state, "before", "1");
    ASSERT_EQ (zp_state_set_str (state, "after", "2"), 0);
    ASSERT_STATE_STR (state, "after", "2");
    zp_proc_t *next = zp_ctx_spawn (ctx, "next", s_worker_report, NULL);
    ASSERT_NOT_NULL (next);
    ASSERT_EQ (zp_proc_wait (next, test_ms (5000)), 0);
    ASSERT_STATE_STR (state, "next/name", "next");
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (proc_crash_abort)
{
    OPEN_CTX ();
    zp_proc_t *proc = zp_ctx_spawn (ctx, "aborter", s_worker_abort, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 128 + SIGABRT);
    ASSERT_EQ (zp_state_set_str (state, "after", "2"), 0);
    ASSERT_STATE_STR (state, "after", "2");
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (proc_wait_timeout_kill)
{
    OPEN_CTX ();
    zp_proc_t *proc = zp_ctx_spawn (ctx, "blocker", s_worker_mailbox_until_term, NULL);
    ASSERT_NOT_NULL (proc);
    s_wait_ready (state, "blocker");

    int64_t start = test_now_ms ();
    ASSERT_FAIL_ERRNO (zp_proc_wait (proc, 200), ETIMEDOUT);
    int64_t elapsed = test_now_ms () - start;
    ASSERT_GE (elapsed, 150);
    ASSERT_LE (elapsed, test_ms (5000));
    ASSERT_FAIL_ERRNO (zp_proc_wait (proc, 0), ETIMEDOUT);
    ASSERT (zp_proc_running (proc));
    ASSERT_EQ (zp_ctx_running (ctx), 1);

    ASSERT_EQ (zp_proc_kill (proc, SIGKILL), 0);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 128 + SIGKILL);
    ASSERT (!zp_proc_running (proc));
    ASSERT_EQ (zp_ctx_running (ctx), 0);
    //  Reaped: there is nothing left to signal
    ASSERT_FAIL_ERRNO (zp_proc_kill (proc, SIGTERM), ESRCH);
    ASSERT_EQ (zp_proc_wait (proc, 0), 128 + SIGKILL);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (proc_send_exited)
{
    OPEN_CTX ();
    zp_proc_t *proc = zp_ctx_spawn (ctx, "gone", s_worker_return, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 0);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "anyone?");
    ASSERT_FAIL_ERRNO (zp_proc_send (proc, &msg), ESRCH);
    //  On failure the caller still owns the message
    ASSERT_NOT_NULL (msg);
    ASSERT_FAIL_ERRNO (zp_proc_send (proc, NULL), EINVAL);
    ASSERT_FAIL_ERRNO (zp_proc_send (NULL, &msg), EINVAL);
    ASSERT_NOT_NULL (msg);
    zmsg_destroy (&msg);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (proc_null_args)
{
    zmsg_t *msg = zmsg_new ();
    ASSERT_EQ (zp_proc_pid (NULL), -1);
    ASSERT_ERRNO_EQ (EINVAL);
    ASSERT_NULL_ERRNO (zp_proc_name (NULL), EINVAL);
    ASSERT_FAIL_ERRNO (zp_proc_send (NULL, &msg), EINVAL);
    ASSERT_FAIL_ERRNO (zp_proc_wait (NULL, 0), EINVAL);
    ASSERT_FAIL_ERRNO (zp_proc_kill (NULL, SIGTERM), EINVAL);
    ASSERT (!zp_proc_running (NULL));
    zmsg_destroy (&msg);

    ASSERT_NULL_ERRNO (zp_ctx_endpoint (NULL), EINVAL);
    ASSERT_NULL_ERRNO (zp_ctx_state (NULL), EINVAL);
    ASSERT_NULL_ERRNO (zp_ctx_public_key (NULL), EINVAL);
    ASSERT_NULL_ERRNO (zp_ctx_proc (NULL, "x"), EINVAL);
    ASSERT_NULL_ERRNO (zp_ctx_bind (NULL, "tcp://127.0.0.1:*"), EINVAL);
    ASSERT_FAIL_ERRNO (zp_ctx_start_all (NULL), EINVAL);
    ASSERT_FAIL_ERRNO (zp_ctx_wait_all (NULL, 0), EINVAL);
    ASSERT_FAIL_ERRNO (zp_ctx_process_factory (NULL, NULL, s_worker_return, NULL), EINVAL);
    ASSERT_EQ (zp_ctx_running (NULL), 0);
    zp_ctx_set_grace (NULL, 10);
    zp_ctx_destroy (NULL);
    zp_ctx_t *none = NULL;
    zp_ctx_destroy (&none);

    ASSERT_NULL_ERRNO (zp_worker_state (NULL), EINVAL);
    ASSERT_NULL_ERRNO (zp_worker_name (NULL), EINVAL);
    ASSERT_NULL_ERRNO (zp_worker_recv (NULL, 0), EINVAL);
    msg = zmsg_new ();
    ASSERT_FAIL_ERRNO (zp_worker_send (NULL, "x", &msg), EINVAL);
    ASSERT_NOT_NULL (msg);
    zmsg_destroy (&msg);
    ASSERT_NULL (zp_worker_mailbox (NULL));
    return 0;
}


//  Factory workers: each records which function ran, with which props
typedef struct {
    char text [32];             //  Set by the parent before start_all
} factory_props_t;

static void
s_factory_record (zp_worker_t *worker, void *props, const char *which)
{
    factory_props_t *self = (factory_props_t *) props;
    zp_state_t *state = zp_worker_state (worker);
    char key [128];
    snprintf (key, sizeof (key), "fn/%s", which);
    ASSERT_EQ (zp_state_set_str (state, key, zp_worker_name (worker)), 0);
    snprintf (key, sizeof (key), "props/%s", which);
    ASSERT_EQ (zp_state_set_str (state, key, self->text), 0);
    ASSERT_EQ (zp_state_incr (state, "started", 1, NULL), 0);
}

static void
s_factory_a (zp_worker_t *worker, void *props)
{
    s_factory_record (worker, props, "a");
}

static void
s_factory_b (zp_worker_t *worker, void *props)
{
    s_factory_record (worker, props, "b");
}

static void
s_factory_c (zp_worker_t *worker, void *props)
{
    s_factory_record (worker, props, "c");
}

TEST_IMPL (proc_factory)
{
    OPEN_CTX ();
    //  No workers: all exited
    ASSERT_EQ (zp_ctx_wait_all (ctx, 0), 0);

    factory_props_t props;
    strcpy (props.text, "not yet");
    ASSERT_EQ (zp_ctx_process_factory (ctx, &props, s_factory_a, s_factory_b,
                                       s_factory_c, NULL), 0);
    //  Registered, not started
    ASSERT_EQ (zp_ctx_running (ctx), 0);
    ASSERT_EQ (zp_ctx_wait_all (ctx, 0), 0);
    errno = EBUSY;
    ASSERT (!zp_state_exists (state, "started"));
    ASSERT_ERRNO_EQ (0);

    //  Props are read through fork's copy at start
    strcpy (props.text, "factory-props");
    ASSERT_EQ (zp_ctx_start_all (ctx), 0);
    ASSERT_EQ (zp_ctx_wait_all (ctx, test_ms (5000)), 0);
    ASSERT_EQ (zp_ctx_running (ctx), 0);
    int64_t started = 0;
    ASSERT_EQ (zp_state_get_int (state, "started", &started), 0);
    ASSERT_EQ (started, 3);

    const char *which [] = { "a", "b", "c" };
    char *names [3];
    int index;
    for (index = 0; index < 3; index++) {
        char key [64];
        snprintf (key, sizeof (key), "props/%s", which [index]);
        ASSERT_STATE_STR (state, key, "factory-props");
        snprintf (key, sizeof (key), "fn/%s", which [index]);
        names [index] = zp_state_get_str (state, key);
        ASSERT_NOT_NULL (names [index]);
        ASSERT_EQ (strncmp (names [index], "worker-", 7), 0);
        zp_proc_t *proc = zp_ctx_proc (ctx, names [index]);
        ASSERT_NOT_NULL (proc);
        ASSERT_EQ (zp_proc_wait (proc, 0), 0);
    }
    ASSERT (strcmp (names [0], names [1]) != 0);
    ASSERT (strcmp (names [1], names [2]) != 0);
    ASSERT (strcmp (names [0], names [2]) != 0);
    for (index = 0; index < 3; index++)
        free (names [index]);

    //  Started workers are not started again
    ASSERT_EQ (zp_ctx_start_all (ctx), 0);
    ASSERT_EQ (zp_ctx_wait_all (ctx, test_ms (5000)), 0);
    ASSERT_EQ (zp_state_get_int (state, "started", &started), 0);
    ASSERT_EQ (started, 3);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (proc_wait_all_timeout)
{
    OPEN_CTX ();
    zp_proc_t *quick = zp_ctx_spawn (ctx, "quick", s_worker_return, NULL);
    ASSERT_NOT_NULL (quick);
    zp_proc_t *slow = zp_ctx_spawn (ctx, "slow", s_worker_mailbox_until_term, NULL);
    ASSERT_NOT_NULL (slow);
    s_wait_ready (state, "slow");
    ASSERT_EQ (zp_proc_wait (quick, test_ms (5000)), 0);

    int64_t start = test_now_ms ();
    ASSERT_FAIL_ERRNO (zp_ctx_wait_all (ctx, 200), ETIMEDOUT);
    int64_t elapsed = test_now_ms () - start;
    ASSERT_GE (elapsed, 150);
    ASSERT_LE (elapsed, test_ms (5000));
    ASSERT_EQ (zp_ctx_running (ctx), 1);

    //  Once the last one has gone, wait_all returns; a worker we killed
    //  did not exit with 0, so its status is the result
    ASSERT_EQ (zp_proc_kill (slow, SIGKILL), 0);
    ASSERT_EQ (zp_ctx_wait_all (ctx, test_ms (5000)), 128 + SIGKILL);
    ASSERT_EQ (zp_proc_wait (slow, 0), 128 + SIGKILL);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (proc_destroy_blocked)
{
    OPEN_CTX ();
    zp_ctx_set_grace (ctx, 300);
    struct {
        const char *name;
        zp_worker_fn *fn;
    } roles [] = {
        { "in-recv", s_worker_mailbox_until_term },
        { "in-watch", s_worker_watch_forever },
        { "deaf", s_worker_deaf },
        { "in-recv-2", s_worker_mailbox_until_term },
    };
    pid_t pids [4];
    int index;
    for (index = 0; index < 4; index++) {
        zp_proc_t *proc = zp_ctx_spawn (ctx, roles [index].name, roles [index].fn, NULL);
        ASSERT_NOT_NULL (proc);
        pids [index] = zp_proc_pid (proc);
        ASSERT_GT (pids [index], 0);
    }
    for (index = 0; index < 4; index++)
        s_wait_ready (state, roles [index].name);
    ASSERT_EQ (zp_ctx_running (ctx), 4);
    char *dir = test_endpoint_dir (zp_ctx_endpoint (ctx));
    ASSERT_NOT_NULL (dir);
    ASSERT (test_path_exists (dir));

    int64_t start = test_now_ms ();
    zp_ctx_destroy (&ctx);
    ASSERT_NULL (ctx);
    ASSERT_LE (test_now_ms () - start, test_ms (5000));

    //  Every worker is gone and reaped: no child, live or zombie
    ASSERT (test_no_children ());
    for (index = 0; index < 4; index++) {
        ASSERT_EQ (kill (pids [index], 0), -1);
        ASSERT_ERRNO_EQ (ESRCH);
    }
    //  No stale socket files
    ASSERT (!test_path_exists (dir));
    free (dir);
    return 0;
}


TEST_IMPL (proc_destroy_default_grace)
{
    //  The workers answer $TERM: destroy does not need the grace period
    OPEN_CTX ();
    zp_proc_t *first = zp_ctx_spawn (ctx, "one", s_worker_mailbox_until_term, NULL);
    zp_proc_t *second = zp_ctx_spawn (ctx, "two", s_worker_mailbox_until_term, NULL);
    ASSERT_NOT_NULL (first);
    ASSERT_NOT_NULL (second);
    s_wait_ready (state, "one");
    s_wait_ready (state, "two");
    zp_ctx_destroy (&ctx);
    ASSERT (test_no_children ());
    return 0;
}


typedef struct {
    int magic;                  //  A number the parent sets
    char text [32];             //  A string the parent sets
} props_t;

//  Reports what its props hold, then scribbles over its own copy
static void
s_worker_props (zp_worker_t *worker, void *props)
{
    props_t *self = (props_t *) props;
    ASSERT_NOT_NULL (self);
    zp_state_t *state = zp_worker_state (worker);
    char key [128];
    snprintf (key, sizeof (key), "%s/magic", zp_worker_name (worker));
    ASSERT_EQ (zp_state_set_int (state, key, self->magic), 0);
    snprintf (key, sizeof (key), "%s/text", zp_worker_name (worker));
    ASSERT_EQ (zp_state_set_str (state, key, self->text), 0);
    self->magic = -1;
    strcpy (self->text, "from-child");
}

TEST_IMPL (proc_props)
{
    OPEN_CTX ();
    props_t props = { 0, "" };
    //  Written just before spawn: the child reads fork's copy
    props.magic = 4242;
    strcpy (props.text, "from-parent");
    zp_proc_t *first = zp_ctx_spawn (ctx, "first", s_worker_props, &props);
    ASSERT_NOT_NULL (first);
    ASSERT_EQ (zp_proc_wait (first, test_ms (5000)), 0);
    int64_t magic = 0;
    ASSERT_EQ (zp_state_get_int (state, "first/magic", &magic), 0);
    ASSERT_EQ (magic, 4242);
    ASSERT_STATE_STR (state, "first/text", "from-parent");
    //  The child wrote to its own copy only
    ASSERT_EQ (props.magic, 4242);
    ASSERT_STR_EQ (props.text, "from-parent");

    //  Each worker gets the props as they are when it is spawned
    props.magic = 7;
    strcpy (props.text, "second");
    zp_proc_t *second = zp_ctx_spawn (ctx, "second", s_worker_props, &props);
    ASSERT_NOT_NULL (second);
    ASSERT_EQ (zp_proc_wait (second, test_ms (5000)), 0);
    ASSERT_EQ (zp_state_get_int (state, "second/magic", &magic), 0);
    ASSERT_EQ (magic, 7);
    ASSERT_STATE_STR (state, "second/text", "second");
    zp_ctx_destroy (&ctx);
    return 0;
}


//  A worker that runs a context of its own, with a worker of its own
static void
s_grandchild (zp_worker_t *worker, void *props)
{
    zp_state_t *state = zp_worker_state (worker);
    ASSERT_EQ (zp_state_set_str (state, "inner-key", "from-grandchild"), 0);
    //  Then block until the inner context goes
    test_drain_mailbox (worker);
}

static void
s_nesting_worker (zp_worker_t *worker, void *props)
{
    zp_state_t *outer = zp_worker_state (worker);
    zp_ctx_t *inner_ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (inner_ctx);
    zp_ctx_set_grace (inner_ctx, 300);
    zp_state_t *inner = zp_ctx_state (inner_ctx);
    ASSERT_NOT_NULL (inner);
    zp_proc_t *grandchild = zp_ctx_spawn (inner_ctx, "grandchild", s_grandchild, NULL);
    ASSERT_NOT_NULL (grandchild);
    ASSERT_EQ (zp_state_get_when_available (inner, "inner-key", test_ms (5000)), 0);
    char *value = zp_state_get_str (inner, "inner-key");
    ASSERT_NOT_NULL (value);
    ASSERT_EQ (zp_state_set_str (outer, "nested", value), 0);
    free (value);
    //  The two stores are separate
    errno = EBUSY;
    ASSERT (!zp_state_exists (outer, "inner-key"));
    ASSERT_ERRNO_EQ (0);
    ASSERT (strcmp (zp_ctx_endpoint (inner_ctx), (const char *) props) != 0);

    char *dir = test_endpoint_dir (zp_ctx_endpoint (inner_ctx));
    ASSERT_NOT_NULL (dir);
    pid_t pid = zp_proc_pid (grandchild);
    zp_ctx_destroy (&inner_ctx);
    ASSERT (!test_path_exists (dir));
    free (dir);
    ASSERT_EQ (kill (pid, 0), -1);
    ASSERT_EQ (zp_state_set_int (outer, "grandchild-gone", 1), 0);
}

TEST_IMPL (proc_nested)
{
    OPEN_CTX ();
    char *endpoint = strdup (zp_ctx_endpoint (ctx));
    zp_proc_t *proc = zp_ctx_spawn (ctx, "nester", s_nesting_worker, endpoint);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (10000)), 0);
    ASSERT_STATE_STR (state, "nested", "from-grandchild");
    ASSERT_STATE_STR (state, "grandchild-gone", "1");
    errno = EBUSY;
    ASSERT (!zp_state_exists (state, "inner-key"));
    ASSERT_ERRNO_EQ (0);
    free (endpoint);
    zp_ctx_destroy (&ctx);
    ASSERT (test_no_children ());
    return 0;
}
