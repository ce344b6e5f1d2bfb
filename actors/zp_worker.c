/*  =========================================================================
    zp_worker - a worker: its state handle, its mailbox, its calls

    A mailbox is a PULL socket the worker binds at ipc://DIR/mbox-NAME in
    the context's private directory; a sender connects a PUSH socket to it,
    so each sender's messages keep their order. A forked worker's context
    binds that file and listens on it before the fork (zp__mailbox_listen),
    and the worker's PULL socket takes the descriptor over (ZMQ_USE_FD) on
    first need: mail sent meanwhile waits. Until then its parent stops it
    on the control channel it reported ready on (zp__worker_stop), not with
    $TERM. A message is the sender's name, an envelope (plain message,
    request or reply, and a call id), and the user's frames.

    A call sends a request and waits for the reply on a second socket, the
    worker's reply box (ipc://DIR/reply-NAME, bound on the first call), so
    that waiting for a reply never disturbs the order of the mailbox. While
    it waits, it follows the process notices ($proc/...) of the callee, and
    fails as soon as the callee dies.

    The parent is a worker too, named "main" (zp_ctx_main), without a fork.

    Mail is paced by credit (the ZeroMQ guide, chapter 7): a sender has at
    most ZP_MAILBOX_BOUND messages in flight towards a mailbox, and the
    receiver grants more as it reads them, on the sender's reply box. So
    libzmq's queues never fill and never push back, and libzmq keeps what a
    connection carried when its sender leaves: only a full receiving queue
    (backpressure) makes it drop in-flight messages at disconnect.
    =========================================================================
*/

#include "zp_classes.h"
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <pthread.h>

//  A box of another worker we send to
typedef struct {
    char *path;                 //  The box's socket file
    zsock_t *push;              //  Connected to the box
    bool grants;                //  Carries our grants, which need not outlive us
    size_t in_flight;           //  Counted messages sent and not granted back
    uint64_t bound;             //  Which binding of the box: a new one, a new receiver
} peer_t;

struct _zp_worker_t {
    char *name;                 //  Our worker name
    char *dir;                  //  The context's socket directory
    char *endpoint;             //  The store's endpoint
    zp_keys_t *keys;            //  The context's CURVE keys, or NULL
    zp_state_t *state;          //  Our state handle
    zsock_t *mailbox;           //  Our mailbox (PULL), made on first need
    int mailbox_fd;             //  Until then, its socket file's listening socket
    int control_fd;             //  Until then, our parent's control channel, or -1
    zsock_t *term;              //  A stop that came on it late, as $TERM to us
    pthread_mutex_t lock;       //  Guards the making of the mailbox
    int made;                   //  eventfd, readable once the mailbox is made
    pthread_t waker;            //  Makes it when a sender connects, if we do not
    bool waking;                //  Is the waker started (and not joined)?
    zsock_t *replies;           //  Our reply box (PULL), bound on the first call
    zp_watch_t *notices;        //  Process notices, followed from the first call
    zhashx_t *peers;            //  "mbox-NAME", "reply-NAME", "grant-NAME" -> peer_t
    zhashx_t *debts;            //  Sender name -> messages read, not granted yet
    zp_ctx_t *children;         //  Our own context, for our workers; made on demand
    char *sender;               //  Sender of the last message received
    uint32_t request_id;        //  Call id of the last request received, else 0
    uint32_t call_id;           //  Id of our last call
    bool terminated;            //  $TERM received: every recv is EINTR
};

#define TERM_COMMAND    "$TERM"
#define MAILBOX         "mbox"
#define REPLY_BOX       "reply"

//  The envelope: version, kind, flags, a reserved byte, call id (big-endian)
#define ENVELOPE_SIZE   8
#define ENVELOPE_VERSION 1
//  Flags: the message is paced by credit, the receiver grants it back
#define ENVELOPE_COUNTED 0x01

//  A receiver grants credit back once it has read this many of a sender's
//  messages (or the sender would wait for a grant per message)
#define CREDIT_BATCH    (ZP_MAILBOX_BOUND / 4)
//  A sender waiting for credit looks this often whether its receiver was
//  restarted (a restarted receiver owes it nothing: it starts afresh), msecs
#define CREDIT_CHECK    100
//  A mailbox holds this many messages of one sender at most: with credit it
//  never holds more than ZP_MAILBOX_BOUND, the rest is a margin for
//  libzmq's lazy accounting of what was read
#define MAILBOX_QUEUE   (4 * ZP_MAILBOX_BOUND)


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

void
zp__mailbox_remove (const char *dir, const char *name)
{
    const char *boxes [] = { MAILBOX, REPLY_BOX };
    for (size_t index = 0; index < 2; index++) {
        char *path = zp__mailbox_path (dir, boxes [index], name);
        if (path)
            unlink (path);
        zstr_free (&path);
    }
}

int
zp__mailbox_listen (const char *dir, const char *name)
{
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    char *path = zp__mailbox_path (dir, MAILBOX, name);
    if (!path)
        return zp__fail (ENOMEM, -1);
    if (strlen (path) >= sizeof address.sun_path) {
        zstr_free (&path);
        return zp__fail (ENAMETOOLONG, -1);
    }
    strcpy (address.sun_path, path);
    //  As libzmq's bind: a file a predecessor left goes first
    unlink (path);
    zstr_free (&path);
    //  Non-blocking, as libzmq's I/O thread accepts once it is readable
    int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    //  libzmq's listen backlog (ZMQ_BACKLOG's default)
    if (bind (fd, (struct sockaddr *) &address, sizeof address) < 0
    ||  listen (fd, 100) < 0) {
        int saved = errno;
        close (fd);
        return zp__fail (saved, -1);
    }
    return fd;
}

//  Bind a box (PULL) of ours: on the listening socket fd (taken, also on
//  failure) when it is not -1, else on a socket file of its own. NULL with
//  errno
static zsock_t *
s_box_bind (zp_worker_t *self, const char *box, int fd)
{
    zsock_t *pull = zp__sock_new (ZMQ_PULL);
    if (!pull) {
        if (fd >= 0)
            close (fd);
        return NULL;            //  EMFILE
    }
    zsock_set_rcvhwm (pull, MAILBOX_QUEUE);
    if (self->keys) {
        //  Only processes of the context hold the mailbox key: no ZAP needed
        zcert_apply (self->keys->mailbox, pull);
        zsock_set_curve_server (pull, 1);
    }
    //  libzmq closes a descriptor it was given (ZMQ_USE_FD) with the socket;
    //  it never unlinks a box's file (the reaper does, once we have exited)
    if (fd >= 0 && zmq_setsockopt (zsock_resolve (pull), ZMQ_USE_FD, &fd, sizeof fd) < 0) {
        int saved = errno;
        close (fd);
        zsock_destroy (&pull);
        return zp__fail (saved, NULL);
    }
    char *path = zp__mailbox_path (self->dir, box, self->name);
    if (!path || zsock_bind (pull, "ipc://%s", path) < 0) {
        int saved = path? errno: ENOMEM;
        if (fd >= 0)
            close (fd);
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
    zsock_t *push = path? zp__sock_new (ZMQ_PUSH): NULL;
    int saved = path? errno: ENOMEM;
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
    return push? push: zp__fail (saved == EMFILE? EMFILE: ENOMEM, NULL);
}

int
zp__mailbox_send (zsock_t *push, const char *from, int kind, int flags, uint32_t id,
                  zmsg_t **msg_p, int timeout_ms)
{
    void *sock = zsock_resolve (push);
    int64_t deadline = zp__deadline (timeout_ms);
    byte envelope [ENVELOPE_SIZE] = {
        ENVELOPE_VERSION, (byte) kind, (byte) flags, 0,
        (byte) (id >> 24), (byte) (id >> 16), (byte) (id >> 8), (byte) id
    };
    //  The first frame is in, so is the rest: a message arrives whole. A
    //  timeout of 0 never waits, so never fails with EINTR after a Ctrl-C
    while (zmq_send (sock, from, strlen (from), ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0) {
        int rc = timeout_ms == 0? 0: zp__wait_socket (sock, ZMQ_POLLOUT, NULL, deadline);
        if (rc <= 0)
            return zp__fail (rc == 0? EAGAIN: errno, -1);
    }
    size_t remaining = zmsg_size (*msg_p);
    zmq_send (sock, envelope, sizeof envelope, remaining? ZMQ_SNDMORE: 0);
    for (zframe_t *frame = zmsg_first (*msg_p); frame; frame = zmsg_next (*msg_p))
        zmq_send (sock, zframe_data (frame), zframe_size (frame), --remaining? ZMQ_SNDMORE: 0);
    zmsg_destroy (msg_p);
    return 0;
}

//  A worker stops on its control channel while it has no mailbox (no ZeroMQ
//  context to make only to read one message), on $TERM once it has one:
//  making the mailbox shuts the channel's reading side, so a stop sent
//  after that fails (EPIPE), and one sent before is read then, and put in
//  the mailbox as the $TERM it stands for
int
zp__worker_stop (int control_fd, const char *dir, const char *name, zp_keys_t *keys,
                 zsock_t **term_p)
{
    const byte stop = 'S';
    *term_p = NULL;
    if (control_fd >= 0 && send (control_fd, &stop, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
        return 0;
    *term_p = zp__mailbox_connect (dir, MAILBOX, name, keys);
    zmsg_t *term = zmsg_new ();
    //  Never waits, so a Ctrl-C (zsys_interrupted) cannot stop it
    int rc = *term_p && term && zmsg_addstr (term, TERM_COMMAND) == 0
           ? zp__mailbox_send (*term_p, "main", ZP_MAIL_MESSAGE, 0, 0, &term, 0): -1;
    int saved = errno;
    zmsg_destroy (&term);
    if (*term_p)
        zsock_set_linger (*term_p, 0);
    return rc < 0? zp__fail (saved? saved: ENOMEM, -1): 0;
}

//  What a box message says about itself
typedef struct {
    char *sender;               //  The sender's name, owned
    int kind;                   //  ZP_MAIL_...
    int flags;                  //  ENVELOPE_COUNTED or 0
    uint32_t id;                //  Call id, or the credit granted
} envelope_t;

//  Receive a message from a box: its envelope comes apart from the user's
//  frames (the caller frees envelope->sender). NULL for a malformed message
//  (dropped).
static zmsg_t *
s_box_recv (zsock_t *box, envelope_t *envelope)
{
    zmsg_t *msg = zmsg_recv (box);
    char *sender = msg? zmsg_popstr (msg): NULL;
    zframe_t *frame = sender? zmsg_pop (msg): NULL;
    if (!frame || zframe_size (frame) != ENVELOPE_SIZE
    ||  zframe_data (frame) [0] != ENVELOPE_VERSION) {
        zframe_destroy (&frame);
        zstr_free (&sender);
        zmsg_destroy (&msg);
        return NULL;
    }
    const byte *data = zframe_data (frame);
    envelope->sender = sender;
    envelope->kind = data [1];
    envelope->flags = data [2];
    envelope->id = ((uint32_t) data [4] << 24) | ((uint32_t) data [5] << 16)
                 | ((uint32_t) data [6] << 8) | data [7];
    zframe_destroy (&frame);
    return msg;
}

//  Which binding of a box this is, from its socket file (inode and change
//  time: a box bound anew is a new file); 0 when it is not bound
static uint64_t
s_binding (const char *path)
{
    struct stat info;
    if (!path || stat (path, &info) != 0)
        return 0;
    uint64_t binding = (uint64_t) info.st_ino * 1000000007u
                     ^ ((uint64_t) info.st_ctim.tv_sec * 1000000000u + info.st_ctim.tv_nsec);
    return binding? binding: 1;
}

static void
s_peer_destroy (peer_t **self_p)
{
    peer_t *self = *self_p;
    if (self) {
        zsock_destroy (&self->push);
        free (self->path);
        free (self);
        *self_p = NULL;
    }
}


//  --------------------------------------------------------------------------
//  Constructor and destructor

//  Before our sockets close: what we queued for a worker that is alive (its
//  box is bound) may take the handle's timeout to leave, so that nothing we
//  sent is dropped when we leave; what we queued for one that is gone is
//  dropped, and so are grants (a sender owes us nothing once we are gone).
//  Credit keeps the receiving queue from filling, so mail leaves at the
//  kernel's pace whatever the receiver's; a bound linger, not an infinite
//  one, so that a receiver dying meanwhile cannot hold our exit for ever.
static void
s_settle_mail (zp_worker_t *self)
{
    int linger = zp__state_timeout (self->state);
    for (peer_t *peer = (peer_t *) zhashx_first (self->peers); peer;
         peer = (peer_t *) zhashx_next (self->peers)) {
        bool alive = !peer->grants && s_binding (peer->path);
        zsock_set_linger (peer->push, alive? linger: 0);
    }
}

static void
    s_waker_stop (zp_worker_t *self);

void
zp__worker_destroy (zp_worker_t **self_p)
{
    zp_worker_t *self = *self_p;
    if (!self)
        return;
    s_waker_stop (self);
    //  Our workers go first: they may still use the store
    zp_ctx_destroy (&self->children);
    s_settle_mail (self);
    zp_watch_destroy (&self->notices);
    zhashx_destroy (&self->peers);
    zhashx_destroy (&self->debts);
    zsock_destroy (&self->replies);
    zsock_destroy (&self->term);
    zsock_destroy (&self->mailbox);
    if (self->mailbox_fd >= 0)
        close (self->mailbox_fd);
    zp__lane_fd_close (self->control_fd);
    if (self->made >= 0)
        close (self->made);
    pthread_mutex_destroy (&self->lock);
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
                int lane_fd, zp_shared_t *shared, const uint64_t *seq, int mailbox_fd,
                int control_fd)
{
    zp_worker_t *self = (zp_worker_t *) zmalloc (sizeof (zp_worker_t));
    if (!self) {
        zp__lane_fd_close (lane_fd);
        zp__lane_fd_close (control_fd);
        if (mailbox_fd >= 0)
            close (mailbox_fd);
        return zp__fail (ENOMEM, NULL);
    }
    self->mailbox_fd = mailbox_fd;
    self->control_fd = control_fd;
    self->made = -1;
    pthread_mutex_init (&self->lock, NULL);
    self->name = strdup (name);
    self->dir = strdup (dir);
    self->keys = keys;
    self->endpoint = strdup (endpoint);
    self->peers = zhashx_new ();
    self->debts = zhashx_new ();
    if (!self->name || !self->dir || !self->endpoint || !self->peers || !self->debts)
        goto failed;
    zhashx_set_destructor (self->peers, (czmq_destructor *) s_peer_destroy);
    //  The state first: it takes the lane, also when it fails
    self->state = zp__state_new_shared (endpoint, keys? zcert_public_txt (keys->store): NULL,
                                        keys? keys->client: NULL, zp__default_timeout (),
                                        lane_fd, shared, seq);
    lane_fd = -1;
    if (!self->state)
        goto failed;
    return self;

failed:;
    int saved = errno? errno: ENOMEM;
    zp__lane_fd_close (lane_fd);
    zp__worker_destroy (&self);
    return zp__fail (saved, NULL);
}


//  --------------------------------------------------------------------------
//  The mailbox of a forked worker is made on first need: a worker that
//  waits for mail with nobody sending it any, or never reads it, has no
//  ZeroMQ threads. Until then its context's listening socket holds what
//  senders connect (their mail waits in their queues): zp_worker_recv waits
//  on it, and while we are elsewhere the waker, a thread that sleeps in
//  poll, makes the mailbox once a sender connects, so that its mail is
//  taken in even if it exits at once (as it would be by libzmq's I/O
//  thread). Every use of ZeroMQ by the worker makes the mailbox first.

//  Take what came on the control channel, under the lock: true when it is
//  a stop; the channel closes after a stop and at its end of file (a
//  parent that will not use it). done: the mailbox is made, the channel
//  closes now, and a stop sent from now on fails (zp__worker_stop).
static bool
s_control_take (zp_worker_t *self, bool done)
{
    if (self->control_fd < 0)
        return false;
    if (done)
        shutdown (self->control_fd, SHUT_RD);
    byte stop;
    ssize_t size = recv (self->control_fd, &stop, 1, MSG_DONTWAIT);
    if (done || size >= 0) {
        zp__lane_fd_close (self->control_fd);
        self->control_fd = -1;
    }
    return size == 1;
}

//  Make the mailbox (once, from either thread); 0, or -1 with errno
static int
s_mailbox_make (zp_worker_t *self)
{
    pthread_mutex_lock (&self->lock);
    if (!self->mailbox) {
        self->mailbox = s_box_bind (self, MAILBOX, self->mailbox_fd);
        self->mailbox_fd = -1;
        //  A stop that came before goes in, as the $TERM it stands for
        //  (should that fail, SIGTERM follows the grace period)
        if (self->mailbox && s_control_take (self, true))
            zp__worker_stop (-1, self->dir, self->name, self->keys, &self->term);
        //  Whoever waits for it wakes: the waker, or our recv
        uint64_t one = 1;
        if (self->made >= 0 && write (self->made, &one, sizeof one) < 0)
            zsys_error ("zproc: worker %s: cannot signal its mailbox", self->name);
    }
    int rc = self->mailbox? 0: zp__fail (errno? errno: EMFILE, -1);
    pthread_mutex_unlock (&self->lock);
    return rc;
}

//  Wait until a sender connects, or the mailbox is made, or deadline; 1,
//  0 at the deadline, -1 with EINTR (SIGINT/SIGTERM, or our parent's stop:
//  terminated)
static int
s_mailbox_wait (zp_worker_t *self, int fd, int64_t deadline)
{
    while (true) {
        if (zsys_interrupted)
            return zp__fail (EINTR, -1);
        int wait = zp__remaining (deadline);
        if (wait < 0 || wait > 250)
            wait = 250;         //  A signal another thread took does not wake us
        //  Only we and s_mailbox_make (under the lock) close the channel
        struct pollfd items [] = {
            { fd, POLLIN, 0 }, { self->made, POLLIN, 0 }, { self->control_fd, POLLIN, 0 }
        };
        int rc = poll (items, self->control_fd >= 0? 3: 2, wait);
        //  Mail first: a stop with it is read when the mailbox is made
        if (rc > 0 && !items [0].revents && !items [1].revents) {
            pthread_mutex_lock (&self->lock);
            self->terminated |= s_control_take (self, false);
            pthread_mutex_unlock (&self->lock);
            if (self->terminated)
                return zp__fail (EINTR, -1);
            continue;
        }
        if (rc > 0)
            return 1;
        if (rc == 0 && deadline >= 0 && zclock_mono () >= deadline)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

static void *
s_waker (void *args)
{
    zp_worker_t *self = (zp_worker_t *) args;
    pthread_mutex_lock (&self->lock);
    int fd = self->mailbox? -1: self->mailbox_fd;
    pthread_mutex_unlock (&self->lock);
    //  The descriptor is ours to poll until the mailbox is made: only
    //  s_mailbox_make hands it over, and it signals made when it does
    while (fd >= 0) {
        struct pollfd items [] = { { fd, POLLIN, 0 }, { self->made, POLLIN, 0 } };
        int rc = poll (items, 2, -1);
        if (rc < 0 && errno == EINTR)
            continue;
        //  A sender is there, and the mailbox is still to make
        if (rc > 0 && !items [1].revents)
            s_mailbox_make (self);
        break;
    }
    return NULL;
}

//  Stop the waker, if it runs
static void
s_waker_stop (zp_worker_t *self)
{
    if (self->waking) {
        uint64_t one = 1;
        if (write (self->made, &one, sizeof one) < 0)
            zsys_error ("zproc: worker %s: cannot stop its waker", self->name);
        pthread_join (self->waker, NULL);
        self->waking = false;
    }
}

int
zp__worker_start (zp_worker_t *self)
{
    if (self->mailbox_fd < 0)
        return s_mailbox_make (self);
    //  CZMQ's global context, before a second thread may make a socket
    //  (zsys_init is not thread-safe; it starts no thread)
    if (!zsys_init ())
        return zp__fail (ENOMEM, -1);
    self->made = eventfd (0, EFD_CLOEXEC);
    if (self->made < 0)
        return s_mailbox_make (self);
    //  The waker takes no signal: they interrupt our own calls
    sigset_t blocked, saved;
    sigfillset (&blocked);
    pthread_sigmask (SIG_BLOCK, &blocked, &saved);
    self->waking = pthread_create (&self->waker, NULL, s_waker, self) == 0;
    pthread_sigmask (SIG_SETMASK, &saved, NULL);
    return self->waking? 0: s_mailbox_make (self);
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
    if (!self)
        return zp__fail (EINVAL, NULL);
    return s_mailbox_make (self) == 0? self->mailbox: NULL;
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


//  --------------------------------------------------------------------------
//  Credit: a sender has at most ZP_MAILBOX_BOUND messages in flight towards
//  a mailbox; the receiver grants them back, a batch at a time, on the
//  sender's reply box

//  The box `box` of worker `to`, connected on first use; grants go on a
//  connection of their own to the reply box. NULL with errno.
static peer_t *
s_peer (zp_worker_t *self, const char *box, const char *to, bool grants)
{
    char *key = zsys_sprintf ("%s-%s", grants? "grant": box, to);
    peer_t *peer = key? (peer_t *) zhashx_lookup (self->peers, key): NULL;
    if (key && !peer && (peer = (peer_t *) zmalloc (sizeof (peer_t)))) {
        peer->grants = grants;
        peer->path = zp__mailbox_path (self->dir, box, to);
        peer->bound = s_binding (peer->path);
        peer->push = peer->path? zp__mailbox_connect (self->dir, box, to, self->keys): NULL;
        if (peer->push)
            zhashx_insert (self->peers, key, peer);
        else
            s_peer_destroy (&peer);
    }
    zstr_free (&key);
    return peer? peer: zp__fail (ENOMEM, NULL);
}

//  Grant count messages back to sender; 0 when granted (or when the sender
//  has gone: nobody is owed any more), -1 when it must wait for the next
static int
s_grant (zp_worker_t *self, const char *sender, uintptr_t count)
{
    char *path = zp__mailbox_path (self->dir, REPLY_BOX, sender);
    bool gone = !s_binding (path);
    zstr_free (&path);
    if (gone)
        return 0;
    peer_t *peer = s_peer (self, REPLY_BOX, sender, true);
    zmsg_t *grant = zmsg_new ();
    int rc = peer && grant? zp__mailbox_send (peer->push, self->name, ZP_MAIL_CREDIT, 0,
                                              (uint32_t) count, &grant, 0): -1;
    zmsg_destroy (&grant);
    return rc;
}

//  We have read a message: owe its sender one more message of credit, and
//  pay once we owe a batch
static void
s_owe (zp_worker_t *self, envelope_t *envelope)
{
    if (!(envelope->flags & ENVELOPE_COUNTED))
        return;
    uintptr_t debt = (uintptr_t) zhashx_lookup (self->debts, envelope->sender) + 1;
    if (debt >= CREDIT_BATCH && s_grant (self, envelope->sender, debt) == 0)
        zhashx_delete (self->debts, envelope->sender);
    else
        zhashx_update (self->debts, envelope->sender, (void *) debt);
}

//  Read one message from our reply box; a grant is applied to its peer and
//  NULL returned, anything else is returned with its envelope
static zmsg_t *
s_replies_recv (zp_worker_t *self, envelope_t *envelope)
{
    zmsg_t *msg = s_box_recv (self->replies, envelope);
    if (msg && envelope->kind == ZP_MAIL_CREDIT) {
        char *key = zsys_sprintf ("%s-%s", MAILBOX, envelope->sender);
        peer_t *peer = key? (peer_t *) zhashx_lookup (self->peers, key): NULL;
        if (peer)
            peer->in_flight = peer->in_flight > envelope->id? peer->in_flight - envelope->id: 0;
        zstr_free (&key);
        zstr_free (&envelope->sender);
        zmsg_destroy (&msg);
    }
    return msg;
}

//  Wait until we may send one more message to peer, the mailbox of worker
//  to. 0, or -1 with EAGAIN (no credit came before deadline), ESRCH (the
//  receiver exited meanwhile) or EINTR.
static int
s_await_credit (zp_worker_t *self, peer_t *peer, const char *to, int64_t deadline)
{
    void *replies = zsock_resolve (self->replies);
    while (peer->in_flight >= ZP_MAILBOX_BOUND) {
        //  A receiver that bound its mailbox anew (restarted) owes us
        //  nothing: what we sent its predecessor died with it. One whose
        //  box is gone may be restarting, or gone for good (ESRCH)
        uint64_t bound = s_binding (peer->path);
        if (bound && peer->bound && bound != peer->bound)
            peer->in_flight = 0;
        if (!bound && s_check_peer (self, to) < 0)
            return -1;
        peer->bound = bound? bound: peer->bound;
        if (peer->in_flight < ZP_MAILBOX_BOUND)
            break;
        int64_t check = zclock_mono () + CREDIT_CHECK;
        int rc = zp__wait_socket (replies, ZMQ_POLLIN, NULL,
                                  deadline < 0 || check < deadline? check: deadline);
        if (rc < 0)
            return -1;
        if (rc == 0 && deadline >= 0 && zclock_mono () >= deadline)
            return zp__fail (EAGAIN, -1);
        envelope_t envelope;
        zmsg_t *late = rc == 1? s_replies_recv (self, &envelope): NULL;
        if (late) {
            //  A late reply to a call that gave up
            zstr_free (&envelope.sender);
            zmsg_destroy (&late);
        }
    }
    return 0;
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
    int64_t deadline = zp__deadline (timeout_ms);
    //  No mailbox yet: wait for a sender without ZeroMQ
    pthread_mutex_lock (&self->lock);
    int fd = self->mailbox? -1: self->mailbox_fd;
    pthread_mutex_unlock (&self->lock);
    if (fd >= 0 && self->made >= 0) {
        int rc = s_mailbox_wait (self, fd, deadline);
        if (rc <= 0)
            return zp__fail (rc == 0? ETIMEDOUT: errno, NULL);
    }
    if (s_mailbox_make (self) < 0)
        return NULL;
    void *mailbox = zsock_resolve (self->mailbox);
    while (true) {
        int rc = zp__wait_socket (mailbox, ZMQ_POLLIN, NULL, deadline);
        if (rc <= 0)
            return zp__fail (rc == 0? ETIMEDOUT: errno, NULL);
        envelope_t envelope;
        zmsg_t *msg = s_box_recv (self->mailbox, &envelope);
        if (!msg)
            continue;
        s_owe (self, &envelope);
        if (envelope.kind == ZP_MAIL_REPLY || envelope.kind == ZP_MAIL_CREDIT) {
            //  These go to the reply box: this one is not for us
            zstr_free (&envelope.sender);
            zmsg_destroy (&msg);
            continue;
        }
        free (self->sender);
        self->sender = envelope.sender;
        self->request_id = envelope.kind == ZP_MAIL_REQUEST? envelope.id: 0;
        if (envelope.kind == ZP_MAIL_MESSAGE && zmsg_size (msg) == 1
        &&  zframe_streq (zmsg_first (msg), TERM_COMMAND)) {
            self->terminated = true;
            zmsg_destroy (&msg);
            return zp__fail (EINTR, NULL);
        }
        return msg;
    }
}

void
zp__worker_discard (zp_worker_t *self)
{
    if (s_mailbox_make (self) < 0)
        return;
    envelope_t envelope;
    zmsg_t *msg = s_box_recv (self->mailbox, &envelope);
    if (msg) {
        s_owe (self, &envelope);
        zstr_free (&envelope.sender);
    }
    zmsg_destroy (&msg);
}


//  --------------------------------------------------------------------------
//  Send to a box of worker `to`, through a cached PUSH socket. Mail is paced
//  by credit; replies are not (a caller waits for exactly one).
static int
s_deliver (zp_worker_t *self, const char *box, const char *to, int kind, uint32_t id,
           zmsg_t **msg_p)
{
    peer_t *peer = s_peer (self, box, to, false);
    if (!peer)
        return -1;
    int64_t deadline = zp__deadline (zp__state_timeout (self->state));
    bool counted = streq (box, MAILBOX);
    if (s_mailbox_make (self) < 0)
        return -1;
    //  Grants come to our reply box: it is bound before our first message
    if (counted && !self->replies && !(self->replies = s_box_bind (self, REPLY_BOX, -1)))
        return -1;
    if (counted && s_await_credit (self, peer, to, deadline) < 0)
        return -1;
    if (zp__mailbox_send (peer->push, self->name, kind, counted? ENVELOPE_COUNTED: 0, id,
                          msg_p, zp__remaining (deadline)) < 0)
        return -1;
    peer->in_flight += counted;
    return 0;
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
    if (s_mailbox_make (self) < 0)
        return NULL;
    if (!self->replies && !(self->replies = s_box_bind (self, REPLY_BOX, -1)))
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
        envelope_t envelope;
        zmsg_t *reply = s_replies_recv (self, &envelope);
        if (reply) {
            bool ours = envelope.kind == ZP_MAIL_REPLY && envelope.id == id
                     && streq (envelope.sender, to);
            zstr_free (&envelope.sender);
            if (ours)
                return reply;
        }
        //  A late reply to a call that gave up
        zmsg_destroy (&reply);
    }
}
