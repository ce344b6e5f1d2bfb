/*  =========================================================================
    test-store.c - the store actor: sorted keys at scale, the bounded
    change log and what happens past its bound
    =========================================================================
*/

#include "harness.h"
#include <pthread.h>
#include <signal.h>

//  True when the list is strictly increasing, bytewise
static bool
s_sorted (zlistx_t *keys)
{
    const char *previous = NULL;
    for (const char *key = (const char *) zlistx_first (keys); key;
         key = (const char *) zlistx_next (keys)) {
        if (previous && strcmp (previous, key) >= 0)
            return false;
        previous = key;
    }
    return true;
}

static bool
s_keys_sorted_in_view (zp_state_t *view, void *arg)
{
    zlistx_t *keys = zp_state_keys (view, NULL);
    *(bool *) arg = keys && zlistx_size (keys) == 1000 && s_sorted (keys);
    zlistx_destroy (&keys);
    return true;
}

TEST_IMPL (store_keys_sorted_many)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    //  1000 keys in a scrambled order
    for (int index = 0; index < 1000; index++) {
        char key [16];
        snprintf (key, sizeof key, "%d", (index * 7919) % 1000 + 1);
        ASSERT_EQ (zp_state_set_int (state, key, index), 0);
    }
    zlistx_t *keys = zp_state_keys (state, NULL);
    ASSERT_NOT_NULL (keys);
    ASSERT_EQ (zlistx_size (keys), 1000);
    ASSERT (s_sorted (keys));
    ASSERT_STR_EQ ((const char *) zlistx_first (keys), "1");
    ASSERT_STR_EQ ((const char *) zlistx_last (keys), "999");
    zlistx_destroy (&keys);
    //  The same on a predicate's view
    bool sorted = false;
    ASSERT_EQ (zp_state_get_when (state, s_keys_sorted_in_view, &sorted, test_ms (5000)), 0);
    ASSERT (sorted);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  A watch that falls further behind than the log holds hears of the gap
//  once, then goes on with the oldest change the log has
TEST_IMPL (store_watch_gap)
{
    //  A small log: 4096 changes
    ASSERT_EQ (setenv ("ZPROC_LOG_CHANGES", "4096", 1), 0);
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    zp_watch_t *watch = zp_watch_new (state, "n");
    ASSERT_NOT_NULL (watch);
    //  More changes than the log holds while the watch sleeps; the store
    //  sent the first ones on credit, the rest wait in the log
    const int total = 6000;
    for (int index = 1; index <= total; index++)
        ASSERT_EQ (zp_state_set_int (state, "n", index), 0);
    int seen = 0, gaps = 0, last = 0;
    while (last < total) {
        char *key, *value;
        if (zp_watch_next (watch, &key, &value, test_ms (5000)) < 0) {
            ASSERT_ERRNO_EQ (EAGAIN);
            gaps++;
            continue;
        }
        int number = atoi (value);
        //  In order, never one skipped without a gap before it
        ASSERT (number == last + 1 || gaps > 0);
        ASSERT_GT (number, last);
        last = number;
        seen++;
        zstr_free (&key);
        zstr_free (&value);
    }
    ASSERT_EQ (gaps, 1);
    ASSERT_LT (seen, total);
    zp_watch_destroy (&watch);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  A waiter whose baseline the log has dropped gets the current value
static void
s_worker_slow_waiter (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    //  Sleep through more changes than the log holds, on the mailbox, so
    //  that this handle's baseline stays where it was
    zmsg_t *go = zp_worker_recv (self, -1);
    ASSERT_NOT_NULL (go);
    zmsg_destroy (&go);
    char *value = zp_state_get_when_change (state, "busy", test_ms (5000));
    ASSERT_NOT_NULL (value);
    //  A key deleted since, with its last change still in the log (asked
    //  before any write of ours moves this handle's baseline past it)
    ASSERT_NULL_ERRNO (zp_state_get_when_change (state, "gone", test_ms (5000)), ENOENT);
    ASSERT_EQ (zp_state_set_str (state, "got", value), 0);
    zstr_free (&value);
}

TEST_IMPL (store_log_overflow_wait)
{
    ASSERT_EQ (setenv ("ZPROC_LOG_CHANGES", "1000", 1), 0);
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_EQ (zp_state_set_str (state, "gone", "here"), 0);
    zp_proc_t *proc = zp_ctx_spawn (ctx, "slow", s_worker_slow_waiter, NULL);
    ASSERT_NOT_NULL (proc);
    //  More changes than the log (1024) holds
    for (int index = 1; index <= 3000; index++)
        ASSERT_EQ (zp_state_set_int (state, "busy", index), 0);
    ASSERT_EQ (zp_state_delete (state, "gone"), 0);
    zmsg_t *go = zmsg_new ();
    zmsg_addstr (go, "go");
    ASSERT_EQ (zp_proc_send (proc, &go), 0);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (10000)), 0);
    char *got = zp_state_get_str (state, "got");
    ASSERT_STR_EQ (got, "3000");
    zstr_free (&got);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  A store in another process that dies: a watcher waiting for ever, and a
//  watch, learn it (ENOTCONN) instead of hanging

typedef struct {
    pid_t pid;                  //  The store's process
    int delay_ms;               //  When to kill it
} killer_t;

static void *
s_kill_later (void *arg)
{
    killer_t *killer = (killer_t *) arg;
    zclock_sleep (killer->delay_ms);
    kill (killer->pid, SIGKILL);
    return NULL;
}

TEST_IMPL (store_gone_wakes_waiters)
{
    int report [2];
    ASSERT_EQ (pipe (report), 0);
    pid_t store = fork ();
    ASSERT (store >= 0);
    if (store == 0) {
        close (report [0]);
        zp_ctx_t *ctx = zp_ctx_new ();
        const char *endpoint = ctx? zp_ctx_bind (ctx, "tcp://127.0.0.1:*"): NULL;
        char message [256] = "";
        if (endpoint)
            snprintf (message, sizeof message, "%s", endpoint);
        if (write (report [1], message, sizeof message) != (ssize_t) sizeof message)
            _exit (1);
        pause ();
        _exit (0);
    }
    close (report [1]);
    char endpoint [256];
    ASSERT_EQ (test_read_exact (report [0], endpoint, sizeof endpoint, test_ms (10000)), 0);
    close (report [0]);
    ASSERT (strlen (endpoint) > 0);
    zp_state_t *state = zp_state_connect (endpoint, NULL);
    ASSERT_NOT_NULL (state);
    zp_watch_t *watch = zp_watch_new (state, NULL);
    ASSERT_NOT_NULL (watch);

    killer_t killer = { store, 300 };
    pthread_t thread;
    ASSERT_EQ (pthread_create (&thread, NULL, s_kill_later, &killer), 0);
    int64_t start = test_now_ms ();
    ASSERT_NULL_ERRNO (zp_state_get_when_change (state, "never", -1), ENOTCONN);
    ASSERT_LT (test_now_ms () - start, test_ms (5000));
    ASSERT_FAIL_ERRNO (zp_watch_next (watch, NULL, NULL, -1), EINVAL);
    char *key = NULL;
    ASSERT_FAIL_ERRNO (zp_watch_next (watch, &key, NULL, test_ms (5000)), ENOTCONN);
    //  And a watcher asked after the loss fails at once
    start = test_now_ms ();
    ASSERT_NULL_ERRNO (zp_state_get_when_change (state, "never", -1), ENOTCONN);
    ASSERT_LT (test_now_ms () - start, test_ms (1000));
    pthread_join (thread, NULL);
    ASSERT_EQ (test_wait_child (store, test_ms (5000)), 128 + SIGKILL);
    zp_watch_destroy (&watch);
    zp_state_destroy (&state);
    return 0;
}
