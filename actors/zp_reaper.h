/*  =========================================================================
    zp_reaper - the reaper actor: tracks, restarts, stops and reaps workers

    The fork of a new worker happens in the caller's thread (zp_ctx_spawn);
    the reaper then tracks the child by pid, and restarts it per its
    policy (forking from the reaper's thread, which lives as long as the
    context). Each child's exit is seen through a pidfd (Linux 5.3+), or by
    polling waitpid on older kernels: no process-wide SIGCHLD handler, so
    several contexts and the program's own children never steal each
    other's exits. Only our own pids are reaped. Each worker's life is
    published in the state under $proc/NAME/ (through the store's inproc
    socket in the parent, through a state handle of the reaper's own in a
    worker's context).

    Group strategies (the first TRACK's settings hold for the group): with
    one_for_all or rest_for_one, a worker whose policy asks for a restart
    triggers a group restart once the current walk of the children is over:
    the others it takes along are stopped ($TERM, SIGTERM, SIGKILL, the
    grace period between each; status "stopping"), a temporary one stays
    stopped, and all the rest restart together in spawn order after the
    trigger's backoff. The group's intensity counts these restarts; when it
    is spent every worker is stopped and given up (status "failed").

    Start it with zactor_new (zp_reaper_actor, &args). After zactor_new the
    actor sends its start-up status: zsock_recv (actor, "i", &rc).
    Commands on the pipe:
        TRACK pid name supervision ("sisb")     -> status "starting"; no
            reply (supervision, a zp_supervision_t by value: policy,
            intensity, backoff, strategy, grace)
        READY pid ready ("sii")                 -> status "running" when
            ready is 1 (its start-up report came), then signal
        REGISTER name                           -> status "registered"
        STOP grace_ms ("si")                    -> signal once every child
            is reaped: $TERM in each mailbox, SIGTERM after grace_ms,
            SIGKILL after another grace_ms; no more restarts
        $TERM                                   stop
    Events on args->events (PAIR, "iiii"): old pid, exit code or
    128+signal, new pid when the worker was restarted (else 0: it is gone
    for good), and 1 when the reaper stopped it itself (a shutdown), so
    that its exit is not counted as the worker's failure, else 0.
    =========================================================================
*/

#ifndef ZP_REAPER_H_INCLUDED
#define ZP_REAPER_H_INCLUDED

typedef struct {
    const char *events;         //  inproc endpoint to bind for exit events
    const char *sys;            //  inproc endpoint of the store's own writes,
    uint64_t *sys_sent;         //  and their count (zp__store_notice); both
                                //  NULL in a worker's own context, which
                                //  publishes its notices through...
    const char *store;          //  ...a state handle to the store
    const char *dir;            //  Socket directory, where mailboxes are
    zp_keys_t *keys;            //  CURVE keys for the mailboxes, or NULL
    zp_ctx_t *ctx;              //  The context, to fork restarted workers
    int lane;                   //  That handle's direct lane to the store (taken),
                                //  or -1: it connects to store
} zp_reaper_args_t;

void
    zp_reaper_actor (zsock_t *pipe, void *args);

#endif
