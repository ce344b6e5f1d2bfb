/*  =========================================================================
    test-hostile - no client can hurt the store: a client that never reads,
    one that dies with requests parked, hundreds of connections, silent tcp
    peers. The store lives in this test process; the hostile clients are
    forked children that speak the wire protocol with raw libzmq sockets.
    =========================================================================
*/

#include "harness.h"
#include "zp_classes.h"
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#define MIB         (1024 * 1024)

//  This process's resident memory, in bytes, once free memory went back
static int64_t
s_rss (void)
{
    malloc_trim (0);
    FILE *file = fopen ("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (file) {
        if (fscanf (file, "%ld %ld", &size, &resident) != 2)
            resident = 0;
        fclose (file);
    }
    return (int64_t) resident * sysconf (_SC_PAGESIZE);
}

//  Send one request on a raw socket: header then frames
static int
s_raw_send (void *sock, int command, int flags, uint32_t request_id,
            const zp_part_t *parts, size_t nparts)
{
    zp_header_t header = { .command = (uint8_t) command, .flags = (uint8_t) flags,
                           .request_id = request_id };
    byte buffer [ZP_HEADER_SIZE];
    zp__header_encode (&header, buffer);
    if (zmq_send (sock, buffer, sizeof buffer, nparts? ZMQ_SNDMORE: 0) < 0)
        return -1;
    for (size_t index = 0; index < nparts; index++)
        if (zmq_send (sock, parts [index].data, parts [index].size,
                      index + 1 < nparts? ZMQ_SNDMORE: 0) < 0)
            return -1;
    return 0;
}

//  Fork a child that runs fn (endpoint, arg) with a fresh libzmq context,
//  then says "done" on a pipe (*done_fd) and waits to be killed
typedef void (s_child_fn) (void *sock, void *arg);

static pid_t
s_hostile_child (const char *endpoint, int rcvhwm, s_child_fn *fn, void *arg, int *done_fd)
{
    int fds [2];
    ASSERT_EQ (pipe (fds), 0);
    pid_t pid = fork ();
    ASSERT (pid >= 0);
    if (pid == 0) {
        //  Dies with the test, whatever happens to it
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        close (fds [0]);
        void *context = zmq_ctx_new ();
        void *sock = zmq_socket (context, ZMQ_DEALER);
        zmq_setsockopt (sock, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
        int unlimited = 0;
        zmq_setsockopt (sock, ZMQ_SNDHWM, &unlimited, sizeof unlimited);
        if (!sock || zmq_connect (sock, endpoint) != 0)
            _exit (2);
        fn (sock, arg);
        if (write (fds [1], "d", 1) != 1)
            _exit (3);
        while (true)
            pause ();
    }
    close (fds [1]);
    *done_fd = fds [0];
    return pid;
}

//  True when the child said done within timeout_ms
static bool
s_child_done (int done_fd, int timeout_ms)
{
    struct pollfd item = { done_fd, POLLIN, 0 };
    return poll (&item, 1, timeout_ms) == 1;
}

static void
s_child_kill (pid_t pid, int done_fd)
{
    kill (pid, SIGKILL);
    waitpid (pid, NULL, 0);
    close (done_fd);
}


//  ---------------------------------------------------------------------------
//  A client that floods GETs of a 64 KiB value and never reads

#define FLOOD_GETS      16000

static void
s_flood_gets (void *sock, void *arg)
{
    zp_part_t key = { "big", 3 };
    for (uint32_t id = 1; id <= FLOOD_GETS; id++)
        if (s_raw_send (sock, ZP_CMD_GET, 0, id, &key, 1) < 0)
            _exit (4);
}

TEST_IMPL (hostile_slow_reader)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    char *big = (char *) malloc (64 * 1024);
    ASSERT_NOT_NULL (big);
    memset (big, 'v', 64 * 1024);
    ASSERT_EQ (zp_state_set_bytes (state, "big", big, 64 * 1024), 0);
    free (big);
    ASSERT_EQ (zp_state_set_str (state, "small", "ok"), 0);
    int64_t before = s_rss (), peak = before;
    int64_t slowest = 0;

    int done_fd;
    pid_t pid = s_hostile_child (zp_ctx_endpoint (ctx), 1, s_flood_gets, NULL, &done_fd);
    //  While it floods and for five seconds after, others are served in time
    bool done = false;
    int64_t until = zclock_mono () + test_ms (60000);
    while (zclock_mono () < until) {
        if (!done && s_child_done (done_fd, 0)) {
            done = true;
            until = zclock_mono () + 5000;
        }
        int64_t start = zclock_mono ();
        ASSERT_STATE_STR (state, "small", "ok");
        int64_t took = zclock_mono () - start;
        slowest = took > slowest? took: slowest;
        int64_t rss = s_rss ();
        peak = rss > peak? rss: peak;
        zclock_sleep (50);
    }
    ASSERT (done);
    printf ("# slow reader: %d GETs of 64 KiB unread, parent RSS %" PRId64 " MB -> peak %"
            PRId64 " MB (+%" PRId64 " MB), slowest other call %" PRId64 " ms\n",
            FLOOD_GETS, before / MIB, peak / MIB, (peak - before) / MIB, slowest);
    s_child_kill (pid, done_fd);
    ASSERT_LE (peak - before, 256 * MIB);
    ASSERT_LE (slowest, 2000);
    ASSERT_STATE_STR (state, "small", "ok");
    zp_ctx_destroy (&ctx);
    return 0;
}


//  ---------------------------------------------------------------------------
//  A client that parks what it can and dies

#define PARKED_EQUAL    20
#define PARKED_CHANGE   10000

static void
s_park_and_watch (void *sock, void *arg)
{
    size_t size = 4 * MIB;
    char *value = (char *) malloc (size);
    if (!value)
        _exit (5);
    memset (value, 'w', size);
    uint32_t id = 1;
    for (int index = 0; index < PARKED_EQUAL; index++) {
        zp_part_t parts [2] = { { "never", 5 }, { value, size } };
        if (s_raw_send (sock, ZP_CMD_WAIT_EQUAL, 0, id++, parts, 2) < 0)
            _exit (4);
    }
    for (int index = 0; index < PARKED_CHANGE; index++) {
        char key [32];
        snprintf (key, sizeof key, "quiet/%d", index);
        zp_part_t part = { key, strlen (key) };
        if (s_raw_send (sock, ZP_CMD_WAIT_CHANGE, 0, id++, &part, 1) < 0)
            _exit (4);
    }
    //  A watch stream too
    byte credit [4] = { 0, 0, 4, 0 };
    zp_part_t parts [2] = { { "", 0 }, { credit, sizeof credit } };
    if (s_raw_send (sock, ZP_CMD_WATCH, 0, id++, parts, 2) < 0)
        _exit (4);
    //  Wait until the store has taken them all: it answers those it refuses
    //  (ENOBUFS) and parks the rest; two seconds of silence end it
    zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
    while (zmq_poll (&item, 1, 2000) == 1) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        zmq_msg_recv (&msg, sock, 0);
        zmq_msg_close (&msg);
    }
    free (value);
}

TEST_IMPL (hostile_dead_client)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_EQ (zp_state_set_str (state, "small", "ok"), 0);
    int64_t before = s_rss ();

    int done_fd;
    pid_t pid = s_hostile_child (zp_ctx_endpoint (ctx), 1000, s_park_and_watch, NULL, &done_fd);
    ASSERT (s_child_done (done_fd, test_ms (60000)));
    int64_t parked = s_rss ();
    s_child_kill (pid, done_fd);
    //  What it left is freed within 20 s
    int64_t deadline = zclock_mono () + 20000;
    int64_t after = s_rss ();
    while (after - before > 16 * MIB && zclock_mono () < deadline) {
        zclock_sleep (250);
        after = s_rss ();
    }
    printf ("# dead client: parent RSS %" PRId64 " MB, %" PRId64 " MB with its requests "
            "parked, %" PRId64 " MB after it died (%" PRId64 " ms)\n", before / MIB,
            parked / MIB, after / MIB, 20000 - (deadline - zclock_mono ()));
    ASSERT_LE (parked - before, 256 * MIB);
    ASSERT_LE (after - before, 16 * MIB);
    ASSERT_STATE_STR (state, "small", "ok");
    zp_ctx_destroy (&ctx);
    return 0;
}


//  ---------------------------------------------------------------------------
//  A pipeline that does not read meets the budget: ENOBUFS, then service
//  again once it has read its replies; one request for a 16 MiB value is
//  always answered

TEST_IMPL (hostile_budget_enobufs)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    size_t size = 1024 * 1024;
    char *value = (char *) calloc (1, ZP_VALUE_MAX);
    ASSERT_NOT_NULL (value);
    ASSERT_EQ (zp_state_set_bytes (state, "mib", value, size), 0);
    ASSERT_EQ (zp_state_set_bytes (state, "max", value, ZP_VALUE_MAX), 0);
    free (value);

    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    ASSERT_NOT_NULL (dealer);
    zsock_set_rcvhwm (dealer, 1);
    ASSERT_EQ (zsock_connect (dealer, "%s", zp_ctx_endpoint (ctx)), 0);
    void *sock = zsock_resolve (dealer);
    //  200 GETs of 1 MiB, unread: some 64 are queued, the rest refused
    const uint32_t total = 200;
    zp_part_t key = { "mib", 3 };
    for (uint32_t id = 1; id <= total; id++)
        ASSERT_EQ (s_raw_send (sock, ZP_CMD_GET, 0, id, &key, 1), 0);
    zclock_sleep (500);
    uint32_t ok = 0, refused = 0;
    while (ok + refused < total) {
        zmsg_t *reply = zmsg_recv (dealer);
        ASSERT_NOT_NULL (reply);
        zframe_t *frame = zmsg_first (reply);
        zp_header_t header;
        ASSERT_EQ (zp__header_decode (&header, zframe_data (frame), zframe_size (frame)), 0);
        ASSERT (header.status == ZP_STATUS_OK || header.status == ZP_STATUS_NO_BUFFERS);
        ok += header.status == ZP_STATUS_OK;
        refused += header.status == ZP_STATUS_NO_BUFFERS;
        zmsg_destroy (&reply);
    }
    printf ("# %u GETs of 1 MiB unread: %u answered, %u ENOBUFS\n", total, ok, refused);
    ASSERT_GE (ok, 60);
    ASSERT_GE (refused, 1);
    ASSERT_EQ (zp__status_errno (ZP_STATUS_NO_BUFFERS), ENOBUFS);
    //  Read up, it is served again, a 16 MiB value included
    zp_part_t max = { "max", 3 };
    ASSERT_EQ (s_raw_send (sock, ZP_CMD_GET, 0, total + 1, &max, 1), 0);
    zmsg_t *reply = zmsg_recv (dealer);
    ASSERT_NOT_NULL (reply);
    ASSERT_EQ (zmsg_size (reply), 2);
    zframe_t *frame = zmsg_first (reply);
    zp_header_t header;
    ASSERT_EQ (zp__header_decode (&header, zframe_data (frame), zframe_size (frame)), 0);
    ASSERT_EQ (header.status, ZP_STATUS_OK);
    ASSERT_EQ (zframe_size (zmsg_next (reply)), ZP_VALUE_MAX);
    zmsg_destroy (&reply);
    zsock_destroy (&dealer);
    zp_ctx_destroy (&ctx);
    return 0;
}
