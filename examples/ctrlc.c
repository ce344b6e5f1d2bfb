/*  =========================================================================
    ctrlc - a clean shutdown on Ctrl-C

    zp_ctx_new installs CZMQ's SIGINT/SIGTERM handler: Ctrl-C then sets
    zsys_interrupted instead of killing the program, and every zproc call
    that waits returns -1 with EINTR. The terminal sends Ctrl-C to the whole
    foreground process group, so the workers see it too.

    Here two workers tick a counter in the state, waiting on their mailbox
    between ticks; the parent waits for them. On Ctrl-C each side leaves its
    loop; the parent acknowledges the interrupt (zsys_interrupted = 0),
    passes it on to the workers (a `kill -INT` of the parent alone does not
    reach them), waits for their exit codes, then destroys the context,
    which would stop and reap any worker still running.

        main: 2 workers ticking; press Ctrl-C to stop
        ^Cmain: interrupted, stopping
        main: every worker exited cleanly
    =========================================================================
*/

#include <zproc/zproc.h>

static void
s_ticker (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    while (true) {
        //  NULL with EINTR on Ctrl-C, or on $TERM when the context stops
        zmsg_t *msg = zp_worker_recv (self, 100);
        if (!msg && errno != ETIMEDOUT)
            break;
        zmsg_destroy (&msg);
        if (zp_state_incr (state, "ticks", 1, NULL) < 0)
            break;              //  EINTR too: Ctrl-C came during the call
    }
    //  Returning exits the worker with status 0
}

int
main (void)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx) {
        fprintf (stderr, "ctrlc: zp_ctx_new: %s\n", zp_strerror (errno));
        return 1;
    }
    int rc = -1;
    zp_proc_t *tickers [2] = {
        zp_ctx_spawn (ctx, "ticker-1", s_ticker, NULL),
        zp_ctx_spawn (ctx, "ticker-2", s_ticker, NULL)
    };
    if (tickers [0] && tickers [1]) {
        printf ("main: 2 workers ticking; press Ctrl-C to stop\n");
        fflush (stdout);
        rc = zp_ctx_wait_all (ctx, -1);
    }
    if (rc == -1 && errno == EINTR) {
        printf ("main: interrupted, stopping\n");
        //  Seen: let the calls below wait again (a second Ctrl-C sets it anew)
        zsys_interrupted = 0;
        //  A `kill -INT` of the parent alone did not reach the workers: pass
        //  it on (one that has exited already gives ESRCH)
        zp_proc_kill (tickers [0], SIGINT);
        zp_proc_kill (tickers [1], SIGINT);
        rc = zp_ctx_wait_all (ctx, 5000);
    }
    if (rc == 0)
        printf ("main: every worker exited cleanly\n");
    else
    if (rc > 0)
        printf ("main: a worker failed with status %d\n", rc);
    else
        printf ("main: %s\n", zp_strerror (errno));
    zp_ctx_destroy (&ctx);      //  Stops and reaps whatever still runs
    return rc == 0? 0: 1;
}
