/*  =========================================================================
    zp_store - the store actor

    One thread owns the map, so every write and every atomic operation is
    applied in one place, in one order. Each change gets the next sequence
    number and becomes a zp_change_t shared (never copied) by the map, the
    bounded change log, the watch streams and the watcher registry.

    A watcher request is answered at once when the map or the log already
    satisfies it; otherwise it is parked with the registry, over the same
    feed (zp_feed.h) that carries every change, so the registry sees the
    request and the changes in store order and no change can slip between
    the check and the parking. The registry tells us how each parked request
    ended on a feed of its own (answers).

    How a request travels (the names others build on):
    - peer_t: one connection to the store, whatever its transport. A ROUTER
      peer is known by its routing id (fd -1); a lane (a stream socket) gets
      an identity of its own and its fd. Peers are found by identity in
      self->peers (s_peer_lookup, s_peer_require). A peer holds what it pins
      in the store (its streams, its parked requests), so forgetting a peer
      (s_peer_forget) frees everything it left.
    - The transport reads a message, strips the routing id (or the lane's
      framing) and hands the frames to zp__request_decode (zp_proto.c), a
      pure function: a validated zp_request_t, or a status to answer with.
    - s_dispatch (self, peer, request): the one dispatcher; every command of
      every transport is written once, below it.
    - s_peer_send (self, peer, header, parts, nparts): the one reply path.
      Every reply, stream event and reply of the registry (a parked request
      woken: the registry names its peer by identity) goes out through it;
      it sends on the ROUTER, or on the peer's lane.
    - The budget (ZP_PEER_BUDGET, see doc/RATIONALE.md): s_peer_pinned is
      what a peer pins: the bytes of its replies still queued (a ROUTER
      peer's account, given back by libzmq's I/O thread as each reply
      leaves; a lane's output buffer) plus what it holds (parked requests,
      streams). A request from a peer over budget is answered ENOBUFS;
      stream events wait in the log until the peer is under it again.
    - Dead peers: a lane's end of stream, or, for a ROUTER peer that holds
      something, a probe that libzmq refuses (ROUTER_MANDATORY: EHOSTUNREACH
      once the connection is gone). Every holding peer is probed PEER_SETTLE
      msecs after the ROUTER's monitor reports a connection closed (a process
      died, or heartbeats found its host gone), and each one silent for
      PEER_PROBE msecs is probed that often anyway. s_peer_forget then ends
      its streams and withdraws its parked requests.
    - Lanes (zp_lane.h): a worker forked by the context reaches the store on
      a socketpair made before the fork. The context hands the store its end
      as a descriptor number on the adoption socket (args->adopt); one epoll
      set holds every lane beside its zmq sockets' descriptors (a wake-up
      costs the same however many lanes there are), the store reads what is
      there, and hands each whole message to the same
      decoder and dispatcher. A lane never blocks the store: what the socket
      does not take waits in the lane's output buffer. End of stream is the
      worker's death: its peer is forgotten at once (s_lane_close). A
      process on a lane asks for more with LANE, passing a socketpair end
      (SCM_RIGHTS): a worker's own context, for its handles and for each
      worker it forks or restarts (s_lane).
    =========================================================================
*/

#include "zp_classes.h"
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/resource.h>

//  A message on an internal socket (or a request with its routing id) has at
//  most this many frames; one more, so a request with too many is seen
#define MAX_FRAMES      (1 + ZP_REQUEST_FRAMES_MAX + 1)
//  Messages drained from one socket before polling again, so no socket
//  starves the others
#define DRAIN_BATCH     256
//  A peer that holds nothing is forgotten after this many msecs of silence;
//  the peers are looked over this often
#define PEER_IDLE       10000
#define PEER_SWEEP      1000
//  A ROUTER peer that holds something and has been silent this long is
//  probed, to learn whether its connection is still there
#define PEER_PROBE      3000
//  After a connection closed, every holding peer is probed this many msecs
//  later: libzmq's I/O thread has ended the connection's pipe by then
#define PEER_SETTLE     100
//  What a reply, a parked request and a stream cost beyond their bytes
//  (libzmq's message and pipe entries, our bookkeeping)
#define REPLY_OVERHEAD  256
#define PARK_OVERHEAD   512
#define STREAM_OVERHEAD 256
//  Over budget, a peer gets this many bytes of ENOBUFS replies more; past
//  them its requests are dropped (it reads nothing anyway)
#define ERROR_SLACK     (1024 * 1024)
//  How often streams held back by their peer's budget are tried again
#define STREAM_RETRY    50

//  A change that may wake this many parked requests at most is served to
//  the registry in our thread (zp__watchers_serve); one that may wake more
//  is left to the registry's thread, so that the setter's reply does not
//  wait for a herd of wake-ups
#define SERVE_WAITERS   16

//  Bytes a ROUTER peer's replies pin in libzmq's queues: charged when a
//  reply is queued, given back by libzmq's I/O thread when the reply
//  leaves (written out, or dropped with its connection). The replies in
//  flight share it, so it can outlive its peer.
typedef struct {
    size_t queued;              //  Bytes queued, atomic
    int refs;                   //  The peer and each reply in flight, atomic
} account_t;

//  A reply's header frame, which carries the reply's charge back
typedef struct {
    account_t *account;         //  Whose bytes
    size_t charge;              //  How many
    byte header [ZP_HEADER_SIZE]; //  The frame's bytes
} charge_t;

//  The zmq sockets the loop polls, by their index in check and in their
//  events' data, in the order it serves them: zproc's own writes before any
//  client's request (s_handle_sys, s_take_own_writes)
#define SOCKET_PIPE     0
#define SOCKET_SYS      1
#define SOCKET_ROUTER   2
#define SOCKET_MONITOR  3
#define SOCKETS         4
//  Then the registry's answers and the adoption socket; a lane's event
//  carries its peer
#define FD_ANSWERS      SOCKETS
#define FD_ADOPT        (SOCKETS + 1)
#define FD_FIXED        (SOCKETS + 2)
//  Events taken by one epoll_wait (more wait for the next)
#define EVENTS_MAX      64

//  Largest request a lane takes: a value at its limit and the rest
#define LANE_MAX        (ZP_VALUE_MAX + 64 * 1024)
//  A request at least this large that came alone on a lane gives its buffer
//  to the change it makes: the value is not copied
#define LANE_TAKE_MIN   (64 * 1024)
//  A lane's identity: a zero byte (no ROUTER peer's routing id starts with
//  one and is this long), 'L', then a number of 8 bytes
#define LANE_IDENTITY   10

//  A peer: one connection to the store (see the top of this file)
typedef struct {
    byte identity [1 + 255];    //  Length, then the routing id (or a lane's identity)
    int fd;                     //  A lane's descriptor; -1 for a ROUTER peer
    zp_lane_t *lane;            //  Its lane, NULL for a ROUTER peer
    bool pollout;               //  Its lane is polled for room too (bytes queued)
    account_t *account;         //  A ROUTER peer's queued replies
    size_t held;                //  Bytes its parked requests and streams pin
    size_t streams;             //  Watch streams it has open
    zhashx_t *parked;           //  Request id + 1 -> charge, of its parked requests
    int64_t last_seen;          //  zclock_mono of its last request
    int64_t last_probe;         //  zclock_mono of its last probe
} peer_t;

//  A watch stream: every change under a prefix, paced by the client's credit
typedef struct {
    peer_t *peer;               //  The peer it streams to
    uint32_t request_id;        //  The WATCH request that opened it
    char *prefix;               //  Keys watched
    size_t prefix_size;         //  Length of prefix
    uint64_t cursor;            //  Last change considered for this stream
    uint32_t credit;            //  Events the client can still take
    size_t charge;              //  What it costs its peer's budget
} stream_t;

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    zsock_t *router;            //  Client requests
    zp_feed_t *feed;            //  To the watcher registry
    zp_feed_t *answers;         //  From the watcher registry
    zp_watchers_t *watchers;    //  The registry, which we serve changes to
    bool handed_over;           //  A change left to the registry's thread
                                //  waits in the feed: we serve none till it
                                //  is taken (a herd stays off our thread)
    zsock_t *sys;               //  zproc's own writes (reserved keys)
    uint64_t *sys_sent;         //  How many of them were sent
    uint64_t sys_taken;         //  How many we took
    zmq_msg_t sys_frames [3];   //  The one being taken (a third frame: too many)
    size_t sys_nframes;         //  Frames in it
    zsock_t *monitor;           //  The ROUTER's closed connections
    int adopt;                  //  Lane descriptors from the context (datagrams)
    peer_t **lanes;             //  Peers on a lane, polled with the sockets
    size_t nlanes;              //  How many
    size_t lanes_max;           //  Room in lanes
    uint64_t lanes_made;        //  Numbers lane identities
    size_t lanes_limit;         //  LANE requests are refused past this many lanes
    int poller;                 //  epoll: sockets, answers, adopt, lanes
    struct epoll_event events [EVENTS_MAX];  //  What the last wait found
    bool ready [FD_FIXED];      //  Which of the fixed descriptors it found ready
    void *block;                //  The buffer of the lane request being handled, or NULL
    size_t block_size;          //  Its size
    bool check [SOCKETS];       //  Look at this zmq socket's ZMQ_EVENTS before polling
    bool terminated;            //  Did our owner ask us to quit?
    zhashx_t *map;              //  key (the change's own) -> zp_change_t holding its value
    zp_change_t **log;          //  Ring of the latest changes, at seq & log_mask
    uint64_t log_mask;          //  Log capacity - 1
    uint64_t log_oldest;        //  Oldest seq in the log; 0 while empty
    size_t log_bytes;           //  Bytes of values the log holds
    uint64_t seq;               //  Sequence number of the last change
    zhashx_t *peers;            //  identity -> peer_t, owned
    int64_t next_sweep;         //  When to look over the peers next (zclock_mono)
    bool probe_all;             //  A connection closed: the next sweep probes every peer
    bool streams_held;          //  A stream is held back by its peer's budget
    int64_t next_resume;        //  When to try such streams again (zclock_mono)
    zlistx_t *streams;          //  stream_t, owned
    zhashx_t *watched;          //  key -> number of requests parked on it
    zmq_msg_t frames [MAX_FRAMES]; //  The message being handled
    size_t nframes;             //  Frames in it
    size_t malformed;           //  Malformed requests seen (logged sparsely)
    size_t over_budget;         //  Requests dropped over budget (logged sparsely)
    zp_shared_t *shared;        //  Where the last seq is published, or NULL
} self_t;

static void
    s_self_destroy (self_t **self_p);
static void
    s_stream_destroy (stream_t **self_p);
static void
    s_peer_destroy (peer_t **self_p);
static int
    s_lane_adopt (self_t *self, int fd);


//  --------------------------------------------------------------------------
//  Peers are keyed by their identity: a length byte, then the bytes

static size_t
s_identity_hash (const void *key)
{
    const byte *identity = (const byte *) key;
    size_t hash = 0;
    for (size_t index = 0; index <= identity [0]; index++)
        hash = hash * 33 + identity [index];
    return hash;
}

static int
s_identity_compare (const void *first, const void *second)
{
    const byte *one = (const byte *) first, *two = (const byte *) second;
    if (one [0] != two [0])
        return one [0] < two [0]? -1: 1;
    return memcmp (one + 1, two + 1, one [0]);
}


//  --------------------------------------------------------------------------
//  Constructor; NULL with errno when a socket cannot be bound

static self_t *
s_self_new (zsock_t *pipe, zp_store_args_t *args)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    if (!self) {
        if (args->adopt >= 0)
            close (args->adopt);
        return NULL;
    }
    self->pipe = pipe;
    self->shared = args->shared;
    self->adopt = args->adopt;
    self->poller = -1;
    self->sys_sent = args->sys_sent;
    struct rlimit limit;
    self->lanes_limit = getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                      ? (size_t) limit.rlim_cur / 2: 4096;
    uint64_t capacity = ZP_LOG_CHANGES;
    const char *wanted = getenv ("ZPROC_LOG_CHANGES");
    if (wanted && atol (wanted) > 0)
        for (capacity = 16; capacity < (uint64_t) atol (wanted); capacity *= 2)
            ;
    self->log_mask = capacity - 1;
    self->log = (zp_change_t **) calloc (capacity, sizeof (zp_change_t *));
    self->map = zhashx_new ();
    self->peers = zhashx_new ();
    self->streams = zlistx_new ();
    self->watched = zhashx_new ();
    self->router = zp__sock_new (ZMQ_ROUTER);
    self->feed = args->feed;
    self->watchers = args->watchers;
    self->answers = args->answers;
    self->sys = zp__sock_new (ZMQ_PULL);
    self->monitor = zp__sock_new (ZMQ_PAIR);
    if (!self->log || !self->map || !self->peers || !self->streams || !self->watched
    ||  !self->router || !self->sys || !self->monitor)
        goto failed;
    zhashx_set_destructor (self->map, zp__change_destructor);
    //  Keys are borrowed from the changes, not copied: a million keys cost a
    //  million allocations less
    zhashx_set_key_duplicator (self->map, NULL);
    zhashx_set_key_destructor (self->map, NULL);
    //  A peer's key is its own identity
    zhashx_set_destructor (self->peers, (czmq_destructor *) s_peer_destroy);
    zhashx_set_key_duplicator (self->peers, NULL);
    zhashx_set_key_destructor (self->peers, NULL);
    zhashx_set_key_hasher (self->peers, s_identity_hash);
    zhashx_set_key_comparator (self->peers, s_identity_compare);
    zlistx_set_destructor (self->streams, (czmq_destructor *) s_stream_destroy);
    self->next_sweep = zclock_mono () + PEER_SWEEP;

    //  Oversize values get an EMSGSIZE reply; far larger garbage is cut off
    //  by libzmq before it costs memory
    zsock_set_maxmsgsize (self->router, ZP_VALUE_MAX + 4096);
    //  Replies never wait for a slow client: the budget bounds what it pins
    //  (ZP_PEER_BUDGET); a send to a connection that is gone fails, which
    //  is how the sweep learns a peer is dead
    zsock_set_sndhwm (self->router, 100000);
    zsock_set_router_mandatory (self->router, 1);
    //  A tcp peer must finish its handshake within 5 s, and a connection
    //  whose other end went silent (a host gone) is closed within 8 s
    zsock_set_handshake_ivl (self->router, 5000);
    zsock_set_heartbeat_ivl (self->router, 2000);
    zsock_set_heartbeat_timeout (self->router, 6000);
    zsock_set_rcvhwm (self->router, 100000);
    if (args->cert) {
        zcert_apply (args->cert, self->router);
        zsock_set_curve_server (self->router, 1);
        zsock_set_zap_domain (self->router, "zproc");
    }
    zsock_set_rcvhwm (self->sys, 0);
    char *monitor = zp__inproc_endpoint ("store-monitor");
    if (!monitor
    ||  zmq_socket_monitor (zsock_resolve (self->router), monitor, ZMQ_EVENT_DISCONNECTED) < 0
    ||  zsock_connect (self->monitor, "%s", monitor) < 0) {
        zstr_free (&monitor);
        goto failed;
    }
    zstr_free (&monitor);
    if (zsock_bind (self->router, "%s", args->endpoint) < 0
    ||  zsock_bind (self->sys, "%s", args->sys) < 0)
        goto failed;
    //  What the loop polls: an epoll set, so that a wake-up costs the same
    //  whatever the number of lanes; our children close it
    self->poller = epoll_create1 (EPOLL_CLOEXEC);
    if (self->poller < 0)
        goto failed;
    zp__lane_fd_mark (self->poller, true);
    int fixed [FD_FIXED] = {
        zsock_fd (self->pipe), zsock_fd (self->sys), zsock_fd (self->router),
        zsock_fd (self->monitor), zp__feed_fd (self->answers), self->adopt
    };
    for (int index = 0; index < FD_FIXED; index++) {
        struct epoll_event event = { .events = EPOLLIN, .data.u64 = (uint64_t) index };
        if (epoll_ctl (self->poller, EPOLL_CTL_ADD, fixed [index], &event) < 0)
            goto failed;
    }
    return self;

failed:;
    int saved = errno? errno: ENOMEM;
    s_self_destroy (&self);
    return zp__fail (saved, NULL);
}


//  --------------------------------------------------------------------------
//  Destructor

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    if (self->poller >= 0) {
        zp__lane_fd_mark (self->poller, false);
        close (self->poller);
    }
    free (self->lanes);
    if (self->adopt >= 0) {
        zp__lane_fd_mark (self->adopt, false);
        close (self->adopt);
    }
    zsock_destroy (&self->sys);
    //  The monitor ends before the socket it watches
    if (self->router)
        zmq_socket_monitor (zsock_resolve (self->router), NULL, 0);
    zsock_destroy (&self->monitor);
    zsock_destroy (&self->router);
    //  Streams point to their peers: they go first
    zlistx_destroy (&self->streams);
    zhashx_destroy (&self->peers);
    zhashx_destroy (&self->watched);
    zhashx_destroy (&self->map);
    if (self->log) {
        for (uint64_t index = 0; index <= self->log_mask; index++)
            zp__change_unref (&self->log [index]);
        free (self->log);
    }
    zp__frames_close (self->frames, &self->nframes);
    zp__frames_close (self->sys_frames, &self->sys_nframes);
    free (self);
    *self_p = NULL;
}


//  --------------------------------------------------------------------------
//  Stream destructor

static void
s_stream_destroy (stream_t **self_p)
{
    stream_t *self = *self_p;
    if (self) {
        if (self->peer) {
            self->peer->streams--;
            self->peer->held -= self->charge;
        }
        free (self->prefix);
        free (self);
        *self_p = NULL;
    }
}


//  --------------------------------------------------------------------------
//  Peers

static void
s_account_unref (account_t **account_p)
{
    if (*account_p && __atomic_sub_fetch (&(*account_p)->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free (*account_p);
    *account_p = NULL;
}

//  libzmq lets a reply's header frame go: its charge comes back
static void
s_charge_free (void *data, void *hint)
{
    charge_t *charge = (charge_t *) hint;
    __atomic_sub_fetch (&charge->account->queued, charge->charge, __ATOMIC_RELEASE);
    s_account_unref (&charge->account);
    free (charge);
}

static void
s_peer_destroy (peer_t **self_p)
{
    peer_t *self = *self_p;
    if (self) {
        zp__lane_destroy (&self->lane);
        s_account_unref (&self->account);
        zhashx_destroy (&self->parked);
        free (self);
        *self_p = NULL;
    }
}

//  Parked requests are keyed by request id + 1 (never NULL)
static size_t
s_id_hash (const void *key)
{
    return (size_t) (uintptr_t) key;
}

static int
s_id_compare (const void *first, const void *second)
{
    return first == second? 0: (uintptr_t) first < (uintptr_t) second? -1: 1;
}

static void *
s_id_key (uint32_t request_id)
{
    return (void *) ((uintptr_t) request_id + 1);
}

//  The peer of an identity, or NULL
static peer_t *
s_peer_lookup (self_t *self, const void *identity, size_t size)
{
    if (size == 0 || size > 255)
        return NULL;
    byte key [1 + 255];
    key [0] = (byte) size;
    memcpy (key + 1, identity, size);
    return (peer_t *) zhashx_lookup (self->peers, key);
}

//  The peer of an identity, made when it is new; NULL when the identity is
//  not valid (1 to 255 bytes) or memory ran out
static peer_t *
s_peer_require (self_t *self, const void *identity, size_t size, int fd)
{
    peer_t *peer = s_peer_lookup (self, identity, size);
    if (peer || size == 0 || size > 255)
        return peer;
    peer = (peer_t *) zmalloc (sizeof (peer_t));
    if (!peer)
        return NULL;
    peer->identity [0] = (byte) size;
    memcpy (peer->identity + 1, identity, size);
    peer->fd = fd;
    peer->account = (account_t *) zmalloc (sizeof (account_t));
    peer->parked = zhashx_new ();
    if (!peer->account || !peer->parked || zhashx_insert (self->peers, peer->identity, peer) < 0) {
        s_peer_destroy (&peer);
        return NULL;
    }
    peer->account->refs = 1;
    zhashx_set_key_hasher (peer->parked, s_id_hash);
    zhashx_set_key_comparator (peer->parked, s_id_compare);
    zhashx_set_key_duplicator (peer->parked, NULL);
    zhashx_set_key_destructor (peer->parked, NULL);
    peer->last_seen = peer->last_probe = zclock_mono ();
    return peer;
}

//  True when a peer holds nothing in the store
static bool
s_peer_idle (peer_t *peer)
{
    return peer->streams == 0 && zhashx_size (peer->parked) == 0;
}

//  The bytes a peer pins in the store's process
static size_t
s_peer_pinned (peer_t *peer)
{
    size_t queued = peer->lane? zp__lane_queued (peer->lane)
                              : __atomic_load_n (&peer->account->queued, __ATOMIC_ACQUIRE);
    return queued + peer->held;
}

static bool
s_peer_over_budget (peer_t *peer)
{
    return s_peer_pinned (peer) > ZP_PEER_BUDGET;
}



//  --------------------------------------------------------------------------
//  --------------------------------------------------------------------------
//  The one reply path: a header, then nparts frames, to a peer. Never
//  blocks: a peer that does not read loses its replies, not the store's
//  time. Returns 0, or -1 when the message could not be queued.

static int
s_peer_send (self_t *self, peer_t *peer, const zp_header_t *header,
             const zp_part_t *parts, size_t nparts)
{
    byte buffer [ZP_HEADER_SIZE];
    zp__header_encode (header, buffer);
    if (peer->lane) {
        //  The header, then the frames; a lane whose peer died is closed
        //  by the loop when it sees end of stream
        zp_part_t stack [8];
        zp_part_t *frames = nparts < 8? stack
                          : (zp_part_t *) malloc ((nparts + 1) * sizeof (zp_part_t));
        if (!frames)
            return -1;
        frames [0] = (zp_part_t) { buffer, sizeof buffer };
        if (nparts)
            memcpy (frames + 1, parts, nparts * sizeof (zp_part_t));
        int rc = zp__lane_send (peer->lane, frames, nparts + 1);
        if (frames != stack)
            free (frames);
        return rc;
    }
    //  Sending may take the signal of a request waiting: look at it again
    self->check [SOCKET_ROUTER] = true;
    //  The header frame carries the whole reply's charge to the peer's
    //  account, and brings it back when libzmq lets the frame go
    charge_t *charge = (charge_t *) malloc (sizeof (charge_t));
    if (!charge)
        return -1;
    memcpy (charge->header, buffer, sizeof buffer);
    charge->account = peer->account;
    charge->charge = REPLY_OVERHEAD + peer->identity [0] + sizeof buffer;
    for (size_t index = 0; index < nparts; index++)
        charge->charge += parts [index].size;
    __atomic_add_fetch (&peer->account->refs, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch (&peer->account->queued, charge->charge, __ATOMIC_RELAXED);
    zmq_msg_t frame;
    zmq_msg_init_data (&frame, charge->header, sizeof charge->header, s_charge_free, charge);
    //  A peer whose connection is gone fails here (ROUTER_MANDATORY:
    //  EHOSTUNREACH), as does one whose queue is full (EAGAIN)
    void *router = zsock_resolve (self->router);
    if (zmq_send (router, peer->identity + 1, peer->identity [0],
                  ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0
    ||  zmq_msg_send (&frame, router, ZMQ_DONTWAIT | (nparts? ZMQ_SNDMORE: 0)) < 0) {
        int saved = errno;
        zmq_msg_close (&frame);
        return zp__fail (saved, -1);
    }
    for (size_t index = 0; index < nparts; index++)
        zmq_send (router, parts [index].data, parts [index].size,
                  ZMQ_DONTWAIT | (index + 1 < nparts? ZMQ_SNDMORE: 0));
    return 0;
}

//  Reply to a request, with status, seq and nparts frames
static void
s_reply (self_t *self, peer_t *peer, const zp_request_t *request, int status, uint64_t seq,
         const zp_part_t *parts, size_t nparts)
{
    zp_header_t header = request->header;
    header.status = (uint8_t) status;
    header.flags = 0;
    header.seq = seq;
    s_peer_send (self, peer, &header, parts, nparts);
}

static void
s_reply_status (self_t *self, peer_t *peer, const zp_request_t *request, int status)
{
    s_reply (self, peer, request, status, self->seq, NULL, 0);
}


//  --------------------------------------------------------------------------
//  The change log: a ring indexed by sequence number

static void
s_log_drop_oldest (self_t *self)
{
    zp_change_t **slot = &self->log [self->log_oldest & self->log_mask];
    self->log_bytes -= (*slot)->size;
    zp__change_unref (slot);
    self->log_oldest++;
}

static void
s_log_append (self_t *self, zp_change_t *change)
{
    if (self->log_oldest == 0)
        self->log_oldest = change->seq;
    else
    if (change->seq - self->log_oldest > self->log_mask)
        s_log_drop_oldest (self);
    self->log [change->seq & self->log_mask] = zp__change_ref (change);
    self->log_bytes += change->size;
    while (self->log_bytes > ZP_LOG_BYTES_MAX && self->log_oldest < change->seq)
        s_log_drop_oldest (self);
}

//  The first change in the log after seq `after`, up to seq `last`, whose
//  key equals (or, with prefix, starts with) key; NULL when the log holds none
static zp_change_t *
s_log_find (self_t *self, uint64_t after, uint64_t last, const char *key, size_t key_size,
            bool prefix)
{
    if (self->log_oldest == 0)
        return NULL;
    uint64_t seq = after + 1 > self->log_oldest? after + 1: self->log_oldest;
    for (; seq <= last && seq <= self->seq; seq++) {
        zp_change_t *change = self->log [seq & self->log_mask];
        if (prefix? change->key_size >= key_size && memcmp (change->key, key, key_size) == 0
                  : change->key_size == key_size && memcmp (change->key, key, key_size) == 0)
            return change;
    }
    return NULL;
}


//  The last change of key in the log (the log holds one)
static zp_change_t *
s_log_last (self_t *self, const char *key)
{
    size_t key_size = strlen (key);
    for (uint64_t seq = self->seq; seq >= self->log_oldest && seq > 0; seq--) {
        zp_change_t *change = self->log [seq & self->log_mask];
        if (change->key_size == key_size && memcmp (change->key, key, key_size) == 0)
            return change;
    }
    return NULL;
}


//  --------------------------------------------------------------------------
//  Watch streams

static bool
s_stream_matches (stream_t *stream, zp_change_t *change)
{
    return change->key_size >= stream->prefix_size
        && memcmp (change->key, stream->prefix, stream->prefix_size) == 0;
}

//  Send one change (or, with change NULL, a gap before seq) to a stream
static void
s_stream_send (self_t *self, stream_t *stream, zp_change_t *change, uint64_t gap_seq)
{
    zp_header_t header = { .command = change? ZP_CMD_EVENT: ZP_CMD_GAP };
    header.seq = change? change->seq: gap_seq;
    header.flags = change && change->deleted? ZP_FLAG_ABSENT: 0;
    //  More of its batch for this stream: the reader waits for them before
    //  it acts, so it never acts on half a batch
    if (change && change->batch_end > change->seq
    &&  s_log_find (self, change->seq, change->batch_end, stream->prefix,
                    stream->prefix_size, true))
        header.flags |= ZP_FLAG_MORE;
    zp_part_t parts [2] = { { NULL, 0 }, { NULL, 0 } };
    size_t nparts = 0;
    if (change) {
        parts [nparts++] = (zp_part_t) { change->key, change->key_size };
        if (!change->deleted)
            parts [nparts++] = (zp_part_t) { change->value, change->size };
    }
    s_peer_send (self, stream->peer, &header, parts, nparts);
    stream->credit--;
}

//  Send what the stream has missed, from the log, as far as its credit goes
static void
s_stream_catch_up (self_t *self, stream_t *stream)
{
    while (stream->credit > 0 && stream->cursor < self->seq) {
        //  A peer over budget takes the rest from the log later
        if (s_peer_over_budget (stream->peer)) {
            self->streams_held = true;
            break;
        }
        if (stream->cursor + 1 < self->log_oldest) {
            s_stream_send (self, stream, NULL, self->log_oldest);
            stream->cursor = self->log_oldest - 1;
            continue;
        }
        zp_change_t *change = s_log_find (self, stream->cursor, self->seq, stream->prefix,
                                          stream->prefix_size, true);
        if (!change) {
            stream->cursor = self->seq;
            break;
        }
        s_stream_send (self, stream, change, 0);
        stream->cursor = change->seq;
    }
}

//  The stream a peer's CREDIT or CANCEL is about: a ROUTER peer (a watch
//  socket) has at most one
static stream_t *
s_stream_lookup (self_t *self, peer_t *peer)
{
    if (peer->streams == 0)
        return NULL;
    for (stream_t *stream = (stream_t *) zlistx_first (self->streams); stream;
         stream = (stream_t *) zlistx_next (self->streams))
        if (stream->peer == peer)
            return stream;
    return NULL;
}


//  --------------------------------------------------------------------------
//  Changes: each is numbered, put in the map and the log, published, and
//  handed to the streams and the registry

//  Commit a change numbered self->seq + 1 (takes it); in a batch, the
//  streams catch up once the whole batch is in (s_txn), and the registry
//  hears only of each key's last change in the batch (watchers)
static void
s_commit (self_t *self, zp_change_t *change, bool batch, bool watched)
{
    self->seq = change->seq;
    //  The map's key is the change's own copy: a new value comes with a new
    //  key, so the old entry goes and the new one comes in
    zhashx_delete (self->map, change->key);
    if (!change->deleted)
        zhashx_insert (self->map, change->key, zp__change_ref (change));
    s_log_append (self, change);
    //  Published before any reply to the request that made the change, so a
    //  write that returned is seen by every reader of the shared page
    if (self->shared)
        __atomic_store_n (&self->shared->seq, self->seq, __ATOMIC_RELEASE);

    stream_t *stream = batch? NULL: (stream_t *) zlistx_first (self->streams);
    while (stream) {
        //  A stream that is behind catches up from the log when credit comes
        if (stream->cursor + 1 == change->seq) {
            if (!s_stream_matches (stream, change))
                stream->cursor = change->seq;
            else
            if (stream->credit > 0 && !s_peer_over_budget (stream->peer)) {
                s_stream_send (self, stream, change, 0);
                stream->cursor = change->seq;
            }
            else
            if (stream->credit > 0)
                self->streams_held = true;
        }
        stream = (stream_t *) zlistx_next (self->streams);
    }
    //  Only a key with requests parked on it is news to the registry; it
    //  takes over our reference
    uintptr_t parked = watched? (uintptr_t) zhashx_lookup (self->watched, change->key): 0;
    zp_feed_item_t *item = parked? zp__feed_item_new (ZP_FEED_CHANGE, NULL, NULL): NULL;
    if (item) {
        item->change = change;
        //  At once: the waiter's wake-up starts before the setter's reply
        //  goes out. In our thread when the registry's is not at work: the
        //  wake-up then crosses no thread between us and the waiter; else
        //  signalled to it (once until it takes what came, so a batch
        //  seldom wakes it more than once)
        if (self->handed_over && !zp__feed_waiting (self->feed))
            self->handed_over = false;
        zp__feed_push (self->feed, &item);
        if (parked > SERVE_WAITERS || self->handed_over
        ||  !zp__watchers_serve (self->watchers)) {
            self->handed_over = true;
            zp__feed_flush (self->feed);
        }
    }
    else
        zp__change_unref (&change);
}

//  Apply one change: number it, put it in the map and the log, hand it to
//  the streams and the registry. Returns the status for the client.
static int
s_apply (self_t *self, const char *key, const void *value, size_t size, bool deleted)
{
    //  A value inside the buffer of a large lane request keeps that buffer
    const byte *start = (const byte *) self->block;
    zp_change_t *change = NULL;
    if (start && value && (const byte *) value >= start
    &&  (const byte *) value + size <= start + self->block_size) {
        change = zp__change_new_in (self->seq + 1, key, strlen (key), value, size, self->block);
        if (change)
            self->block = NULL;
    }
    else
        change = zp__change_new (self->seq + 1, key, strlen (key), value, size, deleted);
    if (!change)
        return ZP_STATUS_TOO_LARGE;
    s_commit (self, change, false, true);
    return ZP_STATUS_OK;
}


//  --------------------------------------------------------------------------
//  Value helpers

static bool
s_value_equals (zp_change_t *change, const void *data, size_t size)
{
    return change && change->size == size && memcmp (change->value, data, size) == 0;
}


//  --------------------------------------------------------------------------
//  Commands; each answers its request. The decoder has checked the frames,
//  the key, reserved keys and value sizes.

static void
s_get (self_t *self, peer_t *peer, const zp_request_t *request)
{
    zp_change_t *change = (zp_change_t *) zhashx_lookup (self->map, request->key);
    zp_part_t value = { change? change->value: NULL, change? change->size: 0 };
    if (change)
        s_reply (self, peer, request, ZP_STATUS_OK, self->seq, &value, 1);
    else
        s_reply_status (self, peer, request, ZP_STATUS_NOT_FOUND);
}

static void
s_set (self_t *self, peer_t *peer, const zp_request_t *request)
{
    s_reply_status (self, peer, request,
                    s_apply (self, request->key, request->value.data, request->value.size,
                             false));
}

static void
s_delete (self_t *self, peer_t *peer, const zp_request_t *request)
{
    if (!zhashx_lookup (self->map, request->key))
        s_reply_status (self, peer, request, ZP_STATUS_NOT_FOUND);
    else
        s_reply_status (self, peer, request, s_apply (self, request->key, NULL, 0, true));
}

static void
s_exists (self_t *self, peer_t *peer, const zp_request_t *request)
{
    s_reply_status (self, peer, request, zhashx_lookup (self->map, request->key)
                                         ? ZP_STATUS_OK: ZP_STATUS_NOT_FOUND);
}

static void
s_incr (self_t *self, peer_t *peer, const zp_request_t *request)
{
    int64_t value = 0;
    zp_change_t *change = (zp_change_t *) zhashx_lookup (self->map, request->key);
    if ((change && !zp__parse_int (change->value, change->size, &value))
    ||  __builtin_add_overflow (value, request->delta, &value)) {
        s_reply_status (self, peer, request, ZP_STATUS_INVALID);
        return;
    }
    char text [24];
    int size = snprintf (text, sizeof text, "%" PRId64, value);
    int status = s_apply (self, request->key, text, (size_t) size, false);
    byte result [8];
    zp__put_uint64 (result, (uint64_t) value);
    zp_part_t part = { result, sizeof result };
    if (status == ZP_STATUS_OK)
        s_reply (self, peer, request, status, self->seq, &part, 1);
    else
        s_reply_status (self, peer, request, status);
}

static void
s_cas (self_t *self, peer_t *peer, const zp_request_t *request)
{
    bool expect_absent = (request->header.flags & ZP_FLAG_ABSENT) != 0;
    zp_change_t *change = (zp_change_t *) zhashx_lookup (self->map, request->key);
    bool matches = expect_absent? change == NULL
                 : s_value_equals (change, request->expected.data, request->expected.size);
    if (!matches)
        s_reply_status (self, peer, request, ZP_STATUS_CONFLICT);
    else
        s_reply_status (self, peer, request,
                        s_apply (self, request->key, request->value.data,
                                 request->value.size, false));
}

//  A batch's changes are prepared in full before the first is committed:
//  a failure leaves the store as it was
typedef struct {
    zp_change_t **changes;      //  Changes to commit, in order
    size_t count;               //  How many
    byte *results;              //  New value of each incr, 8 bytes each
    size_t incrs;               //  How many
    bool *superseded;           //  Changes of a key changed again later in the batch
    zhashx_t *pending;          //  key -> 1 + index of its last change in the batch
} batch_t;

static void
s_batch_free (batch_t *batch)
{
    for (size_t index = 0; index < batch->count; index++)
        zp__change_unref (&batch->changes [index]);
    free (batch->changes);
    free (batch->superseded);
    free (batch->results);
    zhashx_destroy (&batch->pending);
}

//  The current value of key, as the batch leaves it so far: a change (NULL
//  or deleted: absent)
static zp_change_t *
s_batch_lookup (self_t *self, batch_t *batch, const char *key)
{
    uintptr_t index = (uintptr_t) zhashx_lookup (batch->pending, key);
    return index? batch->changes [index - 1]: (zp_change_t *) zhashx_lookup (self->map, key);
}

//  Prepare one operation of a batch; returns a status
static int
s_batch_add (self_t *self, batch_t *batch, const zp_txn_op_t *op)
{
    char key [ZP_KEY_MAX + 1];
    memcpy (key, op->key, op->key_size);
    key [op->key_size] = 0;
    zp_change_t *current = s_batch_lookup (self, batch, key);
    if (current && current->deleted)
        current = NULL;
    if (op->op == ZP_TXN_REQUIRE)
        return s_value_equals (current, op->value, op->size)? ZP_STATUS_OK: ZP_STATUS_CONFLICT;
    if (op->op == ZP_TXN_REQUIRE_ABSENT)
        return current? ZP_STATUS_CONFLICT: ZP_STATUS_OK;
    if (zp__key_reserved (key))
        return ZP_STATUS_DENIED;
    if (op->op == ZP_TXN_DELETE && !current)
        return ZP_STATUS_OK;            //  Nothing to delete: no change
    char text [24];
    const void *value = op->value;
    size_t size = op->size;
    if (op->op == ZP_TXN_INCR) {
        int64_t number = 0;
        if ((current && !zp__parse_int (current->value, current->size, &number))
        ||  __builtin_add_overflow (number, op->delta, &number))
            return ZP_STATUS_INVALID;
        size = (size_t) snprintf (text, sizeof text, "%" PRId64, number);
        value = text;
        zp__put_uint64 (batch->results + 8 * batch->incrs++, (uint64_t) number);
    }
    zp_change_t *change = zp__change_new (0, key, op->key_size, value, size,
                                          op->op == ZP_TXN_DELETE);
    if (!change)
        return ZP_STATUS_TOO_LARGE;
    uintptr_t previous = (uintptr_t) zhashx_lookup (batch->pending, key);
    if (previous)
        batch->superseded [previous - 1] = true;
    batch->superseded [batch->count] = false;
    batch->changes [batch->count++] = change;
    zhashx_update (batch->pending, change->key, (void *) (uintptr_t) batch->count);
    return ZP_STATUS_OK;
}

//  TXN: every operation or none; the changes take consecutive seqs
static void
s_txn (self_t *self, peer_t *peer, const zp_request_t *request)
{
    size_t count = request->operation_count;
    batch_t batch = { 0 };
    batch.changes = (zp_change_t **) malloc (count * sizeof (zp_change_t *) + 1);
    batch.superseded = (bool *) malloc (count * sizeof (bool) + 1);
    batch.results = (byte *) malloc (count * 8 + 1);
    batch.pending = zhashx_new ();
    int status = batch.changes && batch.superseded && batch.results && batch.pending
               ? ZP_STATUS_OK: ZP_STATUS_TOO_LARGE;
    if (batch.pending) {
        zhashx_set_key_duplicator (batch.pending, NULL);
        zhashx_set_key_destructor (batch.pending, NULL);
    }
    const byte *cursor = (const byte *) request->operations.data;
    const byte *end = cursor + request->operations.size;
    zp_txn_op_t op;
    while (status == ZP_STATUS_OK && zp__txn_next (&cursor, end, &op) == 1)
        status = s_batch_add (self, &batch, &op);
    zhashx_destroy (&batch.pending);
    if (status == ZP_STATUS_OK) {
        uint64_t batch_end = self->seq + batch.count;
        for (size_t index = 0; index < batch.count; index++) {
            zp_change_t *change = batch.changes [index];
            batch.changes [index] = NULL;
            change->seq = self->seq + 1;
            change->batch_end = batch_end;
            s_commit (self, change, true, !batch.superseded [index]);
        }
        //  The whole batch is in: now the streams take it
        for (stream_t *stream = (stream_t *) zlistx_first (self->streams); stream;
             stream = (stream_t *) zlistx_next (self->streams))
            s_stream_catch_up (self, stream);
        zp_part_t results = { batch.results, batch.incrs * 8 };
        s_reply (self, peer, request, ZP_STATUS_OK, self->seq, &results, batch.incrs? 1: 0);
    }
    else
        s_reply_status (self, peer, request, status);
    s_batch_free (&batch);
}

//  Walk the entries of a SINCE reply: from the map on a reset, else from
//  the log, where only a key's last change counts. Encodes them at buffer
//  as SET and DELETE operations; with buffer NULL, only adds up their size.
static size_t
s_since_walk (self_t *self, const zp_part_t *prefix, uint64_t since, bool reset, byte *buffer)
{
    size_t size = 0;
    uint64_t seq = since;
    while (true) {
        zp_change_t *change;
        if (reset)
            change = (zp_change_t *) (seq++ == since? zhashx_first (self->map)
                                                    : zhashx_next (self->map));
        else
            change = ++seq <= self->seq? self->log [seq & self->log_mask]: NULL;
        if (!change)
            break;
        if (change->key_size < prefix->size
        ||  memcmp (change->key, prefix->data, prefix->size) != 0)
            continue;
        zp_change_t *now = reset? change: (zp_change_t *) zhashx_lookup (self->map, change->key);
        if (change->deleted? now != NULL: now != change)
            continue;
        int op = change->deleted? ZP_TXN_DELETE: ZP_TXN_SET;
        if (buffer)
            zp__txn_put (buffer + size, op, change->key, change->key_size, change->value,
                         change->size);
        size += zp__txn_op_size (op, change->key_size, change->size);
    }
    return size;
}

//  SINCE: bring a replica up to date. The keys under the prefix that
//  changed since the request's seq, each with its value now (or deleted);
//  or, when asked (FLAG_RESET) or when the log no longer reaches back that
//  far, every key under the prefix, flagged RESET. Either way the reply is
//  the state under the prefix at the store's seq, whole.
static void
s_since (self_t *self, peer_t *peer, const zp_request_t *request)
{
    uint64_t since = request->header.seq;
    bool reset = (request->header.flags & ZP_FLAG_RESET) || since > self->seq
              || (since < self->seq && since + 1 < self->log_oldest);
    //  One frame: on the stack while small (the common case)
    byte stack [4096];
    size_t size = s_since_walk (self, &request->prefix, since, reset, NULL);
    byte *buffer = size <= sizeof stack? stack: (byte *) malloc (size);
    if (!buffer) {
        s_reply_status (self, peer, request, ZP_STATUS_TOO_LARGE);
        return;
    }
    s_since_walk (self, &request->prefix, since, reset, buffer);
    zp_header_t header = request->header;
    header.status = ZP_STATUS_OK;
    header.flags = reset? ZP_FLAG_RESET: 0;
    header.seq = self->seq;
    zp_part_t part = { buffer, size };
    s_peer_send (self, peer, &header, &part, size? 1: 0);
    if (buffer != stack)
        free (buffer);
}

//  The keys under a prefix, sorted
static zlistx_t *
s_keys_under (self_t *self, const zp_part_t *prefix)
{
    zlistx_t *keys = zlistx_new ();
    if (!keys)
        return NULL;
    for (zp_change_t *change = (zp_change_t *) zhashx_first (self->map); change;
         change = (zp_change_t *) zhashx_next (self->map))
        if (change->key_size >= prefix->size
        &&  memcmp (change->key, prefix->data, prefix->size) == 0)
            zlistx_add_end (keys, change->key);
    if (zp__sort_strings (keys) < 0)
        zlistx_destroy (&keys);
    return keys;
}

//  KEYS replies with the keys; DUMP with key, value pairs
static void
s_keys (self_t *self, peer_t *peer, const zp_request_t *request, bool with_values)
{
    zlistx_t *keys = s_keys_under (self, &request->prefix);
    size_t nparts = keys? zlistx_size (keys) * (with_values? 2: 1): 0;
    zp_part_t *parts = keys? (zp_part_t *) malloc ((nparts + 1) * sizeof (zp_part_t)): NULL;
    if (!parts) {
        zlistx_destroy (&keys);
        s_reply_status (self, peer, request, ZP_STATUS_TOO_LARGE);
        return;
    }
    size_t index = 0;
    for (const char *key = (const char *) zlistx_first (keys); key;
         key = (const char *) zlistx_next (keys)) {
        zp_change_t *change = (zp_change_t *) zhashx_lookup (self->map, key);
        parts [index++] = (zp_part_t) { change->key, change->key_size };
        if (with_values)
            parts [index++] = (zp_part_t) { change->value, change->size };
    }
    s_reply (self, peer, request, ZP_STATUS_OK, self->seq, parts, nparts);
    free (parts);
    zlistx_destroy (&keys);
}

static void
s_size (self_t *self, peer_t *peer, const zp_request_t *request)
{
    byte count [8];
    zp__put_uint64 (count, zhashx_size (self->map));
    zp_part_t part = { count, sizeof count };
    s_reply (self, peer, request, ZP_STATUS_OK, self->seq, &part, 1);
}

//  Count the requests parked on a key, so changes of other keys need not
//  go to the registry
static void
s_watched_add (self_t *self, const char *key, int delta)
{
    uintptr_t count = (uintptr_t) zhashx_lookup (self->watched, key) + delta;
    if (count)
        zhashx_update (self->watched, key, (void *) count);
    else
        zhashx_delete (self->watched, key);
}

//  Hand a request to the registry, to wait for a change. A lane peer's
//  lane goes with it (a reference: zp__lane_share), so the registry writes
//  the answer on it itself, one thread hop less on a wake-up; a ROUTER
//  peer is answered through us.
static void
s_park (self_t *self, peer_t *peer, const zp_request_t *request)
{
    //  One request id is parked once per peer: the id names it for CANCEL
    void *id = s_id_key (request->header.request_id);
    if (zhashx_lookup (peer->parked, id)) {
        s_reply_status (self, peer, request, ZP_STATUS_PROTOCOL);
        return;
    }
    bool with_value = request->header.command == ZP_CMD_WAIT_EQUAL;
    zp_feed_item_t *item = zp__feed_item_new (ZP_FEED_PARK, peer->identity, request->key);
    if (item) {
        item->header = request->header;
        item->value = with_value? zchunk_new (request->value.data, request->value.size): NULL;
    }
    size_t charge = PARK_OVERHEAD + request->key_size + (with_value? request->value.size: 0);
    if (!item || (with_value && !item->value)
    ||  zhashx_insert (peer->parked, id, (void *) (uintptr_t) charge) < 0) {
        zp__feed_item_destroy (&item);
        s_reply_status (self, peer, request, ZP_STATUS_TOO_LARGE);
        return;
    }
    item->lane = peer->lane? zp__lane_share (peer->lane): NULL;
    peer->held += charge;
    s_watched_add (self, request->key, 1);
    zp__feed_push (self->feed, &item);
}

//  A parked request ended (answered or withdrawn): the peer holds it no
//  more. False when it was not parked.
static bool
s_unpark (peer_t *peer, uint32_t request_id)
{
    void *id = s_id_key (request_id);
    size_t charge = (size_t) (uintptr_t) zhashx_lookup (peer->parked, id);
    if (!charge)
        return false;
    zhashx_delete (peer->parked, id);
    peer->held -= charge;
    return true;
}

//  Withdraw a parked request from the registry
static void
s_withdraw (self_t *self, peer_t *peer, uint32_t request_id)
{
    zp_feed_item_t *item = zp__feed_item_new (ZP_FEED_WITHDRAW, peer->identity, NULL);
    if (!item) {
        zsys_error ("zproc store: out of memory, a parked request stays parked");
        return;
    }
    item->header.command = ZP_CMD_CANCEL;
    item->header.request_id = request_id;
    zp__feed_push (self->feed, &item);
}

static void
s_wait_change (self_t *self, peer_t *peer, const zp_request_t *request)
{
    //  The first change the client has not seen, if the log reaches back to
    //  its baseline; else the changes in between are gone, and the key's
    //  state now is the answer, if it changed since
    const char *key = request->key;
    uint64_t baseline = request->header.seq;
    zp_change_t *change = NULL;
    if (baseline < self->seq) {
        change = s_log_find (self, baseline, self->seq, key, request->key_size, false);
        if (change && baseline + 1 < self->log_oldest) {
            zp_change_t *current = (zp_change_t *) zhashx_lookup (self->map, key);
            if (current)
                change = current;
            else
                change = s_log_last (self, key);
        }
        else
        if (!change && baseline + 1 < self->log_oldest) {
            change = (zp_change_t *) zhashx_lookup (self->map, key);
            if (change && change->seq <= baseline)
                change = NULL;
        }
    }
    //  A change of a batch answers with the key as the whole batch left it
    uint64_t seq = change? change->batch_end: 0;
    for (zp_change_t *later = change; later && later->seq < seq; )
        if ((later = s_log_find (self, later->seq, seq, key, request->key_size, false)))
            change = later;
    zp_part_t value = { change? change->value: NULL, change? change->size: 0 };
    if (!change)
        s_park (self, peer, request);
    else
    if (change->deleted)
        s_reply (self, peer, request, ZP_STATUS_NOT_FOUND, seq, NULL, 0);
    else
        s_reply (self, peer, request, ZP_STATUS_OK, seq, &value, 1);
}

static void
s_wait_equal (self_t *self, peer_t *peer, const zp_request_t *request)
{
    if (s_value_equals ((zp_change_t *) zhashx_lookup (self->map, request->key),
                        request->value.data, request->value.size))
        s_reply_status (self, peer, request, ZP_STATUS_OK);
    else
        s_park (self, peer, request);
}

static void
s_wait_available (self_t *self, peer_t *peer, const zp_request_t *request)
{
    if (zhashx_lookup (self->map, request->key))
        s_reply_status (self, peer, request, ZP_STATUS_OK);
    else
        s_park (self, peer, request);
}

static void
s_watch (self_t *self, peer_t *peer, const zp_request_t *request)
{
    if (s_stream_lookup (self, peer)) {
        s_reply_status (self, peer, request, ZP_STATUS_PROTOCOL);
        return;
    }
    stream_t *stream = (stream_t *) zmalloc (sizeof (stream_t));
    if (stream)
        stream->prefix = (char *) malloc (request->prefix.size + 1);
    if (!stream || !stream->prefix) {
        s_stream_destroy (&stream);
        s_reply_status (self, peer, request, ZP_STATUS_TOO_LARGE);
        return;
    }
    stream->prefix_size = request->prefix.size;
    memcpy (stream->prefix, request->prefix.data, stream->prefix_size);
    stream->prefix [stream->prefix_size] = 0;
    stream->request_id = request->header.request_id;
    stream->credit = request->credit;
    //  A baseline from the future would skip changes: clamp it
    stream->cursor = request->header.seq < self->seq? request->header.seq: self->seq;
    stream->peer = peer;
    stream->charge = STREAM_OVERHEAD + stream->prefix_size;
    peer->streams++;
    peer->held += stream->charge;
    zlistx_add_end (self->streams, stream);
    s_reply_status (self, peer, request, ZP_STATUS_OK);
    s_stream_catch_up (self, stream);
}

static void
s_credit (self_t *self, peer_t *peer, const zp_request_t *request)
{
    stream_t *stream = s_stream_lookup (self, peer);
    if (stream) {
        uint64_t credit = (uint64_t) stream->credit + request->header.seq;
        stream->credit = credit > UINT32_MAX? UINT32_MAX: (uint32_t) credit;
        s_stream_catch_up (self, stream);
    }
}

//  CANCEL from a watch socket ends its stream; from a state handle it
//  withdraws a parked request
static void
s_cancel (self_t *self, peer_t *peer, const zp_request_t *request)
{
    stream_t *stream = s_stream_lookup (self, peer);
    if (stream) {
        void *handle = zlistx_find (self->streams, stream);
        zlistx_delete (self->streams, handle);
    }
    else
    if (s_unpark (peer, request->header.request_id))
        s_withdraw (self, peer, request->header.request_id);
}


//  --------------------------------------------------------------------------
//  Forget a peer and everything it left: its streams end, its parked
//  requests are withdrawn from the registry

static void
s_peer_forget (self_t *self, peer_t *peer)
{
    stream_t *stream;
    while ((stream = s_stream_lookup (self, peer)))
        zlistx_delete (self->streams, zlistx_find (self->streams, stream));
    while (zhashx_size (peer->parked)) {
        zhashx_first (peer->parked);
        uint32_t request_id = (uint32_t) ((uintptr_t) zhashx_cursor (peer->parked) - 1);
        s_unpark (peer, request_id);
        s_withdraw (self, peer, request_id);
    }
    zhashx_delete (self->peers, peer->identity);
}

//  Look over the peers: forget those that hold nothing and have been silent
//  for PEER_IDLE, and ROUTER peers whose connection is gone (a probe, a
//  HELLO with request id 0 that every client drops, finds out): every
//  holding peer after a connection closed, else those silent a while
static void
s_peers_sweep (self_t *self)
{
    int64_t now = zclock_mono ();
    bool probe_all = self->probe_all;
    self->probe_all = false;
    zlistx_t *gone = zlistx_new ();
    if (!gone)
        return;
    zp_header_t probe = { .command = ZP_CMD_HELLO };
    for (peer_t *peer = (peer_t *) zhashx_first (self->peers); peer;
         peer = (peer_t *) zhashx_next (self->peers)) {
        if (peer->lane)
            continue;           //  A lane ends with end of stream
        if (s_peer_idle (peer)) {
            if (now - peer->last_seen > PEER_IDLE)
                zlistx_add_end (gone, peer);
        }
        else
        if (probe_all
        ||  (now - peer->last_seen > PEER_PROBE && now - peer->last_probe > PEER_PROBE)) {
            peer->last_probe = now;
            probe.seq = self->seq;
            if (s_peer_send (self, peer, &probe, NULL, 0) < 0 && errno == EHOSTUNREACH)
                zlistx_add_end (gone, peer);
        }
    }
    for (peer_t *peer = (peer_t *) zlistx_first (gone); peer;
         peer = (peer_t *) zlistx_next (gone))
        s_peer_forget (self, peer);
    zlistx_destroy (&gone);
    self->next_sweep = now + PEER_SWEEP;
}

//  Streams held back by their peer's budget go on where they can
static void
s_streams_resume (self_t *self)
{
    self->streams_held = false;
    for (stream_t *stream = (stream_t *) zlistx_first (self->streams); stream;
         stream = (stream_t *) zlistx_next (self->streams))
        if (stream->credit > 0 && stream->cursor < self->seq)
            s_stream_catch_up (self, stream);
}


//  LANE: a process on a lane hands us the end of a new socketpair (a
//  worker's own context, for a worker it forks, or for its own handles), so
//  that a process its context did not fork reaches us without a path too.
//  Past half the process's descriptor limit in lanes, it is refused
//  (ENOBUFS): no peer makes the parent run out of descriptors.
static void
s_lane (self_t *self, peer_t *peer, const zp_request_t *request)
{
    int fd = peer->lane? zp__lane_take_fd (peer->lane): -1;
    int status = ZP_STATUS_INVALID;
    if (fd >= 0 && self->nlanes >= self->lanes_limit)
        status = ZP_STATUS_NO_BUFFERS;
    else
    if (fd >= 0) {
        zp__lane_fd_mark (fd, true);
        status = s_lane_adopt (self, fd) == 0? ZP_STATUS_OK: ZP_STATUS_NO_BUFFERS;
        fd = -1;
    }
    if (fd >= 0)
        close (fd);
    s_reply_status (self, peer, request, status);
}


//  INFO: statistics, as name, value frames (values in decimal text), in a
//  fixed order (doc/PROTOCOL.md lists them)
static void
s_info (self_t *self, peer_t *peer, const zp_request_t *request)
{
    //  Bytes of keys and values the map holds: counted when asked
    uint64_t bytes = 0;
    for (zp_change_t *change = (zp_change_t *) zhashx_first (self->map); change;
         change = (zp_change_t *) zhashx_next (self->map))
        bytes += change->key_size + change->size;
    uint64_t parked = 0;
    for (peer_t *each = (peer_t *) zhashx_first (self->peers); each;
         each = (peer_t *) zhashx_next (self->peers))
        parked += zhashx_size (each->parked);
    //  The resident memory of the whole process the store runs in
    uint64_t rss = 0;
    FILE *statm = fopen ("/proc/self/statm", "r");
    unsigned long long pages = 0, resident = 0;
    if (statm && fscanf (statm, "%llu %llu", &pages, &resident) == 2)
        rss = (uint64_t) resident * (uint64_t) sysconf (_SC_PAGESIZE);
    if (statm)
        fclose (statm);
    struct {
        const char *name;
        uint64_t value;
    } fields [] = {
        { "keys",       zhashx_size (self->map) },
        { "bytes",      bytes },
        { "seq",        self->seq },
        { "log",        self->log_oldest? self->seq - self->log_oldest + 1: 0 },
        { "log_bytes",  self->log_bytes },
        { "clients",    zhashx_size (self->peers) },
        { "lanes",      self->nlanes },
        { "streams",    zlistx_size (self->streams) },
        { "parked",     parked },
        { "rss",        rss },
        { "pid",        (uint64_t) getpid () }
    };
    size_t count = sizeof fields / sizeof fields [0];
    char values [sizeof fields / sizeof fields [0]] [24];
    zp_part_t parts [2 * sizeof fields / sizeof fields [0]];
    for (size_t index = 0; index < count; index++) {
        snprintf (values [index], sizeof values [index], "%" PRIu64, fields [index].value);
        parts [2 * index] = (zp_part_t) { fields [index].name, strlen (fields [index].name) };
        parts [2 * index + 1] = (zp_part_t) { values [index], strlen (values [index]) };
    }
    s_reply (self, peer, request, ZP_STATUS_OK, self->seq, parts, 2 * count);
}


//  --------------------------------------------------------------------------
//  The one dispatcher: a valid request from a peer, whatever its transport

static void
s_dispatch (self_t *self, peer_t *peer, const zp_request_t *request)
{
    switch (request->header.command) {
        case ZP_CMD_HELLO:          s_reply_status (self, peer, request, ZP_STATUS_OK); break;
        case ZP_CMD_GET:            s_get (self, peer, request); break;
        case ZP_CMD_SET:            s_set (self, peer, request); break;
        case ZP_CMD_DEL:            s_delete (self, peer, request); break;
        case ZP_CMD_EXISTS:         s_exists (self, peer, request); break;
        case ZP_CMD_KEYS:           s_keys (self, peer, request, false); break;
        case ZP_CMD_DUMP:           s_keys (self, peer, request, true); break;
        case ZP_CMD_SIZE:           s_size (self, peer, request); break;
        case ZP_CMD_INCR:           s_incr (self, peer, request); break;
        case ZP_CMD_CAS:            s_cas (self, peer, request); break;
        case ZP_CMD_WAIT_CHANGE:    s_wait_change (self, peer, request); break;
        case ZP_CMD_WAIT_EQUAL:     s_wait_equal (self, peer, request); break;
        case ZP_CMD_WAIT_AVAILABLE: s_wait_available (self, peer, request); break;
        case ZP_CMD_WATCH:          s_watch (self, peer, request); break;
        case ZP_CMD_CREDIT:         s_credit (self, peer, request); break;
        case ZP_CMD_CANCEL:         s_cancel (self, peer, request); break;
        case ZP_CMD_TXN:            s_txn (self, peer, request); break;
        case ZP_CMD_SINCE:          s_since (self, peer, request); break;
        case ZP_CMD_INFO:           s_info (self, peer, request); break;
        case ZP_CMD_LANE:           s_lane (self, peer, request); break;
        default:
            //  The decoder lets through only the commands above
            s_reply_status (self, peer, request, ZP_STATUS_PROTOCOL);
    }
}


//  --------------------------------------------------------------------------
//  Receive one message from sock into self->frames, without waiting.
//  Returns the number of frames it had, 0 when none is waiting.

static size_t
s_recv_frames (self_t *self, void *sock)
{
    return zp__frames_recv (sock, self->frames, MAX_FRAMES, &self->nframes);
}

static zp_part_t
s_frame (self_t *self, size_t index)
{
    zp_part_t part = { zmq_msg_data (&self->frames [index]),
                       zmq_msg_size (&self->frames [index]) };
    return part;
}

static void
s_log_malformed (self_t *self, const char *why)
{
    //  Log the first one and then every thousandth, never each one
    if (self->malformed++ % 1000 == 0)
        zsys_warning ("zproc store: dropped a malformed request (%s), %zu so far",
                      why, self->malformed);
}


//  --------------------------------------------------------------------------
//  zproc's own writes: key and value, or key alone for a delete. Only our
//  own threads send them, each counted (zp__store_notice): a notice sent
//  before a request (the reaper's "running", before zp_ctx_spawn returns
//  and its caller reads the status) must be in before that request is
//  served, and the poll that saw the request may be older than the notice,
//  so every request looks at the count first (s_take_own_writes).

void
zp__store_notice (zsock_t *sys, uint64_t *sent, const char *key, const char *value)
{
    if (zsock_send (sys, "ss", key, value) == 0)
        __atomic_add_fetch (sent, 1, __ATOMIC_RELEASE);
}

//  True when a zmq socket holds a message
static bool
s_zmq_ready (zsock_t *sock)
{
    return (zsock_events (sock) & ZMQ_POLLIN) != 0;
}

static void
s_handle_sys (self_t *self)
{
    void *sys = zsock_resolve (self->sys);
    char key [ZP_KEY_MAX + 1];
    while (true) {
        size_t count = zp__frames_recv (sys, self->sys_frames, 3, &self->sys_nframes);
        if (count == 0)
            break;
        self->sys_taken++;
        zmq_msg_t *frames = self->sys_frames;
        size_t size = zmq_msg_size (&frames [0]);
        if (count > 2 || !zp__key_valid ((const char *) zmq_msg_data (&frames [0]), size))
            continue;           //  Our own threads send these: cannot happen
        memcpy (key, zmq_msg_data (&frames [0]), size);
        key [size] = 0;
        if (count == 2)
            s_apply (self, key, zmq_msg_data (&frames [1]), zmq_msg_size (&frames [1]), false);
        else
        if (zhashx_lookup (self->map, key))
            s_apply (self, key, NULL, 0, true);
    }
}

//  Take the writes sent before the request in hand: one memory read when
//  there are none
static void
s_take_own_writes (self_t *self)
{
    uint64_t sent = __atomic_load_n (self->sys_sent, __ATOMIC_ACQUIRE);
    if ((int64_t) (sent - self->sys_taken) > 0 && s_zmq_ready (self->sys))
        s_handle_sys (self);
}


//  --------------------------------------------------------------------------
//  A request from a peer, in frames (header first): decode, dispatch

static void
s_handle_request (self_t *self, const void *identity, size_t identity_size, int fd,
                  const zp_part_t *frames, size_t count)
{
    zp_request_t request;
    int status = zp__request_decode (&request, frames, count);
    if (status < 0) {
        s_log_malformed (self, "bad header");
        return;
    }
    peer_t *peer = s_peer_require (self, identity, identity_size, fd);
    if (!peer) {
        s_log_malformed (self, "no peer");
        return;
    }
    peer->last_seen = zclock_mono ();
    s_take_own_writes (self);
    if (status == ZP_STATUS_PROTOCOL)
        s_log_malformed (self, "bad frames or command");
    //  Over budget, a peer is told so (CANCEL and CREDIT, which free or take
    //  nothing, go through); far over it, it reads nothing: drop
    int command = request.header.command;
    if (!status && command != ZP_CMD_CANCEL && command != ZP_CMD_CREDIT
    &&  s_peer_over_budget (peer)) {
        if (s_peer_pinned (peer) > ZP_PEER_BUDGET + ERROR_SLACK) {
            if (self->over_budget++ % 1000 == 0)
                zsys_warning ("zproc store: a client over its budget reads nothing: "
                              "%zu requests dropped so far", self->over_budget);
            return;
        }
        status = ZP_STATUS_NO_BUFFERS;
    }
    if (status)
        s_reply_status (self, peer, &request, status);
    else
        s_dispatch (self, peer, &request);
}

//  The ROUTER: a routing id, then the request
static void
s_handle_router (self_t *self)
{
    void *router = zsock_resolve (self->router);
    for (int batch = 0; batch < DRAIN_BATCH; batch++) {
        size_t count = s_recv_frames (self, router);
        if (count == 0)
            break;
        zp_part_t frames [MAX_FRAMES];
        for (size_t index = 0; index < self->nframes; index++)
            frames [index] = s_frame (self, index);
        //  Frames past those kept count as one too many
        s_handle_request (self, frames [0].data, frames [0].size, -1,
                          frames + 1, self->nframes - 1);
    }
}


//  --------------------------------------------------------------------------
//  Lanes

//  A lane's peer is gone (end of stream, or it broke the framing): forget it
//  and what it holds, at once: its streams here, its parked requests in the
//  registry (withdrawn one by one, each ended WITHDRAWN, which keeps the counts
//  of watched keys exact)
static void
s_lane_close (self_t *self, peer_t *peer)
{
    //  Out of the set now: the registry may hold the lane, and its
    //  descriptor open, a while longer
    epoll_ctl (self->poller, EPOLL_CTL_DEL, peer->fd, NULL);
    for (size_t index = 0; index < self->nlanes; index++)
        if (self->lanes [index] == peer) {
            self->lanes [index] = self->lanes [--self->nlanes];
            break;
        }
    s_peer_forget (self, peer);
}

//  Serve fd as a new lane (fd marked: our children close it); 0, or -1
//  when memory ran out (fd is closed: its worker sees end of stream)
static int
s_lane_adopt (self_t *self, int fd)
{
    if (self->nlanes == self->lanes_max) {
        size_t wanted = self->lanes_max? self->lanes_max * 2: 16;
        peer_t **lanes = (peer_t **) realloc (self->lanes, wanted * sizeof (peer_t *));
        if (lanes) {
            self->lanes = lanes;
            self->lanes_max = wanted;
        }
    }
    byte identity [LANE_IDENTITY] = { 0, 'L' };
    zp__put_uint64 (identity + 2, ++self->lanes_made);
    zp_lane_t *lane = self->nlanes < self->lanes_max? zp__lane_new (fd, false, LANE_MAX): NULL;
    peer_t *peer = lane? s_peer_require (self, identity, sizeof identity, fd): NULL;
    if (!peer) {
        if (lane)
            zp__lane_destroy (&lane);
        else {
            zp__lane_fd_mark (fd, false);
            close (fd);
        }
        zsys_error ("zproc store: cannot serve a new lane (out of memory)");
        return zp__fail (ENOMEM, -1);
    }
    peer->lane = lane;
    struct epoll_event event = { .events = EPOLLIN, .data.ptr = peer };
    if (epoll_ctl (self->poller, EPOLL_CTL_ADD, fd, &event) < 0) {
        //  Its worker sees end of stream
        int saved = errno;
        zsys_error ("zproc store: cannot serve a new lane: %s", strerror (saved));
        s_peer_forget (self, peer);
        return zp__fail (saved, -1);
    }
    peer->last_seen = zclock_mono ();
    self->lanes [self->nlanes++] = peer;
    return 0;
}

//  New lanes from the context: a descriptor number per datagram
static void
s_handle_adopt (self_t *self)
{
    int fd;
    while (recv (self->adopt, &fd, sizeof fd, MSG_DONTWAIT) == (ssize_t) sizeof fd)
        s_lane_adopt (self, fd);
}

//  A lane is readable: take what is there, handle every whole request
static void
s_handle_lane (self_t *self, peer_t *peer)
{
    if (zp__lane_fill (peer->lane) < 0 && errno != EAGAIN && errno != EINTR) {
        if (errno == EPROTO)
            s_log_malformed (self, "lane message too long");
        s_lane_close (self, peer);
        return;
    }
    zp_part_t body;
    while (zp__lane_next (peer->lane, &body)) {
        zp_part_t frames [MAX_FRAMES];
        int count = zp__lane_split (&body, frames, MAX_FRAMES - 1);
        if (count < 0) {
            s_log_malformed (self, "lane framing");
            s_lane_close (self, peer);
            return;
        }
        //  Large and alone in the buffer: the buffer may become the value
        //  of the change it makes (s_apply), else it goes after the request
        if (body.size >= LANE_TAKE_MIN)
            self->block = zp__lane_take (peer->lane, &self->block_size);
        s_handle_request (self, peer->identity + 1, peer->identity [0], peer->fd,
                          frames, (size_t) count);
        free (self->block);
        self->block = NULL;
    }
}

//  Wait until a socket, the answers, the adoption socket or a lane is
//  ready, or timeout msecs: one epoll_wait. A lane with bytes queued is
//  watched for room as well. A zmq socket's descriptor (ZMQ_FD) only says
//  "look at ZMQ_EVENTS": its check flag is set, and the loop looks
//  (s_zmq_ready) before it polls again. The fixed descriptors found ready
//  are in self->ready, the lanes' events in self->events. Returns
//  epoll_wait's result.
static int
s_poll (self_t *self, int timeout)
{
    for (size_t index = 0; index < self->nlanes; index++) {
        peer_t *peer = self->lanes [index];
        bool pollout = zp__lane_queued (peer->lane) > 0;
        if (pollout != peer->pollout) {
            struct epoll_event event = {
                .events = EPOLLIN | (pollout? EPOLLOUT: 0), .data.ptr = peer
            };
            if (epoll_ctl (self->poller, EPOLL_CTL_MOD, peer->fd, &event) == 0)
                peer->pollout = pollout;
        }
    }
    memset (self->ready, 0, sizeof self->ready);
    int rc = epoll_wait (self->poller, self->events, EVENTS_MAX, timeout);
    for (int index = 0; index < rc; index++) {
        uint64_t fixed = self->events [index].data.u64;
        if (fixed < FD_FIXED)
            self->ready [fixed] = true;
    }
    for (int index = 0; index < SOCKETS; index++)
        if (self->ready [index])
            self->check [index] = true;
    return rc;
}

//  --------------------------------------------------------------------------
//  How the registry ended parked requests (zp_feed.h): one request less
//  waits on the key, for that peer; an ANSWER we send on to the peer.
//  signalled: the feed's descriptor was readable.

static void
s_handle_answers (self_t *self, bool signalled)
{
    zp_feed_item_t *item = zp__feed_take (self->answers, signalled);
    while (item) {
        zp_feed_item_t *next = item->next;
        s_watched_add (self, item->key, -1);
        peer_t *peer = s_peer_lookup (self, item->identity + 1, item->identity [0]);
        //  A peer forgotten meanwhile withdrew every request it parked
        if (peer && item->kind != ZP_FEED_WITHDRAWN) {
            s_unpark (peer, item->header.request_id);
            zp_part_t value = {
                item->value? zchunk_data (item->value): NULL,
                item->value? zchunk_size (item->value): 0
            };
            if (item->kind == ZP_FEED_ANSWER)
                s_peer_send (self, peer, &item->header, &value, item->value? 1: 0);
        }
        zp__feed_item_destroy (&item);
        item = next;
    }
}


//  --------------------------------------------------------------------------
//  The ROUTER's monitor: a connection closed. Its peer, if it holds
//  something, is found by the sweep that follows shortly.
static void
s_handle_monitor (self_t *self)
{
    void *monitor = zsock_resolve (self->monitor);
    for (int batch = 0; batch < DRAIN_BATCH && s_recv_frames (self, monitor); batch++)
        ;
    if (!self->probe_all) {
        self->probe_all = true;
        int64_t settle = zclock_mono () + PEER_SETTLE;
        if (self->next_sweep > settle)
            self->next_sweep = settle;
    }
}


//  --------------------------------------------------------------------------
//  Commands from the owner

static void
s_handle_pipe (self_t *self)
{
    zmsg_t *request = zmsg_recv (self->pipe);
    if (!request) {
        self->terminated = true;
        return;
    }
    char *command = zmsg_popstr (request);
    if (command && streq (command, "$TERM")) {
        s_handle_answers (self, false); //  Last replies of the registry go out first
        self->terminated = true;
    }
    else
    if (command && streq (command, "BIND")) {
        char *endpoint = zmsg_popstr (request);
        int rc = endpoint? zsock_bind (self->router, "%s", endpoint): -1;
        if (rc < 0)
            zsock_send (self->pipe, "si", "", endpoint? errno: EINVAL);
        else {
            char *bound = zsock_last_endpoint (self->router);
            zsock_send (self->pipe, "si", bound, 0);
            zstr_free (&bound);
        }
        zstr_free (&endpoint);
    }
    else
        zsys_error ("zproc store: invalid pipe command '%s'", command? command: "");
    zstr_free (&command);
    zmsg_destroy (&request);
}


//  --------------------------------------------------------------------------
//  The actor

void
zp_store_actor (zsock_t *pipe, void *args)
{
    self_t *self = s_self_new (pipe, (zp_store_args_t *) args);
    //  The start-up status before zsock_signal, which may change errno
    int status = self? 0: errno;
    zsock_signal (pipe, 0);
    zsock_send (pipe, "i", status);
    if (!self)
        return;
    //  Each zmq socket is looked at before the first poll
    for (int index = 0; index < SOCKETS; index++)
        self->check [index] = true;
    zsock_t *sockets [SOCKETS] = { self->pipe, self->sys, self->router, self->monitor };
    void (*handlers [SOCKETS]) (self_t *) = {
        s_handle_pipe, s_handle_sys, s_handle_router, s_handle_monitor
    };
    while (!self->terminated) {
        //  The zmq sockets that may hold messages; a handler drains a batch
        //  at most (sys: all), so a socket handled is looked at again
        bool busy = false;
        for (int index = 0; index < SOCKETS && !self->terminated; index++)
            if (self->check [index]) {
                self->check [index] = false;
                if (s_zmq_ready (sockets [index])) {
                    handlers [index] (self);
                    self->check [index] = busy = true;
                }
            }
        if (self->terminated)
            break;
        int64_t wait = busy? 0: self->next_sweep - zclock_mono ();
        if (self->streams_held && wait > STREAM_RETRY)
            wait = STREAM_RETRY;
        //  The registry hears of this round's withdrawals (and changes
        //  flush at once)
        zp__feed_flush (self->feed);
        //  SIGINT is for the owner to act on (EINTR): the store serves on
        int rc = s_poll (self, wait > 0? (int) wait: 0);
        //  The lanes ready; a lane is closed only while its own event is
        //  handled, so the peers of the others stay. A request takes
        //  zproc's own writes sent before it first (s_take_own_writes)
        for (int index = 0; index < rc; index++) {
            if (self->events [index].data.u64 < FD_FIXED)
                continue;
            uint32_t revents = self->events [index].events;
            peer_t *peer = (peer_t *) self->events [index].data.ptr;
            if ((revents & EPOLLOUT) && zp__lane_flush (peer->lane) < 0)
                s_lane_close (self, peer);
            else
            if (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))
                s_handle_lane (self, peer);
        }
        if (self->ready [FD_ADOPT])
            s_handle_adopt (self);
        //  The registry's answers: signalled, or (the lanes' wake-ups it
        //  answered itself, which only settle our accounts) not
        if (self->ready [FD_ANSWERS])
            s_handle_answers (self, true);
        else
        if (zp__feed_waiting (self->answers))
            s_handle_answers (self, false);
        else
        if (rc < 0 && errno != EINTR) {
            zsys_error ("zproc store: epoll_wait failed: %s", strerror (errno));
            zclock_sleep (10);
        }
        if (self->streams_held && zclock_mono () >= self->next_resume) {
            s_streams_resume (self);
            self->next_resume = zclock_mono () + STREAM_RETRY;
        }
        if (zclock_mono () >= self->next_sweep)
            s_peers_sweep (self);
    }
    s_self_destroy (&self);
}
