/*  =========================================================================
    test-pool.c - zp_pool: order, dynamic hand-out, retries after a crash,
    a kill or a NULL, EIO, ETIMEDOUT, EINTR, progress in the state, size 0,
    replacement names, the unordered variant, destroy when workers see no
    end of file, and what the pool is not
    (zp_ctx_wait_all does not wait for it)
    =========================================================================
*/

#include "harness.h"
#include <signal.h>
#include <sys/wait.h>

//  Inputs "0".."count-1" as strings
static zchunk_t **
s_inputs_new (size_t count)
{
    zchunk_t **inputs = (zchunk_t **) calloc (count, sizeof (zchunk_t *));
    ASSERT_NOT_NULL (inputs);
    for (size_t index = 0; index < count; index++) {
        char text [24];
        snprintf (text, sizeof text, "%zu", index);
        inputs [index] = zchunk_new (text, strlen (text));
        ASSERT_NOT_NULL (inputs [index]);
    }
    return inputs;
}

static void
s_chunks_destroy (zchunk_t **chunks, size_t count)
{
    for (size_t index = 0; index < count; index++)
        zchunk_destroy (&chunks [index]);
    free (chunks);
}

//  The number an input holds
static long
s_number (zchunk_t *input)
{
    char text [24];
    size_t size = zchunk_size (input) < sizeof text - 1? zchunk_size (input): sizeof text - 1;
    memcpy (text, zchunk_data (input), size);
    text [size] = 0;
    return atol (text);
}

static zchunk_t *
s_text_chunk (const char *format, long value)
{
    char text [128];
    snprintf (text, sizeof text, format, value);
    return zchunk_new (text, strlen (text));
}

//  outputs [index] holds text
static void
s_expect_output (zchunk_t *output, const char *text)
{
    ASSERT_NOT_NULL (output);
    char *actual = zchunk_strdup (output);
    ASSERT_STR_EQ (actual, text);
    free (actual);
}

//  Count an attempt of task n in the state: attempts/n
static int64_t
s_count_attempt (zp_worker_t *self, long number)
{
    char key [32];
    snprintf (key, sizeof key, "attempts/%ld", number);
    int64_t attempts = 0;
    ASSERT_EQ (zp_state_incr (zp_worker_state (self), key, 1, &attempts), 0);
    return attempts;
}

static int64_t
s_attempts (zp_state_t *state, long number)
{
    char key [32];
    snprintf (key, sizeof key, "attempts/%ld", number);
    int64_t attempts = 0;
    if (zp_state_get_int (state, key, &attempts) < 0)
        return 0;
    return attempts;
}

//  Wait until a key of the state holds value
static void
s_expect_key (zp_state_t *state, const char *key, const char *value)
{
    if (zp_state_get_when_equal_str (state, key, value, test_ms (5000)) != 0) {
        char *actual = zp_state_get_str (state, key);
        test_fail (__FILE__, __LINE__, errno, "%s is %s, expected %s", key,
                   actual? actual: "(none)", value);
    }
}


//  ---------------------------------------------------------------------------
//  Tasks

static zchunk_t *
s_task_square (zp_worker_t *self, zchunk_t *input, void *props)
{
    long number = s_number (input);
    return s_text_chunk ("%ld", number * number);
}

//  Squares, slowly for a few, and says which worker did it
static zchunk_t *
s_task_square_named (zp_worker_t *self, zchunk_t *input, void *props)
{
    long number = s_number (input);
    if (number % 7 == 0)
        zclock_sleep (2);
    char text [128];
    snprintf (text, sizeof text, "%ld %s", number * number, zp_worker_name (self));
    return zchunk_new (text, strlen (text));
}

//  Crashes (abort) on the first try of task 50
static zchunk_t *
s_task_abort_once (zp_worker_t *self, zchunk_t *input, void *props)
{
    long number = s_number (input);
    if (number == 50 && s_count_attempt (self, number) == 1) {
        signal (SIGABRT, SIG_DFL);
        abort ();
    }
    return s_task_square_named (self, input, props);
}

//  Task 13 crashes on every try; the others square
static zchunk_t *
s_task_always_crash (zp_worker_t *self, zchunk_t *input, void *props)
{
    long number = s_number (input);
    if (number == 13) {
        s_count_attempt (self, number);
        signal (SIGSEGV, SIG_DFL);
        raise (SIGSEGV);
    }
    return s_task_square (self, input, props);
}

//  Task 7 returns NULL on every try, task 8 on its first only
static zchunk_t *
s_task_null (zp_worker_t *self, zchunk_t *input, void *props)
{
    long number = s_number (input);
    if (number == 7 || number == 8) {
        int64_t attempts = s_count_attempt (self, number);
        if (number == 7 || attempts == 1)
            return NULL;
    }
    return s_task_square (self, input, props);
}

//  Task 20 publishes its pid and waits to be killed, on its first try
static zchunk_t *
s_task_victim (zp_worker_t *self, zchunk_t *input, void *props)
{
    long number = s_number (input);
    if (number == 20 && s_count_attempt (self, number) == 1) {
        zp_state_set_int (zp_worker_state (self), "victim", getpid ());
        zclock_sleep (30000);
    }
    return s_task_square_named (self, input, props);
}

//  A plain worker that SIGKILLs the pid published as "victim"
static void
s_worker_killer (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    ASSERT_EQ (zp_state_get_when_available (state, "victim", test_ms (10000)), 0);
    int64_t victim = 0;
    ASSERT_EQ (zp_state_get_int (state, "victim", &victim), 0);
    ASSERT_EQ (kill ((pid_t) victim, SIGKILL), 0);
}

static void
s_worker_idle (zp_worker_t *self, void *props)
{
    test_drain_mailbox (self);
}

//  Task 3 never ends; the others square
static zchunk_t *
s_task_hang (zp_worker_t *self, zchunk_t *input, void *props)
{
    long number = s_number (input);
    if (number == 3)
        zclock_sleep (60000);
    return s_task_square (self, input, props);
}

//  Task 2 interrupts the parent (as a Ctrl-C would) and never ends
static zchunk_t *
s_task_interrupt (zp_worker_t *self, zchunk_t *input, void *props)
{
    long number = s_number (input);
    if (number == 2) {
        kill (getppid (), SIGINT);
        zclock_sleep (60000);
    }
    return s_task_square (self, input, props);
}

//  Task 0 takes long; the others 1 ms each (sleeping, so load does not
//  matter); each says which worker ran it
static zchunk_t *
s_task_one_slow (zp_worker_t *self, zchunk_t *input, void *props)
{
    long number = s_number (input);
    zclock_sleep (number == 0? 1500: 1);
    return zchunk_new (zp_worker_name (self), strlen (zp_worker_name (self)));
}


//  ---------------------------------------------------------------------------

TEST_IMPL (pool_map_order)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_pool_t *pool = zp_pool_new (ctx, "sq", 3, s_task_square_named, NULL);
    ASSERT_NOT_NULL (pool);
    ASSERT_EQ (zp_pool_size (pool), 3);
    size_t count = 2000;
    zchunk_t **inputs = s_inputs_new (count);
    zchunk_t **outputs = (zchunk_t **) calloc (count, sizeof (zchunk_t *));
    //  Twice on the same pool
    for (int round = 0; round < 2; round++) {
        ASSERT_EQ (zp_pool_map (pool, inputs, count, outputs, -1), 0);
        bool seen [3] = { false, false, false };
        for (size_t index = 0; index < count; index++) {
            ASSERT_NOT_NULL (outputs [index]);
            char *text = zchunk_strdup (outputs [index]);
            long square = 0;
            char name [64] = "";
            ASSERT_EQ (sscanf (text, "%ld %63s", &square, name), 2);
            ASSERT_EQ (square, (long) index * (long) index);
            ASSERT (strncmp (name, "sq-", 3) == 0);
            int number = atoi (name + 3);
            ASSERT (number >= 0 && number < 3);
            seen [number] = true;
            free (text);
            zchunk_destroy (&outputs [index]);
        }
        //  Every worker took a share
        ASSERT (seen [0] && seen [1] && seen [2]);
    }
    //  The inputs are still the caller's
    ASSERT_EQ (s_number (inputs [1999]), 1999);
    //  An empty map is fine
    ASSERT_EQ (zp_pool_map (pool, inputs, 0, outputs, -1), 0);
    s_chunks_destroy (inputs, count);
    free (outputs);
    zp_pool_destroy (&pool);
    ASSERT_NULL (pool);
    zp_pool_destroy (&pool);
    zp_ctx_destroy (&ctx);
    ASSERT (test_no_children ());
    return 0;
}


TEST_IMPL (pool_many_tiny)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_pool_t *pool = zp_pool_new (ctx, "tiny", 2, s_task_square, NULL);
    ASSERT_NOT_NULL (pool);
    size_t count = 100000;
    zchunk_t **inputs = s_inputs_new (count);
    zchunk_t **outputs = (zchunk_t **) calloc (count, sizeof (zchunk_t *));
    ASSERT_EQ (zp_pool_map (pool, inputs, count, outputs, -1), 0);
    for (size_t index = 0; index < count; index++) {
        ASSERT_NOT_NULL (outputs [index]);
        ASSERT_EQ (s_number (outputs [index]), (long) index * (long) index);
    }
    s_chunks_destroy (inputs, count);
    s_chunks_destroy (outputs, count);
    zp_pool_destroy (&pool);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (pool_size_zero)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_pool_t *pool = zp_pool_new (ctx, NULL, 0, s_task_square, NULL);
    ASSERT_NOT_NULL (pool);
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    ASSERT_EQ (zp_pool_size (pool), cpus > 0? cpus: 1);
    zchunk_t **inputs = s_inputs_new (10);
    zchunk_t *outputs [10];
    ASSERT_EQ (zp_pool_map (pool, inputs, 10, outputs, -1), 0);
    s_expect_output (outputs [9], "81");
    for (size_t index = 0; index < 10; index++)
        zchunk_destroy (&outputs [index]);
    s_chunks_destroy (inputs, 10);
    zp_pool_destroy (&pool);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (pool_invalid)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    ASSERT_NULL_ERRNO (zp_pool_new (NULL, "p", 1, s_task_square, NULL), EINVAL);
    ASSERT_NULL_ERRNO (zp_pool_new (ctx, "p", 1, NULL, NULL), EINVAL);
    ASSERT_NULL_ERRNO (zp_pool_new (ctx, "bad name", 1, s_task_square, NULL), EINVAL);
    //  A name taken by a worker
    zp_proc_t *proc = zp_ctx_spawn (ctx, "taken-1", s_worker_idle, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_NULL_ERRNO (zp_pool_new (ctx, "taken", 2, s_task_square, NULL), EINVAL);
    //  ...or by another pool
    zp_pool_t *pool = zp_pool_new (ctx, "p", 1, s_task_square, NULL);
    ASSERT_NOT_NULL (pool);
    ASSERT_NULL_ERRNO (zp_pool_new (ctx, "p", 1, s_task_square, NULL), EINVAL);
    ASSERT_FAIL_ERRNO (zp_pool_set_tries (pool, 0), EINVAL);
    ASSERT_FAIL_ERRNO (zp_pool_set_tries (NULL, 3), EINVAL);
    zchunk_t *inputs [2] = { zchunk_new ("1", 1), NULL };
    zchunk_t *outputs [2];
    ASSERT_FAIL_ERRNO (zp_pool_map (NULL, inputs, 1, outputs, -1), EINVAL);
    ASSERT_FAIL_ERRNO (zp_pool_map (pool, NULL, 1, outputs, -1), EINVAL);
    ASSERT_FAIL_ERRNO (zp_pool_map (pool, inputs, 1, NULL, -1), EINVAL);
    ASSERT_FAIL_ERRNO (zp_pool_map (pool, inputs, 2, outputs, -1), EINVAL);
    ASSERT_FAIL_ERRNO (zp_pool_map_each (pool, inputs, 1, NULL, NULL, -1), EINVAL);
    ASSERT_EQ (zp_pool_size (NULL), 0);
    zchunk_destroy (&inputs [0]);
    zp_pool_destroy (&pool);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  A crash in the middle: the task is tried again on a replacement worker,
//  which has the same name
TEST_IMPL (pool_crash_abort)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    zp_pool_t *pool = zp_pool_new (ctx, "ab", 2, s_task_abort_once, NULL);
    ASSERT_NOT_NULL (pool);
    size_t count = 200;
    zchunk_t **inputs = s_inputs_new (count);
    zchunk_t **outputs = (zchunk_t **) calloc (count, sizeof (zchunk_t *));
    ASSERT_EQ (zp_pool_map (pool, inputs, count, outputs, test_ms (20000)), 0);
    for (size_t index = 0; index < count; index++) {
        char *text = zchunk_strdup (outputs [index]);
        long square = 0;
        char name [64] = "";
        ASSERT_EQ (sscanf (text, "%ld %63s", &square, name), 2);
        ASSERT_EQ (square, (long) index * (long) index);
        ASSERT (streq (name, "ab-0") || streq (name, "ab-1"));
        free (text);
    }
    ASSERT_EQ (s_attempts (state, 50), 2);
    s_chunks_destroy (inputs, count);
    s_chunks_destroy (outputs, count);
    zp_pool_destroy (&pool);
    zp_ctx_destroy (&ctx);
    ASSERT (test_no_children ());
    return 0;
}


//  Killed from outside (SIGKILL) in the middle of a task
TEST_IMPL (pool_crash_sigkill)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "killer", s_worker_killer, NULL));
    zp_pool_t *pool = zp_pool_new (ctx, "kv", 2, s_task_victim, NULL);
    ASSERT_NOT_NULL (pool);
    size_t count = 100;
    zchunk_t **inputs = s_inputs_new (count);
    zchunk_t **outputs = (zchunk_t **) calloc (count, sizeof (zchunk_t *));
    ASSERT_EQ (zp_pool_map (pool, inputs, count, outputs, test_ms (20000)), 0);
    for (size_t index = 0; index < count; index++) {
        ASSERT_NOT_NULL (outputs [index]);
        ASSERT_EQ (s_number (outputs [index]), (long) index * (long) index);
    }
    ASSERT_EQ (s_attempts (state, 20), 2);
    //  The killer is a plain worker: wait_all covers it, not the pool
    ASSERT_EQ (zp_ctx_wait_all (ctx, test_ms (5000)), 0);
    s_chunks_destroy (inputs, count);
    s_chunks_destroy (outputs, count);
    zp_pool_destroy (&pool);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  A task that crashes every try: its output is NULL, -1 with EIO, the
//  others succeed, and it was tried exactly `tries` times
TEST_IMPL (pool_eio)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    zp_pool_t *pool = zp_pool_new (ctx, "eio", 2, s_task_always_crash, NULL);
    ASSERT_NOT_NULL (pool);
    size_t count = 40;
    zchunk_t **inputs = s_inputs_new (count);
    zchunk_t **outputs = (zchunk_t **) calloc (count, sizeof (zchunk_t *));
    ASSERT_FAIL_ERRNO (zp_pool_map (pool, inputs, count, outputs, test_ms (20000)), EIO);
    for (size_t index = 0; index < count; index++)
        if (index == 13)
            ASSERT_NULL (outputs [index]);
        else
            ASSERT_EQ (s_number (outputs [index]), (long) index * (long) index);
    ASSERT_EQ (s_attempts (state, 13), 3);
    s_expect_key (state, "$pool/eio/failed", "1");
    s_expect_key (state, "$pool/eio/done", "39");
    for (size_t index = 0; index < count; index++)
        zchunk_destroy (&outputs [index]);

    //  Fewer tries
    ASSERT_EQ (zp_pool_set_tries (pool, 1), 0);
    ASSERT_FAIL_ERRNO (zp_pool_map (pool, inputs, count, outputs, test_ms (20000)), EIO);
    ASSERT_NULL (outputs [13]);
    ASSERT_EQ (s_attempts (state, 13), 4);
    s_chunks_destroy (inputs, count);
    s_chunks_destroy (outputs, count);
    zp_pool_destroy (&pool);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  A task that returns NULL is a failed try too
TEST_IMPL (pool_null_output)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    zp_pool_t *pool = zp_pool_new (ctx, "nul", 2, s_task_null, NULL);
    ASSERT_NOT_NULL (pool);
    size_t count = 20;
    zchunk_t **inputs = s_inputs_new (count);
    zchunk_t **outputs = (zchunk_t **) calloc (count, sizeof (zchunk_t *));
    ASSERT_FAIL_ERRNO (zp_pool_map (pool, inputs, count, outputs, test_ms (20000)), EIO);
    ASSERT_NULL (outputs [7]);
    s_expect_output (outputs [8], "64");
    s_expect_output (outputs [19], "361");
    ASSERT_EQ (s_attempts (state, 7), 3);
    ASSERT_EQ (s_attempts (state, 8), 2);
    s_chunks_destroy (inputs, count);
    s_chunks_destroy (outputs, count);
    zp_pool_destroy (&pool);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  The timeout runs out on a task that never ends; the pool serves the
//  next map with a replacement
TEST_IMPL (pool_timeout)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_pool_t *pool = zp_pool_new (ctx, "slow", 2, s_task_hang, NULL);
    ASSERT_NOT_NULL (pool);
    size_t count = 10;
    zchunk_t **inputs = s_inputs_new (count);
    zchunk_t **outputs = (zchunk_t **) calloc (count, sizeof (zchunk_t *));
    int64_t started = test_now_ms ();
    ASSERT_FAIL_ERRNO (zp_pool_map (pool, inputs, count, outputs, 500), ETIMEDOUT);
    ASSERT_GE (test_now_ms () - started, 450);
    ASSERT_LT (test_now_ms () - started, test_ms (10000));
    ASSERT_NULL (outputs [3]);
    for (size_t index = 0; index < count; index++)
        zchunk_destroy (&outputs [index]);
    //  Without task 3, on the same pool
    ASSERT_EQ (zp_pool_map (pool, inputs + 4, 6, outputs, test_ms (10000)), 0);
    s_expect_output (outputs [5], "81");
    s_chunks_destroy (inputs, count);
    s_chunks_destroy (outputs, 6);
    zp_pool_destroy (&pool);
    zp_ctx_destroy (&ctx);
    ASSERT (test_no_children ());
    return 0;
}


//  SIGINT in the parent (Ctrl-C) ends the map with EINTR
TEST_IMPL (pool_eintr)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_ctx_set_grace (ctx, 200);
    zp_pool_t *pool = zp_pool_new (ctx, "int", 2, s_task_interrupt, NULL);
    ASSERT_NOT_NULL (pool);
    size_t count = 10;
    zchunk_t **inputs = s_inputs_new (count);
    zchunk_t **outputs = (zchunk_t **) calloc (count, sizeof (zchunk_t *));
    ASSERT_FAIL_ERRNO (zp_pool_map (pool, inputs, count, outputs, test_ms (20000)), EINTR);
    ASSERT_NULL (outputs [2]);
    s_chunks_destroy (inputs, count);
    s_chunks_destroy (outputs, count);
    zp_pool_destroy (&pool);
    zp_ctx_destroy (&ctx);
    ASSERT (test_no_children ());
    return 0;
}


//  Progress in the state: total, done, failed
TEST_IMPL (pool_progress)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    zp_watch_t *watch = zp_watch_new (state, "$pool/prog/done");
    ASSERT_NOT_NULL (watch);
    zp_pool_t *pool = zp_pool_new (ctx, "prog", 2, s_task_null, NULL);
    ASSERT_NOT_NULL (pool);
    size_t count = 500;
    zchunk_t **inputs = s_inputs_new (count);
    zchunk_t **outputs = (zchunk_t **) calloc (count, sizeof (zchunk_t *));
    ASSERT_FAIL_ERRNO (zp_pool_map (pool, inputs, count, outputs, test_ms (20000)), EIO);
    s_expect_key (state, "$pool/prog/total", "500");
    s_expect_key (state, "$pool/prog/done", "499");
    s_expect_key (state, "$pool/prog/failed", "1");
    //  A watcher saw it go up from 0, never down
    char *key, *value;
    long last = -1;
    while (last != 499) {
        ASSERT_EQ (zp_watch_next (watch, &key, &value, test_ms (5000)), 0);
        ASSERT_STR_EQ (key, "$pool/prog/done");
        ASSERT_NOT_NULL (value);
        ASSERT_GE (atol (value), last);
        last = atol (value);
        zstr_free (&key);
        zstr_free (&value);
    }
    zp_watch_destroy (&watch);
    s_chunks_destroy (inputs, count);
    s_chunks_destroy (outputs, count);
    zp_pool_destroy (&pool);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  A slow task does not hold the others: no static split
TEST_IMPL (pool_dynamic)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_pool_t *pool = zp_pool_new (ctx, "dyn", 2, s_task_one_slow, NULL);
    ASSERT_NOT_NULL (pool);
    size_t count = 200;
    zchunk_t **inputs = s_inputs_new (count);
    zchunk_t **outputs = (zchunk_t **) calloc (count, sizeof (zchunk_t *));
    ASSERT_EQ (zp_pool_map (pool, inputs, count, outputs, test_ms (30000)), 0);
    char *slow = zchunk_strdup (outputs [0]);
    size_t with_slow = 0;
    for (size_t index = 1; index < count; index++) {
        char *name = zchunk_strdup (outputs [index]);
        with_slow += streq (name, slow);
        free (name);
    }
    //  The other worker ran nearly everything while the slow one ran
    ASSERT_LT (with_slow, 50);
    free (slow);
    s_chunks_destroy (inputs, count);
    s_chunks_destroy (outputs, count);
    zp_pool_destroy (&pool);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  The unordered variant: every index once, as results come
typedef struct {
    size_t calls;
    bool *seen;
    size_t nulls;
} each_t;

static void
s_each_result (size_t index, zchunk_t *output, void *arg)
{
    each_t *each = (each_t *) arg;
    ASSERT (!each->seen [index]);
    each->seen [index] = true;
    each->calls++;
    if (output)
        ASSERT_EQ (s_number (output), (long) index * (long) index);
    else
        each->nulls++;
    zchunk_destroy (&output);
}

TEST_IMPL (pool_map_each)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_pool_t *pool = zp_pool_new (ctx, "each", 3, s_task_null, NULL);
    ASSERT_NOT_NULL (pool);
    size_t count = 1000;
    zchunk_t **inputs = s_inputs_new (count);
    each_t each = { 0, (bool *) calloc (count, sizeof (bool)), 0 };
    ASSERT_FAIL_ERRNO (zp_pool_map_each (pool, inputs, count, s_each_result, &each,
                                         test_ms (20000)), EIO);
    ASSERT_EQ (each.calls, count);
    ASSERT_EQ (each.nulls, 1);
    free (each.seen);
    s_chunks_destroy (inputs, count);
    zp_pool_destroy (&pool);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Pool workers are the pool's: wait_all does not wait for them, the
//  process notices do not list them, the context destroys a pool left on it
TEST_IMPL (pool_outside_ctx)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    zp_pool_t *pool = zp_pool_new (ctx, "own", 2, s_task_square, NULL);
    ASSERT_NOT_NULL (pool);
    ASSERT_EQ (zp_ctx_wait_all (ctx, 0), 0);
    ASSERT_EQ (zp_ctx_running (ctx), 0);
    ASSERT_NULL_ERRNO (zp_ctx_proc (ctx, "own-0"), ENOENT);
    ASSERT (!zp_state_exists (state, "$proc/own-0/status"));
    //  Left on the context: destroyed with it, every worker reaped
    zp_ctx_destroy (&ctx);
    ASSERT (test_no_children ());
    return 0;
}


//  Destroy stops workers that never see the end of file (a process forked
//  since the pool holds their lanes' other ends): SIGTERM after a moment,
//  then each is reaped as it exits, nothing left behind
TEST_IMPL (pool_destroy_held_end)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_pool_t *pool = zp_pool_new (ctx, "held", 2, s_task_square, NULL);
    ASSERT_NOT_NULL (pool);
    pid_t holder = fork ();
    ASSERT_GE (holder, 0);
    if (holder == 0) {
        pause ();
        _exit (0);
    }
    int64_t started = test_now_ms ();
    zp_pool_destroy (&pool);
    int64_t took = test_now_ms () - started;
    //  The workers did not leave by themselves, and were not left running
    ASSERT_GE (took, 90);
    ASSERT_LT (took, test_ms (5000));
    ASSERT_EQ (kill (holder, SIGKILL), 0);
    ASSERT_EQ (waitpid (holder, NULL, 0), holder);
    ASSERT (test_no_children ());
    zp_ctx_destroy (&ctx);
    return 0;
}


//  A pool in a worker's own context: its progress is published too
static void
s_worker_pool_owner (zp_worker_t *self, void *props)
{
    zp_pool_t *pool = zp_pool_new (zp_worker_ctx (self), "inner", 2, s_task_square, NULL);
    ASSERT_NOT_NULL (pool);
    size_t count = 50;
    zchunk_t **inputs = s_inputs_new (count);
    zchunk_t **outputs = (zchunk_t **) calloc (count, sizeof (zchunk_t *));
    ASSERT_EQ (zp_pool_map (pool, inputs, count, outputs, test_ms (10000)), 0);
    ASSERT_EQ (s_number (outputs [7]), 49);
    s_chunks_destroy (inputs, count);
    s_chunks_destroy (outputs, count);
    zp_pool_destroy (&pool);
}

TEST_IMPL (pool_nested)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    zp_proc_t *owner = zp_ctx_spawn (ctx, "owner", s_worker_pool_owner, NULL);
    ASSERT_NOT_NULL (owner);
    ASSERT_EQ (zp_proc_wait (owner, test_ms (20000)), 0);
    s_expect_key (state, "$pool/inner/total", "50");
    s_expect_key (state, "$pool/inner/done", "50");
    s_expect_key (state, "$pool/inner/failed", "0");
    zp_ctx_destroy (&ctx);
    ASSERT (test_no_children ());
    return 0;
}
