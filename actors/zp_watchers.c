/*  =========================================================================
    zp_watchers - the watcher registry and its actor

    Parked requests are indexed twice: by key, so a change wakes exactly the
    requests on its key, and by (client, request id), so a client that gave
    up (timeout) can withdraw its request in O(1). A request that came on a
    direct lane is answered on that lane by whichever thread serves the
    change: the store's own, most often (zp__watchers_serve), so a wake-up
    crosses the setter, the store and the waiter, no more (the store hears
    of it afterwards, for its accounts). Other replies go back on the
    answers feed to the store, which owns the ROUTER socket the client
    talks to.
    =========================================================================
*/

#include "zp_classes.h"
#include <poll.h>
#include <pthread.h>

//  While shutting down, the feed is looked at this often (msecs) for
//  requests to park, which are answered EINTR at once
#define SHUTDOWN_LOOK   10

typedef struct {
    zp_feed_item_t *park;       //  The PARK: the client (identity, lane), the
                                //  request (header), its key and value
    char *index_key;            //  Its key in by_request
    zlistx_t *queue;            //  The queue it is parked in
    void *handle;               //  Its place in that queue
} waiter_t;

struct _zp_watchers_t {
    pthread_mutex_t lock;       //  Held by the thread serving: all below
    zp_feed_t *feed;            //  From the store: changes, parks, withdrawals
    zp_feed_t *answers;         //  To the store: how parked requests ended
    bool shutting_down;         //  Answer every request with EINTR
    zhashx_t *by_key;           //  key -> zlistx_t of waiter_t (owns them)
    zhashx_t *by_request;       //  "identity:request-id" -> waiter_t
};

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    zp_watchers_t *registry;    //  What we serve (not ours)
    bool terminated;            //  Did our owner ask us to quit?
} self_t;


//  --------------------------------------------------------------------------
//  Waiter destructor

static void
s_waiter_destroy (waiter_t **self_p)
{
    waiter_t *self = *self_p;
    if (self) {
        zp__feed_item_destroy (&self->park);
        zstr_free (&self->index_key);
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

zp_watchers_t *
zp__watchers_new (zp_feed_t *feed, zp_feed_t *answers)
{
    zp_watchers_t *self = (zp_watchers_t *) zmalloc (sizeof (zp_watchers_t));
    if (!self)
        return zp__fail (ENOMEM, NULL);
    pthread_mutex_init (&self->lock, NULL);
    self->feed = feed;
    self->answers = answers;
    self->by_key = zhashx_new ();
    self->by_request = zhashx_new ();
    if (!self->by_key || !self->by_request) {
        zp__watchers_destroy (&self);
        return zp__fail (ENOMEM, NULL);
    }
    zhashx_set_destructor (self->by_key, (czmq_destructor *) s_queue_destroy);
    return self;
}

void
zp__watchers_destroy (zp_watchers_t **self_p)
{
    zp_watchers_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->by_request);
    zhashx_destroy (&self->by_key);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}


//  --------------------------------------------------------------------------
//  Forget a waiter: out of both indexes; its queue goes with its last one

static void
s_waiter_remove (zp_watchers_t *self, waiter_t *waiter)
{
    zhashx_delete (self->by_request, waiter->index_key);
    zlistx_t *queue = waiter->queue;
    char *key = waiter->park->key;
    waiter->park->key = NULL;
    zlistx_delete (queue, waiter->handle);
    if (zlistx_size (queue) == 0)
        zhashx_delete (self->by_key, key);
    zstr_free (&key);
}


//  --------------------------------------------------------------------------
//  Tell the store how a parked request ended (kind), and forget it; wakes:
//  the store must hear of it soon

static void
s_end (zp_watchers_t *self, waiter_t *waiter, zp_feed_kind_t kind, const zp_header_t *header,
       const zp_part_t *value, bool wakes)
{
    zp_feed_item_t *item = zp__feed_item_new (kind, waiter->park->identity, waiter->park->key);
    if (item) {
        item->wakes = wakes;
        item->header = *header;
        if (value)
            item->value = zchunk_new (value->data, value->size);
    }
    if (item && (!value || item->value))
        zp__feed_push (self->answers, &item);
    else {
        zp__feed_item_destroy (&item);
        zsys_error ("zproc watchers: out of memory, a parked request is lost");
    }
    s_waiter_remove (self, waiter);
}

//  Answer a waiter: on its lane, then ANSWERED to the store; or ANSWER with
//  the reply, which the store sends on
static void
s_wake (zp_watchers_t *self, waiter_t *waiter, int status, zp_change_t *change)
{
    zp_feed_item_t *park = waiter->park;
    zp_header_t header = park->header;
    header.status = (uint8_t) status;
    header.flags = 0;
    //  After the whole of its batch (the store hands us a key's last change
    //  in a batch only)
    header.seq = change? change->batch_end: 0;
    bool with_value = change && status == ZP_STATUS_OK
                   && park->header.command == ZP_CMD_WAIT_CHANGE;
    zp_part_t value = { with_value? change->value: NULL, with_value? change->size: 0 };
    if (park->lane) {
        //  A lane whose client died fails here: the store forgets that peer
        byte buffer [ZP_HEADER_SIZE];
        zp__header_encode (&header, buffer);
        zp_part_t reply [2] = { { buffer, sizeof buffer }, value };
        zp__lane_send (park->lane, reply, with_value? 2: 1);
        //  What the socket did not take, the store sends as it drains
        bool queued = zp__lane_queued (park->lane) > 0;
        s_end (self, waiter, ZP_FEED_ANSWERED, &header, NULL, queued);
    }
    else
        s_end (self, waiter, ZP_FEED_ANSWER, &header, with_value? &value: NULL, true);
}


//  --------------------------------------------------------------------------
//  A change: wake the requests parked on its key that it satisfies

static bool
s_satisfied (waiter_t *waiter, zp_change_t *change)
{
    zp_feed_item_t *park = waiter->park;
    switch (park->header.command) {
        case ZP_CMD_WAIT_CHANGE:
            return true;
        case ZP_CMD_WAIT_EQUAL:
            return !change->deleted && zchunk_size (park->value) == change->size
                && memcmp (zchunk_data (park->value), change->value, change->size) == 0;
        default:
            return !change->deleted;
    }
}

static void
s_handle_change (zp_watchers_t *self, zp_change_t *change)
{
    zlistx_t *queue = (zlistx_t *) zhashx_lookup (self->by_key, change->key);
    if (queue) {
        //  Waking the last waiter destroys the queue: count them first
        size_t remaining = zlistx_size (queue);
        waiter_t *waiter = (waiter_t *) zlistx_first (queue);
        while (remaining--) {
            waiter_t *next = remaining? (waiter_t *) zlistx_next (queue): NULL;
            if (s_satisfied (waiter, change))
                s_wake (self, waiter,
                        change->deleted && waiter->park->header.command == ZP_CMD_WAIT_CHANGE
                        ? ZP_STATUS_NOT_FOUND: ZP_STATUS_OK, change);
            waiter = next;
        }
    }
}


//  --------------------------------------------------------------------------
//  Park a request: the item becomes the waiter's

static char *
s_index_key (const byte *identity, uint32_t request_id)
{
    char *index_key = (char *) malloc (identity [0] * 2 + 12);
    if (!index_key)
        return NULL;
    for (size_t index = 0; index < identity [0]; index++)
        sprintf (index_key + index * 2, "%02x", identity [1 + index]);
    sprintf (index_key + identity [0] * 2, ":%08x", request_id);
    return index_key;
}

static void
s_handle_park (zp_watchers_t *self, zp_feed_item_t **item_p)
{
    zp_feed_item_t *park = *item_p;
    waiter_t *waiter = (waiter_t *) zmalloc (sizeof (waiter_t));
    if (waiter) {
        waiter->park = park;
        park->next = NULL;
        *item_p = NULL;
        waiter->index_key = s_index_key (park->identity, park->header.request_id);
    }
    zlistx_t *queue = waiter && park->key?
        (zlistx_t *) zhashx_lookup (self->by_key, park->key): NULL;
    if (waiter && park->key && !queue) {
        queue = zlistx_new ();
        if (queue) {
            zlistx_set_destructor (queue, (czmq_destructor *) s_waiter_destroy);
            zhashx_insert (self->by_key, park->key, queue);
        }
    }
    if (!waiter || !waiter->index_key || !queue) {
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
//  A client gave up

static void
s_handle_withdraw (zp_watchers_t *self, zp_feed_item_t *item)
{
    char *index_key = s_index_key (item->identity, item->header.request_id);
    waiter_t *waiter = index_key?
        (waiter_t *) zhashx_lookup (self->by_request, index_key): NULL;
    //  Withdraw it quietly (the client has stopped listening for it), and
    //  tell the store one request less waits on the key, for that peer
    if (waiter)
        s_end (self, waiter, ZP_FEED_WITHDRAWN, &item->header, NULL, true);
    zstr_free (&index_key);
}

//  Everything the store sent, in its order; signalled: its descriptor was
//  readable
static void
s_handle_feed (zp_watchers_t *self, bool signalled)
{
    zp_feed_item_t *item = zp__feed_take (self->feed, signalled);
    while (item) {
        zp_feed_item_t *next = item->next;
        if (item->kind == ZP_FEED_CHANGE)
            s_handle_change (self, item->change);
        else
        if (item->kind == ZP_FEED_PARK)
            s_handle_park (self, &item);
        else
            s_handle_withdraw (self, item);
        zp__feed_item_destroy (&item);
        item = next;
    }
}


//  --------------------------------------------------------------------------
//  Serve the feed in the caller's thread, unless another thread serves it

bool
zp__watchers_serve (zp_watchers_t *self)
{
    if (pthread_mutex_trylock (&self->lock) != 0)
        return false;
    s_handle_feed (self, false);
    pthread_mutex_unlock (&self->lock);
    return true;
}


//  --------------------------------------------------------------------------
//  Answer every parked request with EINTR

static void
s_shutdown (zp_watchers_t *self)
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
        pthread_mutex_lock (&self->registry->lock);
        s_handle_feed (self->registry, false);  //  Park what is on its way first
        s_shutdown (self->registry);
        pthread_mutex_unlock (&self->registry->lock);
        zsock_signal (self->pipe, 0);
    }
    else
        zsys_error ("zproc watchers: invalid pipe command '%s'", command);
    zstr_free (&command);
}


//  --------------------------------------------------------------------------
//  The actor: serves what the store could not serve itself (the registry
//  was busy), withdrawals, and the end

void
zp_watchers_actor (zsock_t *pipe, void *args)
{
    self_t self = { pipe, (zp_watchers_t *) args, false };
    zp_watchers_t *registry = self.registry;
    zsock_signal (pipe, 0);
    zsock_send (pipe, "i", 0);
    //  One poll () per wake-up, on the pipe's descriptor (ZMQ_FD: it only
    //  says "look at ZMQ_EVENTS", and may not announce what is there
    //  already) and the feed's; the pipe is looked at until it is empty
    bool check_pipe = true;
    while (!self.terminated) {
        if (check_pipe && (zsock_events (pipe) & ZMQ_POLLIN)) {
            s_handle_pipe (&self);
            continue;
        }
        check_pipe = false;
        zp__feed_flush (registry->answers);
        //  Signals are for the owner (EINTR): serve on
        struct pollfd items [2] = {
            { zsock_fd (pipe), POLLIN, 0 }, { zp__feed_fd (registry->feed), POLLIN, 0 }
        };
        //  Parks come unsignalled (zp_feed.h): shutting down, we look for
        //  them now and then, to answer them with EINTR
        int rc = poll (items, 2, registry->shutting_down? SHUTDOWN_LOOK: -1);
        if (rc > 0)
            check_pipe = items [0].revents != 0;
        if (rc == 0 || (rc > 0 && items [1].revents)) {
            pthread_mutex_lock (&registry->lock);
            s_handle_feed (registry, rc > 0);
            pthread_mutex_unlock (&registry->lock);
        }
    }
}
