/*  =========================================================================
    zp_worker - inside a worker process: its state handle and mailbox

    A mailbox is a PULL socket the worker binds at ipc://DIR/mbox-NAME in
    the context's private directory; a sender connects a PUSH socket to it.
    Every mailbox message starts with a frame naming its sender, which
    zp_worker_recv takes off (zp_worker_sender tells it).
    =========================================================================
*/

#include "zp_classes.h"

struct _zp_worker_t {
    char *name;                 //  Our worker name
    char *dir;                  //  The context's socket directory
    zp_keys_t *keys;            //  The context's CURVE keys, or NULL
    zp_state_t *state;          //  Our state handle
    zsock_t *mailbox;           //  Our mailbox (PULL)
    zhashx_t *peers;            //  name -> PUSH socket to that mailbox
    char *endpoint;             //  The store's endpoint
    zp_ctx_t *children;         //  Our own context, for our workers; made on demand
    char *sender;               //  Sender of the last message received
    bool terminated;            //  $TERM received: every recv is EINTR
};

#define TERM_COMMAND    "$TERM"


//  --------------------------------------------------------------------------
//  Mailbox helpers, shared with zp_proc and the reaper

bool
zp__name_valid (const char *name)
{
    if (!name || !*name)
        return false;
    size_t size = 0;
    for (; name [size]; size++)
        if (size >= ZP_NAME_MAX
        || !(isalnum ((byte) name [size]) || strchr ("._-", name [size])))
            return false;
    return true;
}

char *
zp__mailbox_endpoint (const char *dir, const char *name)
{
    return zsys_sprintf ("ipc://%s/mbox-%s", dir, name);
}

zsock_t *
zp__mailbox_connect (const char *dir, const char *name, zp_keys_t *keys)
{
    char *endpoint = zp__mailbox_endpoint (dir, name);
    zsock_t *push = endpoint? zsock_new (ZMQ_PUSH): NULL;
    if (push) {
        zsock_set_linger (push, 1000);  //  Let queued messages reach a live peer
        if (keys) {
            zcert_apply (keys->client, push);
            zsock_set_curve_serverkey (push, zcert_public_txt (keys->mailbox));
        }
        if (zsock_connect (push, "%s", endpoint) < 0)
            zsock_destroy (&push);
    }
    zstr_free (&endpoint);
    return push? push: zp__fail (ENOMEM, NULL);
}

int
zp__mailbox_send (zsock_t *push, const char *from, zmsg_t **msg_p, int timeout_ms)
{
    void *sock = zsock_resolve (push);
    int rc = zp__wait_socket (sock, ZMQ_POLLOUT, NULL, zp__deadline (timeout_ms));
    if (rc <= 0)
        return zp__fail (rc == 0? EAGAIN: errno, -1);
    //  The first frame is in, so is the rest: a message arrives whole
    size_t remaining = zmsg_size (*msg_p);
    if (zmq_send (sock, from, strlen (from), ZMQ_DONTWAIT | (remaining? ZMQ_SNDMORE: 0)) < 0)
        return zp__fail (EAGAIN, -1);
    for (zframe_t *frame = zmsg_first (*msg_p); frame; frame = zmsg_next (*msg_p))
        zmq_send (sock, zframe_data (frame), zframe_size (frame), --remaining? ZMQ_SNDMORE: 0);
    zmsg_destroy (msg_p);
    return 0;
}


//  --------------------------------------------------------------------------
//  Constructor and destructor, called in the child

void
zp__worker_destroy (zp_worker_t **self_p)
{
    zp_worker_t *self = *self_p;
    if (!self)
        return;
    //  Our workers go first: they may still use the store
    zp_ctx_destroy (&self->children);
    zhashx_destroy (&self->peers);
    zsock_destroy (&self->mailbox);
    zp_state_destroy (&self->state);
    free (self->sender);
    free (self->endpoint);
    free (self->dir);
    free (self->name);
    free (self);
    *self_p = NULL;
}

zp_worker_t *
zp__worker_new (const char *name, const char *dir, const char *endpoint, zp_keys_t *keys)
{
    zp_worker_t *self = (zp_worker_t *) zmalloc (sizeof (zp_worker_t));
    if (!self)
        return zp__fail (ENOMEM, NULL);
    self->name = strdup (name);
    self->dir = strdup (dir);
    self->keys = keys;
    self->endpoint = strdup (endpoint);
    self->peers = zhashx_new ();
    self->mailbox = zsock_new (ZMQ_PULL);
    if (!self->name || !self->dir || !self->endpoint || !self->peers || !self->mailbox)
        goto failed;
    zhashx_set_destructor (self->peers, (czmq_destructor *) zsock_destroy);
    if (keys) {
        //  Only processes of the context hold the mailbox key: no ZAP needed
        zcert_apply (keys->mailbox, self->mailbox);
        zsock_set_curve_server (self->mailbox, 1);
    }
    char *mailbox = zp__mailbox_endpoint (dir, name);
    int rc = mailbox? zsock_bind (self->mailbox, "%s", mailbox): -1;
    zstr_free (&mailbox);
    if (rc < 0)
        goto failed;
    self->state = zp__state_new (endpoint, keys? zcert_public_txt (keys->store): NULL,
                                 keys? keys->client: NULL, ZP_DEFAULT_TIMEOUT);
    if (!self->state)
        goto failed;
    return self;

failed:;
    int saved = errno? errno: ENOMEM;
    zp__worker_destroy (&self);
    return zp__fail (saved, NULL);
}


//  --------------------------------------------------------------------------
//  Accessors

zp_state_t *
zp_worker_state (zp_worker_t *self)
{
    return self? self->state: zp__fail (EINVAL, NULL);
}

const char *
zp_worker_name (zp_worker_t *self)
{
    return self? self->name: zp__fail (EINVAL, NULL);
}

const char *
zp_worker_sender (zp_worker_t *self)
{
    return self? self->sender: zp__fail (EINVAL, NULL);
}

zsock_t *
zp_worker_mailbox (zp_worker_t *self)
{
    return self? self->mailbox: zp__fail (EINVAL, NULL);
}


//  --------------------------------------------------------------------------
//  Nested workers: our own context shares the parent's store

zp_ctx_t *
zp_worker_ctx (zp_worker_t *self)
{
    if (!self)
        return zp__fail (EINVAL, NULL);
    if (!self->children)
        self->children = zp__ctx_new_nested (self->name, self->dir, self->endpoint,
                                             self->keys);
    return self->children;
}

zp_proc_t *
zp_worker_spawn (zp_worker_t *self, const char *name, zp_worker_fn *fn, void *props)
{
    zp_ctx_t *children = zp_worker_ctx (self);
    return children? zp_ctx_spawn (children, name, fn, props): NULL;
}


//  --------------------------------------------------------------------------
//  Receive the next mailbox message

zmsg_t *
zp_worker_recv (zp_worker_t *self, int timeout_ms)
{
    if (!self)
        return zp__fail (EINVAL, NULL);
    if (self->terminated)
        return zp__fail (EINTR, NULL);
    void *mailbox = zsock_resolve (self->mailbox);
    int64_t deadline = zp__deadline (timeout_ms);
    while (true) {
        int rc = zp__wait_socket (mailbox, ZMQ_POLLIN, NULL, deadline);
        if (rc <= 0)
            return zp__fail (rc == 0? ETIMEDOUT: errno, NULL);
        zmsg_t *msg = zmsg_recv (mailbox);
        char *sender = msg? zmsg_popstr (msg): NULL;
        if (!sender) {
            zmsg_destroy (&msg);
            continue;
        }
        free (self->sender);
        self->sender = sender;
        zframe_t *first = zmsg_first (msg);
        if (zmsg_size (msg) == 1 && zframe_streq (first, TERM_COMMAND)) {
            self->terminated = true;
            zmsg_destroy (&msg);
            return zp__fail (EINTR, NULL);
        }
        return msg;
    }
}


//  --------------------------------------------------------------------------
//  Send a message to another worker of the context

int
zp_worker_send (zp_worker_t *self, const char *to, zmsg_t **msg_p)
{
    if (!self || !zp__name_valid (to) || !msg_p || !*msg_p)
        return zp__fail (EINVAL, -1);
    zsock_t *push = (zsock_t *) zhashx_lookup (self->peers, to);
    if (!push) {
        //  A worker's mailbox exists from its start: no file, no worker
        char *path = zsys_sprintf ("%s/mbox-%s", self->dir, to);
        bool known = path && access (path, F_OK) == 0;
        zstr_free (&path);
        if (!known)
            return zp__fail (ENOENT, -1);
        push = zp__mailbox_connect (self->dir, to, self->keys);
        if (!push)
            return -1;
        zhashx_insert (self->peers, to, push);
    }
    return zp__mailbox_send (push, self->name, msg_p, zp__state_timeout (self->state));
}
