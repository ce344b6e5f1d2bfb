/*  =========================================================================
    test-strategy.c - group strategies: one_for_one, one_for_all,
    rest_for_one, temporary workers in a group restart, group intensity,
    process notices at every level, and a supervision tree three levels deep
    with a different strategy at each level
    =========================================================================
*/

#include "harness.h"
#include <signal.h>

//  The value of an integer key; -1 when there is none
static int64_t
s_get_int (zp_state_t *state, const char *key)
{
    int64_t value = -1;
    if (zp_state_get_int (state, key, &value) < 0)
        return -1;
    return value;
}

static int64_t
s_proc_int (zp_state_t *state, const char *name, const char *field)
{
    char key [128];
    snprintf (key, sizeof key, "$proc/%s/%s", name, field);
    return s_get_int (state, key);
}

//  Wait until $proc/NAME/status equals status
static void
s_expect_status (zp_state_t *state, const char *name, const char *status)
{
    char *key = zsys_sprintf ("$proc/%s/status", name);
    if (zp_state_get_when_equal_str (state, key, status, test_ms (10000)) != 0) {
        char *actual = zp_state_get_str (state, key);
        test_fail (__FILE__, __LINE__, errno, "%s is %s, expected %s", key,
                   actual? actual: "(none)", status);
    }
    zstr_free (&key);
}

//  Wait until every worker of the NULL-ended list of names runs. Then every
//  notice about its start is in the store: the reaper publishes "starting"
//  and "running" in that order, whereas a worker's own writes (its "starts")
//  take another way to the store and may overtake them
static void
s_expect_running (zp_state_t *state, const char **names)
{
    for (; *names; names++)
        s_expect_status (state, *names, "running");
}

//  Wait until worker name runs with a pid other than old; returns it
static pid_t
s_expect_new_pid (zp_state_t *state, const char *name, pid_t old)
{
    char *key = zsys_sprintf ("$proc/%s/pid", name);
    int64_t deadline = test_now_ms () + test_ms (10000);
    while (true) {
        int64_t pid = s_get_int (state, key);
        char *status_key = zsys_sprintf ("$proc/%s/status", name);
        char *status = zp_state_get_str (state, status_key);
        bool running = status && streq (status, "running");
        zstr_free (&status);
        zstr_free (&status_key);
        if (pid > 0 && pid != old && running) {
            zstr_free (&key);
            return (pid_t) pid;
        }
        if (test_now_ms () > deadline)
            test_fail (__FILE__, __LINE__, 0, "%s is still %d (or not running)", name,
                       (int) old);
        zclock_sleep (20);
    }
}

//  Wait until key holds at least value
static void
s_expect_at_least (zp_state_t *state, const char *key, int64_t value)
{
    int64_t deadline = test_now_ms () + test_ms (10000);
    while (s_get_int (state, key) < value) {
        if (test_now_ms () > deadline)
            test_fail (__FILE__, __LINE__, 0, "%s is %" PRId64 ", expected at least %"
                       PRId64, key, s_get_int (state, key), value);
        zclock_sleep (20);
    }
}

//  A worker that records the order of its starts ("start/NAME" = the value
//  of the counter "starts" when it started) and waits for $TERM
static void
s_worker_member (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    int64_t order = 0;
    ASSERT_EQ (zp_state_incr (state, "starts", 1, &order), 0);
    char key [128];
    snprintf (key, sizeof key, "start/%s", zp_worker_name (self));
    ASSERT_EQ (zp_state_set_int (state, key, order), 0);
    test_drain_mailbox (self);
}

//  A member that listens neither to $TERM nor to SIGTERM: it is killed
static void
s_worker_deaf (zp_worker_t *self, void *props)
{
    while (true)
        pause ();
}

//  Exits 3 right after it starts
static void
s_worker_crashing (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    ASSERT_EQ (zp_state_incr (state, "crashes", 1, NULL), 0);
    exit (3);
}

//  Exits 3 on its first run; on the next ones, waits for "go" then exits 0
static void
s_worker_once_then_done (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    int64_t runs = 0;
    ASSERT_EQ (zp_state_incr (state, "runs", 1, &runs), 0);
    if (runs == 1)
        exit (3);
    ASSERT_EQ (zp_state_get_when_available (state, "go", -1), 0);
}

//  Read process notices from watch until count workers have reported
//  "starting"; returns their names in that order, space-separated (the
//  caller frees it)
static char *
s_starting_order (zp_watch_t *watch, int count)
{
    char order [256] = "";
    while (count) {
        char *key, *value;
        ASSERT_EQ (zp_watch_next (watch, &key, &value, test_ms (10000)), 0);
        size_t length = strlen (key);
        if (value && streq (value, "starting") && length > 13
        &&  streq (key + length - 7, "/status")) {
            size_t used = strlen (order);
            snprintf (order + used, sizeof order - used, "%s%.*s", used? " ": "",
                      (int) (length - 13), key + 6);
            count--;
        }
        zstr_free (&key);
        zstr_free (&value);
    }
    return strdup (order);
}

static zp_ctx_t *
s_ctx_new (zp_strategy_t strategy, zp_restart_t policy)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_ctx_set_grace (ctx, 300);
    ASSERT_EQ (zp_ctx_set_strategy (ctx, strategy), 0);
    ASSERT_EQ (zp_ctx_set_restart (ctx, policy), 0);
    ASSERT_EQ (zp_ctx_set_backoff (ctx, 10, 50), 0);
    return ctx;
}


//  ---------------------------------------------------------------------------

TEST_IMPL (strategy_invalid)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    ASSERT_FAIL_ERRNO (zp_ctx_set_strategy (NULL, ZP_STRATEGY_ONE_FOR_ALL), EINVAL);
    ASSERT_FAIL_ERRNO (zp_ctx_set_strategy (ctx, (zp_strategy_t) 7), EINVAL);
    ASSERT_FAIL_ERRNO (zp_ctx_set_strategy (ctx, (zp_strategy_t) -1), EINVAL);
    ASSERT_EQ (zp_ctx_set_strategy (ctx, ZP_STRATEGY_REST_FOR_ONE), 0);
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "m", s_worker_member, NULL));
    //  Once a worker is spawned the group's strategy stays
    ASSERT_FAIL_ERRNO (zp_ctx_set_strategy (ctx, ZP_STRATEGY_ONE_FOR_ONE), EINVAL);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  The default: only the worker that died is restarted
TEST_IMPL (strategy_one_for_one)
{
    zp_ctx_t *ctx = s_ctx_new (ZP_STRATEGY_ONE_FOR_ONE, ZP_RESTART_PERMANENT);
    zp_state_t *state = zp_ctx_state (ctx);
    const char *names [] = { "a", "b", "c" };
    pid_t pids [3];
    for (int index = 0; index < 3; index++)
        pids [index] = zp_proc_pid (zp_ctx_spawn (ctx, names [index], s_worker_member, NULL));
    ASSERT_EQ (kill (pids [1], SIGKILL), 0);
    s_expect_new_pid (state, "b", pids [1]);
    ASSERT_EQ (s_proc_int (state, "a", "pid"), pids [0]);
    ASSERT_EQ (s_proc_int (state, "c", "pid"), pids [2]);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  one_for_all: every other worker is stopped and all restart in spawn
//  order; a temporary worker is stopped (signalled: it ignores $TERM) and
//  stays stopped
TEST_IMPL (strategy_one_for_all)
{
    zp_ctx_t *ctx = s_ctx_new (ZP_STRATEGY_ONE_FOR_ALL, ZP_RESTART_PERMANENT);
    zp_state_t *state = zp_ctx_state (ctx);
    zp_watch_t *watch = zp_watch_new (state, "$proc/a/status");
    ASSERT_NOT_NULL (watch);
    pid_t a = zp_proc_pid (zp_ctx_spawn (ctx, "a", s_worker_member, NULL));
    ASSERT_EQ (zp_ctx_set_restart (ctx, ZP_RESTART_TEMPORARY), 0);
    zp_proc_t *temp = zp_ctx_spawn (ctx, "t", s_worker_deaf, NULL);
    ASSERT_NOT_NULL (temp);
    ASSERT_EQ (zp_ctx_set_restart (ctx, ZP_RESTART_PERMANENT), 0);
    pid_t b = zp_proc_pid (zp_ctx_spawn (ctx, "b", s_worker_member, NULL));
    pid_t c = zp_proc_pid (zp_ctx_spawn (ctx, "c", s_worker_member, NULL));
    s_expect_at_least (state, "starts", 3);
    //  Only the notices of the restart from here on
    const char *group [] = { "a", "t", "b", "c", NULL };
    s_expect_running (state, group);
    zp_watch_t *all = zp_watch_new (state, "$proc/");
    ASSERT_NOT_NULL (all);
    ASSERT_EQ (kill (b, SIGKILL), 0);
    s_expect_new_pid (state, "a", a);
    s_expect_new_pid (state, "b", b);
    s_expect_new_pid (state, "c", c);
    //  Restarted in spawn order
    char *order = s_starting_order (all, 3);
    ASSERT_STR_EQ (order, "a b c");
    free (order);
    zp_watch_destroy (&all);
    s_expect_at_least (state, "starts", 6);
    //  The temporary one was stopped (killed: it ignores $TERM and SIGTERM)
    //  and not restarted
    pid_t t = zp_proc_pid (temp);
    ASSERT_EQ (zp_proc_wait (temp, test_ms (5000)), 128 + SIGKILL);
    s_expect_status (state, "t", "killed");
    ASSERT_EQ (s_proc_int (state, "t", "pid"), t);
    //  Every step of a's life was published
    const char *steps [] = { "starting", "running", "stopping", "restarting", "starting",
                             "running" };
    for (size_t step = 0; step < 6; step++) {
        char *key, *value;
        ASSERT_EQ (zp_watch_next (watch, &key, &value, test_ms (5000)), 0);
        ASSERT_STR_EQ (value, steps [step]);
        zstr_free (&key);
        zstr_free (&value);
    }
    zp_watch_destroy (&watch);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  rest_for_one: the workers spawned after the one that died restart with
//  it; those before are untouched
TEST_IMPL (strategy_rest_for_one)
{
    zp_ctx_t *ctx = s_ctx_new (ZP_STRATEGY_REST_FOR_ONE, ZP_RESTART_PERMANENT);
    zp_state_t *state = zp_ctx_state (ctx);
    const char *names [] = { "a", "b", "c", "d", NULL };
    pid_t pids [4];
    for (int index = 0; index < 4; index++)
        pids [index] = zp_proc_pid (zp_ctx_spawn (ctx, names [index], s_worker_member, NULL));
    s_expect_at_least (state, "starts", 4);
    //  Only the notices of the restart from here on
    s_expect_running (state, names);
    //  Which start was a's (workers started one after the other may still
    //  count their starts in any order)
    s_expect_at_least (state, "start/a", 1);
    int64_t start_a = s_get_int (state, "start/a");
    zp_watch_t *all = zp_watch_new (state, "$proc/");
    ASSERT_NOT_NULL (all);
    ASSERT_EQ (kill (pids [1], SIGKILL), 0);
    for (int index = 1; index < 4; index++)
        s_expect_new_pid (state, names [index], pids [index]);
    char *order = s_starting_order (all, 3);
    ASSERT_STR_EQ (order, "b c d");
    free (order);
    zp_watch_destroy (&all);
    s_expect_at_least (state, "starts", 7);
    ASSERT_EQ (s_proc_int (state, "a", "pid"), pids [0]);
    ASSERT_EQ (s_get_int (state, "start/a"), start_a);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Intensity counts group restarts; when it runs out the whole group is
//  given up, and wait_all reports the failure of the worker that crashed,
//  not the exits the context caused
TEST_IMPL (strategy_intensity)
{
    zp_ctx_t *ctx = s_ctx_new (ZP_STRATEGY_ONE_FOR_ALL, ZP_RESTART_PERMANENT);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_EQ (zp_ctx_set_intensity (ctx, 2, 60000), 0);
    zp_proc_t *member = zp_ctx_spawn (ctx, "member", s_worker_member, NULL);
    ASSERT_NOT_NULL (member);
    zp_proc_t *crasher = zp_ctx_spawn (ctx, "crasher", s_worker_crashing, NULL);
    ASSERT_NOT_NULL (crasher);
    s_expect_status (state, "crasher", "failed");
    s_expect_status (state, "member", "failed");
    //  Two group restarts, then given up: three crashes, three starts of
    //  the member
    ASSERT_EQ (s_get_int (state, "crashes"), 3);
    ASSERT_EQ (s_get_int (state, "starts"), 3);
    ASSERT_EQ (zp_proc_wait (crasher, test_ms (5000)), 3);
    ASSERT_EQ (zp_ctx_wait_all (ctx, test_ms (5000)), 3);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Exits the context caused in a group restart are no failure: wait_all
//  gives 0 when every worker's final exit is 0
TEST_IMPL (strategy_wait_all)
{
    zp_ctx_t *ctx = s_ctx_new (ZP_STRATEGY_ONE_FOR_ALL, ZP_RESTART_TRANSIENT);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "member", s_worker_member, NULL));
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "once", s_worker_once_then_done, NULL));
    //  once crashed, member was stopped, both restarted
    s_expect_at_least (state, "starts", 2);
    ASSERT_EQ (zp_state_get_when_equal_str (state, "runs", "2", test_ms (5000)), 0);
    s_expect_status (state, "once", "running");
    ASSERT_EQ (zp_state_set_str (state, "go", "1"), 0);
    s_expect_status (state, "once", "exited");
    //  Now stop the member ourselves: a mailbox $TERM, as destroy would
    zmsg_t *term = zmsg_new ();
    zmsg_addstr (term, "$TERM");
    ASSERT_EQ (zp_proc_send (zp_ctx_proc (ctx, "member"), &term), 0);
    ASSERT_EQ (zp_ctx_wait_all (ctx, test_ms (5000)), 0);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  ---------------------------------------------------------------------------
//  A supervision tree three levels deep, a different strategy at each:
//      top (one_for_all): sup, peer
//      sup (rest_for_one): sup.1, sup.2, sup.3
//      sup.2 (one_for_one): sup.2.1, sup.2.2

typedef struct {
    zp_strategy_t strategy;     //  Of this supervisor's own context
    const char *children [3];   //  Its children, NULL-ended
    bool supervisor [3];        //  Which of them supervise in turn
} tree_level_t;

static tree_level_t s_tree_sup = {
    ZP_STRATEGY_REST_FOR_ONE, { "sup.1", "sup.2", "sup.3" }, { false, true, false }
};
static tree_level_t s_tree_sup2 = {
    ZP_STRATEGY_ONE_FOR_ONE, { "sup.2.1", "sup.2.2", NULL }, { false, false, false }
};

static void
s_worker_supervisor (zp_worker_t *self, void *props)
{
    tree_level_t *level = streq (zp_worker_name (self), "sup")? &s_tree_sup: &s_tree_sup2;
    zp_ctx_t *ctx = zp_worker_ctx (self);
    ASSERT_NOT_NULL (ctx);
    ASSERT_EQ (zp_ctx_set_strategy (ctx, level->strategy), 0);
    ASSERT_EQ (zp_ctx_set_restart (ctx, ZP_RESTART_PERMANENT), 0);
    ASSERT_EQ (zp_ctx_set_backoff (ctx, 10, 50), 0);
    zp_ctx_set_grace (ctx, 300);
    for (int index = 0; index < 3 && level->children [index]; index++)
        ASSERT_NOT_NULL (zp_worker_spawn (self, level->children [index],
                                          level->supervisor [index]? s_worker_supervisor
                                                                   : s_worker_member, NULL));
    test_drain_mailbox (self);
}

//  The pids of the tree, in this order
static const char *s_tree_names [] = {
    "sup", "peer", "sup.1", "sup.2", "sup.3", "sup.2.1", "sup.2.2"
};
#define TREE_SIZE 7

static void
s_tree_pids (zp_state_t *state, pid_t *pids)
{
    for (int index = 0; index < TREE_SIZE; index++) {
        s_expect_status (state, s_tree_names [index], "running");
        pids [index] = (pid_t) s_proc_int (state, s_tree_names [index], "pid");
    }
}

//  After a restart: those in renewed have new pids, the others the same
static void
s_tree_expect (zp_state_t *state, pid_t *pids, const char *renewed)
{
    for (int index = 0; index < TREE_SIZE; index++) {
        const char *name = s_tree_names [index];
        char tag [32];
        snprintf (tag, sizeof tag, " %s ", name);
        if (strstr (renewed, tag))
            pids [index] = s_expect_new_pid (state, name, pids [index]);
    }
    for (int index = 0; index < TREE_SIZE; index++) {
        const char *name = s_tree_names [index];
        char tag [32];
        snprintf (tag, sizeof tag, " %s ", name);
        if (!strstr (renewed, tag)) {
            s_expect_status (state, name, "running");
            if (s_proc_int (state, name, "pid") != pids [index])
                test_fail (__FILE__, __LINE__, 0, "%s was restarted", name);
        }
    }
}

TEST_IMPL (strategy_tree)
{
    zp_ctx_t *ctx = s_ctx_new (ZP_STRATEGY_ONE_FOR_ALL, ZP_RESTART_PERMANENT);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "sup", s_worker_supervisor, NULL));
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "peer", s_worker_member, NULL));
    pid_t pids [TREE_SIZE];
    //  Every level publishes its workers' notices
    s_tree_pids (state, pids);

    //  Level 3, one_for_one: only sup.2.1
    ASSERT_EQ (kill (pids [5], SIGKILL), 0);
    s_tree_expect (state, pids, " sup.2.1 ");

    //  Level 2, rest_for_one: sup.2 (with its own children, which died with
    //  it) and sup.3; sup.1 stays
    ASSERT_EQ (kill (pids [3], SIGKILL), 0);
    s_tree_expect (state, pids, " sup.2 sup.3 sup.2.1 sup.2.2 ");

    //  Level 1, one_for_all: peer dies, sup is stopped with all below it,
    //  everything restarts
    ASSERT_EQ (kill (pids [1], SIGKILL), 0);
    s_tree_expect (state, pids, " sup peer sup.1 sup.2 sup.3 sup.2.1 sup.2.2 ");

    zp_ctx_destroy (&ctx);
    for (int index = 0; index < TREE_SIZE; index++)
        ASSERT_EQ (test_wait_gone (pids [index], test_ms (5000)), 0);
    return 0;
}


//  Pool workers are outside the group: a pool worker's crash restarts no
//  worker of a one_for_all context, and wait_all does not count it
static zchunk_t *
s_task_crash_first (zp_worker_t *self, zchunk_t *input, void *props)
{
    int64_t runs = 0;
    zp_state_incr (zp_worker_state (self), "pool-runs", 1, &runs);
    if (runs == 1)
        abort ();
    return zchunk_dup (input);
}

TEST_IMPL (strategy_pool_outside)
{
    zp_ctx_t *ctx = s_ctx_new (ZP_STRATEGY_ONE_FOR_ALL, ZP_RESTART_PERMANENT);
    zp_state_t *state = zp_ctx_state (ctx);
    zp_proc_t *member = zp_ctx_spawn (ctx, "member", s_worker_member, NULL);
    ASSERT_NOT_NULL (member);
    pid_t pid = zp_proc_pid (member);
    zp_pool_t *pool = zp_pool_new (ctx, "p", 1, s_task_crash_first, NULL);
    ASSERT_NOT_NULL (pool);
    zchunk_t *input = zchunk_new ("x", 1), *output = NULL;
    ASSERT_EQ (zp_pool_map (pool, &input, 1, &output, test_ms (10000)), 0);
    ASSERT_NOT_NULL (output);
    zchunk_destroy (&output);
    zchunk_destroy (&input);
    zp_pool_destroy (&pool);
    //  The member was not restarted: still its first start, same pid
    s_expect_status (state, "member", "running");
    ASSERT_EQ (s_proc_int (state, "member", "pid"), pid);
    s_expect_at_least (state, "starts", 1);
    ASSERT_EQ (s_get_int (state, "starts"), 1);
    ASSERT_EQ (zp_ctx_running (ctx), 1);
    zp_ctx_destroy (&ctx);
    return 0;
}
