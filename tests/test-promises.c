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

//  Sends BURST numbered messages to "reader" and exits at once; each send
//  must return 0
static void
s_worker_burst_and_exit (zp_worker_t *self, void *props)
{
    ASSERT_EQ (zp_state_set_str (zp_worker_state (self), "sending", "yes"), 0);
    for (int index = 0; index < BURST; index++) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addstrf (msg, "%d", index);
        if (zp_worker_send (self, "reader", &msg) != 0)
            test_fail (__FILE__, __LINE__, errno, "send %d failed", index);
    }
}

//  Starts reading a second after the sender started, then reads until BURST messages
//  came or none came for a while; "received" is how many came in order
static void
s_worker_late_reader (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    ASSERT_EQ (zp_state_get_when_available (state, "sending", test_ms (20000)), 0);
    zclock_sleep (1000);
    int received = 0;
    while (received < BURST) {
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
    ASSERT_EQ (zp_state_set_int (state, "received", received), 0);
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
