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
    zmsg_t *msg = s_lane_recv (client);
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
