/*  =========================================================================
    zp_worker - a worker: its state handle, its mailbox, its calls

    A mailbox is a PULL socket the worker binds at ipc://DIR/mbox-NAME in
    the context's private directory; a sender connects a PUSH socket to it,
    so each sender's messages keep their order. A message is the sender's
    name, an envelope (plain message, request or reply, and a call id), and
    the user's frames.

    A call sends a request and waits for the reply on a second socket, the
    worker's reply box (ipc://DIR/reply-NAME, bound on the first call), so
    that waiting for a reply never disturbs the order of the mailbox. While
    it waits, it follows the process notices ($proc/...) of the callee, and
    fails as soon as the callee dies.

    The parent is a worker too, named "main" (zp_ctx_main), without a fork.
    =========================================================================
*/

#include "zp_classes.h"

struct _zp_worker_t {
    char *name;                 //  Our worker name
    char *dir;                  //  The context's socket directory
    char *endpoint;             //  The store's endpoint
    zp_keys_t *keys;            //  The context's CURVE keys, or NULL
    zp_state_t *state;          //  Our state handle
    zsock_t *mailbox;           //  Our mailbox (PULL)
    zsock_t *replies;           //  Our reply box (PULL), bound on the first call
    zp_watch_t *notices;        //  Process notices, followed from the first call
    zhashx_t *peers;            //  "mbox-NAME" / "reply-NAME" -> PUSH socket
    zp_ctx_t *children;         //  Our own context, for our workers; made on demand
    char *sender;               //  Sender of the last message received
    uint32_t request_id;        //  Call id of the last request received, else 0
    uint32_t call_id;           //  Id of our last call
    bool terminated;            //  $TERM received: every recv is EINTR
};

#define TERM_COMMAND    "$TERM"
#define MAILBOX         "mbox"
#define REPLY_BOX       "reply"

//  The envelope: version, kind, two reserved bytes, call id (big-endian)
#define ENVELOPE_SIZE   8
#define ENVELOPE_VERSION 1


//  --------------------------------------------------------------------------
//  Names and mailboxes, shared with zp_ctx, zp_proc and the reaper

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
zp__mailbox_path (const char *dir, const char *box, const char *name)
{
    return zsys_sprintf ("%s/%s-%s", dir, box, name);
}

//  Bind a box (PULL) of ours; NULL with errno
static zsock_t *
s_box_bind (zp_worker_t *self, const char *box)
{
    zsock_t *pull = zsock_new (ZMQ_PULL);
    if (!pull)
        return zp__fail (ENOMEM, NULL);
    zsock_set_rcvhwm (pull, ZP_MAILBOX_BOUND);
    if (self->keys) {
        //  Only processes of the context hold the mailbox key: no ZAP needed
        zcert_apply (self->keys->mailbox, pull);
        zsock_set_curve_server (pull, 1);
    }
    char *path = zp__mailbox_path (self->dir, box, self->name);
    if (!path || zsock_bind (pull, "ipc://%s", path) < 0) {
        int saved = path? errno: ENOMEM;
        zsock_destroy (&pull);
        zstr_free (&path);
        return zp__fail (saved, NULL);
    }
    zstr_free (&path);
    return pull;
}

zsock_t *
zp__mailbox_connect (const char *dir, const char *box, const char *name, zp_keys_t *keys)
{
    char *path = zp__mailbox_path (dir, box, name);
    zsock_t *push = path? zsock_new (ZMQ_PUSH): NULL;
    if (push) {
        zsock_set_sndhwm (push, ZP_MAILBOX_BOUND);
        if (keys) {
            zcert_apply (keys->client, push);
            zsock_set_curve_serverkey (push, zcert_public_txt (keys->mailbox));
        }
        if (zsock_connect (push, "ipc://%s", path) < 0)
            zsock_destroy (&push);
    }
    zstr_free (&path);
    return push? push: zp__fail (ENOMEM, NULL);
}

int
zp__mailbox_send (zsock_t *push, const char *from, int kind, uint32_t id, zmsg_t **msg_p,
                  int timeout_ms)
{
    void *sock = zsock_resolve (push);
    int rc = zp__wait_socket (sock, ZMQ_POLLOUT, NULL, zp__deadline (timeout_ms));
    if (rc <= 0)
        return zp__fail (rc == 0? EAGAIN: errno, -1);
    byte envelope [ENVELOPE_SIZE] = {
        ENVELOPE_VERSION, (byte) kind, 0, 0,
        (byte) (id >> 24), (byte) (id >> 16), (byte) (id >> 8), (byte) id
    };
    //  The first frame is in, so is the rest: a message arrives whole
    if (zmq_send (sock, from, strlen (from), ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0)
        return zp__fail (EAGAIN, -1);
    size_t remaining = zmsg_size (*msg_p);
    zmq_send (sock, envelope, sizeof envelope, remaining? ZMQ_SNDMORE: 0);
    for (zframe_t *frame = zmsg_first (*msg_p); frame; frame = zmsg_next (*msg_p))
        zmq_send (sock, zframe_data (frame), zframe_size (frame), --remaining? ZMQ_SNDMORE: 0);
    zmsg_destroy (msg_p);
    return 0;
}

//  Receive a message from a box: its sender, kind and id come apart from
//  the user's frames. NULL for a malformed message (dropped).
static zmsg_t *
s_box_recv (zsock_t *box, char **sender_p, int *kind_p, uint32_t *id_p)
{
    zmsg_t *msg = zmsg_recv (box);
    char *sender = msg? zmsg_popstr (msg): NULL;
    zframe_t *envelope = sender? zmsg_pop (msg): NULL;
    if (!envelope || zframe_size (envelope) != ENVELOPE_SIZE
    ||  zframe_data (envelope) [0] != ENVELOPE_VERSION) {
        zframe_destroy (&envelope);
        zstr_free (&sender);
        zmsg_destroy (&msg);
        return NULL;
    }
    const byte *data = zframe_data (envelope);
    *kind_p = data [1];
    *id_p = ((uint32_t) data [4] << 24) | ((uint32_t) data [5] << 16)
          | ((uint32_t) data [6] << 8) | data [7];
    *sender_p = sender;
    zframe_destroy (&envelope);
    return msg;
}


//  --------------------------------------------------------------------------
//  Constructor and destructor

void
zp__worker_destroy (zp_worker_t **self_p)
{
    zp_worker_t *self = *self_p;
    if (!self)
        return;
    //  Our workers go first: they may still use the store
    zp_ctx_destroy (&self->children);
    zp__worker_settle_mail (self);
    zp_watch_destroy (&self->notices);
    zhashx_destroy (&self->peers);
    zsock_destroy (&self->replies);
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
zp__worker_new (const char *name, const char *dir, const char *endpoint, zp_keys_t *keys,
                int lane_fd)
{
    zp_worker_t *self = (zp_worker_t *) zmalloc (sizeof (zp_worker_t));
    if (!self) {
        if (lane_fd >= 0)
            close (lane_fd);
        return zp__fail (ENOMEM, NULL);
    }
    self->name = strdup (name);
    self->dir = strdup (dir);
    self->keys = keys;
    self->endpoint = strdup (endpoint);
    self->peers = zhashx_new ();
    if (!self->name || !self->dir || !self->endpoint || !self->peers)
        goto failed;
    zhashx_set_destructor (self->peers, (czmq_destructor *) zsock_destroy);
    //  The state first: it takes the lane, also when it fails
    self->state = zp__state_new (endpoint, keys? zcert_public_txt (keys->store): NULL,
                                 keys? keys->client: NULL, zp__default_timeout (), lane_fd);
    lane_fd = -1;
    if (!self->state)
        goto failed;
    self->mailbox = s_box_bind (self, MAILBOX);
    if (!self->mailbox)
        goto failed;
    return self;

failed:;
    int saved = errno? errno: ENOMEM;
    if (lane_fd >= 0)
        close (lane_fd);
    zp__worker_destroy (&self);
    return zp__fail (saved, NULL);
}


//  Before our sockets close: mail queued for a worker that is alive (its
//  box is bound) is delivered however long that takes, so that nothing we
//  sent is dropped when we leave; mail for one that is gone is dropped
void
zp__worker_settle_mail (zp_worker_t *self)
{
    for (zsock_t *push = (zsock_t *) zhashx_first (self->peers); push;
         push = (zsock_t *) zhashx_next (self->peers)) {
        char *path = zsys_sprintf ("%s/%s", self->dir, (const char *) zhashx_cursor (self->peers));
        zsock_set_linger (push, path && access (path, F_OK) == 0? -1: 0);
        zstr_free (&path);
    }
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
        self->children = zp__ctx_new_nested (self);
    return self->children;
}

zp_proc_t *
zp_worker_spawn (zp_worker_t *self, const char *name, zp_worker_fn *fn, void *props)
{
    zp_ctx_t *children = zp_worker_ctx (self);
    return children? zp_ctx_spawn (children, name, fn, props): NULL;
}

const char *
zp__worker_dir (zp_worker_t *self)
{
    return self->dir;
}

const char *
zp__worker_endpoint (zp_worker_t *self)
{
    return self->endpoint;
}

zp_keys_t *
zp__worker_keys (zp_worker_t *self)
{
    return self->keys;
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
        char *sender;
        int kind;
        uint32_t id;
        zmsg_t *msg = s_box_recv (self->mailbox, &sender, &kind, &id);
        if (!msg || kind == ZP_MAIL_REPLY) {
            //  Replies go to the reply box: this one is not for us
            if (msg)
                zstr_free (&sender);
            zmsg_destroy (&msg);
            continue;
        }
        free (self->sender);
        self->sender = sender;
        self->request_id = kind == ZP_MAIL_REQUEST? id: 0;
        if (kind == ZP_MAIL_MESSAGE && zmsg_size (msg) == 1
        &&  zframe_streq (zmsg_first (msg), TERM_COMMAND)) {
            self->terminated = true;
            zmsg_destroy (&msg);
            return zp__fail (EINTR, NULL);
        }
        return msg;
    }
}


//  --------------------------------------------------------------------------
//  Is worker `to` there to take a message? 0 when its mailbox is bound, or
//  when it is registered or (re)starting and will bind it; else -1 with
//  ENOENT (no such worker) or ESRCH (it has exited).

static int
s_check_peer (zp_worker_t *self, const char *to)
{
    char *path = zp__mailbox_path (self->dir, MAILBOX, to);
    bool bound = path && access (path, F_OK) == 0;
    zstr_free (&path);
    if (bound)
        return 0;
    char *key = zsys_sprintf ("%s%s/status", ZP_PROC_PREFIX, to);
    char *status = key? zp_state_get_str (self->state, key): NULL;
    int rc = 0;
    if (!status)
        rc = zp__fail (errno == ENOENT? ENOENT: errno, -1);
    else
    //  A running worker has bound its mailbox: without one it has died, and
    //  the notice is on its way
    if (streq (status, "exited") || streq (status, "killed") || streq (status, "failed")
    ||  streq (status, "running"))
        rc = zp__fail (ESRCH, -1);
    zstr_free (&status);
    zstr_free (&key);
    return rc;
}

//  Send to a box of worker `to`, through a cached PUSH socket
static int
s_deliver (zp_worker_t *self, const char *box, const char *to, int kind, uint32_t id,
           zmsg_t **msg_p)
{
    char *peer = zsys_sprintf ("%s-%s", box, to);
    if (!peer)
        return zp__fail (ENOMEM, -1);
    zsock_t *push = (zsock_t *) zhashx_lookup (self->peers, peer);
    if (!push) {
        push = zp__mailbox_connect (self->dir, box, to, self->keys);
        if (push)
            zhashx_insert (self->peers, peer, push);
    }
    zstr_free (&peer);
    if (!push)
        return -1;
    return zp__mailbox_send (push, self->name, kind, id, msg_p,
                             zp__state_timeout (self->state));
}


//  --------------------------------------------------------------------------
//  Send a message to a worker of the context

int
zp_worker_send (zp_worker_t *self, const char *to, zmsg_t **msg_p)
{
    if (!self || !zp__name_valid (to) || !msg_p || !*msg_p)
        return zp__fail (EINVAL, -1);
    if (s_check_peer (self, to) < 0)
        return -1;
    return s_deliver (self, MAILBOX, to, ZP_MAIL_MESSAGE, 0, msg_p);
}


//  --------------------------------------------------------------------------
//  Answer the request last received

int
zp_worker_reply (zp_worker_t *self, zmsg_t **msg_p)
{
    if (!self || !msg_p || !*msg_p || !self->request_id)
        return zp__fail (EINVAL, -1);
    //  A caller that gave up or died has no reply box any more
    char *path = zp__mailbox_path (self->dir, REPLY_BOX, self->sender);
    bool waiting = path && access (path, F_OK) == 0;
    zstr_free (&path);
    if (!waiting)
        return zp__fail (ESRCH, -1);
    int rc = s_deliver (self, REPLY_BOX, self->sender, ZP_MAIL_REPLY, self->request_id, msg_p);
    if (rc == 0)
        self->request_id = 0;
    return rc;
}


//  --------------------------------------------------------------------------
//  Call a worker: send a request, wait for its reply

//  True when a process notice says that worker `to` has died
static bool
s_notice_of_death (zp_worker_t *self, const char *to)
{
    char *key, *value;
    bool dead = false;
    while (!dead && zp_watch_next (self->notices, &key, &value, 0) == 0) {
        dead = value && strncmp (key, ZP_PROC_PREFIX, strlen (ZP_PROC_PREFIX)) == 0
            && strncmp (key + strlen (ZP_PROC_PREFIX), to, strlen (to)) == 0
            && streq (key + strlen (ZP_PROC_PREFIX) + strlen (to), "/status")
            && !streq (value, "running") && !streq (value, "starting");
        zstr_free (&key);
        zstr_free (&value);
    }
    return dead;
}

zmsg_t *
zp_worker_call (zp_worker_t *self, const char *to, zmsg_t **msg_p, int timeout_ms)
{
    if (!self || !zp__name_valid (to) || !msg_p || !*msg_p)
        return zp__fail (EINVAL, NULL);
    if (self->terminated)
        return zp__fail (EINTR, NULL);
    if (!self->replies && !(self->replies = s_box_bind (self, REPLY_BOX)))
        return NULL;
    //  Deaths from now on come as notices; one before is in the status
    if (!self->notices)
        self->notices = zp_watch_new (self->state, ZP_PROC_PREFIX);
    if (!self->notices || s_check_peer (self, to) < 0)
        return NULL;
    uint32_t id = ++self->call_id;
    if (s_deliver (self, MAILBOX, to, ZP_MAIL_REQUEST, id, msg_p) < 0)
        return NULL;

    int64_t deadline = zp__deadline (timeout_ms);
    void *replies = zsock_resolve (self->replies);
    void *notices = zsock_resolve (zp_watch_sock (self->notices));
    while (true) {
        int rc = zp__wait_socket (replies, ZMQ_POLLIN, notices, deadline);
        if (rc <= 0)
            return zp__fail (rc == 0? ETIMEDOUT: errno, NULL);
        if (rc == 2) {
            if (s_notice_of_death (self, to))
                return zp__fail (ESRCH, NULL);
            continue;
        }
        char *sender;
        int kind;
        uint32_t reply_id;
        zmsg_t *reply = s_box_recv (self->replies, &sender, &kind, &reply_id);
        if (reply) {
            bool ours = kind == ZP_MAIL_REPLY && reply_id == id && streq (sender, to);
            zstr_free (&sender);
            if (ours)
                return reply;
        }
        //  A late reply to a call that gave up
        zmsg_destroy (&reply);
    }
}
