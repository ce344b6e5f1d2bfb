/*  =========================================================================
    pool - map a function over inputs on a pool of workers, with a crash
    in the middle, and the progress shown

    A pool of two workers squares the numbers 0..19. The task for 10 crashes
    its worker (abort) on its first try: the pool sees the worker die at
    once, forks a replacement with the same name, and tries the task again
    there; the map still returns every output, in input order. Meanwhile a
    plain worker follows the pool's progress in the state ($pool/NAME/done,
    as `zproc watch '$pool/'` would) and reports when it saw the last task
    done:

        pool: 2 workers, 20 tasks; task 10 crashes its worker on its first try
        watcher: saw 20 of 20 done
        pool: 0 1 4 9 16 25 36 49 64 81 100 121 144 169 196 225 256 289 324 361
        pool: task 10 took 2 tries, on a replacement worker squares-0 or squares-1
        progress: 20 of 20 done, 0 failed
    =========================================================================
*/

#include <zproc/zproc.h>
#include <sys/resource.h>

#define TASKS       20
#define CRASHING    10

//  The task, in a pool worker: the square of the number in input
static zchunk_t *
s_square (zp_worker_t *self, zchunk_t *input, void *props)
{
    char *text = zchunk_strdup (input);
    long number = atol (text);
    free (text);
    if (number == CRASHING) {
        //  Count the tries in the state; crash on the first
        int64_t tries = 0;
        zp_state_incr (zp_worker_state (self), "tries/10", 1, &tries);
        zp_state_set_str (zp_worker_state (self), "ran/10", zp_worker_name (self));
        if (tries == 1) {
            struct rlimit no_core = { 0, 0 };
            setrlimit (RLIMIT_CORE, &no_core);
            abort ();
        }
    }
    char square [32];
    snprintf (square, sizeof square, "%ld", number * number);
    return zchunk_new (square, strlen (square));
}

//  A plain worker that follows the pool's progress until every task is done
static void
s_watcher (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    zp_state_get_when_equal_str (state, "$pool/squares/done", "20", 10000);
    char *done = zp_state_get_str (state, "$pool/squares/done");
    char *total = zp_state_get_str (state, "$pool/squares/total");
    printf ("watcher: saw %s of %s done\n", done? done: "?", total? total: "?");
    zstr_free (&done);
    zstr_free (&total);
}

int
main (void)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx)
        return 1;
    zp_state_t *state = zp_ctx_state (ctx);
    zp_pool_t *pool = zp_pool_new (ctx, "squares", 2, s_square, NULL);
    if (!pool)
        return 1;
    printf ("pool: %zu workers, %d tasks; task %d crashes its worker on its first try\n",
            zp_pool_size (pool), TASKS, CRASHING);

    //  A plain worker follows the progress while the map runs
    zp_proc_t *watcher = zp_ctx_spawn (ctx, "watcher", s_watcher, NULL);
    zchunk_t *inputs [TASKS], *outputs [TASKS];
    for (int index = 0; index < TASKS; index++) {
        char text [16];
        snprintf (text, sizeof text, "%d", index);
        inputs [index] = zchunk_new (text, strlen (text));
    }
    int rc = zp_pool_map (pool, inputs, TASKS, outputs, 10000);
    if (rc != 0)
        printf ("pool: map failed: %s\n", zp_strerror (errno));
    int status = watcher? zp_proc_wait (watcher, 10000): 1;
    printf ("pool:");
    for (int index = 0; index < TASKS; index++) {
        char *square = outputs [index]? zchunk_strdup (outputs [index]): NULL;
        printf (" %s", square? square: "(failed)");
        zstr_free (&square);
        zchunk_destroy (&outputs [index]);
        zchunk_destroy (&inputs [index]);
    }
    printf ("\n");
    int64_t tries = 0;
    zp_state_get_int (state, "tries/10", &tries);
    char *ran = zp_state_get_str (state, "ran/10");
    bool named = ran && (streq (ran, "squares-0") || streq (ran, "squares-1"));
    printf ("pool: task %d took %d tries, on a replacement worker %s\n", CRASHING, (int) tries,
            named? "squares-0 or squares-1": ran);
    zstr_free (&ran);

    //  The pool's progress, as any process sees it
    zp_state_get_when_equal_str (state, "$pool/squares/done", "20", 10000);
    char *done = zp_state_get_str (state, "$pool/squares/done");
    char *failed = zp_state_get_str (state, "$pool/squares/failed");
    char *total = zp_state_get_str (state, "$pool/squares/total");
    printf ("progress: %s of %s done, %s failed\n", done, total, failed);
    zstr_free (&done);
    zstr_free (&failed);
    zstr_free (&total);

    zp_pool_destroy (&pool);
    zp_ctx_destroy (&ctx);
    return rc == 0 && status == 0? 0: 1;
}
