/*  =========================================================================
    zp_watchers - the watcher registry actor

    Parked requests are indexed twice: by key, so a change wakes exactly the
    requests on its key, and by (client, request id), so a client that gave
    up (timeout) can withdraw its request in O(1). A request that came on a
    direct lane is answered on that lane, here: a wake-up crosses the setter,
    the store, this thread and the waiter, no more (the store hears of it
    afterwards, for its accounts). Other replies go back over the feed to
    the store, which owns the ROUTER socket the client talks to.
    =========================================================================
*/

#include "zp_classes.h"
#include <poll.h>

//  Feed messages: kind, routing id (a peer's identity), header, key, lane, value
#define MAX_FRAMES      6

typedef struct {
    zframe_t *routing_id;       //  The client to answer
    zp_header_t header;         //  The request, answered with its id
    zchunk_t *value;            //  WAIT_EQUAL: the value waited for
    zp_lane_t *lane;            //  The client's lane (a reference), or NULL
    char *index_key;            //  Its key in by_request
    char *key;                  //  Its key in by_key
    zlistx_t *queue;            //  The queue it is parked in
    void *handle;               //  Its place in that queue
} waiter_t;

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    zsock_t *feed;              //  PAIR to the store
    bool terminated;            //  Did our owner ask us to quit?
    bool shutting_down;         //  Answer every request with EINTR
    zhashx_t *by_key;           //  key -> zlistx_t of waiter_t (owns them)
    zhashx_t *by_request;       //  "routing-id:request-id" -> waiter_t
    zmq_msg_t frames [MAX_FRAMES]; //  The feed message being handled
    size_t nframes;             //  Frames in it
} self_t;


//  --------------------------------------------------------------------------
//  Waiter destructor

static void
s_waiter_destroy (waiter_t **self_p)
{
    waiter_t *self = *self_p;
    if (self) {
        zframe_destroy (&self->routing_id);
        zchunk_destroy (&self->value);
        zp__lane_destroy (&self->lane);
        zstr_free (&self->index_key);
        zstr_free (&self->key);
        free (self);
        *self_p = NULL;
    }
}

static void
s_queue_destroy (zlistx_t **queue_p)
{
    zlistx_destroy (queue_p);
}


//  --------------------------------------------------------------------------
//  Constructor and destructor

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->feed);
    zhashx_destroy (&self->by_request);
    zhashx_destroy (&self->by_key);
    zp__frames_close (self->frames, &self->nframes);
    free (self);
    *self_p = NULL;
}

static self_t *
s_self_new (zsock_t *pipe, zp_watchers_args_t *args)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    if (!self)
        return NULL;
    self->pipe = pipe;
    self->by_key = zhashx_new ();
    self->by_request = zhashx_new ();
    self->feed = zp__sock_new (ZMQ_PAIR);
    if (!self->by_key || !self->by_request || !self->feed)
        goto failed;
    zhashx_set_destructor (self->by_key, (czmq_destructor *) s_queue_destroy);
    zsock_set_sndhwm (self->feed, 0);
    zsock_set_rcvhwm (self->feed, 0);
    if (zsock_connect (self->feed, "%s", args->feed) < 0)
        goto failed;
    return self;

failed:;
    int saved = errno? errno: ENOMEM;
    s_self_destroy (&self);
    return zp__fail (saved, NULL);
}


//  --------------------------------------------------------------------------
//  Forget a waiter: out of both indexes; its queue goes with its last one

static void
s_waiter_remove (self_t *self, waiter_t *waiter)
{
    zhashx_delete (self->by_request, waiter->index_key);
    zlistx_t *queue = waiter->queue;
    char *key = waiter->key;
    waiter->key = NULL;
    zlistx_delete (queue, waiter->handle);
    if (zlistx_size (queue) == 0)
        zhashx_delete (self->by_key, key);
    zstr_free (&key);
}


//  --------------------------------------------------------------------------
//  Answer a waiter, and forget it: on its lane, then 'W' to the store; or
//  'R' with the reply, which the store sends on

static void
s_wake (self_t *self, waiter_t *waiter, int status, zp_change_t *change)
{
    void *feed = zsock_resolve (self->feed);
    zp_header_t header = waiter->header;
    header.status = (uint8_t) status;
    header.flags = 0;
    //  After the whole of its batch (the store hands us a key's last change
    //  in a batch only)
    header.seq = change? change->batch_end: 0;
    bool with_value = change && status == ZP_STATUS_OK
                   && waiter->header.command == ZP_CMD_WAIT_CHANGE;
    byte buffer [ZP_HEADER_SIZE];
    zp__header_encode (&header, buffer);
    zp_part_t reply [2] = {
        { buffer, sizeof buffer }, { with_value? change->value: NULL, with_value? change->size: 0 }
    };
    size_t nreply = with_value? 2: 1;
    //  A lane whose client died fails here: the store forgets that peer
    if (waiter->lane) {
        zp__lane_send (waiter->lane, reply, nreply);
        nreply = 1;
    }
    byte kind = waiter->lane? 'W': 'R';
    //  Never waiting: at shutdown the store may be gone already
    if (zmq_send (feed, &kind, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 1) {
        zmq_send (feed, waiter->key, strlen (waiter->key), ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send (feed, zframe_data (waiter->routing_id), zframe_size (waiter->routing_id),
                  ZMQ_SNDMORE | ZMQ_DONTWAIT);
        for (size_t index = 0; index < nreply; index++)
            zmq_send (feed, reply [index].data, reply [index].size,
                      ZMQ_DONTWAIT | (index + 1 < nreply? ZMQ_SNDMORE: 0));
    }
    s_waiter_remove (self, waiter);
}


//  --------------------------------------------------------------------------
//  A change: wake the requests parked on its key that it satisfies

static bool
s_satisfied (waiter_t *waiter, zp_change_t *change)
{
    switch (waiter->header.command) {
        case ZP_CMD_WAIT_CHANGE:
            return true;
        case ZP_CMD_WAIT_EQUAL:
            return !change->deleted && zchunk_size (waiter->value) == change->size
                && memcmp (zchunk_data (waiter->value), change->value, change->size) == 0;
        default:
            return !change->deleted;
    }
}

static void
s_handle_change (self_t *self)
{
    zp_change_t *change;
    if (zmq_msg_size (&self->frames [1]) != sizeof (change))
        return;
    memcpy (&change, zmq_msg_data (&self->frames [1]), sizeof (change));
    zlistx_t *queue = (zlistx_t *) zhashx_lookup (self->by_key, change->key);
    if (queue) {
        //  Waking the last waiter destroys the queue: count them first
        size_t remaining = zlistx_size (queue);
        waiter_t *waiter = (waiter_t *) zlistx_first (queue);
        while (remaining--) {
            waiter_t *next = remaining? (waiter_t *) zlistx_next (queue): NULL;
            if (s_satisfied (waiter, change))
                s_wake (self, waiter,
                        change->deleted && waiter->header.command == ZP_CMD_WAIT_CHANGE
                        ? ZP_STATUS_NOT_FOUND: ZP_STATUS_OK, change);
            waiter = next;
        }
    }
    zp__change_unref (&change);
}


//  --------------------------------------------------------------------------
//  Park a request: frames are kind, routing id, header, key, lane [, value]

static char *
s_index_key (const zmq_msg_t *routing_id, uint32_t request_id)
{
    const byte *data = (const byte *) zmq_msg_data ((zmq_msg_t *) routing_id);
    size_t size = zmq_msg_size ((zmq_msg_t *) routing_id);
    char *index_key = (char *) malloc (size * 2 + 12);
    if (!index_key)
        return NULL;
    for (size_t index = 0; index < size; index++)
        sprintf (index_key + index * 2, "%02x", data [index]);
    sprintf (index_key + size * 2, ":%08x", request_id);
    return index_key;
}

static void
s_handle_park (self_t *self)
{
    zp_header_t header;
    zp_lane_t *lane = NULL;
    if (self->nframes >= 5 && zmq_msg_size (&self->frames [4]) == sizeof lane)
        memcpy (&lane, zmq_msg_data (&self->frames [4]), sizeof lane);
    if (self->nframes < 5
    ||  zp__header_decode (&header, (const byte *) zmq_msg_data (&self->frames [2]),
                           zmq_msg_size (&self->frames [2])) < 0) {
        zp__lane_destroy (&lane);
        return;                 //  The store checked it: cannot happen
    }
    waiter_t *waiter = (waiter_t *) zmalloc (sizeof (waiter_t));
    if (waiter) {
        waiter->header = header;
        waiter->lane = lane;
        lane = NULL;
        waiter->routing_id = zframe_new (zmq_msg_data (&self->frames [1]),
                                         zmq_msg_size (&self->frames [1]));
        waiter->key = strndup ((const char *) zmq_msg_data (&self->frames [3]),
                               zmq_msg_size (&self->frames [3]));
        waiter->index_key = s_index_key (&self->frames [1], header.request_id);
        if (header.command == ZP_CMD_WAIT_EQUAL && self->nframes > 5)
            waiter->value = zchunk_new (zmq_msg_data (&self->frames [5]),
                                        zmq_msg_size (&self->frames [5]));
    }
    zp__lane_destroy (&lane);
    zlistx_t *queue = waiter && waiter->key?
        (zlistx_t *) zhashx_lookup (self->by_key, waiter->key): NULL;
    if (waiter && waiter->key && !queue) {
        queue = zlistx_new ();
        if (queue) {
            zlistx_set_destructor (queue, (czmq_destructor *) s_waiter_destroy);
            zhashx_insert (self->by_key, waiter->key, queue);
        }
    }
    if (!waiter || !waiter->routing_id || !waiter->key || !waiter->index_key || !queue
    ||  (header.command == ZP_CMD_WAIT_EQUAL && !waiter->value)) {
        zsys_error ("zproc watchers: out of memory, a watcher request is dropped");
        s_waiter_destroy (&waiter);
        return;
    }
    waiter->queue = queue;
    waiter->handle = zlistx_add_end (queue, waiter);
    //  A client reusing a request id replaces its old request
    waiter_t *old = (waiter_t *) zhashx_lookup (self->by_request, waiter->index_key);
    if (old)
        s_wake (self, old, ZP_STATUS_PROTOCOL, NULL);
    zhashx_insert (self->by_request, waiter->index_key, waiter);
    if (self->shutting_down)
        s_wake (self, waiter, ZP_STATUS_SHUTDOWN, NULL);
}


//  --------------------------------------------------------------------------
//  A client gave up: frames are kind, routing id, header

static void
s_handle_cancel (self_t *self)
{
    zp_header_t header;
    if (self->nframes < 3
    ||  zp__header_decode (&header, (const byte *) zmq_msg_data (&self->frames [2]),
                           zmq_msg_size (&self->frames [2])) < 0)
        return;
    char *index_key = s_index_key (&self->frames [1], header.request_id);
    waiter_t *waiter = index_key?
        (waiter_t *) zhashx_lookup (self->by_request, index_key): NULL;
    //  Withdraw it quietly (the client has stopped listening for it), and
    //  tell the store one request less waits on the key, for that peer
    if (waiter) {
        void *feed = zsock_resolve (self->feed);
        byte kind = 'D';
        if (zmq_send (feed, &kind, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 1) {
            zmq_send (feed, waiter->key, strlen (waiter->key), ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send (feed, zframe_data (waiter->routing_id), zframe_size (waiter->routing_id),
                      ZMQ_DONTWAIT);
        }
        s_waiter_remove (self, waiter);
    }
    zstr_free (&index_key);
}

static void
s_handle_feed (self_t *self)
{
    void *feed = zsock_resolve (self->feed);
    while (zp__frames_recv (feed, self->frames, MAX_FRAMES, &self->nframes) > 0) {
        if (zmq_msg_size (&self->frames [0]) != 1 || self->nframes < 2)
            continue;
        byte kind = *(byte *) zmq_msg_data (&self->frames [0]);
        if (kind == 'C')
            s_handle_change (self);
        else
        if (kind == 'P')
            s_handle_park (self);
        else
        if (kind == 'X')
            s_handle_cancel (self);
    }
}


//  --------------------------------------------------------------------------
//  Answer every parked request with EINTR

static void
s_shutdown (self_t *self)
{
    self->shutting_down = true;
    zlistx_t *queue;
    while ((queue = (zlistx_t *) zhashx_first (self->by_key)))
        s_wake (self, (waiter_t *) zlistx_first (queue), ZP_STATUS_SHUTDOWN, NULL);
}

static void
s_handle_pipe (self_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command || streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "SHUTDOWN")) {
        s_handle_feed (self);   //  Park what is on its way first
        s_shutdown (self);
        zsock_signal (self->pipe, 0);
    }
    else
    if (streq (command, "COUNT"))
        zsock_send (self->pipe, "8", (uint64_t) zhashx_size (self->by_request));
    else
        zsys_error ("zproc watchers: invalid pipe command '%s'", command);
    zstr_free (&command);
}


//  --------------------------------------------------------------------------
//  The actor

void
zp_watchers_actor (zsock_t *pipe, void *args)
{
    self_t *self = s_self_new (pipe, (zp_watchers_args_t *) args);
    //  The start-up status before zsock_signal, which may change errno
    int status = self? 0: errno;
    zsock_signal (pipe, 0);
    zsock_send (pipe, "i", status);
    if (!self)
        return;
    //  One poll () on the sockets' descriptors per wake-up: a descriptor
    //  (ZMQ_FD) only says "look at ZMQ_EVENTS", and a socket we used (the
    //  feed: we send replies on it) may hold messages its descriptor no
    //  longer announces, so each is looked at until it has nothing
    zsock_t *sockets [2] = { self->pipe, self->feed };
    bool check [2] = { true, true };
    while (!self->terminated) {
        bool busy = false;
        for (int index = 0; index < 2 && !self->terminated; index++)
            if (check [index]) {
                check [index] = false;
                if (zsock_events (sockets [index]) & ZMQ_POLLIN) {
                    if (sockets [index] == self->feed)
                        s_handle_feed (self);
                    else
                        s_handle_pipe (self);
                    check [index] = busy = true;
                }
            }
        if (busy || self->terminated)
            continue;
        //  Signals are for the owner (EINTR): serve on
        struct pollfd items [2] = {
            { zsock_fd (self->pipe), POLLIN, 0 }, { zsock_fd (self->feed), POLLIN, 0 }
        };
        if (poll (items, 2, -1) > 0)
            for (int index = 0; index < 2; index++)
                check [index] = items [index].revents != 0;
    }
    s_self_destroy (&self);
}
