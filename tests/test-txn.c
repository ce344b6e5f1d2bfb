/*  =========================================================================
    test-txn - batches (zp_txn), snapshots (zp_state_snapshot) and replicas
    (zp_state_replicate)
    =========================================================================
*/

#include "harness.h"

#define OPEN_CTX() \
    zp_ctx_t *ctx = zp_ctx_new (); \
    ASSERT_NOT_NULL (ctx); \
    zp_state_t *state = zp_ctx_state (ctx); \
    ASSERT_NOT_NULL (state)

#define WORKERS         8
#define ACCOUNTS        10
#define BALANCE         1000
#define TRANSFERS       150

//  ---------------------------------------------------------------------------
//  A batch: every kind of operation, results, consecutive sequence numbers

TEST_IMPL (txn_basic)
{
    OPEN_CTX ();
    ASSERT_EQ (zp_state_set_str (state, "gone", "x"), 0);
    ASSERT_EQ (zp_state_set_str (state, "hits", "41"), 0);
    uint64_t before = zp_state_seq (state);

    zp_txn_t *txn = zp_txn_new (state);
    ASSERT_NOT_NULL (txn);
    int64_t hits = -1, fresh = -1, twice = -1;
    ASSERT_EQ (zp_txn_require_str (txn, "hits", "41"), 0);
    ASSERT_EQ (zp_txn_require_str (txn, "absent", NULL), 0);
    ASSERT_EQ (zp_txn_set_str (txn, "name", "zproc"), 0);
    ASSERT_EQ (zp_txn_set_bytes (txn, "bin", "a\0b", 3), 0);
    ASSERT_EQ (zp_txn_set_bytes (txn, "empty", NULL, 0), 0);
    ASSERT_EQ (zp_txn_delete (txn, "gone"), 0);
    ASSERT_EQ (zp_txn_delete (txn, "never-was"), 0);
    ASSERT_EQ (zp_txn_incr (txn, "hits", 1, &hits), 0);
    ASSERT_EQ (zp_txn_incr (txn, "fresh", -5, &fresh), 0);
    //  Operations apply in order: this one sees the incr before it
    ASSERT_EQ (zp_txn_incr (txn, "fresh", 2, &twice), 0);
    ASSERT_EQ (zp_txn_incr (txn, "fresh", 0, NULL), 0);
    ASSERT_EQ (zp_txn_require_str (txn, "fresh", "-3"), 0);
    ASSERT_EQ (zp_txn_size (txn), 12);
    ASSERT_EQ (zp_txn_commit (txn), 0);
    ASSERT_EQ (zp_txn_size (txn), 0);
    ASSERT_EQ (hits, 42);
    ASSERT_EQ (fresh, -5);
    ASSERT_EQ (twice, -3);
    //  Seven changes, numbered one after the other: name, bin, empty, gone,
    //  hits, fresh, fresh, fresh (a precondition and a delete of nothing
    //  make none)
    ASSERT_EQ (zp_state_seq (state), before + 8);

    ASSERT_STATE_STR (state, "name", "zproc");
    zchunk_t *bin = zp_state_get_bytes (state, "bin");
    ASSERT_NOT_NULL (bin);
    ASSERT_EQ (zchunk_size (bin), 3);
    ASSERT_EQ (memcmp (zchunk_data (bin), "a\0b", 3), 0);
    zchunk_destroy (&bin);
    ASSERT_STATE_STR (state, "empty", "");
    ASSERT (!zp_state_exists (state, "gone"));
    ASSERT_STATE_STR (state, "hits", "42");
    ASSERT_STATE_STR (state, "fresh", "-3");

    //  The batch is reusable; a set then a delete of one key leaves nothing
    ASSERT_EQ (zp_txn_set_str (txn, "brief", "1"), 0);
    ASSERT_EQ (zp_txn_delete (txn, "brief"), 0);
    ASSERT_EQ (zp_txn_commit (txn), 0);
    ASSERT (!zp_state_exists (state, "brief"));
    zp_txn_destroy (&txn);
    zp_txn_destroy (&txn);
    ASSERT_NULL (txn);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  ---------------------------------------------------------------------------
//  Every error path

TEST_IMPL (txn_errors)
{
    OPEN_CTX ();
    ASSERT_NULL_ERRNO (zp_txn_new (NULL), EINVAL);
    zp_txn_destroy (NULL);
    ASSERT_FAIL_ERRNO (zp_txn_set_str (NULL, "k", "v"), EINVAL);
    ASSERT_FAIL_ERRNO (zp_txn_commit (NULL), EINVAL);
    ASSERT_EQ (zp_txn_size (NULL), 0);

    zp_txn_t *txn = zp_txn_new (state);
    ASSERT_NOT_NULL (txn);
    //  Empty commit: nothing to do
    uint64_t before = zp_state_seq (state);
    ASSERT_EQ (zp_txn_commit (txn), 0);

    //  Bad arguments fail at once and leave the batch as it was
    ASSERT_EQ (zp_txn_set_str (txn, "kept", "1"), 0);
    char long_key [ZP_KEY_MAX + 2];
    memset (long_key, 'k', sizeof long_key - 1);
    long_key [sizeof long_key - 1] = 0;
    int64_t result = 7;
    ASSERT_FAIL_ERRNO (zp_txn_set_str (txn, NULL, "v"), EINVAL);
    ASSERT_FAIL_ERRNO (zp_txn_set_str (txn, "", "v"), EINVAL);
    ASSERT_FAIL_ERRNO (zp_txn_set_str (txn, long_key, "v"), EINVAL);
    ASSERT_FAIL_ERRNO (zp_txn_set_str (txn, "k", NULL), EINVAL);
    ASSERT_FAIL_ERRNO (zp_txn_set_bytes (txn, "k", NULL, 3), EINVAL);
    ASSERT_FAIL_ERRNO (zp_txn_delete (txn, NULL), EINVAL);
    ASSERT_FAIL_ERRNO (zp_txn_incr (txn, "", 1, &result), EINVAL);
    ASSERT_FAIL_ERRNO (zp_txn_require_str (txn, long_key, "v"), EINVAL);
    ASSERT_FAIL_ERRNO (zp_txn_set_bytes (txn, "k", "", (size_t) ZP_VALUE_MAX + 1), EMSGSIZE);
    ASSERT_EQ (zp_txn_size (txn), 1);
    ASSERT_EQ (zp_txn_commit (txn), 0);
    ASSERT_STATE_STR (state, "kept", "1");
    ASSERT_EQ (zp_state_seq (state), before + 1);

    //  A failed precondition: nothing applied, no result written, and the
    //  batch is empty after
    ASSERT_EQ (zp_state_set_str (state, "n", "5"), 0);
    ASSERT_EQ (zp_state_set_str (state, "text", "abc"), 0);
    before = zp_state_seq (state);
    ASSERT_EQ (zp_txn_incr (txn, "n", 1, &result), 0);
    ASSERT_EQ (zp_txn_set_str (txn, "side", "effect"), 0);
    ASSERT_EQ (zp_txn_require_str (txn, "n", "5"), 0);      //  false by then: 6
    ASSERT_FAIL_ERRNO (zp_txn_commit (txn), EAGAIN);
    ASSERT_EQ (zp_txn_size (txn), 0);
    ASSERT_EQ (result, 7);
    ASSERT_STATE_STR (state, "n", "5");
    ASSERT (!zp_state_exists (state, "side"));
    ASSERT_EQ (zp_txn_require_str (txn, "n", NULL), 0);
    ASSERT_EQ (zp_txn_set_str (txn, "side", "effect"), 0);
    ASSERT_FAIL_ERRNO (zp_txn_commit (txn), EAGAIN);
    ASSERT (!zp_state_exists (state, "side"));
    ASSERT_EQ (zp_txn_require_str (txn, "missing", "x"), 0);
    ASSERT_FAIL_ERRNO (zp_txn_commit (txn), EAGAIN);

    //  An invalid operation: incr of a value that is no int64, an overflow
    ASSERT_EQ (zp_txn_set_str (txn, "side", "effect"), 0);
    ASSERT_EQ (zp_txn_incr (txn, "text", 1, &result), 0);
    ASSERT_FAIL_ERRNO (zp_txn_commit (txn), EINVAL);
    ASSERT_EQ (zp_txn_size (txn), 0);
    ASSERT (!zp_state_exists (state, "side"));
    ASSERT_EQ (zp_txn_incr (txn, "n", INT64_MAX, &result), 0);
    ASSERT_FAIL_ERRNO (zp_txn_commit (txn), EINVAL);
    ASSERT_EQ (result, 7);
    ASSERT_STATE_STR (state, "n", "5");

    //  Reserved keys: no write, whatever else the batch holds
    ASSERT_EQ (zp_txn_set_str (txn, "side", "effect"), 0);
    ASSERT_EQ (zp_txn_set_str (txn, "$mine", "x"), 0);
    ASSERT_FAIL_ERRNO (zp_txn_commit (txn), EACCES);
    ASSERT_EQ (zp_txn_delete (txn, "$mine"), 0);
    ASSERT_FAIL_ERRNO (zp_txn_commit (txn), EACCES);
    ASSERT_EQ (zp_txn_incr (txn, "$mine", 1, NULL), 0);
    ASSERT_FAIL_ERRNO (zp_txn_commit (txn), EACCES);
    ASSERT (!zp_state_exists (state, "side"));
    ASSERT_EQ (zp_state_seq (state), before);

    //  Too big as a whole: EMSGSIZE at commit, and the batch is empty after
    size_t half = ZP_VALUE_MAX / 2 + 1;
    char *big = (char *) calloc (1, half);
    ASSERT_NOT_NULL (big);
    ASSERT_EQ (zp_txn_set_bytes (txn, "big1", big, half), 0);
    ASSERT_EQ (zp_txn_set_bytes (txn, "big2", big, half), 0);
    ASSERT_FAIL_ERRNO (zp_txn_commit (txn), EMSGSIZE);
    ASSERT_EQ (zp_txn_size (txn), 0);
    ASSERT (!zp_state_exists (state, "big1"));
    //  One big value alone goes through
    ASSERT_EQ (zp_txn_set_bytes (txn, "big1", big, half), 0);
    ASSERT_EQ (zp_txn_commit (txn), 0);
    ASSERT (zp_state_exists (state, "big1"));
    free (big);

    //  On a read-only view: EACCES, the batch empty after
    zp_state_t *view = zp_state_snapshot (state, NULL);
    ASSERT_NOT_NULL (view);
    zp_txn_t *on_view = zp_txn_new (view);
    ASSERT_NOT_NULL (on_view);
    ASSERT_EQ (zp_txn_set_str (on_view, "k", "v"), 0);
    ASSERT_FAIL_ERRNO (zp_txn_commit (on_view), EACCES);
    ASSERT_EQ (zp_txn_size (on_view), 0);
    zp_txn_destroy (&on_view);
    zp_state_destroy (&view);
    ASSERT (!zp_state_exists (state, "k"));

    zp_txn_destroy (&txn);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  ---------------------------------------------------------------------------
//  8 workers move money between 10 accounts with preconditions and retries;
//  the total is exact at the end and in every snapshot taken meanwhile

static void
s_account (char *key, size_t size, int index)
{
    snprintf (key, size, "bank/%d", index);
}

static void
s_banker (zp_worker_t *worker, void *props)
{
    zp_state_t *state = zp_worker_state (worker);
    zp_txn_t *txn = zp_txn_new (state);
    ASSERT_NOT_NULL (txn);
    unsigned int seed = (unsigned int) getpid ();
    int done = 0;
    int64_t conflicts = 0;
    while (done < TRANSFERS) {
        int from = rand_r (&seed) % ACCOUNTS;
        int to = (from + 1 + rand_r (&seed) % (ACCOUNTS - 1)) % ACCOUNTS;
        char from_key [32], to_key [32];
        s_account (from_key, sizeof from_key, from);
        s_account (to_key, sizeof to_key, to);
        if (done % 3 == 0) {
            //  Blind: incr both sides, no read, no precondition
            ASSERT_EQ (zp_txn_incr (txn, from_key, -7, NULL), 0);
            ASSERT_EQ (zp_txn_incr (txn, to_key, 7, NULL), 0);
            ASSERT_EQ (zp_txn_commit (txn), 0);
            done++;
            continue;
        }
        //  Read, decide, write only if nobody came in between
        char *from_value = zp_state_get_str (state, from_key);
        char *to_value = zp_state_get_str (state, to_key);
        ASSERT_NOT_NULL (from_value);
        ASSERT_NOT_NULL (to_value);
        int64_t amount = 1 + rand_r (&seed) % 50;
        char from_next [32], to_next [32];
        snprintf (from_next, sizeof from_next, "%" PRId64, (int64_t) atoll (from_value) - amount);
        snprintf (to_next, sizeof to_next, "%" PRId64, (int64_t) atoll (to_value) + amount);
        ASSERT_EQ (zp_txn_require_str (txn, from_key, from_value), 0);
        ASSERT_EQ (zp_txn_require_str (txn, to_key, to_value), 0);
        ASSERT_EQ (zp_txn_set_str (txn, from_key, from_next), 0);
        ASSERT_EQ (zp_txn_set_str (txn, to_key, to_next), 0);
        errno = 0;
        if (zp_txn_commit (txn) == 0)
            done++;
        else {
            ASSERT_ERRNO_EQ (EAGAIN);
            conflicts++;
        }
        ASSERT_EQ (zp_txn_size (txn), 0);
        free (from_value);
        free (to_value);
    }
    ASSERT_EQ (zp_state_incr (state, "conflicts", conflicts, NULL), 0);
    zp_txn_destroy (&txn);
}

//  The sum of the accounts in a view; every account is there
static int64_t
s_total (zp_state_t *view)
{
    int64_t total = 0;
    for (int index = 0; index < ACCOUNTS; index++) {
        char key [32];
        s_account (key, sizeof key, index);
        int64_t balance = 0;
        ASSERT_EQ (zp_state_get_int (view, key, &balance), 0);
        total += balance;
    }
    return total;
}

TEST_IMPL (txn_bank_transfers)
{
    OPEN_CTX ();
    zp_txn_t *txn = zp_txn_new (state);
    for (int index = 0; index < ACCOUNTS; index++) {
        char key [32];
        s_account (key, sizeof key, index);
        ASSERT_EQ (zp_txn_set_str (txn, key, "1000"), 0);
    }
    ASSERT_EQ (zp_txn_commit (txn), 0);
    zp_txn_destroy (&txn);

    zp_proc_t *procs [WORKERS];
    test_spawn (ctx, s_banker, NULL, procs, WORKERS);
    //  Snapshots while they work: the total is always exact
    int snapshots = 0;
    int64_t deadline = test_now_ms () + test_ms (60000);
    int status = -1;
    while (status < 0) {
        zp_state_t *view = zp_state_snapshot (state, "bank/");
        ASSERT_NOT_NULL (view);
        ASSERT_EQ (zp_state_size (view), ACCOUNTS);
        ASSERT_EQ (s_total (view), ACCOUNTS * BALANCE);
        zp_state_destroy (&view);
        snapshots++;
        status = zp_ctx_wait_all (ctx, 0);
        ASSERT (status >= 0 || errno == ETIMEDOUT);
        ASSERT_LT (test_now_ms (), deadline);
    }
    ASSERT_EQ (status, 0);
    ASSERT_GT (snapshots, 1);
    for (int index = 0; index < WORKERS; index++)
        ASSERT_EQ (zp_proc_wait (procs [index], 0), 0);
    zp_state_t *view = zp_state_snapshot (state, "bank/");
    ASSERT_EQ (s_total (view), ACCOUNTS * BALANCE);
    zp_state_destroy (&view);
    ASSERT_EQ (s_total (state), ACCOUNTS * BALANCE);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  ---------------------------------------------------------------------------
//  Nobody sees half a batch: a watch is told where a batch ends, and a
//  predicate's view is only ever whole

static void
s_pair_mover (zp_worker_t *worker, void *props)
{
    zp_state_t *state = zp_worker_state (worker);
    zp_txn_t *txn = zp_txn_new (state);
    for (int index = 0; index < 200; index++) {
        //  Between them, a and b always hold 100; "other" is outside the
        //  watched prefix
        ASSERT_EQ (zp_txn_incr (txn, "pair/a", -1, NULL), 0);
        ASSERT_EQ (zp_txn_incr (txn, "other", 1, NULL), 0);
        ASSERT_EQ (zp_txn_incr (txn, "pair/b", 1, NULL), 0);
        ASSERT_EQ (zp_txn_incr (txn, "other", 1, NULL), 0);
        ASSERT_EQ (zp_txn_commit (txn), 0);
    }
    ASSERT_EQ (zp_state_set_str (state, "pair/done", "1"), 0);
    zp_txn_destroy (&txn);
}

typedef struct {
    int runs;                   //  Times the predicate ran
} pair_check_t;

static bool
s_pair_whole (zp_state_t *view, void *arg)
{
    pair_check_t *check = (pair_check_t *) arg;
    check->runs++;
    int64_t a = 0, b = 0;
    ASSERT_EQ (zp_state_get_int (view, "pair/a", &a), 0);
    ASSERT_EQ (zp_state_get_int (view, "pair/b", &b), 0);
    ASSERT_EQ (a + b, 100);
    //  Writes and watchers refuse to work on the view
    ASSERT_FAIL_ERRNO (zp_state_set_str (view, "x", "1"), EACCES);
    ASSERT_FAIL_ERRNO (zp_state_get_when_available (view, "x", 0), EACCES);
    return zp_state_exists (view, "pair/done");
}

TEST_IMPL (txn_never_half_seen)
{
    OPEN_CTX ();
    ASSERT_EQ (zp_state_set_int (state, "pair/a", 100), 0);
    ASSERT_EQ (zp_state_set_int (state, "pair/b", 0), 0);
    zp_watch_t *watch = zp_watch_new (state, "pair/");
    ASSERT_NOT_NULL (watch);
    zp_proc_t *proc = zp_ctx_spawn (ctx, "mover", s_pair_mover, NULL);
    ASSERT_NOT_NULL (proc);
    pair_check_t check = { 0 };
    ASSERT_EQ (zp_state_get_when (state, s_pair_whole, &check, test_ms (30000)), 0);
    ASSERT_GE (check.runs, 1);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (30000)), 0);

    //  The watch saw every change of pair/, each batch as a: more, b: last
    for (int index = 0; index < 200; index++) {
        char *key = NULL, *value = NULL;
        ASSERT_EQ (zp_watch_next (watch, &key, &value, test_ms (5000)), 0);
        ASSERT_STR_EQ (key, "pair/a");
        ASSERT_EQ (atoi (value), 99 - index);
        ASSERT (zp_watch_batch_more (watch));
        free (key);
        free (value);
        ASSERT_EQ (zp_watch_next (watch, &key, &value, test_ms (5000)), 0);
        ASSERT_STR_EQ (key, "pair/b");
        ASSERT_EQ (atoi (value), index + 1);
        ASSERT (!zp_watch_batch_more (watch));
        free (key);
        free (value);
    }
    zp_watch_destroy (&watch);
    ASSERT_STATE_STR (state, "other", "400");
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Watchers see a batch whole: a key changed twice in a batch wakes them
//  with its last value, and an intermediate value never satisfies them

static void
s_batch_watcher (zp_worker_t *worker, void *props)
{
    zp_state_t *state = zp_worker_state (worker);
    ASSERT_EQ (zp_state_set_str (state, "w/ready", "1"), 0);
    char *value = zp_state_get_when_change (state, "w/k", test_ms (10000));
    ASSERT_STR_EQ (value, "2");
    free (value);
    //  The same batch does not count as a change again
    ASSERT_NULL_ERRNO (zp_state_get_when_change (state, "w/other", 200), ETIMEDOUT);
    ASSERT_EQ (zp_state_set_str (state, "w/done", "1"), 0);
}

static void
s_equal_watcher (zp_worker_t *worker, void *props)
{
    zp_state_t *state = zp_worker_state (worker);
    ASSERT_EQ (zp_state_set_str (state, "e/ready", "1"), 0);
    ASSERT_FAIL_ERRNO (zp_state_get_when_equal_str (state, "e/k", "1", test_ms (1000)),
                       ETIMEDOUT);
}

TEST_IMPL (txn_watchers_whole)
{
    OPEN_CTX ();
    zp_state_t *writer = zp_state_connect (zp_ctx_endpoint (ctx), NULL);
    ASSERT_NOT_NULL (writer);
    zp_txn_t *txn = zp_txn_new (writer);
    //  Answered at once, from the log
    uint64_t before = zp_state_seq (state);
    ASSERT_EQ (zp_txn_set_str (txn, "w/k", "1"), 0);
    ASSERT_EQ (zp_txn_set_str (txn, "w/other", "x"), 0);
    ASSERT_EQ (zp_txn_set_str (txn, "w/k", "2"), 0);
    ASSERT_EQ (zp_txn_commit (txn), 0);
    char *value = zp_state_get_when_change (state, "w/k", test_ms (5000));
    ASSERT_STR_EQ (value, "2");
    free (value);
    ASSERT_EQ (zp_state_seq (state), before + 3);
    ASSERT_NULL_ERRNO (zp_state_get_when_change (state, "w/other", 0), ETIMEDOUT);

    //  Parked first (as a rule: the worker parks right after "ready")
    zp_proc_t *proc = zp_ctx_spawn (ctx, NULL, s_batch_watcher, NULL);
    ASSERT_NOT_NULL (proc);
    zp_proc_t *equal = zp_ctx_spawn (ctx, NULL, s_equal_watcher, NULL);
    ASSERT_NOT_NULL (equal);
    ASSERT_EQ (zp_state_get_when_available (state, "w/ready", test_ms (5000)), 0);
    ASSERT_EQ (zp_state_get_when_available (state, "e/ready", test_ms (5000)), 0);
    ASSERT_EQ (zp_txn_set_str (txn, "w/k", "1"), 0);
    ASSERT_EQ (zp_txn_set_str (txn, "e/k", "1"), 0);
    ASSERT_EQ (zp_txn_set_str (txn, "w/other", "y"), 0);
    ASSERT_EQ (zp_txn_set_str (txn, "e/k", "2"), 0);
    ASSERT_EQ (zp_txn_set_str (txn, "w/k", "2"), 0);
    ASSERT_EQ (zp_txn_commit (txn), 0);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (15000)), 0);
    ASSERT_EQ (zp_proc_wait (equal, test_ms (15000)), 0);
    zp_txn_destroy (&txn);
    zp_state_destroy (&writer);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  ---------------------------------------------------------------------------
//  Snapshots: local reads, one sequence number, EACCES for writes/watchers

TEST_IMPL (txn_snapshot_view)
{
    OPEN_CTX ();
    ASSERT_EQ (zp_state_set_str (state, "cfg/a", "1"), 0);
    ASSERT_EQ (zp_state_set_str (state, "cfg/b", "2.5"), 0);
    ASSERT_EQ (zp_state_set_bytes (state, "cfg/bin", "x\0y", 3), 0);
    ASSERT_EQ (zp_state_set_str (state, "other", "o"), 0);
    uint64_t seq = zp_state_seq (state);
    zp_state_t *view = zp_state_snapshot (state, "cfg/");
    ASSERT_NOT_NULL (view);
    ASSERT_EQ (zp_state_seq (view), seq);
    //  The store moves on; the view does not
    ASSERT_EQ (zp_state_set_str (state, "cfg/a", "changed"), 0);
    ASSERT_EQ (zp_state_set_str (state, "cfg/c", "new"), 0);
    ASSERT_STATE_STR (view, "cfg/a", "1");
    int64_t number = 0;
    double real = 0;
    ASSERT_EQ (zp_state_get_int (view, "cfg/a", &number), 0);
    ASSERT_EQ (number, 1);
    ASSERT_EQ (zp_state_get_double (view, "cfg/b", &real), 0);
    ASSERT (real == 2.5);
    ASSERT_FAIL_ERRNO (zp_state_get_int (view, "cfg/b", &number), EINVAL);
    zchunk_t *bin = zp_state_get_bytes (view, "cfg/bin");
    ASSERT_NOT_NULL (bin);
    ASSERT_EQ (zchunk_size (bin), 3);
    zchunk_destroy (&bin);
    ASSERT_NULL_ERRNO (zp_state_get_str (view, "cfg/c"), ENOENT);
    ASSERT_NULL_ERRNO (zp_state_get_str (view, "other"), ENOENT);
    ASSERT (zp_state_exists (view, "cfg/b"));
    ASSERT (!zp_state_exists (view, "other"));
    ASSERT_EQ (zp_state_size (view), 3);
    zlistx_t *keys = zp_state_keys (view, NULL);
    ASSERT_NOT_NULL (keys);
    ASSERT_EQ (zlistx_size (keys), 3);
    ASSERT_STR_EQ ((const char *) zlistx_first (keys), "cfg/a");
    ASSERT_STR_EQ ((const char *) zlistx_next (keys), "cfg/b");
    ASSERT_STR_EQ ((const char *) zlistx_next (keys), "cfg/bin");
    zlistx_destroy (&keys);

    //  Writes and watchers: EACCES
    int64_t result;
    ASSERT_FAIL_ERRNO (zp_state_set_str (view, "cfg/a", "x"), EACCES);
    ASSERT_FAIL_ERRNO (zp_state_set_int (view, "cfg/a", 1), EACCES);
    ASSERT_FAIL_ERRNO (zp_state_set_bytes (view, "cfg/a", "x", 1), EACCES);
    ASSERT_FAIL_ERRNO (zp_state_delete (view, "cfg/a"), EACCES);
    ASSERT_FAIL_ERRNO (zp_state_incr (view, "cfg/a", 1, &result), EACCES);
    ASSERT_FAIL_ERRNO (zp_state_cas_str (view, "cfg/a", "1", "2"), EACCES);
    ASSERT_NULL_ERRNO (zp_state_get_when_change (view, "cfg/a", 0), EACCES);
    ASSERT_FAIL_ERRNO (zp_state_get_when_equal_str (view, "cfg/a", "1", 0), EACCES);
    ASSERT_FAIL_ERRNO (zp_state_get_when_available (view, "cfg/a", 0), EACCES);
    ASSERT_FAIL_ERRNO (zp_state_get_when (view, s_pair_whole, NULL, 0), EACCES);
    ASSERT_NULL_ERRNO (zp_watch_new (view, NULL), EACCES);
    ASSERT_FAIL_ERRNO (zp_state_replicate (view, NULL), EACCES);

    //  A snapshot of a view is a local copy
    zp_state_t *sub = zp_state_snapshot (view, "cfg/b");
    ASSERT_NOT_NULL (sub);
    ASSERT_EQ (zp_state_size (sub), 2);
    ASSERT_EQ (zp_state_seq (sub), seq);
    zp_state_destroy (&sub);
    zp_state_destroy (&view);

    //  All keys; bad arguments
    view = zp_state_snapshot (state, "");
    ASSERT_NOT_NULL (view);
    ASSERT_EQ (zp_state_size (view), zp_state_size (state));
    zp_state_destroy (&view);
    char long_prefix [ZP_KEY_MAX + 2];
    memset (long_prefix, 'p', sizeof long_prefix - 1);
    long_prefix [sizeof long_prefix - 1] = 0;
    ASSERT_NULL_ERRNO (zp_state_snapshot (NULL, NULL), EINVAL);
    ASSERT_NULL_ERRNO (zp_state_snapshot (state, long_prefix), EINVAL);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  ---------------------------------------------------------------------------
//  Replicas: right answers, local or caught up, across a gap, on handles
//  with and without the shared page

static void
s_replica_checks (zp_state_t *state, zp_state_t *writer)
{
    ASSERT_EQ (zp_state_set_str (writer, "rep/a", "1"), 0);
    ASSERT_EQ (zp_state_set_str (writer, "rep/gone", "x"), 0);
    //  Enough keys for a reply of many frames
    zp_txn_t *bulk = zp_txn_new (writer);
    for (int index = 0; index < 40; index++) {
        char key [32];
        snprintf (key, sizeof key, "rep/bulk/%02d", index);
        ASSERT_EQ (zp_txn_set_str (bulk, key, key), 0);
    }
    ASSERT_EQ (zp_txn_commit (bulk), 0);
    zp_txn_destroy (&bulk);
    ASSERT_EQ (zp_state_replicate (state, "rep/"), 0);
    ASSERT_STATE_STR (state, "rep/bulk/00", "rep/bulk/00");
    ASSERT_STATE_STR (state, "rep/bulk/39", "rep/bulk/39");
    ASSERT_STATE_STR (state, "rep/a", "1");
    ASSERT (zp_state_exists (state, "rep/gone"));
    //  Changes made elsewhere are seen at the next read
    ASSERT_EQ (zp_state_set_str (writer, "rep/a", "2"), 0);
    ASSERT_EQ (zp_state_delete (writer, "rep/gone"), 0);
    ASSERT_EQ (zp_state_set_int (writer, "rep/n", 5), 0);
    ASSERT_STATE_STR (state, "rep/a", "2");
    ASSERT (!zp_state_exists (state, "rep/gone"));
    ASSERT_NULL_ERRNO (zp_state_get_str (state, "rep/gone"), ENOENT);
    int64_t number = 0;
    ASSERT_EQ (zp_state_get_int (state, "rep/n", &number), 0);
    ASSERT_EQ (number, 5);
    //  Writes through the replicated handle itself
    ASSERT_EQ (zp_state_incr (state, "rep/n", 1, NULL), 0);
    ASSERT_EQ (zp_state_get_int (state, "rep/n", &number), 0);
    ASSERT_EQ (number, 6);
    //  A batch shows whole
    zp_txn_t *txn = zp_txn_new (writer);
    ASSERT_EQ (zp_txn_set_str (txn, "rep/a", "3"), 0);
    ASSERT_EQ (zp_txn_set_str (txn, "rep/b", "3"), 0);
    ASSERT_EQ (zp_txn_commit (txn), 0);
    zp_txn_destroy (&txn);
    ASSERT_STATE_STR (state, "rep/a", "3");
    ASSERT_STATE_STR (state, "rep/b", "3");
    //  Keys outside the prefix come from the store
    ASSERT_EQ (zp_state_set_str (writer, "elsewhere", "e"), 0);
    ASSERT_STATE_STR (state, "elsewhere", "e");
    //  More changes than the log holds (16): the replica starts over
    for (int index = 0; index < 100; index++)
        ASSERT_EQ (zp_state_set_int (writer, "rep/many", index), 0);
    ASSERT_EQ (zp_state_set_str (writer, "rep/late", "L"), 0);
    ASSERT_EQ (zp_state_get_int (state, "rep/many", &number), 0);
    ASSERT_EQ (number, 99);
    ASSERT_STATE_STR (state, "rep/late", "L");
    ASSERT_STATE_STR (state, "rep/a", "3");
    //  Replacing the prefix
    ASSERT_EQ (zp_state_replicate (state, "rep/a"), 0);
    ASSERT_STATE_STR (state, "rep/a", "3");
    ASSERT_STATE_STR (state, "rep/b", "3");
    ASSERT_FAIL_ERRNO (zp_state_replicate (NULL, NULL), EINVAL);
}

TEST_IMPL (txn_replica_reads)
{
    //  A short log, to reach the gap
    setenv ("ZPROC_LOG_CHANGES", "16", 1);
    OPEN_CTX ();
    unsetenv ("ZPROC_LOG_CHANGES");
    //  The context's own handle (the shared page), then a connected one
    //  (none: a round trip per read)
    zp_state_t *writer = zp_state_connect (zp_ctx_endpoint (ctx), NULL);
    ASSERT_NOT_NULL (writer);
    s_replica_checks (state, writer);
    zp_state_t *remote = zp_state_connect (zp_ctx_endpoint (ctx), NULL);
    ASSERT_NOT_NULL (remote);
    s_replica_checks (remote, state);
    zp_state_destroy (&remote);
    zp_state_destroy (&writer);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Linearizable across processes: once a write returned in one process, a
//  replica read that begins after it, in another, sees it. The news that
//  the write returned travels outside the store (a pipe).

#define ROUNDS      300

typedef struct {
    int to_parent [2];          //  Worker -> parent: "I wrote i"
    int to_worker [2];          //  Parent -> worker: "I wrote i"
} lin_pipes_t;

static void
s_lin_worker (zp_worker_t *worker, void *props)
{
    lin_pipes_t *pipes = (lin_pipes_t *) props;
    zp_state_t *state = zp_worker_state (worker);
    ASSERT_EQ (zp_state_replicate (state, "lin/"), 0);
    for (int index = 1; index <= ROUNDS; index++) {
        //  Our write, then the news of it
        ASSERT_EQ (zp_state_set_int (state, "lin/worker", index), 0);
        ASSERT_EQ (write (pipes->to_parent [1], &index, sizeof index), sizeof index);
        //  The parent's news, then our read
        int written = 0;
        ASSERT_EQ (test_read_exact (pipes->to_worker [0], &written, sizeof written,
                                    test_ms (10000)), 0);
        int64_t seen = 0;
        ASSERT_EQ (zp_state_get_int (state, "lin/parent", &seen), 0);
        ASSERT_EQ (seen, written);
    }
}

static void
s_lin_parent (zp_state_t *state, lin_pipes_t *pipes)
{
    for (int index = 1; index <= ROUNDS; index++) {
        int written = 0;
        ASSERT_EQ (test_read_exact (pipes->to_parent [0], &written, sizeof written,
                                    test_ms (10000)), 0);
        int64_t seen = 0;
        ASSERT_EQ (zp_state_get_int (state, "lin/worker", &seen), 0);
        ASSERT_EQ (seen, written);
        ASSERT_EQ (zp_state_set_int (state, "lin/parent", index), 0);
        ASSERT_EQ (write (pipes->to_worker [1], &index, sizeof index), sizeof index);
    }
}

//  A worker's own worker reads through its replica too
static void
s_lin_spawner (zp_worker_t *worker, void *props)
{
    zp_proc_t *inner = zp_worker_spawn (worker, "inner", s_lin_worker, props);
    ASSERT_NOT_NULL (inner);
    ASSERT_EQ (zp_proc_wait (inner, test_ms (30000)), 0);
}

TEST_IMPL (txn_replica_linearizable)
{
    OPEN_CTX ();
    ASSERT_EQ (zp_state_set_int (state, "lin/worker", 0), 0);
    ASSERT_EQ (zp_state_set_int (state, "lin/parent", 0), 0);
    //  The parent reads through its replica (shared page), then through a
    //  connected handle's (none)
    zp_state_t *remote = zp_state_connect (zp_ctx_endpoint (ctx), NULL);
    ASSERT_NOT_NULL (remote);
    //  The third round: the worker's own worker reads
    zp_state_t *readers [3] = { state, remote, state };
    for (int round = 0; round < 3; round++) {
        lin_pipes_t pipes;
        ASSERT_EQ (pipe (pipes.to_parent), 0);
        ASSERT_EQ (pipe (pipes.to_worker), 0);
        ASSERT_EQ (zp_state_replicate (readers [round], "lin/"), 0);
        zp_proc_t *proc = zp_ctx_spawn (ctx, NULL, round < 2? s_lin_worker: s_lin_spawner,
                                        &pipes);
        ASSERT_NOT_NULL (proc);
        s_lin_parent (readers [round], &pipes);
        ASSERT_EQ (zp_proc_wait (proc, test_ms (30000)), 0);
        for (int index = 0; index < 2; index++) {
            close (pipes.to_parent [index]);
            close (pipes.to_worker [index]);
        }
    }
    zp_state_destroy (&remote);
    zp_ctx_destroy (&ctx);
    return 0;
}
