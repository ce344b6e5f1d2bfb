/*  =========================================================================
    hello - the smallest zproc program: a context, one worker, one key

    The worker waits until the parent has set "greeting", answers in
    "reply", and exits; the parent prints both and the library's version.
    Build it against an installed zproc with

        cc hello.c -o hello $(pkg-config --cflags --libs libzproc)
    =========================================================================
*/

#include <zproc/zproc.h>

static void
s_worker (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    if (zp_state_get_when_available (state, "greeting", 10000) == 0)
        zp_state_set_str (state, "reply", "hello from the worker");
}

int
main (void)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx) {
        fprintf (stderr, "hello: zp_ctx_new: %s\n", zp_strerror (errno));
        return 1;
    }
    zp_state_t *state = zp_ctx_state (ctx);
    zp_proc_t *proc = zp_ctx_spawn (ctx, "greeter", s_worker, NULL);
    int rc = -1;
    char *reply = NULL;
    if (proc
    &&  zp_state_set_str (state, "greeting", "hello from main") == 0
    &&  zp_state_get_when_available (state, "reply", 10000) == 0
    &&  (reply = zp_state_get_str (state, "reply")))
        rc = zp_proc_wait (proc, 10000);
    if (rc == 0)
        printf ("main: %s\nmain: zproc %s\n", reply, zp_version ());
    else
        fprintf (stderr, "hello: %s\n", zp_strerror (errno));
    free (reply);
    zp_ctx_destroy (&ctx);
    return rc == 0? 0: 1;
}
