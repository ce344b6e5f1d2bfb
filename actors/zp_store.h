/*  =========================================================================
    zp_store - the store actor: the key/value map, numbered changes, the
    bounded change log and the watch streams

    Start it with zactor_new (zp_store_actor, &args). After zactor_new the
    actor sends its start-up status as a message: zsock_recv (actor, "i",
    &rc), 0 or an errno. Commands on the pipe:
        BIND endpoint   -> "si": the endpoint bound (or ""), 0 or errno
    On args->sys (PULL) it takes zproc's own writes, which may use the
    reserved keys ("$..."): key, value to set; key alone to delete. Their
    senders count them in *args->sys_sent (zp__store_notice), which the
    store reads before it serves any request: a request never overtakes a
    write sent before it, although the two come on different sockets.
        $TERM           stop, after forwarding the registry's last replies
    =========================================================================
*/

#ifndef ZP_STORE_H_INCLUDED
#define ZP_STORE_H_INCLUDED

//  How many changes the log keeps by default (a power of two; the
//  environment variable ZPROC_LOG_CHANGES sets another, rounded up to a
//  power of two, at least 16), and how many bytes of values at most; the
//  older changes are dropped first
#define ZP_LOG_CHANGES      65536
#define ZP_LOG_BYTES_MAX    (64 * 1024 * 1024)

//  What one connection may pin in the store's process, besides the one reply
//  it is being sent: replies queued for it, its parked requests (with the
//  values WAIT_EQUAL waits for) and its watch streams. A request beyond it
//  is answered ENOBUFS (ZP_STATUS_NO_BUFFERS).
#define ZP_PEER_BUDGET      (64 * 1024 * 1024)

typedef struct {
    const char *endpoint;       //  ipc endpoint to bind the store on
    zp_feed_t *feed;            //  To the registry (outlives the actor)
    zp_feed_t *answers;         //  From the registry (outlives the actor)
    zp_watchers_t *watchers;    //  The registry, served from feed (outlives the actor)
    const char *sys;            //  inproc endpoint for zproc's own writes
    uint64_t *sys_sent;         //  How many were sent to it (outlives the actor)
    zcert_t *cert;              //  Server certificate when CURVE is on, else NULL
    zp_shared_t *shared;        //  Where to publish the last seq, or NULL
    int adopt;                  //  Datagrams of lane descriptors to serve (owned)
} zp_store_args_t;

void
    zp_store_actor (zsock_t *pipe, void *args);

//  Send one of zproc's own writes (key = value) on sys, a PUSH socket
//  connected to the store's sys endpoint, and count it in *sent, the
//  counter the store was given (args->sys_sent). Any thread may call it,
//  each with its own socket.
void
    zp__store_notice (zsock_t *sys, uint64_t *sent, const char *key, const char *value);

#endif
