/*  =========================================================================
    zp_watchers - the watcher registry: parked watcher requests, and the
    actor that serves them

    The store parks here every watcher request it cannot answer at once
    (a key changed, a key equals a value, a key exists), and sends the
    changes of the keys with parked requests over the same feed (zp_feed.h),
    in store order. A change touches only the requests parked on its key:
    no scan of the others. Answers go back on the answers feed, or, for a
    peer on a lane, on its lane.

    The registry is served by its actor's thread, and, for a change the
    store has just committed, by the store's thread when the actor's is
    not at work (zp__watchers_serve): one lock, so the feed is served in
    its order by one thread at a time, and a wake-up of a waiter on a lane
    crosses the setter, the store and the waiter, not a fourth thread.

    Start the actor with zactor_new (zp_watchers_actor, registry). After
    zactor_new the actor sends its start-up status: zsock_recv (actor, "i",
    &rc). Commands on the pipe:
        SHUTDOWN    answer every parked request with EINTR and every later
                    one too; replies with a signal
        $TERM       stop
    =========================================================================
*/

#ifndef ZP_WATCHERS_H_INCLUDED
#define ZP_WATCHERS_H_INCLUDED

typedef struct _zp_watchers_t zp_watchers_t;

//  A registry with nothing parked, served from feed and answering on
//  answers (both must outlive it). NULL with ENOMEM.
zp_watchers_t *
    zp__watchers_new (zp_feed_t *feed, zp_feed_t *answers);

//  Free the registry and the requests still parked, unanswered; nulls
//  *self_p. No thread may serve it any more (its actor has ended).
void
    zp__watchers_destroy (zp_watchers_t **self_p);

//  Serve every item of the feed now, in the calling thread, unless another
//  thread is serving the registry: then false, and the caller signals the
//  feed (zp__feed_flush), which that thread looks at when it is done.
bool
    zp__watchers_serve (zp_watchers_t *self);

//  The actor; args is the registry, which outlives it
void
    zp_watchers_actor (zsock_t *pipe, void *args);

#endif
