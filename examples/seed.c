/*  =========================================================================
    seed - the example of the Python zproc seed, in C

    Shows the heart of zproc: three processes share a state without shared
    variables, and wake each other through it. child1 waits for "foo" to
    change and then sets "bar"; child2 waits until bar == "xxx"; the parent
    (child0) sets foo. Each process prints before it acts, so the lines come
    out in the order of cause and effect:

        child0: I set foo to foobar
        child1: foo got updated, so I wake
        child1: I set bar to xxx
        child1: I exit
        child2: bar changed to xxx, so I wake
        child2: I exit
        child0: I exit
    =========================================================================
*/

#include <zproc/zproc.h>

static void
child1 (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    char *foo = zp_state_get_when_change (state, "foo", -1);
    if (!foo)
        return;
    zstr_free (&foo);
    printf ("child1: foo got updated, so I wake\n");
    printf ("child1: I set bar to xxx\n");
    printf ("child1: I exit\n");
    fflush (stdout);
    zp_state_set_str (state, "bar", "xxx");
}

static void
child2 (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    if (zp_state_get_when_equal_str (state, "bar", "xxx", -1) == 0) {
        printf ("child2: bar changed to xxx, so I wake\n");
        printf ("child2: I exit\n");
    }
}

int
main (void)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx) {
        fprintf (stderr, "seed: cannot create a context: %s\n", strerror (errno));
        return EXIT_FAILURE;
    }
    //  Each worker is connected and ready when start_all returns, so no
    //  change made after it can be missed
    zp_ctx_process_factory (ctx, NULL, child1, child2, NULL);
    if (zp_ctx_start_all (ctx) < 0) {
        fprintf (stderr, "seed: cannot start the workers: %s\n", strerror (errno));
        zp_ctx_destroy (&ctx);
        return EXIT_FAILURE;
    }
    printf ("child0: I set foo to foobar\n");
    fflush (stdout);
    zp_state_set_str (zp_ctx_state (ctx), "foo", "foobar");

    int rc = zp_ctx_wait_all (ctx, 10000);
    if (rc == 0)
        printf ("child0: I exit\n");
    else
    if (rc > 0)
        fprintf (stderr, "seed: a worker failed with status %d\n", rc);
    else
        fprintf (stderr, "seed: the workers did not finish: %s\n", strerror (errno));
    zp_ctx_destroy (&ctx);
    return rc == 0? EXIT_SUCCESS: EXIT_FAILURE;
}
