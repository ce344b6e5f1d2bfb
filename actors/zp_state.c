/*  =========================================================================
    zp_state - a handle to the shared key/value state

    A handle is a transport and a request id: each call is one request and
    waits for the reply that carries the same id, so a reply that arrives
    after its call gave up is recognised and dropped. The transport is a
    DEALER socket (ipc://, tcp://, CURVE), or, for the handle of a worker
    its context forked, the direct lane (zp_lane.h), a socketpair made before
    the fork: a request is one sendmsg and the wait for its reply one recv;
    end of stream is the store's death (ENOTCONN). s_send and s_recv are
    the only places that know which. Every reply
    carries a sequence number; the handle keeps the highest, which is where
    its watchers start (see "Watch semantics" in zp_state.h).

    A handle can also be a read-only view: a local copy of the state at one
    sequence number, made in one round trip (SINCE): zp_state_snapshot, and
    the view zp_state_get_when keeps current from a watch and hands to
    predicates, so that their getters cost no round trip. A view refuses
    writes and watchers with EACCES.

    A handle may keep a replica (zp_state_replicate): a view of the keys
    under a prefix, with the store's sequence number it is up to date with.
    A read of a replicated key compares that number with the one the store
    publishes in the memory it shares with the processes its context forked
    (zp_shared_t): equal, the store has applied no change since, and the
    replica answers; else one SINCE round trip brings the replica up to
    date (the changes since its number, or all of the prefix after a gap).
    A handle without that memory (zp_state_connect) asks SINCE on every
    read. Every getter goes through s_fetch, which reads the store, the
    view, or the replica.
    =========================================================================
*/

#include "zp_classes.h"
#include <sys/socket.h>

struct _zp_state_t {
    zp_lane_t *lane;            //  The direct lane to the store, or NULL
    zsock_t *dealer;            //  Request socket to the store; NULL on a view or lane
    zsock_t *monitor;           //  Events of the dealer's connection
    bool connected;             //  Is the dealer's connection up, as far as we know?
    bool refused;               //  Did the store refuse our keys at the last handshake?
    char *endpoint;             //  The store's endpoint
    char *server_key;           //  The store's CURVE public key, or NULL
    zcert_t *cert;              //  Our CURVE certificate, or NULL
    int timeout;                //  Plain-call timeout, msecs; -1 = forever
    uint32_t request_id;        //  Id of the last request
    uint64_t seq;               //  Highest sequence number seen in a reply
    zmsg_t *reply;              //  Payload of the last reply
    zp_header_t answer;         //  Header of the last reply
    zhashx_t *view;             //  A view's copy of the state: key -> zchunk_t
    zp_shared_t *shared;        //  The store's published seq, or NULL
    zp_state_t *replica;        //  A view of the keys under replica_prefix, or NULL
    char *replica_prefix;       //  The keys the replica copies
    //  The WAIT_CHANGE sent ahead for the next get_when_change on the key
    //  of the last one (s_wait_change)
    uint32_t ahead_id;          //  Its request id, 0 when none is out
    char *ahead_key;            //  Its key
    zmsg_t *ahead_reply;        //  Its answer, when it came during another call
    zp_header_t ahead_answer;   //  That answer's header
};


//  --------------------------------------------------------------------------
//  Helpers shared by every blocking call of the library

//  How often a blocked call looks at zsys_interrupted, msecs
#define SIGNAL_CHECK_INTERVAL   250

int64_t
zp__deadline (int timeout_ms)
{
    return timeout_ms < 0? -1: zclock_mono () + timeout_ms;
}

char *
zp__inproc_endpoint (const char *what)
{
    //  Never the address of an object: malloc hands a freed one out again
    //  while libzmq may still hold the name bound at it
    static unsigned int endpoints = 0;
    unsigned int number = __atomic_add_fetch (&endpoints, 1, __ATOMIC_RELAXED);
    char *endpoint = zsys_sprintf ("inproc://zproc-%u-%s", number, what);
    return endpoint? endpoint: zp__fail (ENOMEM, NULL);
}

int
zp__remaining (int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t remaining = deadline - zclock_mono ();
    return remaining > 0? (int) remaining: 0;
}

int
zp__wait_socket (void *sock, short events, void *other, int64_t deadline)
{
    while (true) {
        //  CZMQ's handler sets zsys_interrupted on SIGINT and SIGTERM
        if (zsys_interrupted)
            return zp__fail (EINTR, -1);
        //  Ready already (a reply that came while we worked): no poll
        int ready = 0;
        size_t size = sizeof ready;
        if (zmq_getsockopt (sock, ZMQ_EVENTS, &ready, &size) == 0 && (ready & events))
            return 1;
        //  A signal taken by another thread of the program does not wake
        //  this poll: look at zsys_interrupted now and then
        int wait = zp__remaining (deadline);
        if (wait < 0 || wait > SIGNAL_CHECK_INTERVAL)
            wait = SIGNAL_CHECK_INTERVAL;
        zmq_pollitem_t items [] = { { sock, 0, events, 0 }, { other, 0, ZMQ_POLLIN, 0 } };
        int rc = zmq_poll (items, other? 2: 1, wait);
        if (rc > 0)
            return items [0].revents? 1: 2;
        if (rc == 0 && deadline >= 0 && zclock_mono () >= deadline)
            return 0;
        if (rc < 0 && errno != EINTR)
            return zp__fail (ENOTCONN, -1);
        //  Another signal, or an early wake-up: wait on
    }
}

int
zp__request_send (void *sock, const zp_header_t *header, const zp_part_t *parts,
                  size_t nparts, int64_t deadline)
{
    byte buffer [ZP_HEADER_SIZE];
    zp__header_encode (header, buffer);
    //  Once the first frame is queued, the rest of the message is too
    while (zmq_send (sock, buffer, sizeof buffer, ZMQ_DONTWAIT | (nparts? ZMQ_SNDMORE: 0)) < 0) {
        int rc = errno == EAGAIN? zp__wait_socket (sock, ZMQ_POLLOUT, NULL, deadline)
                                : zp__fail (ENOTCONN, -1);
        if (rc <= 0)
            return zp__fail (rc == 0? ENOTCONN: errno, -1);
    }
    for (size_t index = 0; index < nparts; index++)
        zmq_send (sock, parts [index].data, parts [index].size,
                  index + 1 < nparts? ZMQ_SNDMORE: 0);
    return 0;
}


//  --------------------------------------------------------------------------
//  Argument armor

//  0 when self is a usable handle and key a valid key, else -1 EINVAL
static int
s_check (zp_state_t *self, const char *key)
{
    if (!self || (key && !zp__key_valid (key, strnlen (key, ZP_KEY_MAX + 1))))
        return zp__fail (EINVAL, -1);
    return 0;
}

//  Writes are refused on a view
static int
s_check_write (zp_state_t *self, const char *key)
{
    if (s_check (self, key) < 0 || !key)
        return zp__fail (EINVAL, -1);
    if (self->view)
        return zp__fail (EACCES, -1);
    return 0;
}


//  --------------------------------------------------------------------------
//  One round trip: send the request, wait until deadline for its reply and
//  keep its payload in self->reply. Returns 0 when the store said OK, else
//  -1 with errno: the store's status, timeout_errno when the deadline
//  passed, EACCES when the store refused our keys (or our lack of them),
//  ENOTCONN when the connection was lost meanwhile, EINTR. A watcher that
//  gives up withdraws its parked request.

//  Take the monitor's news: the connection's state, and the errno a call
//  waiting on it fails with (EACCES: refused, ENOTCONN: lost), else 0. A
//  refusal is kept: libzmq does not try again after one, so it may be the
//  only news a call ever gets, and it can come before the call looks
static int
s_monitor_news (zp_state_t *self, bool wait)
{
    int news = 0;
    while (wait || zsock_events (self->monitor) & ZMQ_POLLIN) {
        int event = zp__monitor_event (self->monitor);
        self->connected = event == 0? true: event == EACCES? self->connected: false;
        self->refused = event == EACCES? true: event == 0? false: self->refused;
        //  A refusal ends in a lost connection too: the refusal is the news
        if (news != EACCES && event)
            news = event;
        wait = false;
    }
    return news;
}

//  The transport, sending: the header, then nparts frames, and on a lane
//  descriptor fd (SCM_RIGHTS) when it is not -1. 0, or -1 with errno
//  (ENOTCONN, EINTR, ENOMEM)
static int
s_send (zp_state_t *self, const zp_header_t *header, const zp_part_t *parts, size_t nparts,
        int64_t deadline, int fd)
{
    if (!self->lane)
        return zp__request_send (zsock_resolve (self->dealer), header, parts, nparts, deadline);
    byte buffer [ZP_HEADER_SIZE];
    zp__header_encode (header, buffer);
    zp_part_t stack [8];
    zp_part_t *frames = nparts < 8? stack: (zp_part_t *) malloc ((nparts + 1) * sizeof (zp_part_t));
    if (!frames)
        return zp__fail (ENOMEM, -1);
    frames [0] = (zp_part_t) { buffer, sizeof buffer };
    if (nparts)
        memcpy (frames + 1, parts, nparts * sizeof (zp_part_t));
    int rc = zp__lane_send_fd (self->lane, frames, nparts + 1, fd);
    if (frames != stack)
        free (frames);
    return rc;
}

//  The transport, receiving: wait for the next message until deadline.
//  Returns 1 with *msg_p (NULL when it was unreadable), 0 when deadline
//  passed, -1 with errno: ENOTCONN (the store is gone), EACCES (it refused
//  our keys), EINTR
static int
s_recv (zp_state_t *self, int64_t deadline, zmsg_t **msg_p)
{
    *msg_p = NULL;
    if (self->lane) {
        int rc = zp__lane_wait (self->lane, deadline);
        if (rc < 0 && errno == EPROTO)
            errno = ENOTCONN;   //  Cannot happen: the store frames every message
        zp_part_t body;
        if (rc > 0 && zp__lane_next (self->lane, &body))
            *msg_p = zp__lane_split_msg (&body);
        return rc;
    }
    void *dealer = zsock_resolve (self->dealer);
    while (true) {
        int rc = zp__wait_socket (dealer, ZMQ_POLLIN, zsock_resolve (self->monitor), deadline);
        int news = rc == 2? s_monitor_news (self, true): 0;
        if (news)
            return zp__fail (news, -1);
        if (rc == 2)
            continue;
        if (rc > 0)
            *msg_p = zmsg_recv (dealer);
        return rc;
    }
}

//  Wait for the answer to request_id until deadline: 1 with it in
//  self->reply and self->answer, else as s_recv. The answer to the request
//  sent ahead that comes meanwhile is kept for the get_when_change that
//  wants it; anything else is a late answer to a call that gave up, or
//  garbage.
static int
s_await (zp_state_t *self, uint32_t request_id, int64_t deadline)
{
    while (true) {
        zmsg_t *reply;
        int rc = s_recv (self, deadline, &reply);
        if (rc <= 0)
            return rc;
        zframe_t *frame = reply? zmsg_pop (reply): NULL;
        zp_header_t answer;
        bool valid = frame
                  && zp__header_decode (&answer, zframe_data (frame), zframe_size (frame)) == 0;
        zframe_destroy (&frame);
        if (valid && answer.request_id == request_id) {
            self->answer = answer;
            self->reply = reply;
            return 1;
        }
        if (valid && self->ahead_id && answer.request_id == self->ahead_id) {
            zmsg_destroy (&self->ahead_reply);
            self->ahead_reply = reply;
            self->ahead_answer = answer;
        }
        else
            zmsg_destroy (&reply);
    }
}

//  A fresh request id: never 0 (the store's probes), never the request sent
//  ahead's, which may stay parked while the ids wrap around
static uint32_t
s_next_id (zp_state_t *self)
{
    do
        self->request_id++;
    while (self->request_id == 0 || self->request_id == self->ahead_id);
    return self->request_id;
}

//  The last answer taken: the sequence number it carries is seen; 0 when
//  its status is OK, else -1 with the status's errno
static int
s_answered (zp_state_t *self)
{
    if (self->answer.seq > self->seq)
        self->seq = self->answer.seq;
    if (self->answer.status != ZP_STATUS_OK)
        return zp__fail (zp__status_errno (self->answer.status), -1);
    return 0;
}

static int
s_call (zp_state_t *self, int command, int flags, uint64_t seq,
        const zp_part_t *parts, size_t nparts, int64_t deadline, int timeout_errno, int fd)
{
    zmsg_destroy (&self->reply);
    bool watcher = command >= ZP_CMD_WAIT_CHANGE && command <= ZP_CMD_WAIT_AVAILABLE;
    if (self->view)
        return zp__fail (EACCES, -1);
    //  A watcher would wait for ever on a store that is gone (a lane sees
    //  the store's death itself: end of stream)
    if (!self->lane) {
        s_monitor_news (self, false);
        if (self->refused)
            return zp__fail (EACCES, -1);
        if (watcher && !self->connected)
            return zp__fail (ENOTCONN, -1);
    }
    zp_header_t header = {
        .command = (uint8_t) command, .flags = (uint8_t) flags,
        .request_id = s_next_id (self), .seq = seq
    };
    if (s_send (self, &header, parts, nparts, deadline, fd) < 0)
        return -1;
    int rc = s_await (self, header.request_id, deadline);
    if (rc <= 0) {
        int saved = rc == 0? timeout_errno: errno;
        if (watcher) {
            header.command = ZP_CMD_CANCEL;
            s_send (self, &header, NULL, 0, 0, -1);
        }
        return zp__fail (saved, -1);
    }
    return s_answered (self);
}

//  A plain call: the handle's timeout; a store that does not answer in
//  time is gone (ENOTCONN)
static int
s_request (zp_state_t *self, int command, int flags, const zp_part_t *parts, size_t nparts)
{
    return s_call (self, command, flags, self->seq, parts, nparts,
                   zp__deadline (self->timeout), ENOTCONN, -1);
}

static int
s_request_key (zp_state_t *self, int command, const char *key)
{
    zp_part_t part = { key, strlen (key) };
    return s_request (self, command, 0, &part, 1);
}

//  The nth payload frame of the last reply, or NULL
static zframe_t *
s_reply_frame (zp_state_t *self, size_t index)
{
    zframe_t *frame = self->reply? zmsg_first (self->reply): NULL;
    while (frame && index--)
        frame = zmsg_next (self->reply);
    return frame;
}


//  --------------------------------------------------------------------------
//  Read a key's value, from the store or from the view. The bytes are
//  borrowed until the next call on the handle.

static int
    s_replica_read (zp_state_t *self, const char *key);

static int
s_fetch (zp_state_t *self, const char *key, const byte **data_p, size_t *size_p)
{
    if (s_check (self, key) < 0 || !key)
        return zp__fail (EINVAL, -1);
    int replicated = s_replica_read (self, key);
    if (replicated)
        return replicated < 0? -1: s_fetch (self->replica, key, data_p, size_p);
    if (self->view) {
        zchunk_t *chunk = (zchunk_t *) zhashx_lookup (self->view, key);
        if (!chunk)
            return zp__fail (ENOENT, -1);
        *data_p = zchunk_data (chunk);
        *size_p = zchunk_size (chunk);
        return 0;
    }
    if (s_request_key (self, ZP_CMD_GET, key) < 0)
        return -1;
    zframe_t *frame = s_reply_frame (self, 0);
    if (!frame)
        return zp__fail (EPROTO, -1);
    *data_p = zframe_data (frame);
    *size_p = zframe_size (frame);
    return 0;
}


//  --------------------------------------------------------------------------
//  Constructor

zp_state_t *
zp__state_new (const char *endpoint, const char *server_public_key, zcert_t *cert,
               int timeout_ms, int lane_fd)
{
    return zp__state_new_shared (endpoint, server_public_key, cert, timeout_ms, lane_fd,
                                 NULL, NULL);
}

zp_state_t *
zp__state_new_shared (const char *endpoint, const char *server_public_key, zcert_t *cert,
                      int timeout_ms, int lane_fd, zp_shared_t *shared, const uint64_t *seq)
{
    if (!endpoint || (server_public_key && strlen (server_public_key) != 40)) {
        zp__lane_fd_close (lane_fd);
        return zp__fail (EINVAL, NULL);
    }
    zp_state_t *self = (zp_state_t *) zmalloc (sizeof (zp_state_t));
    if (!self) {
        zp__lane_fd_close (lane_fd);
        return zp__fail (ENOMEM, NULL);
    }
    self->timeout = timeout_ms;
    //  The lane takes the descriptor, also when it fails
    if (lane_fd >= 0 && !(self->lane = zp__lane_new (lane_fd, true, SIZE_MAX)))
        goto failed;
    self->endpoint = strdup (endpoint);
    if (server_public_key) {
        self->server_key = strdup (server_public_key);
        self->cert = cert? zcert_dup (cert): zcert_new ();
    }
    if (!self->endpoint || (server_public_key && (!self->server_key || !self->cert)))
        goto failed;
    //  On a lane, given where our watchers start, there is no handshake to
    //  wait for: the store reads the lane once it has adopted it
    self->shared = shared;
    if (self->lane && seq) {
        self->seq = *seq;
        self->connected = true;
        return self;
    }
    //  HELLO: the store is there, and here is where our watchers start;
    //  a refusal is EACCES at once
    if (!self->lane && !(self->dealer = zp__state_socket (self, &self->monitor)))
        goto failed;
    if (s_request (self, ZP_CMD_HELLO, 0, NULL, 0) < 0) {
        errno = errno == EINTR || errno == EACCES? errno: ENOTCONN;
        goto failed;
    }
    self->connected = true;
    //  Our watchers start where we were told, not at the HELLO's number
    if (seq)
        self->seq = *seq;
    return self;

failed:;
    int saved = errno? errno: ENOMEM;
    zp_state_destroy (&self);
    return zp__fail (saved, NULL);
}

int
zp__default_timeout (void)
{
    const char *timeout = getenv ("ZPROC_TIMEOUT");
    return timeout && atoi (timeout) > 0? atoi (timeout): ZP_DEFAULT_TIMEOUT;
}

zp_state_t *
zp_state_connect (const char *endpoint, const char *server_public_key)
{
    const char *path = getenv ("ZPROC_CLIENT_CERT");
    zcert_t *cert = server_public_key && path? zcert_load (path): NULL;
    if (server_public_key && path && !cert)
        return zp__fail (EINVAL, NULL);
    zp_state_t *self = zp__state_new (endpoint, server_public_key, cert,
                                      zp__default_timeout (), -1);
    zcert_destroy (&cert);
    return self;
}

zp_state_t *
zp_state_connect_cert (const char *endpoint, const char *server_public_key, zcert_t *cert)
{
    if (!server_public_key || !cert)
        return zp__fail (EINVAL, NULL);
    return zp__state_new (endpoint, server_public_key, cert, zp__default_timeout (), -1);
}

//  A view: no socket, a local copy of the state
static zp_state_t *
s_view_new (void)
{
    zp_state_t *self = (zp_state_t *) zmalloc (sizeof (zp_state_t));
    if (!self)
        return NULL;
    self->view = zhashx_new ();
    if (!self->view) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->view, (czmq_destructor *) zchunk_destroy);
    return self;
}


//  --------------------------------------------------------------------------
//  Destructor

void
zp_state_destroy (zp_state_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zp_state_t *self = *self_p;
    if (self->dealer)
        zmq_socket_monitor (zsock_resolve (self->dealer), NULL, 0);
    zsock_destroy (&self->monitor);
    zsock_destroy (&self->dealer);
    zp__lane_destroy (&self->lane);
    zmsg_destroy (&self->reply);
    zstr_free (&self->ahead_key);
    zmsg_destroy (&self->ahead_reply);
    zhashx_destroy (&self->view);
    zp_state_destroy (&self->replica);
    free (self->replica_prefix);
    zcert_destroy (&self->cert);
    free (self->server_key);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}


//  --------------------------------------------------------------------------
//  Internals for zp_watch and zp_worker

zsock_t *
zp__state_socket (zp_state_t *self, zsock_t **monitor_p)
{
    //  A name of its own: a socket closed a moment ago may still hold its
    //  monitor's name while libzmq closes it
    zsock_t *sock = zp__sock_new (ZMQ_DEALER);
    char *endpoint = sock? zp__inproc_endpoint ("monitor"): NULL;
    //  The monitor first: it must see the first handshake
    if (!endpoint
    ||  zmq_socket_monitor (zsock_resolve (sock), endpoint,
                            ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED
                            | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
                            | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                            | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) < 0
    ||  !(*monitor_p = zp__sock_new (ZMQ_PAIR))
    ||  zsock_connect (*monitor_p, "%s", endpoint) < 0) {
        //  No descriptor left (EMFILE), or no memory
        int saved = errno == EMFILE? EMFILE: ENOMEM;
        if (sock && endpoint)
            zmq_socket_monitor (zsock_resolve (sock), NULL, 0);
        zstr_free (&endpoint);
        zsock_destroy (monitor_p);
        zsock_destroy (&sock);
        return zp__fail (saved, NULL);
    }
    zstr_free (&endpoint);
    zsock_set_linger (sock, 0);
    zsock_set_rcvhwm (sock, 0);  //  Watch streams are paced by their credit
    if (self->cert) {
        zcert_apply (self->cert, sock);
        zsock_set_curve_serverkey (sock, self->server_key);
    }
    if (zsock_connect (sock, "%s", self->endpoint) < 0) {
        zmq_socket_monitor (zsock_resolve (sock), NULL, 0);
        zsock_destroy (monitor_p);
        zsock_destroy (&sock);
        return zp__fail (EINVAL, NULL);
    }
    return sock;
}

int
zp__monitor_event (zsock_t *monitor)
{
    zmsg_t *event = zmsg_recv (monitor);
    zframe_t *frame = event? zmsg_first (event): NULL;
    uint16_t id = 0;
    if (frame && zframe_size (frame) >= 2)
        memcpy (&id, zframe_data (frame), 2);
    zmsg_destroy (&event);
    if (id & (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
            | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH))
        return EACCES;
    return id == ZMQ_EVENT_DISCONNECTED? ENOTCONN: 0;
}

int
zp__state_timeout (zp_state_t *self)
{
    return self->timeout;
}


//  --------------------------------------------------------------------------
//  Settings

void
zp_state_set_timeout (zp_state_t *self, int timeout_ms)
{
    if (self)
        self->timeout = timeout_ms < 0? -1: timeout_ms;
}

uint64_t
zp_state_seq (zp_state_t *self)
{
    return self? self->seq: 0;
}


//  --------------------------------------------------------------------------
//  Setters: all of them store bytes

int
zp_state_set_bytes (zp_state_t *self, const char *key, const void *data, size_t size)
{
    if (s_check_write (self, key) < 0)
        return -1;
    if (!data && size)
        return zp__fail (EINVAL, -1);
    if (size > ZP_VALUE_MAX)
        return zp__fail (EMSGSIZE, -1);
    zp_part_t parts [2] = { { key, strlen (key) }, { data, size } };
    return s_request (self, ZP_CMD_SET, 0, parts, 2);
}

int
zp__state_notice (zp_state_t *self, const char *key, const char *value)
{
    if (s_check_write (self, key) < 0 || !value)
        return zp__fail (EINVAL, -1);
    zp_part_t parts [2] = { { key, strlen (key) }, { value, strlen (value) } };
    return s_request (self, ZP_CMD_SET, ZP_FLAG_NOTICE, parts, 2);
}

int
zp_state_set_str (zp_state_t *self, const char *key, const char *value)
{
    if (!value)
        return zp__fail (EINVAL, -1);
    return zp_state_set_bytes (self, key, value, strlen (value));
}

int
zp_state_set_int (zp_state_t *self, const char *key, int64_t value)
{
    char text [24];
    snprintf (text, sizeof text, "%" PRId64, value);
    return zp_state_set_str (self, key, text);
}

int
zp_state_set_double (zp_state_t *self, const char *key, double value)
{
    //  17 significant digits read back as the same double
    char text [32];
    snprintf (text, sizeof text, "%.17g", value);
    return zp_state_set_str (self, key, text);
}


//  --------------------------------------------------------------------------
//  Getters: all of them read bytes through s_fetch

char *
zp_state_get_str (zp_state_t *self, const char *key)
{
    const byte *data;
    size_t size;
    if (s_fetch (self, key, &data, &size) < 0)
        return NULL;
    char *value = strndup ((const char *) data, size);
    return value? value: zp__fail (ENOMEM, NULL);
}

int
zp_state_get_int (zp_state_t *self, const char *key, int64_t *value)
{
    const byte *data;
    size_t size;
    if (!value)
        return zp__fail (EINVAL, -1);
    if (s_fetch (self, key, &data, &size) < 0)
        return -1;
    return zp__parse_int (data, size, value)? 0: zp__fail (EINVAL, -1);
}

int
zp_state_get_double (zp_state_t *self, const char *key, double *value)
{
    const byte *data;
    size_t size;
    if (!value)
        return zp__fail (EINVAL, -1);
    if (s_fetch (self, key, &data, &size) < 0)
        return -1;
    return zp__parse_double (data, size, value)? 0: zp__fail (EINVAL, -1);
}

zchunk_t *
zp_state_get_bytes (zp_state_t *self, const char *key)
{
    const byte *data;
    size_t size;
    if (s_fetch (self, key, &data, &size) < 0)
        return NULL;
    zchunk_t *chunk = zchunk_new (data, size);
    return chunk? chunk: zp__fail (ENOMEM, NULL);
}


//  --------------------------------------------------------------------------
//  Delete, exists, keys, size

int
zp_state_delete (zp_state_t *self, const char *key)
{
    if (s_check_write (self, key) < 0)
        return -1;
    return s_request_key (self, ZP_CMD_DEL, key);
}

bool
zp_state_exists (zp_state_t *self, const char *key)
{
    if (s_check (self, key) < 0 || !key)
        return zp__fail (EINVAL, false);
    int replicated = s_replica_read (self, key);
    if (replicated)
        return replicated < 0? false: zp_state_exists (self->replica, key);
    if (self->view)
        return zp__fail (0, zhashx_lookup (self->view, key) != NULL);
    if (s_request_key (self, ZP_CMD_EXISTS, key) == 0)
        return zp__fail (0, true);
    return errno == ENOENT? zp__fail (0, false): false;
}

zlistx_t *
zp_state_keys (zp_state_t *self, const char *prefix)
{
    if (s_check (self, NULL) < 0)
        return NULL;
    prefix = prefix? prefix: "";
    size_t prefix_size = strlen (prefix);
    zlistx_t *keys = zlistx_new ();
    if (!keys)
        return zp__fail (ENOMEM, NULL);
    zlistx_set_destructor (keys, (czmq_destructor *) zstr_free);
    if (self->view) {
        for (void *item = zhashx_first (self->view); item; item = zhashx_next (self->view)) {
            const char *key = (const char *) zhashx_cursor (self->view);
            if (strncmp (key, prefix, prefix_size) == 0)
                zlistx_add_end (keys, strdup (key));
        }
        if (zp__sort_strings (keys) < 0)
            zlistx_destroy (&keys);
        return keys;
    }
    zp_part_t part = { prefix, prefix_size };
    if (s_request (self, ZP_CMD_KEYS, 0, &part, 1) < 0) {
        zlistx_destroy (&keys);
        return NULL;
    }
    for (zframe_t *frame = zmsg_first (self->reply); frame; frame = zmsg_next (self->reply))
        zlistx_add_end (keys, zframe_strdup (frame));
    return keys;
}

size_t
zp_state_size (zp_state_t *self)
{
    if (s_check (self, NULL) < 0)
        return 0;
    if (self->view)
        return zp__fail (0, zhashx_size (self->view));
    if (s_request (self, ZP_CMD_SIZE, 0, NULL, 0) < 0)
        return 0;
    zframe_t *frame = s_reply_frame (self, 0);
    if (!frame || zframe_size (frame) != 8)
        return zp__fail (EPROTO, 0);
    return zp__fail (0, (size_t) zp__get_uint64 (zframe_data (frame)));
}

char *
zp_state_info (zp_state_t *self)
{
    if (s_check (self, NULL) < 0 || self->view)
        return zp__fail (EINVAL, NULL);
    if (s_request (self, ZP_CMD_INFO, 0, NULL, 0) < 0)
        return NULL;
    //  name, value frames: one line each pair
    size_t size = 1;
    for (zframe_t *frame = zmsg_first (self->reply); frame; frame = zmsg_next (self->reply))
        size += zframe_size (frame) + 1;
    char *text = (char *) malloc (size);
    if (!text)
        return zp__fail (ENOMEM, NULL);
    size_t used = 0;
    bool name = true;
    for (zframe_t *frame = zmsg_first (self->reply); frame; frame = zmsg_next (self->reply)) {
        memcpy (text + used, zframe_data (frame), zframe_size (frame));
        used += zframe_size (frame);
        text [used++] = name? ' ': '\n';
        name = !name;
    }
    text [used] = 0;
    if (!name) {
        free (text);
        return zp__fail (EPROTO, NULL);
    }
    return text;
}


//  --------------------------------------------------------------------------
//  A new lane to the store, asked for on this handle's own lane

int
zp__state_lane (zp_state_t *self)
{
    if (!self || !self->lane)
        return zp__fail (EINVAL, -1);
    int pair [2];
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
        return -1;
    //  Marked while we hold them: a child forked meanwhile closes them
    zp__lane_fd_mark (pair [0], true);
    zp__lane_fd_mark (pair [1], true);
    int rc = s_call (self, ZP_CMD_LANE, 0, self->seq, NULL, 0, zp__deadline (self->timeout),
                     ENOTCONN, pair [0]);
    int saved = errno;
    //  The store holds its own copy of its end now
    zp__lane_fd_close (pair [0]);
    if (rc < 0) {
        zp__lane_fd_close (pair [1]);
        return zp__fail (saved, -1);
    }
    return pair [1];
}


//  --------------------------------------------------------------------------
//  Atomic operations, applied in the store

int
zp_state_incr (zp_state_t *self, const char *key, int64_t delta, int64_t *result)
{
    if (s_check_write (self, key) < 0)
        return -1;
    byte encoded [8];
    zp__put_uint64 (encoded, (uint64_t) delta);
    zp_part_t parts [2] = { { key, strlen (key) }, { encoded, sizeof encoded } };
    if (s_request (self, ZP_CMD_INCR, 0, parts, 2) < 0)
        return -1;
    zframe_t *frame = s_reply_frame (self, 0);
    if (!frame || zframe_size (frame) != 8)
        return zp__fail (EPROTO, -1);
    if (result)
        *result = (int64_t) zp__get_uint64 (zframe_data (frame));
    return 0;
}

int
zp_state_cas_str (zp_state_t *self, const char *key, const char *expected,
                  const char *value)
{
    if (s_check_write (self, key) < 0)
        return -1;
    if (!value)
        return zp__fail (EINVAL, -1);
    size_t size = strlen (value);
    if (size > ZP_VALUE_MAX)
        return zp__fail (EMSGSIZE, -1);
    zp_part_t parts [3] = {
        { key, strlen (key) }, { value, size },
        { expected, expected? strlen (expected): 0 }
    };
    return s_request (self, ZP_CMD_CAS, expected? 0: ZP_FLAG_ABSENT, parts, expected? 3: 2);
}


//  --------------------------------------------------------------------------
//  Watchers: a request the store answers at once or parks

static int
s_wait (zp_state_t *self, int command, const char *key, const char *value, int64_t deadline)
{
    if (s_check (self, key) < 0 || !key)
        return zp__fail (EINVAL, -1);
    zp_part_t parts [2] = { { key, strlen (key) }, { value, value? strlen (value): 0 } };
    return s_call (self, command, 0, self->seq, parts, value? 2: 1, deadline, ETIMEDOUT, -1);
}

//  The request sent ahead is answered, or wanted no more (cancel: withdraw
//  it from the store)
static void
s_ahead_end (zp_state_t *self, bool cancel)
{
    if (cancel && self->ahead_id) {
        zp_header_t header = { .command = ZP_CMD_CANCEL, .request_id = self->ahead_id };
        s_send (self, &header, NULL, 0, 0, -1);
    }
    self->ahead_id = 0;
    zstr_free (&self->ahead_key);
    zmsg_destroy (&self->ahead_reply);
}

//  Send the WAIT_CHANGE of the next get_when_change on key now, without
//  waiting: it leaves with whatever the caller sends next (a set, in a
//  ping-pong), so the store is woken once for both
static void
s_ahead_start (zp_state_t *self, const char *key)
{
    self->ahead_key = strdup (key);
    zp_header_t header = {
        .command = ZP_CMD_WAIT_CHANGE, .request_id = s_next_id (self), .seq = self->seq
    };
    zp_part_t part = { key, strlen (key) };
    if (self->ahead_key && s_send (self, &header, &part, 1, 0, -1) == 0)
        self->ahead_id = header.request_id;
    else
        zstr_free (&self->ahead_key);
}

//  WAIT_CHANGE. On a lane, once it has answered with a change, the request
//  for the key's next change goes out at once (s_ahead_start): the next
//  call on the same key takes its answer, come or to come, without a round
//  trip of its own (a loop of get_when_change costs one round trip per
//  change, not two), unless the handle has seen a later state since (its
//  seq), which asks again. A call on another key withdraws it. Not on a
//  socket: a connection lost and made again would lose the request parked
//  unseen, and the call would wait for it for ever.
static int
s_wait_change (zp_state_t *self, const char *key, int timeout_ms)
{
    if (s_check (self, key) < 0 || !key)
        return zp__fail (EINVAL, -1);
    int64_t deadline = zp__deadline (timeout_ms);
    bool answered = false;
    if (self->ahead_id && streq (self->ahead_key, key)) {
        zmsg_destroy (&self->reply);
        int got = 1;
        if (self->ahead_reply) {
            self->reply = self->ahead_reply;
            self->answer = self->ahead_answer;
            self->ahead_reply = NULL;
        }
        else
            got = s_await (self, self->ahead_id, deadline);
        //  A timeout or a signal leaves it out; a lane gone takes it
        if (got <= 0) {
            int saved = got == 0? ETIMEDOUT: errno;
            if (got < 0 && saved != EINTR)
                s_ahead_end (self, false);
            return zp__fail (saved, -1);
        }
        s_ahead_end (self, false);
        //  A change the handle has not seen answers; else (seen already, or
        //  no change: EINTR at the end) we ask
        answered = (self->answer.status == ZP_STATUS_OK
                 || self->answer.status == ZP_STATUS_NOT_FOUND)
                && self->answer.seq > self->seq;
    }
    else
        s_ahead_end (self, true);
    int rc = answered? s_answered (self): -1;
    if (!answered) {
        uint32_t before = self->request_id;
        rc = s_wait (self, ZP_CMD_WAIT_CHANGE, key, NULL, deadline);
        //  The answer to this request, not one before it
        answered = self->request_id != before && self->answer.request_id == self->request_id;
    }
    if (self->lane && answered && (rc == 0 || self->answer.status == ZP_STATUS_NOT_FOUND)) {
        int saved = errno;
        s_ahead_start (self, key);
        errno = saved;
    }
    return rc;
}

char *
zp_state_get_when_change (zp_state_t *self, const char *key, int timeout_ms)
{
    if (s_wait_change (self, key, timeout_ms) < 0)
        return NULL;
    zframe_t *frame = s_reply_frame (self, 0);
    if (!frame)
        return zp__fail (EPROTO, NULL);
    char *value = zframe_strdup (frame);
    return value? value: zp__fail (ENOMEM, NULL);
}

int
zp_state_get_when_equal_str (zp_state_t *self, const char *key, const char *value,
                             int timeout_ms)
{
    if (!value)
        return zp__fail (EINVAL, -1);
    return s_wait (self, ZP_CMD_WAIT_EQUAL, key, value, zp__deadline (timeout_ms));
}

int
zp_state_get_when_available (zp_state_t *self, const char *key, int timeout_ms)
{
    return s_wait (self, ZP_CMD_WAIT_AVAILABLE, key, NULL, zp__deadline (timeout_ms));
}


//  --------------------------------------------------------------------------
//  Views: snapshots, predicates' views and replicas

//  Apply one change to a view; takes the value (NULL: the key is deleted)
static void
s_view_apply (zp_state_t *view, const char *key, zchunk_t **value_p)
{
    if (*value_p)
        zhashx_update (view->view, key, *value_p);
    else
        zhashx_delete (view->view, key);
    *value_p = NULL;
}

//  A view's seq when its copy is not to be trusted: the store, asked for
//  the changes since a seq it has not reached, answers with all of them
#define VIEW_INVALID        UINT64_MAX

//  Bring view up to date with the keys under prefix in one round trip
//  (SINCE): the changes since view->seq, or (reset, or the store's choice
//  after a gap) every key under prefix. 0, or -1 with errno; a view that
//  could not take the reply in full is marked invalid, to be filled again.
static int
s_view_load (zp_state_t *self, zp_state_t *view, const char *prefix, bool reset)
{
    zp_part_t part = { prefix, strlen (prefix) };
    if (s_call (self, ZP_CMD_SINCE, reset? ZP_FLAG_RESET: 0, view->seq, &part, 1,
                zp__deadline (self->timeout), ENOTCONN, -1) < 0)
        return -1;
    if (self->answer.flags & ZP_FLAG_RESET)
        zhashx_purge (view->view);
    //  One frame of SET and DELETE operations, as a TXN request's
    zframe_t *frame = s_reply_frame (self, 0);
    const byte *cursor = frame? zframe_data (frame): NULL;
    const byte *end = frame? cursor + zframe_size (frame): NULL;
    zp_txn_op_t op;
    int rc;
    while ((rc = zp__txn_next (&cursor, end, &op)) == 1) {
        char key [ZP_KEY_MAX + 1];
        memcpy (key, op.key, op.key_size);
        key [op.key_size] = 0;
        zchunk_t *value = op.op == ZP_TXN_SET? zchunk_new (op.value, op.size): NULL;
        if (op.op != ZP_TXN_SET && op.op != ZP_TXN_DELETE)
            rc = zp__fail (EPROTO, -1);
        else
        if (op.op == ZP_TXN_SET && !value)
            rc = zp__fail (ENOMEM, -1);
        if (rc < 0)
            break;
        s_view_apply (view, key, &value);
    }
    if (rc < 0 && errno != ENOMEM)
        errno = EPROTO;
    view->seq = rc == 0? self->answer.seq: VIEW_INVALID;
    return rc;
}

zp_state_t *
zp_state_snapshot (zp_state_t *self, const char *prefix)
{
    prefix = prefix? prefix: "";
    size_t prefix_size = strnlen (prefix, ZP_KEY_MAX + 1);
    if (s_check (self, NULL) < 0 || prefix_size > ZP_KEY_MAX)
        return zp__fail (EINVAL, NULL);
    zp_state_t *view = s_view_new ();
    if (!view)
        return zp__fail (ENOMEM, NULL);
    int rc = 0;
    if (self->view) {
        //  A view of a view: a local copy
        for (zchunk_t *chunk = (zchunk_t *) zhashx_first (self->view); chunk && rc == 0;
             chunk = (zchunk_t *) zhashx_next (self->view)) {
            const char *key = (const char *) zhashx_cursor (self->view);
            if (strncmp (key, prefix, prefix_size) != 0)
                continue;
            zchunk_t *copy = zchunk_dup (chunk);
            if (copy)
                s_view_apply (view, key, &copy);
            else
                rc = zp__fail (ENOMEM, -1);
        }
        view->seq = self->seq;
    }
    else
        //  One round trip: every key and value under prefix, at one seq
        rc = s_view_load (self, view, prefix, true);
    if (rc < 0) {
        int saved = errno;
        zp_state_destroy (&view);
        return zp__fail (saved, NULL);
    }
    return view;
}


//  --------------------------------------------------------------------------
//  Replicas

//  A read of key on self: 0 when the replica does not hold key's prefix;
//  1 when it does and is up to date (read from self->replica); -1 with
//  errno when it could not be brought up to date
static int
s_replica_read (zp_state_t *self, const char *key)
{
    if (!self->replica
    ||  strncmp (key, self->replica_prefix, strlen (self->replica_prefix)) != 0)
        return 0;
    //  The store publishes its seq before it answers a write: a write that
    //  returned anywhere before this read began shows here
    if (self->shared
    &&  __atomic_load_n (&self->shared->seq, __ATOMIC_ACQUIRE) == self->replica->seq)
        return 1;
    return s_view_load (self, self->replica, self->replica_prefix, false) < 0? -1: 1;
}

int
zp_state_replicate (zp_state_t *self, const char *prefix)
{
    prefix = prefix? prefix: "";
    if (s_check (self, NULL) < 0 || strnlen (prefix, ZP_KEY_MAX + 1) > ZP_KEY_MAX)
        return zp__fail (EINVAL, -1);
    if (self->view)
        return zp__fail (EACCES, -1);
    zp_state_t *replica = s_view_new ();
    char *copy = strdup (prefix);
    if (!replica || !copy) {
        zp_state_destroy (&replica);
        free (copy);
        return zp__fail (ENOMEM, -1);
    }
    zp_state_destroy (&self->replica);
    free (self->replica_prefix);
    self->replica = replica;
    self->replica_prefix = copy;
    if (s_view_load (self, self->replica, self->replica_prefix, true) < 0) {
        int saved = errno;
        zp_state_destroy (&self->replica);
        zstr_free (&self->replica_prefix);
        return zp__fail (saved, -1);
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  Internals for zp_ctx, zp_worker, zp_watch and zp_txn

void
zp__state_share (zp_state_t *self, zp_shared_t *shared)
{
    if (self)
        self->shared = shared;
}

zp_shared_t *
zp__state_shared (zp_state_t *self)
{
    return self? self->shared: NULL;
}

bool
zp__state_is_view (zp_state_t *self)
{
    return self && self->view;
}

int
zp__state_write (zp_state_t *self, int command, const zp_part_t *parts, size_t nparts,
                 zframe_t **frame_p)
{
    if (s_check (self, NULL) < 0)
        return -1;
    if (s_request (self, command, 0, parts, nparts) < 0)
        return -1;
    *frame_p = s_reply_frame (self, 0);
    return 0;
}


//  --------------------------------------------------------------------------
//  Predicates run on a view: a snapshot of the whole state at one sequence
//  number, then kept current by a watch that starts at that number; the
//  changes of a batch are applied together before the predicate runs again

int
zp_state_get_when (zp_state_t *self, zp_predicate_fn *predicate, void *arg, int timeout_ms)
{
    if (s_check (self, NULL) < 0 || !predicate)
        return zp__fail (EINVAL, -1);
    if (self->view)
        return zp__fail (EACCES, -1);
    int64_t deadline = zp__deadline (timeout_ms);
    int rc = -1;
    while (rc < 0) {
        zp_state_t *view = zp_state_snapshot (self, NULL);
        if (!view)
            return -1;
        zp_watch_t *watch = NULL;
        if (predicate (view, arg))
            rc = 0;
        else
            watch = zp__watch_new_from (self, "", view->seq);
        while (watch) {
            //  Take every change that is already here, and the rest of a
            //  batch begun (never half of one), then ask once
            size_t applied = 0;
            bool more = false;
            char *key;
            zchunk_t *value;
            while (zp__watch_next (watch, &key, &value, &more,
                                   applied == 0 || more? zp__remaining (deadline): 0) == 0) {
                s_view_apply (view, key, &value);
                zstr_free (&key);
                applied++;
            }
            if (errno != ETIMEDOUT || applied == 0 || more)
                break;
            if (predicate (view, arg)) {
                rc = 0;
                break;
            }
        }
        int saved = errno;
        zp_watch_destroy (&watch);
        zp_state_destroy (&view);
        //  A gap leaves the view behind the store: take a new snapshot
        if (rc < 0 && saved != EAGAIN)
            return zp__fail (saved, -1);
    }
    return 0;
}
