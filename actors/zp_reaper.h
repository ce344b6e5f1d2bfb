/*  =========================================================================
    zp_reaper - the reaper actor: tracks workers, reaps them, stops them

    The fork itself happens in the caller's thread (zp_ctx_spawn); the
    reaper then tracks the child by pid. Each child's exit is seen through a
    pidfd (Linux 5.3+), or by polling waitpid on older kernels: no
    process-wide SIGCHLD handler, so several contexts and the program's own
    children never steal each other's exits. Only our own pids are reaped.

    Start it with zactor_new (zp_reaper_actor, &args). After zactor_new the
    actor sends its start-up status: zsock_recv (actor, "i", &rc).
    Commands on the pipe (picture "s..."):
        TRACK pid name      -> signal: track this child
        STOP grace_ms       -> signal once every child is reaped: $TERM in
                               each mailbox, SIGTERM after grace_ms, SIGKILL
                               after another grace_ms
        $TERM               stop (children still running are left alone)
    Events on args->events (PAIR, "ii"): pid, exit code or 128+signal.
    =========================================================================
*/

#ifndef ZP_REAPER_H_INCLUDED
#define ZP_REAPER_H_INCLUDED

typedef struct {
    const char *events;         //  inproc endpoint to bind for exit events
    const char *dir;            //  Socket directory, where mailboxes are
    zp_keys_t *keys;            //  CURVE keys for the mailboxes, or NULL
} zp_reaper_args_t;

void
    zp_reaper_actor (zsock_t *pipe, void *args);

#endif
