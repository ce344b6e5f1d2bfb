/*  =========================================================================
    zp_watchers - the watcher registry actor: parked watcher requests

    The store parks here every watcher request it cannot answer at once
    (a key changed, a key equals a value, a key exists), and sends the
    changes of the keys with parked requests over the same feed (zp_feed.h),
    in store order. A change touches only the requests parked on its key:
    no scan of the others. Answers go back on the answers feed, or, for a
    peer on a lane, on its lane.

    Start it with zactor_new (zp_watchers_actor, &args). After zactor_new
    the actor sends its start-up status: zsock_recv (actor, "i", &rc).
    Commands on the pipe:
        SHUTDOWN    answer every parked request with EINTR and every later
                    one too; replies with a signal
        $TERM       stop
    =========================================================================
*/

#ifndef ZP_WATCHERS_H_INCLUDED
#define ZP_WATCHERS_H_INCLUDED

typedef struct {
    zp_feed_t *feed;            //  What the store sends us (outlives the actor)
    zp_feed_t *answers;         //  What we send the store (outlives the actor)
} zp_watchers_args_t;

void
    zp_watchers_actor (zsock_t *pipe, void *args);

#endif
