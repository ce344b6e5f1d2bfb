/*  =========================================================================
    test-lane - the direct lane's framing (actors/zp_lane.c, compiled into
    this file: the library exports no internal symbol): messages over a socketpair, whole or in pieces, queued
    when the socket is full, malformed ones refused, the peer's death seen
    =========================================================================
*/

#include "zp_lane.c"
#include "harness.h"
#include <sys/socket.h>

//  A store end (non-blocking) and a client end (blocking) of one socketpair
static void
s_lane_pair (zp_lane_t **store_p, zp_lane_t **client_p, size_t max)
{
    int pair [2];
    ASSERT_EQ (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    *store_p = zp__lane_new (pair [0], false, max);
    *client_p = zp__lane_new (pair [1], true, max);
    ASSERT_NOT_NULL (*store_p);
    ASSERT_NOT_NULL (*client_p);
}

//  The next message's frames as a zmsg_t, waiting at most a few seconds
static zmsg_t *
s_lane_recv (zp_lane_t *lane)
{
    ASSERT_EQ (zp__lane_wait (lane, zclock_mono () + 5000), 1);
    zp_part_t body;
    ASSERT (zp__lane_next (lane, &body));
    return zp__lane_split_msg (&body);
}


TEST_IMPL (lane_roundtrip)
{
    zp_lane_t *store, *client;
    s_lane_pair (&store, &client, 1024 * 1024);
    //  Client to store: three frames, one empty
    zp_part_t parts [3] = { { "head", 4 }, { "", 0 }, { "value", 5 } };
    ASSERT_EQ (zp__lane_send (client, parts, 3), 0);
    //  The store's end never waits: nothing yet is EAGAIN, not a block
    zp_part_t body;
    while (!zp__lane_next (store, &body)) {
        ssize_t rc = zp__lane_fill (store);
        ASSERT (rc > 0 || errno == EAGAIN);
    }
    zp_part_t frames [4];
    ASSERT_EQ (zp__lane_split (&body, frames, 4), 3);
    ASSERT_EQ (frames [0].size, 4);
    ASSERT (memcmp (frames [0].data, "head", 4) == 0);
    ASSERT_EQ (frames [1].size, 0);
    ASSERT_EQ (frames [2].size, 5);
    ASSERT (memcmp (frames [2].data, "value", 5) == 0);
    //  Too many frames for the caller's array
    ASSERT_EQ (zp__lane_split (&body, frames, 2), -1);
    ASSERT_ERRNO_EQ (EPROTO);
    ASSERT (!zp__lane_next (store, &body));
    ASSERT_EQ (zp__lane_fill (store), -1);
    ASSERT_ERRNO_EQ (EAGAIN);

    //  Store to client, twice in a row: one recv may bring both
    zp_part_t reply [2] = { { "r1", 2 }, { "xyz", 3 } };
    ASSERT_EQ (zp__lane_send (store, reply, 2), 0);
    ASSERT_EQ (zp__lane_send (store, reply, 1), 0);
    ASSERT_EQ (zp__lane_queued (store), 0);
    //  Both in the buffer (17 and 10 bytes): the first one's buffer cannot
    //  be taken, as the second is in it
    while (client->input_end - client->input_start < 17 + 10)
        ASSERT (zp__lane_fill (client) > 0);
    ASSERT (zp__lane_next (client, &body));
    size_t unused;
    ASSERT_NULL (zp__lane_take (client, &unused));
    zmsg_t *msg = zp__lane_split_msg (&body);
    ASSERT_EQ (zmsg_size (msg), 2);
    char *text = zmsg_popstr (msg);
    ASSERT_STR_EQ (text, "r1");
    zstr_free (&text);
    zmsg_destroy (&msg);
    msg = s_lane_recv (client);
    ASSERT_EQ (zmsg_size (msg), 1);
    zmsg_destroy (&msg);
    //  An empty message is a message
    ASSERT_EQ (zp__lane_send (store, NULL, 0), 0);
    msg = s_lane_recv (client);
    ASSERT_EQ (zmsg_size (msg), 0);
    zmsg_destroy (&msg);

    //  Nothing comes: the wait ends at its deadline
    int64_t start = zclock_mono ();
    ASSERT_EQ (zp__lane_wait (client, start + 100), 0);
    ASSERT_GE (zclock_mono () - start, 90);
    zp__lane_destroy (&store);
    zp__lane_destroy (&client);
    zp__lane_destroy (&client);
    return 0;
}


//  A store that cannot write keeps the bytes, in order, until the socket
//  takes them; a large message arrives whole
TEST_IMPL (lane_queue_large)
{
    zp_lane_t *store, *client;
    s_lane_pair (&store, &client, 16 * 1024 * 1024);
    size_t size = 4 * 1024 * 1024;
    byte *value = (byte *) malloc (size);
    ASSERT_NOT_NULL (value);
    for (size_t index = 0; index < size; index++)
        value [index] = (byte) (index * 7);
    zp_part_t parts [2] = { { "big", 3 }, { value, size } };
    //  More than a socketpair holds: the rest is queued
    ASSERT_EQ (zp__lane_send (store, parts, 2), 0);
    ASSERT_GT (zp__lane_queued (store), 0);
    zp_part_t small = { "after", 5 };
    ASSERT_EQ (zp__lane_send (store, &small, 1), 0);
    //  The client reads while the store flushes
    int64_t deadline = zclock_mono () + 10000;
    zp_part_t body;
    while (!zp__lane_next (client, &body)) {
        ASSERT_EQ (zp__lane_flush (store), 0);
        ASSERT (zp__lane_fill (client) > 0 || errno == EAGAIN);
        ASSERT_LT (zclock_mono (), deadline);
    }
    zp_part_t frames [2];
    ASSERT_EQ (zp__lane_split (&body, frames, 2), 2);
    ASSERT_EQ (frames [1].size, size);
    ASSERT (memcmp (frames [1].data, value, size) == 0);
    //  Alone in the buffer: the buffer can be taken, the frames stay valid
    //  in it, and the lane goes on with a new one
    size_t taken_size = 0;
    byte *taken = NULL;
    if (zp__lane_queued (store) == 0 && client->input_start == client->input_end) {
        taken = (byte *) zp__lane_take (client, &taken_size);
        ASSERT_NOT_NULL (taken);
        ASSERT ((const byte *) frames [1].data >= taken);
        ASSERT ((const byte *) frames [1].data + size <= taken + taken_size);
        ASSERT (memcmp (frames [1].data, value, size) == 0);
        ASSERT_NULL (zp__lane_take (client, &taken_size));
    }
    free (taken);
    while (zp__lane_queued (store))
        ASSERT_EQ (zp__lane_flush (store), 0);
    zmsg_t *msg = s_lane_recv (client);
    char *text = zmsg_popstr (msg);
    ASSERT_STR_EQ (text, "after");
    zstr_free (&text);
    zmsg_destroy (&msg);
    free (value);
    zp__lane_destroy (&store);
    zp__lane_destroy (&client);
    return 0;
}


//  Two threads sending on one store end (zp__lane_share: the store and the
//  registry): every message arrives whole and in each sender's order, also
//  when the socket fills and the rest waits in the queue; the lane lives
//  until its last holder lets it go
#define SHARED_SENDS    2000

typedef struct {
    zp_lane_t *lane;            //  A shared reference, dropped at the end
    char sender;                //  'a' or 'b'
} shared_sender_t;

static void *
s_shared_sender (void *args)
{
    shared_sender_t *self = (shared_sender_t *) args;
    byte filler [3000];
    memset (filler, self->sender, sizeof filler);
    for (uint32_t index = 0; index < SHARED_SENDS; index++) {
        byte number [5] = { (byte) self->sender };
        s_put_uint32 (number + 1, index);
        //  Sizes vary, so messages straddle the socket's writes
        zp_part_t parts [2] = { { number, 5 }, { filler, index % sizeof filler } };
        while (zp__lane_send (self->lane, parts, 2) < 0)
            ;
        zp__lane_flush (self->lane);
    }
    zp__lane_destroy (&self->lane);
    return NULL;
}

TEST_IMPL (lane_shared_senders)
{
    zp_lane_t *store, *client;
    s_lane_pair (&store, &client, 1024 * 1024);
    shared_sender_t senders [2] = {
        { zp__lane_share (store), 'a' }, { zp__lane_share (store), 'b' }
    };
    pthread_t threads [2];
    for (int index = 0; index < 2; index++)
        ASSERT_EQ (pthread_create (&threads [index], NULL, s_shared_sender, &senders [index]), 0);
    uint32_t next [2] = { 0, 0 };
    int64_t deadline = zclock_mono () + 20000;
    while (next [0] < SHARED_SENDS || next [1] < SHARED_SENDS) {
        //  What the senders left queued goes out as the reader reads
        zp__lane_flush (store);
        zp_part_t body;
        if (!zp__lane_next (client, &body)) {
            ASSERT (zp__lane_fill (client) > 0 || errno == EAGAIN || errno == EINTR);
            ASSERT_LT (zclock_mono (), deadline);
            continue;
        }
        zp_part_t frames [3];
        ASSERT_EQ (zp__lane_split (&body, frames, 3), 2);
        ASSERT_EQ (frames [0].size, 5);
        const byte *number = (const byte *) frames [0].data;
        ASSERT (number [0] == 'a' || number [0] == 'b');
        int sender = number [0] - 'a';
        ASSERT_EQ (s_get_uint32 (number + 1), next [sender]);
        ASSERT_EQ (frames [1].size, next [sender] % 3000);
        for (size_t index = 0; index < frames [1].size; index++)
            ASSERT_EQ (((const byte *) frames [1].data) [index], number [0]);
        next [sender]++;
    }
    for (int index = 0; index < 2; index++)
        pthread_join (threads [index], NULL);
    //  The senders let theirs go: ours is the last, and closes the socket
    int fd = zp__lane_fd (store);
    zp__lane_destroy (&store);
    ASSERT_EQ (fcntl (fd, F_GETFD), -1);
    zp__lane_destroy (&client);
    return 0;
}


//  A descriptor passed with a message (SCM_RIGHTS) is there once the
//  message is, in order; the receiving end keeps a few, closes the rest
TEST_IMPL (lane_pass_fd)
{
    zp_lane_t *store, *client;
    s_lane_pair (&store, &client, 1024);
    int pipes [2];
    ASSERT_EQ (pipe (pipes), 0);
    zp_part_t part = { "lane", 4 };
    ASSERT_EQ (zp__lane_send_fd (client, &part, 1, pipes [1]), 0);
    ASSERT_EQ (zp__lane_send (client, &part, 1), 0);
    ASSERT_EQ (zp__lane_send_fd (client, &part, 1, pipes [1]), 0);
    //  Only a blocking end passes descriptors
    ASSERT_EQ (zp__lane_send_fd (store, &part, 1, pipes [1]), -1);
    ASSERT_ERRNO_EQ (EINVAL);
    close (pipes [1]);
    zp_part_t body;
    size_t messages = 0;
    int64_t deadline = zclock_mono () + 5000;
    while (messages < 3) {
        while (!zp__lane_next (store, &body)) {
            ASSERT (zp__lane_fill (store) > 0 || errno == EAGAIN);
            ASSERT_LT (zclock_mono (), deadline);
        }
        messages++;
    }
    //  Two copies of the pipe's write end, each a descriptor of its own
    int first = zp__lane_take_fd (store);
    int second = zp__lane_take_fd (store);
    ASSERT_GE (first, 0);
    ASSERT_GE (second, 0);
    ASSERT_NE (first, second);
    ASSERT_EQ (zp__lane_take_fd (store), -1);
    ASSERT_EQ (write (first, "x", 1), 1);
    char byte_read = 0;
    ASSERT_EQ (read (pipes [0], &byte_read, 1), 1);
    ASSERT_EQ (byte_read, 'x');
    close (first);
    close (second);
    close (pipes [0]);
    zp__lane_destroy (&store);
    zp__lane_destroy (&client);
    return 0;
}


//  Malformed input is refused where it enters; the peer's death is ENOTCONN
TEST_IMPL (lane_malformed_eof)
{
    int pair [2];
    ASSERT_EQ (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    zp_lane_t *store = zp__lane_new (pair [0], false, 1024);
    ASSERT_NOT_NULL (store);
    //  A body longer than max: EPROTO before any of it is buffered
    byte prefix [4] = { 0, 0, 8, 1 };
    ASSERT_EQ (write (pair [1], prefix, 4), 4);
    ASSERT_EQ (zp__lane_fill (store), 4);
    ASSERT_EQ (zp__lane_fill (store), -1);
    ASSERT_ERRNO_EQ (EPROTO);
    zp__lane_destroy (&store);

    //  A frame whose size runs past the body
    byte bad [] = { 0, 0, 0, 6, 0, 0, 0, 9, 'a', 'b' };
    zp_part_t body = { bad + 4, 6 };
    zp_part_t frames [4];
    ASSERT_EQ (zp__lane_split (&body, frames, 4), -1);
    ASSERT_ERRNO_EQ (EPROTO);
    zmsg_t *msg = zp__lane_split_msg (&body);
    ASSERT_NULL (msg);
    ASSERT_ERRNO_EQ (EPROTO);
    //  A truncated size
    body.size = 2;
    ASSERT_EQ (zp__lane_split (&body, frames, 4), -1);
    ASSERT_NULL (zp__lane_split_msg (&body));

    //  The other end closes: the client's wait and send fail with ENOTCONN
    ASSERT_EQ (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    zp_lane_t *client = zp__lane_new (pair [0], true, 1024);
    ASSERT_NOT_NULL (client);
    close (pair [1]);
    ASSERT_EQ (zp__lane_wait (client, -1), -1);
    ASSERT_ERRNO_EQ (ENOTCONN);
    zp_part_t part = { "x", 1 };
    ASSERT_EQ (zp__lane_send (client, &part, 1), -1);
    ASSERT_ERRNO_EQ (ENOTCONN);
    zp__lane_destroy (&client);
    return 0;
}


//  --------------------------------------------------------------------------
//  Every lane does the same: a worker on its direct lane, a client on ipc://
//  and one on tcp:// with CURVE run the same operations (get, set, bytes,
//  incr, cas, exists, keys, watchers, predicates, watch streams, batches
//  with their preconditions, snapshots, and the errors: ENOENT, EINVAL on
//  bad keys and wrong types, EACCES, EMSGSIZE, EAGAIN); their transcripts
//  must be equal

//  Append one line to a transcript
static void
s_note (char *transcript, size_t size, const char *format, ...)
{
    size_t used = strlen (transcript);
    va_list args;
    va_start (args, format);
    vsnprintf (transcript + used, size - used, format, args);
    va_end (args);
    used = strlen (transcript);
    if (used + 1 < size)
        strcat (transcript, "\n");
}

static bool
s_key_is_seven (zp_state_t *view, void *arg)
{
    int64_t value = 0;
    return zp_state_get_int (view, (const char *) arg, &value) == 0 && value == 7;
}

//  The operations, on keys under prefix; what each returned (and errno)
//  goes into transcript, without the prefix
static void
s_exercise (zp_state_t *state, const char *prefix, char *transcript, size_t size)
{
    char key [64], other [64], absent [64];
    snprintf (key, sizeof key, "%s/key", prefix);
    snprintf (other, sizeof other, "%s/other", prefix);
    snprintf (absent, sizeof absent, "%s/absent", prefix);
    transcript [0] = 0;
    int rc = zp_state_set_str (state, key, "hello");
    s_note (transcript, size, "set %d", rc);
    char *text = zp_state_get_str (state, key);
    s_note (transcript, size, "get %s", text? text: "NULL");
    zstr_free (&text);
    text = zp_state_get_str (state, absent);
    s_note (transcript, size, "get absent %s %s", text? text: "NULL", test_errno_name (errno));
    byte binary [5] = { 1, 0, 2, 0, 3 };
    rc = zp_state_set_bytes (state, other, binary, sizeof binary);
    zchunk_t *chunk = zp_state_get_bytes (state, other);
    s_note (transcript, size, "bytes %d %zu %d", rc, chunk? zchunk_size (chunk): 0,
            chunk && memcmp (zchunk_data (chunk), binary, sizeof binary) == 0);
    zchunk_destroy (&chunk);
    int64_t result = 0;
    rc = zp_state_incr (state, absent, 5, &result);
    s_note (transcript, size, "incr %d %" PRId64, rc, result);
    rc = zp_state_incr (state, absent, 2, &result);
    s_note (transcript, size, "incr %d %" PRId64, rc, result);
    rc = zp_state_incr (state, key, 1, &result);
    s_note (transcript, size, "incr text %d %s", rc, test_errno_name (errno));
    double real = 0;
    rc = zp_state_set_double (state, other, 2.5);
    rc += zp_state_get_double (state, other, &real);
    s_note (transcript, size, "double %d %g", rc, real);
    rc = zp_state_cas_str (state, key, "nope", "x");
    s_note (transcript, size, "cas lost %d %s", rc, test_errno_name (errno));
    rc = zp_state_cas_str (state, key, "hello", "world");
    s_note (transcript, size, "cas won %d", rc);
    s_note (transcript, size, "exists %d %d", zp_state_exists (state, key),
            zp_state_exists (state, "no/such/key"));
    zlistx_t *keys = zp_state_keys (state, prefix);
    s_note (transcript, size, "keys %zu", keys? zlistx_size (keys): 0);
    zlistx_destroy (&keys);
    //  Watchers: already true at once; a change that does not come times out
    rc = zp_state_get_when_equal_str (state, key, "world", 1000);
    s_note (transcript, size, "equal %d", rc);
    rc = zp_state_get_when_available (state, absent, 1000);
    s_note (transcript, size, "available %d", rc);
    text = zp_state_get_when_change (state, key, 50);
    s_note (transcript, size, "change %s %s", text? text: "NULL", test_errno_name (errno));
    zstr_free (&text);
    rc = zp_state_get_when (state, s_key_is_seven, absent, 1000);
    s_note (transcript, size, "predicate %d", rc);
    //  Errors: a reserved key, a value too large
    rc = zp_state_set_str (state, "$reserved", "x");
    s_note (transcript, size, "reserved %d %s", rc, test_errno_name (errno));
    size_t big_size = ZP_VALUE_MAX + 1;
    byte *big = (byte *) calloc (1, big_size);
    rc = big? zp_state_set_bytes (state, other, big, big_size): -2;
    s_note (transcript, size, "too large %d %s", rc, test_errno_name (errno));
    free (big);
    //  A large value, whole
    size_t large_size = 1024 * 1024;
    byte *large = (byte *) malloc (large_size);
    for (size_t index = 0; large && index < large_size; index++)
        large [index] = (byte) (index * 13);
    rc = large? zp_state_set_bytes (state, other, large, large_size): -2;
    chunk = zp_state_get_bytes (state, other);
    s_note (transcript, size, "large %d %zu %d", rc, chunk? zchunk_size (chunk): 0,
            chunk && large && memcmp (zchunk_data (chunk), large, large_size) == 0);
    zchunk_destroy (&chunk);
    free (large);
    //  A watch sees a change made after it
    zp_watch_t *watch = zp_watch_new (state, prefix);
    rc = zp_state_delete (state, key);
    char *name = NULL, *value = NULL;
    int next = watch? zp_watch_next (watch, &name, &value, 5000): -2;
    s_note (transcript, size, "delete %d watch %d %s %s", rc, next,
            name? name + strlen (prefix): "NULL", value? value: "NULL");
    zstr_free (&name);
    zstr_free (&value);
    zp_watch_destroy (&watch);
    rc = zp_state_delete (state, key);
    s_note (transcript, size, "delete again %d %s", rc, test_errno_name (errno));
    //  Bad keys and wrong types
    char long_key [ZP_KEY_MAX + 2];
    memset (long_key, 'k', sizeof long_key - 1);
    long_key [sizeof long_key - 1] = 0;
    text = zp_state_get_str (state, "");
    s_note (transcript, size, "empty key %s %s", text? text: "NULL", test_errno_name (errno));
    zstr_free (&text);
    rc = zp_state_set_str (state, long_key, "x");
    s_note (transcript, size, "long key %d %s", rc, test_errno_name (errno));
    rc = zp_state_set_str (state, key, "not a number");
    int64_t number = 0;
    rc += zp_state_get_int (state, key, &number);
    s_note (transcript, size, "get_int text %d %s", rc, test_errno_name (errno));
    rc = zp_state_set_bytes (state, key, "", 0);
    chunk = zp_state_get_bytes (state, key);
    s_note (transcript, size, "empty value %d %zu", rc, chunk? zchunk_size (chunk): 99);
    zchunk_destroy (&chunk);
    //  Batches: applied whole, in order, seen whole by a watch; or not at all
    watch = zp_watch_new (state, prefix);
    zp_txn_t *txn = zp_txn_new (state);
    int64_t batch_result = 0;
    rc = txn? zp_txn_set_str (txn, key, "batched"): -2;
    rc += txn? zp_txn_incr (txn, absent, 10, &batch_result): -2;
    rc += txn? zp_txn_require_str (txn, other, NULL): -2;
    s_note (transcript, size, "txn adds %d", rc);
    rc = txn? zp_txn_commit (txn): -2;
    s_note (transcript, size, "txn precondition %d %s %" PRId64, rc, test_errno_name (errno),
            batch_result);
    rc = txn? zp_txn_set_str (txn, key, "batched"): -2;
    rc += txn? zp_txn_incr (txn, absent, 10, &batch_result): -2;
    rc += txn? zp_txn_delete (txn, other): -2;
    rc += txn? zp_txn_commit (txn): -2;
    s_note (transcript, size, "txn %d %" PRId64, rc, batch_result);
    for (int event = 0; event < 3; event++) {
        next = watch? zp_watch_next (watch, &name, &value, 5000): -2;
        s_note (transcript, size, "txn watch %d %s %s", next,
                name? name + strlen (prefix): "NULL", value? value: "NULL");
        zstr_free (&name);
        zstr_free (&value);
    }
    zp_watch_destroy (&watch);
    rc = txn? zp_txn_incr (txn, key, 1, NULL): -2;
    rc += txn? zp_txn_commit (txn): -2;
    s_note (transcript, size, "txn incr text %d %s", rc, test_errno_name (errno));
    rc = txn? zp_txn_set_str (txn, "", "x"): -2;
    s_note (transcript, size, "txn bad key %d %s", rc, test_errno_name (errno));
    rc = txn? zp_txn_commit (txn): -2;
    s_note (transcript, size, "txn empty %d", rc);
    zp_txn_destroy (&txn);
    //  A snapshot of the prefix, read locally
    zp_state_t *snapshot = zp_state_snapshot (state, prefix);
    text = snapshot? zp_state_get_str (snapshot, key): NULL;
    s_note (transcript, size, "snapshot %zu %s %d", snapshot? zp_state_size (snapshot): 0,
            text? text: "NULL", snapshot? zp_state_set_str (snapshot, key, "x"): -2);
    zstr_free (&text);
    zp_state_destroy (&snapshot);
    rc = zp_state_delete (state, other);
    s_note (transcript, size, "delete deleted %d %s", rc, test_errno_name (errno));
}

#define TRANSCRIPT_MAX  8192

static void
s_exercise_worker (zp_worker_t *self, void *props)
{
    char transcript [TRANSCRIPT_MAX];
    s_exercise (zp_worker_state (self), "lane", transcript, sizeof transcript);
    ASSERT_EQ (zp_state_set_str (zp_worker_state (self), "transcript/lane", transcript), 0);
}

TEST_IMPL (lane_same_results)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    //  A worker, on its direct lane
    zp_proc_t *proc = zp_ctx_spawn (ctx, "exercise", s_exercise_worker, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, 30000), 0);
    char *lane = zp_state_get_str (zp_ctx_state (ctx), "transcript/lane");
    ASSERT_NOT_NULL (lane);
    //  A client on ipc://
    char ipc [TRANSCRIPT_MAX];
    zp_state_t *client = zp_state_connect (zp_ctx_endpoint (ctx), NULL);
    ASSERT_NOT_NULL (client);
    s_exercise (client, "ipc", ipc, sizeof ipc);
    zp_state_destroy (&client);
    ASSERT_STR_EQ (ipc, lane);
    zp_ctx_destroy (&ctx);

    //  A client on tcp:// with CURVE
    ASSERT_EQ (setenv ("ZPROC_CURVE", "1", 1), 0);
    ctx = zp_ctx_new ();
    unsetenv ("ZPROC_CURVE");
    ASSERT_NOT_NULL (ctx);
    const char *endpoint = zp_ctx_bind (ctx, "tcp://127.0.0.1:*");
    ASSERT_NOT_NULL (endpoint);
    zcert_t *cert = zcert_new ();
    ASSERT_EQ (zp_ctx_allow (ctx, zcert_public_txt (cert)), 0);
    client = zp_state_connect_cert (endpoint, zp_ctx_public_key (ctx), cert);
    ASSERT_NOT_NULL (client);
    char tcp [TRANSCRIPT_MAX];
    s_exercise (client, "tcp", tcp, sizeof tcp);
    zp_state_destroy (&client);
    zcert_destroy (&cert);
    ASSERT_STR_EQ (tcp, lane);
    //  And a worker of the CURVE context, on its lane: the same again
    proc = zp_ctx_spawn (ctx, "exercise", s_exercise_worker, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, 30000), 0);
    char *curve_lane = zp_state_get_str (zp_ctx_state (ctx), "transcript/lane");
    ASSERT_NOT_NULL (curve_lane);
    ASSERT_STR_EQ (curve_lane, lane);
    zstr_free (&curve_lane);
    zstr_free (&lane);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  --------------------------------------------------------------------------
//  A worker needs no path to the store: with the ipc endpoint's file gone,
//  nobody can connect, yet a worker spawned now works on its lane, parked
//  requests included

static void
s_pathless_worker (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    int64_t value = 0;
    ASSERT_EQ (zp_state_incr (state, "pathless/count", 1, &value), 0);
    ASSERT_EQ (value, 1);
    //  Parked until the parent answers
    ASSERT_EQ (zp_state_set_str (state, "pathless/ready", "1"), 0);
    char *answer = zp_state_get_when_change (state, "pathless/answer", 10000);
    ASSERT_NOT_NULL (answer);
    ASSERT_STR_EQ (answer, "42");
    zstr_free (&answer);
    ASSERT_EQ (zp_state_get_when_equal_str (state, "pathless/answer", "43", 10000), 0);
}

TEST_IMPL (lane_no_path)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    const char *endpoint = zp_ctx_endpoint (ctx);
    ASSERT_EQ (strncmp (endpoint, "ipc://", 6), 0);
    ASSERT_EQ (unlink (endpoint + 6), 0);
    zp_proc_t *proc = zp_ctx_spawn (ctx, "pathless", s_pathless_worker, NULL);
    ASSERT_NOT_NULL (proc);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_EQ (zp_state_get_when_equal_str (state, "pathless/ready", "1", 10000), 0);
    ASSERT_EQ (zp_state_set_str (state, "pathless/answer", "42"), 0);
    //  Once more, for the second parked request
    while (zp_state_get_when_equal_str (state, "pathless/answer", "43", 50) < 0) {
        ASSERT_ERRNO_EQ (ETIMEDOUT);
        ASSERT_EQ (zp_state_set_str (state, "pathless/answer", "43"), 0);
    }
    ASSERT_EQ (zp_proc_wait (proc, 10000), 0);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  --------------------------------------------------------------------------
//  Restarted workers get a lane too, and nested workers reach the store

static void
s_restarted_worker (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    int64_t runs = 0;
    ASSERT_EQ (zp_state_incr (state, "runs/restarted", 1, &runs), 0);
    if (runs == 1)
        exit (3);               //  Restarted: transient, and it failed
    char transcript [TRANSCRIPT_MAX];
    s_exercise (state, "restarted", transcript, sizeof transcript);
    ASSERT_EQ (zp_state_set_str (state, "transcript/restarted", transcript), 0);
}

static void
s_nested_child (zp_worker_t *self, void *props)
{
    char transcript [TRANSCRIPT_MAX];
    s_exercise (zp_worker_state (self), "nested", transcript, sizeof transcript);
    ASSERT_EQ (zp_state_set_str (zp_worker_state (self), "transcript/nested", transcript), 0);
}

static void
s_nested_parent (zp_worker_t *self, void *props)
{
    zp_proc_t *child = zp_worker_spawn (self, "nested-child", s_nested_child, NULL);
    ASSERT_NOT_NULL (child);
    ASSERT_EQ (zp_proc_wait (child, 30000), 0);
}

TEST_IMPL (lane_nested_restarted)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    zp_proc_t *proc = zp_ctx_spawn (ctx, "exercise", s_exercise_worker, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, 30000), 0);
    char *lane = zp_state_get_str (state, "transcript/lane");
    ASSERT_NOT_NULL (lane);

    ASSERT_EQ (zp_ctx_set_restart (ctx, ZP_RESTART_TRANSIENT), 0);
    ASSERT_EQ (zp_ctx_set_backoff (ctx, 10, 10), 0);
    proc = zp_ctx_spawn (ctx, "restarted", s_restarted_worker, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, 30000), 0);
    char *text = zp_state_get_str (state, "transcript/restarted");
    ASSERT_NOT_NULL (text);
    ASSERT_STR_EQ (text, lane);
    zstr_free (&text);

    ASSERT_EQ (zp_ctx_set_restart (ctx, ZP_RESTART_TEMPORARY), 0);
    proc = zp_ctx_spawn (ctx, "nested-parent", s_nested_parent, NULL);
    ASSERT_NOT_NULL (proc);
    ASSERT_EQ (zp_proc_wait (proc, 30000), 0);
    text = zp_state_get_str (state, "transcript/nested");
    ASSERT_NOT_NULL (text);
    ASSERT_STR_EQ (text, lane);
    zstr_free (&text);
    zstr_free (&lane);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  --------------------------------------------------------------------------
//  A dead worker is seen at once (end of its lane): its lane and what it
//  parked are gone without waiting for any timeout or lease

//  A figure of the store's INFO, or -1
static int64_t
s_info (zp_state_t *state, const char *name)
{
    char *info = zp_state_info (state);
    ASSERT_NOT_NULL (info);
    int64_t value = -1;
    size_t size = strlen (name);
    for (char *line = info; line && *line; line = strchr (line, '\n'), line = line? line + 1: NULL)
        if (strncmp (line, name, size) == 0 && line [size] == ' ')
            value = atoll (line + size + 1);
    zstr_free (&info);
    return value;
}

static void
s_parking_worker (zp_worker_t *self, void *props)
{
    //  Parked for ever, until killed
    zp_state_get_when_change (zp_worker_state (self), "dead/key", -1);
}

//  Kill proc, one of count workers parked on dead/key: its lane and what
//  it parked go at once (no other worker holds an end of its lane), the
//  others' stay, and the change it waited for breaks nothing
static void
s_assert_dead_worker_freed (zp_ctx_t *ctx, zp_proc_t *proc, int64_t count)
{
    zp_state_t *state = zp_ctx_state (ctx);
    int64_t deadline = zclock_mono () + test_ms (5000);
    while (s_info (state, "parked") < count)
        ASSERT_LT (zclock_mono (), deadline);
    ASSERT_EQ (s_info (state, "lanes"), count);
    ASSERT_EQ (zp_proc_kill (proc, SIGKILL), 0);
    ASSERT_EQ (zp_proc_wait (proc, test_ms (5000)), 128 + SIGKILL);
    //  At once: well before any lease or timeout would run out
    deadline = zclock_mono () + 2000;
    while (s_info (state, "lanes") != count - 1 || s_info (state, "parked") != count - 1)
        ASSERT_LT (zclock_mono (), deadline);
    ASSERT_EQ (zp_state_set_str (state, "dead/key", "x"), 0);
    ASSERT_STATE_STR (state, "dead/key", "x");
}

TEST_IMPL (lane_dead_worker_freed)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_proc_t *proc = zp_ctx_spawn (ctx, "parker", s_parking_worker, NULL);
    ASSERT_NOT_NULL (proc);
    s_assert_dead_worker_freed (ctx, proc, 1);
    ASSERT_EQ (s_info (zp_ctx_state (ctx), "parked"), 0);
    zp_ctx_destroy (&ctx);
    return 0;
}

//  zp_ctx_start_all makes every worker's lane before it forks the first:
//  each worker still closes the others' ends, so the death of the one
//  forked between the others is seen at once
TEST_IMPL (lane_started_together_freed)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    ASSERT_EQ (zp_ctx_process_factory (ctx, NULL, s_parking_worker, s_parking_worker,
                                       s_parking_worker, NULL), 0);
    ASSERT_EQ (zp_ctx_start_all (ctx), 0);
    zp_proc_t *middle = zp_ctx_proc (ctx, "worker-2");
    ASSERT_NOT_NULL (middle);
    s_assert_dead_worker_freed (ctx, middle, 3);
    //  The others were woken by the change, as parked watchers are
    ASSERT_EQ (zp_ctx_wait_all (ctx, test_ms (5000)), 128 + SIGKILL);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  --------------------------------------------------------------------------
//  Workers spawned by workers, and restarted workers at every level, get a
//  lane too: with the store's ipc file gone nothing can connect, yet a
//  restarted worker, a worker's worker (restarted by its parent's reaper)
//  and that one's own worker all work, parked requests included; INFO
//  counts their lanes: one per worker, and three per worker's own context
//  (its handle, its reaper's, and the one that asks for its workers' lanes)

//  Count a run; the first run of a worker named "crash-..." fails (exit 3)
//  and is restarted
static void
s_pathless_count (zp_worker_t *self)
{
    char key [64];
    snprintf (key, sizeof key, "runs/%s", zp_worker_name (self));
    int64_t runs = 0;
    ASSERT_EQ (zp_state_incr (zp_worker_state (self), key, 1, &runs), 0);
    if (runs == 1 && strncmp (zp_worker_name (self), "crash-", 6) == 0)
        exit (3);
}

//  Ready, then parked until the parent says go
static void
s_pathless_park (zp_worker_t *self)
{
    zp_state_t *state = zp_worker_state (self);
    char key [64];
    snprintf (key, sizeof key, "ready/%s", zp_worker_name (self));
    ASSERT_EQ (zp_state_set_str (state, key, "1"), 0);
    ASSERT_EQ (zp_state_get_when_equal_str (state, "pathless/go", "1", 30000), 0);
}

static void
s_pathless_leaf (zp_worker_t *self, void *props)
{
    s_pathless_count (self);
    s_pathless_park (self);
}

//  A worker that restarts its failing workers and waits for them
static void
s_pathless_tree (zp_worker_t *self, void *props)
{
    s_pathless_count (self);
    zp_ctx_t *children = zp_worker_ctx (self);
    ASSERT_NOT_NULL (children);
    ASSERT_EQ (zp_ctx_set_restart (children, ZP_RESTART_TRANSIENT), 0);
    ASSERT_EQ (zp_ctx_set_backoff (children, 10, 10), 0);
    //  The middle of the tree forks a grandchild; a leaf forks nothing
    bool middle = props && streq ((const char *) props, "crash-child");
    zp_proc_t *child = zp_worker_spawn (self, (const char *) props,
                                        middle? s_pathless_tree: s_pathless_leaf,
                                        middle? "grandchild": NULL);
    ASSERT_NOT_NULL (child);
    s_pathless_park (self);
    ASSERT_EQ (zp_proc_wait (child, 30000), 0);
}

TEST_IMPL (lane_nested_restarted_no_path)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    const char *endpoint = zp_ctx_endpoint (ctx);
    ASSERT_EQ (unlink (endpoint + 6), 0);
    ASSERT_EQ (zp_ctx_set_restart (ctx, ZP_RESTART_TRANSIENT), 0);
    ASSERT_EQ (zp_ctx_set_backoff (ctx, 10, 10), 0);
    //  Restarted by our reaper
    zp_proc_t *restarted = zp_ctx_spawn (ctx, "crash-top", s_pathless_leaf, NULL);
    ASSERT_NOT_NULL (restarted);
    //  nested -> crash-child (restarted by nested's reaper) -> grandchild
    zp_proc_t *tree = zp_ctx_spawn (ctx, "nested", s_pathless_tree, "crash-child");
    ASSERT_NOT_NULL (tree);
    const char *names [] = { "crash-top", "nested", "crash-child", "grandchild" };
    for (size_t index = 0; index < 4; index++) {
        char key [64];
        snprintf (key, sizeof key, "ready/%s", names [index]);
        ASSERT_EQ (zp_state_get_when_equal_str (state, key, "1", test_ms (30000)), 0);
    }
    ASSERT_STATE_STR (state, "runs/crash-top", "2");
    ASSERT_STATE_STR (state, "runs/crash-child", "2");
    ASSERT_STATE_STR (state, "runs/grandchild", "1");
    //  Four workers, two of them with a context of their own; the lanes of
    //  the two that failed ended with them
    ASSERT_EQ (s_info (state, "lanes"), 4 + 2 * 3);
    ASSERT_EQ (zp_state_set_str (state, "pathless/go", "1"), 0);
    ASSERT_EQ (zp_proc_wait (restarted, test_ms (30000)), 0);
    ASSERT_EQ (zp_proc_wait (tree, test_ms (30000)), 0);
    int64_t deadline = zclock_mono () + test_ms (5000);
    while (s_info (state, "lanes") != 0)
        ASSERT_LT (zclock_mono (), deadline);
    zp_ctx_destroy (&ctx);
    return 0;
}
