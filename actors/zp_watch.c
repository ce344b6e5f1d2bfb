/*  =========================================================================
    zp_watch - every change under a prefix, in store order

    A watch has its own DEALER socket to the store, which streams every
    change under the prefix to it, starting after a baseline sequence
    number. The stream is paced by credit: the store sends at most
    WATCH_WINDOW changes ahead of what we have read, and catches a slow
    watch up from its change log, so nothing is dropped on the way; a
    watch that falls behind the log gets a gap notice instead.
    =========================================================================
*/

#include "zp_classes.h"

//  Changes the store may send ahead of what we have read
#define WATCH_WINDOW    1024

struct _zp_watch_t {
    zsock_t *dealer;            //  Our stream from the store
    zsock_t *monitor;           //  Events of its connection: a lost one ends the stream
    uint64_t seq;               //  Change last returned
    uint32_t taken;             //  Changes taken since we last gave credit
    bool lost;                  //  The connection was lost: no more changes
    bool more;                  //  More changes of the last one's batch follow
};


//  --------------------------------------------------------------------------
//  Constructor

zp_watch_t *
zp__watch_new_from (zp_state_t *state, const char *prefix, uint64_t seq)
{
    zp_watch_t *self = (zp_watch_t *) zmalloc (sizeof (zp_watch_t));
    if (!self)
        return zp__fail (ENOMEM, NULL);
    self->seq = seq;
    self->dealer = zp__state_socket (state, &self->monitor);
    if (!self->dealer) {
        free (self);
        return NULL;
    }
    byte credit [4] = { 0, 0, WATCH_WINDOW >> 8, WATCH_WINDOW & 0xFF };
    zp_part_t parts [2] = { { prefix, strlen (prefix) }, { credit, sizeof credit } };
    zp_header_t header = { .command = ZP_CMD_WATCH, .request_id = 1, .seq = seq };
    void *dealer = zsock_resolve (self->dealer);
    int64_t deadline = zp__deadline (zp__state_timeout (state));
    if (zp__request_send (dealer, &header, parts, 2, deadline) < 0)
        goto failed;

    //  The store confirms before it sends the first change
    int rc = zp__wait_socket (dealer, ZMQ_POLLIN, NULL, deadline);
    if (rc <= 0) {
        errno = rc == 0? ENOTCONN: errno;
        goto failed;
    }
    zmsg_t *reply = zmsg_recv (dealer);
    zframe_t *frame = reply? zmsg_first (reply): NULL;
    zp_header_t answer;
    bool valid = frame
              && zp__header_decode (&answer, zframe_data (frame), zframe_size (frame)) == 0
              && answer.command == ZP_CMD_WATCH;
    zmsg_destroy (&reply);
    if (!valid || answer.status != ZP_STATUS_OK) {
        errno = valid? zp__status_errno (answer.status): EPROTO;
        goto failed;
    }
    return self;

failed:;
    int saved = errno;
    zmq_socket_monitor (dealer, NULL, 0);
    zsock_destroy (&self->monitor);
    zsock_destroy (&self->dealer);
    free (self);
    return zp__fail (saved, NULL);
}

zp_watch_t *
zp_watch_new (zp_state_t *state, const char *prefix)
{
    if (!state || (prefix && strlen (prefix) > ZP_KEY_MAX))
        return zp__fail (EINVAL, NULL);
    if (zp__state_is_view (state))
        return zp__fail (EACCES, NULL);
    return zp__watch_new_from (state, prefix? prefix: "", zp_state_seq (state));
}


//  --------------------------------------------------------------------------
//  Destructor: tell the store to end the stream

void
zp_watch_destroy (zp_watch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zp_watch_t *self = *self_p;
    zp_header_t header = { .command = ZP_CMD_CANCEL };
    void *dealer = zsock_resolve (self->dealer);
    //  Give the goodbye a moment to leave before the socket closes
    zsock_set_linger (self->dealer, 100);
    zp__request_send (dealer, &header, NULL, 0, 0);
    zmq_socket_monitor (dealer, NULL, 0);
    zsock_destroy (&self->monitor);
    zsock_destroy (&self->dealer);
    free (self);
    *self_p = NULL;
}


//  --------------------------------------------------------------------------
//  The next change

int
zp__watch_next (zp_watch_t *self, char **key_p, zchunk_t **value_p, bool *more_p,
                int timeout_ms)
{
    if (!self || !key_p)
        return zp__fail (EINVAL, -1);
    *key_p = NULL;
    if (value_p)
        *value_p = NULL;
    void *dealer = zsock_resolve (self->dealer);
    int64_t deadline = zp__deadline (timeout_ms);
    if (self->lost && !(zsock_events (self->dealer) & ZMQ_POLLIN))
        return zp__fail (ENOTCONN, -1);
    while (true) {
        int rc = zp__wait_socket (dealer, ZMQ_POLLIN, zsock_resolve (self->monitor), deadline);
        if (rc == 2) {
            //  The store forgets a stream whose connection is lost
            if (zp__monitor_event (self->monitor) == ENOTCONN)
                self->lost = true;
            if (!self->lost || zsock_events (self->dealer) & ZMQ_POLLIN)
                continue;
            return zp__fail (ENOTCONN, -1);
        }
        if (rc <= 0)
            return zp__fail (rc == 0? ETIMEDOUT: errno, -1);
        zmsg_t *event = zmsg_recv (dealer);
        zframe_t *frame = event? zmsg_first (event): NULL;
        zp_header_t header;
        if (!frame || zp__header_decode (&header, zframe_data (frame), zframe_size (frame)) < 0
        ||  (header.command != ZP_CMD_EVENT && header.command != ZP_CMD_GAP)) {
            zmsg_destroy (&event);
            continue;
        }
        //  Give the store more credit once half the window is used
        if (++self->taken >= WATCH_WINDOW / 2) {
            zp_header_t credit = { .command = ZP_CMD_CREDIT, .seq = self->taken };
            zp__request_send (dealer, &credit, NULL, 0, 0);
            self->taken = 0;
        }
        if (header.command == ZP_CMD_GAP) {
            self->seq = header.seq - 1;
            zmsg_destroy (&event);
            return zp__fail (EAGAIN, -1);
        }
        self->seq = header.seq;
        self->more = (header.flags & ZP_FLAG_MORE) != 0;
        if (more_p)
            *more_p = self->more;
        zframe_t *key = zmsg_next (event);
        zframe_t *value = zmsg_next (event);
        *key_p = key? zframe_strdup (key): NULL;
        if (value_p && value && !(header.flags & ZP_FLAG_ABSENT))
            *value_p = zchunk_new (zframe_data (value), zframe_size (value));
        zmsg_destroy (&event);
        return 0;
    }
}

int
zp_watch_next_bytes (zp_watch_t *self, char **key_p, zchunk_t **value_p, int timeout_ms)
{
    return zp__watch_next (self, key_p, value_p, NULL, timeout_ms);
}

int
zp_watch_next (zp_watch_t *self, char **key_p, char **value_p, int timeout_ms)
{
    zchunk_t *chunk = NULL;
    if (zp_watch_next_bytes (self, key_p, value_p? &chunk: NULL, timeout_ms) < 0)
        return -1;
    if (value_p) {
        *value_p = chunk? strndup ((const char *) zchunk_data (chunk), zchunk_size (chunk))
                        : NULL;
        zchunk_destroy (&chunk);
    }
    return 0;
}

bool
zp_watch_batch_more (zp_watch_t *self)
{
    return self && self->more;
}

uint64_t
zp_watch_seq (zp_watch_t *self)
{
    return self? self->seq: 0;
}

zsock_t *
zp_watch_sock (zp_watch_t *self)
{
    return self? self->dealer: zp__fail (EINVAL, NULL);
}
