/*  =========================================================================
    test-proto.c - the request decoder (actors/zp_proto.c) alone: every
    command's valid shape and every error path, without a store or a socket
    =========================================================================
*/

#include "harness.h"
#include "zp_classes.h"

//  A request being built: a header and up to seven more frames
typedef struct {
    byte header [ZP_HEADER_SIZE];
    zp_part_t frames [8];
    size_t count;
} s_msg_t;

static void
s_msg_init (s_msg_t *msg, int command, int flags)
{
    zp_header_t header = { .command = (uint8_t) command, .flags = (uint8_t) flags,
                           .request_id = 42, .seq = 7 };
    zp__header_encode (&header, msg->header);
    msg->frames [0] = (zp_part_t) { msg->header, ZP_HEADER_SIZE };
    msg->count = 1;
}

static void
s_msg_add (s_msg_t *msg, const void *data, size_t size)
{
    msg->frames [msg->count++] = (zp_part_t) { data, size };
}

static void
s_msg_add_str (s_msg_t *msg, const char *string)
{
    s_msg_add (msg, string, strlen (string));
}

static int
s_decode (s_msg_t *msg, zp_request_t *request)
{
    return zp__request_decode (request, msg->frames, msg->count);
}

//  Decode a command with the given string frames; the status
static int
s_status (int command, int flags, ...)
{
    s_msg_t msg;
    s_msg_init (&msg, command, flags);
    va_list args;
    va_start (args, flags);
    const char *frame;
    while ((frame = va_arg (args, const char *)))
        s_msg_add_str (&msg, frame);
    va_end (args);
    zp_request_t request;
    return s_decode (&msg, &request);
}


//  Nobody to answer: no frame, a header of the wrong size or version
TEST_IMPL (proto_bad_header)
{
    zp_request_t request;
    ASSERT_EQ (zp__request_decode (&request, NULL, 0), -1);
    s_msg_t msg;
    s_msg_init (&msg, ZP_CMD_HELLO, 0);
    ASSERT_EQ (zp__request_decode (&request, msg.frames, 0), -1);
    msg.frames [0].size = ZP_HEADER_SIZE - 1;
    ASSERT_EQ (s_decode (&msg, &request), -1);
    msg.frames [0].size = ZP_HEADER_SIZE + 1;
    ASSERT_EQ (s_decode (&msg, &request), -1);
    msg.frames [0].size = 0;
    ASSERT_EQ (s_decode (&msg, &request), -1);
    s_msg_init (&msg, ZP_CMD_HELLO, 0);
    msg.header [0] = ZP_PROTO_VERSION + 1;
    ASSERT_EQ (s_decode (&msg, &request), -1);
    //  A good header decodes, and the request echoes its id
    s_msg_init (&msg, ZP_CMD_HELLO, 0);
    ASSERT_EQ (s_decode (&msg, &request), 0);
    ASSERT_EQ (request.header.command, ZP_CMD_HELLO);
    ASSERT_EQ (request.header.request_id, 42);
    ASSERT_EQ (request.header.seq, 7);
    return 0;
}

//  Commands a client may not send, and too many frames: EPROTO, with the
//  header decoded so the reply can echo the request id
TEST_IMPL (proto_bad_command)
{
    int commands [] = { 0, ZP_CMD_EVENT, ZP_CMD_GAP, ZP_CMD_COUNT, 200, 255 };
    for (size_t index = 0; index < sizeof commands / sizeof commands [0]; index++) {
        s_msg_t msg;
        s_msg_init (&msg, commands [index], 0);
        zp_request_t request;
        ASSERT_EQ (s_decode (&msg, &request), ZP_STATUS_PROTOCOL);
        ASSERT_EQ (request.header.request_id, 42);
    }
    //  ZP_REQUEST_FRAMES_MAX + 1 frames: too many, whatever the command
    ASSERT_EQ (s_status (ZP_CMD_CAS, 0, "k", "v", "e", "x", NULL), ZP_STATUS_PROTOCOL);
    ASSERT_EQ (s_status (ZP_CMD_HELLO, 0, "a", "b", "c", "d", "e", NULL), ZP_STATUS_PROTOCOL);
    return 0;
}

//  Every keyed command wants a valid key in frame 1: EINVAL
TEST_IMPL (proto_bad_key)
{
    int keyed [] = { ZP_CMD_GET, ZP_CMD_SET, ZP_CMD_DEL, ZP_CMD_EXISTS, ZP_CMD_INCR,
                     ZP_CMD_CAS, ZP_CMD_WAIT_CHANGE, ZP_CMD_WAIT_EQUAL,
                     ZP_CMD_WAIT_AVAILABLE };
    char long_key [ZP_KEY_MAX + 2];
    memset (long_key, 'k', sizeof long_key);
    for (size_t index = 0; index < sizeof keyed / sizeof keyed [0]; index++) {
        int command = keyed [index];
        zp_request_t request;
        s_msg_t msg;
        //  No key at all
        s_msg_init (&msg, command, 0);
        ASSERT_EQ (s_decode (&msg, &request), ZP_STATUS_INVALID);
        //  Empty, too long, with a NUL
        s_msg_init (&msg, command, 0);
        s_msg_add (&msg, "", 0);
        ASSERT_EQ (s_decode (&msg, &request), ZP_STATUS_INVALID);
        s_msg_init (&msg, command, 0);
        s_msg_add (&msg, long_key, ZP_KEY_MAX + 1);
        ASSERT_EQ (s_decode (&msg, &request), ZP_STATUS_INVALID);
        s_msg_init (&msg, command, 0);
        s_msg_add (&msg, "a\0b", 3);
        ASSERT_EQ (s_decode (&msg, &request), ZP_STATUS_INVALID);
    }
    //  The longest key is fine, and comes out NUL-terminated
    s_msg_t msg;
    zp_request_t request;
    s_msg_init (&msg, ZP_CMD_GET, 0);
    s_msg_add (&msg, long_key, ZP_KEY_MAX);
    ASSERT_EQ (s_decode (&msg, &request), 0);
    ASSERT_EQ (request.key_size, ZP_KEY_MAX);
    ASSERT_EQ (strlen (request.key), ZP_KEY_MAX);
    return 0;
}

//  Each command's fixed frames: missing or extra ones are EPROTO
TEST_IMPL (proto_frame_counts)
{
    //  Header only
    ASSERT_EQ (s_status (ZP_CMD_HELLO, 0, NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_HELLO, 0, "x", NULL), ZP_STATUS_PROTOCOL);
    ASSERT_EQ (s_status (ZP_CMD_SIZE, 0, NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_SIZE, 0, "x", NULL), ZP_STATUS_PROTOCOL);
    ASSERT_EQ (s_status (ZP_CMD_CANCEL, 0, NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_CANCEL, 0, "x", NULL), ZP_STATUS_PROTOCOL);
    ASSERT_EQ (s_status (ZP_CMD_CREDIT, 0, NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_CREDIT, 0, "x", NULL), ZP_STATUS_PROTOCOL);
    //  Key only
    int key_only [] = { ZP_CMD_GET, ZP_CMD_DEL, ZP_CMD_EXISTS, ZP_CMD_WAIT_CHANGE,
                        ZP_CMD_WAIT_AVAILABLE };
    for (size_t index = 0; index < sizeof key_only / sizeof key_only [0]; index++) {
        ASSERT_EQ (s_status (key_only [index], 0, "k", NULL), 0);
        ASSERT_EQ (s_status (key_only [index], 0, "k", "x", NULL), ZP_STATUS_PROTOCOL);
    }
    //  Key and value
    ASSERT_EQ (s_status (ZP_CMD_SET, 0, "k", NULL), ZP_STATUS_PROTOCOL);
    ASSERT_EQ (s_status (ZP_CMD_SET, 0, "k", "v", NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_SET, 0, "k", "v", "x", NULL), ZP_STATUS_PROTOCOL);
    ASSERT_EQ (s_status (ZP_CMD_WAIT_EQUAL, 0, "k", NULL), ZP_STATUS_PROTOCOL);
    ASSERT_EQ (s_status (ZP_CMD_WAIT_EQUAL, 0, "k", "v", NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_WAIT_EQUAL, 0, "k", "v", "x", NULL), ZP_STATUS_PROTOCOL);
    //  CAS: an expected value unless ZP_FLAG_ABSENT
    ASSERT_EQ (s_status (ZP_CMD_CAS, 0, "k", "v", "e", NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_CAS, 0, "k", "v", NULL), ZP_STATUS_PROTOCOL);
    ASSERT_EQ (s_status (ZP_CMD_CAS, ZP_FLAG_ABSENT, "k", "v", NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_CAS, ZP_FLAG_ABSENT, "k", "v", "e", NULL),
               ZP_STATUS_PROTOCOL);
    ASSERT_EQ (s_status (ZP_CMD_CAS, ZP_FLAG_ABSENT, "k", NULL), ZP_STATUS_PROTOCOL);
    //  A prefix, or none
    ASSERT_EQ (s_status (ZP_CMD_KEYS, 0, NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_KEYS, 0, "p", NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_KEYS, 0, "p", "x", NULL), ZP_STATUS_PROTOCOL);
    ASSERT_EQ (s_status (ZP_CMD_DUMP, 0, NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_DUMP, 0, "p", NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_DUMP, 0, "p", "x", NULL), ZP_STATUS_PROTOCOL);
    return 0;
}

//  INCR's delta is 8 bytes, big-endian
TEST_IMPL (proto_incr)
{
    byte delta [8];
    zp__put_uint64 (delta, (uint64_t) -5);
    s_msg_t msg;
    zp_request_t request;
    s_msg_init (&msg, ZP_CMD_INCR, 0);
    s_msg_add_str (&msg, "n");
    s_msg_add (&msg, delta, sizeof delta);
    ASSERT_EQ (s_decode (&msg, &request), 0);
    ASSERT_EQ (request.delta, -5);
    ASSERT_STR_EQ (request.key, "n");
    for (size_t size = 0; size < sizeof delta + 2; size++) {
        if (size == sizeof delta)
            continue;
        byte buffer [16] = { 0 };
        s_msg_init (&msg, ZP_CMD_INCR, 0);
        s_msg_add_str (&msg, "n");
        s_msg_add (&msg, buffer, size);
        ASSERT_EQ (s_decode (&msg, &request), ZP_STATUS_PROTOCOL);
    }
    ASSERT_EQ (s_status (ZP_CMD_INCR, 0, "n", NULL), ZP_STATUS_PROTOCOL);
    return 0;
}

//  WATCH: a prefix and a 4-byte credit
TEST_IMPL (proto_watch)
{
    byte credit [4] = { 0, 0, 1, 2 };
    s_msg_t msg;
    zp_request_t request;
    s_msg_init (&msg, ZP_CMD_WATCH, 0);
    s_msg_add_str (&msg, "jobs/");
    s_msg_add (&msg, credit, sizeof credit);
    ASSERT_EQ (s_decode (&msg, &request), 0);
    ASSERT_EQ (request.credit, 258);
    ASSERT_EQ (request.prefix.size, 5);
    ASSERT_EQ (memcmp (request.prefix.data, "jobs/", 5), 0);
    ASSERT_EQ (request.header.seq, 7);
    //  Credit of another size
    s_msg_init (&msg, ZP_CMD_WATCH, 0);
    s_msg_add_str (&msg, "jobs/");
    s_msg_add (&msg, credit, 3);
    ASSERT_EQ (s_decode (&msg, &request), ZP_STATUS_PROTOCOL);
    //  Missing frames
    ASSERT_EQ (s_status (ZP_CMD_WATCH, 0, NULL), ZP_STATUS_PROTOCOL);
    ASSERT_EQ (s_status (ZP_CMD_WATCH, 0, "jobs/", NULL), ZP_STATUS_PROTOCOL);
    return 0;
}

//  Prefixes (KEYS, DUMP, WATCH): at most ZP_KEY_MAX bytes, no NUL; empty
//  means every key
TEST_IMPL (proto_prefix)
{
    char long_prefix [ZP_KEY_MAX + 1];
    memset (long_prefix, 'p', sizeof long_prefix);
    byte credit [4] = { 0, 0, 0, 64 };
    int commands [] = { ZP_CMD_KEYS, ZP_CMD_DUMP, ZP_CMD_WATCH };
    for (size_t index = 0; index < sizeof commands / sizeof commands [0]; index++) {
        int command = commands [index];
        struct {
            const char *data;
            size_t size;
            int status;
        } cases [] = {
            { "", 0, 0 }, { long_prefix, ZP_KEY_MAX, 0 },
            { long_prefix, ZP_KEY_MAX + 1, ZP_STATUS_INVALID },
            { "a\0b", 3, ZP_STATUS_INVALID }, { "\0", 1, ZP_STATUS_INVALID }
        };
        for (size_t which = 0; which < sizeof cases / sizeof cases [0]; which++) {
            s_msg_t msg;
            zp_request_t request;
            s_msg_init (&msg, command, 0);
            s_msg_add (&msg, cases [which].data, cases [which].size);
            if (command == ZP_CMD_WATCH)
                s_msg_add (&msg, credit, sizeof credit);
            ASSERT_EQ (s_decode (&msg, &request), cases [which].status);
            if (cases [which].status == 0)
                ASSERT_EQ (request.prefix.size, cases [which].size);
        }
    }
    //  No prefix frame: every key
    s_msg_t msg;
    zp_request_t request;
    s_msg_init (&msg, ZP_CMD_KEYS, 0);
    ASSERT_EQ (s_decode (&msg, &request), 0);
    ASSERT_EQ (request.prefix.size, 0);
    return 0;
}

//  Writes to reserved keys are EACCES; reads and waits on them are fine
TEST_IMPL (proto_reserved)
{
    byte delta [8] = { 0 };
    ASSERT_EQ (s_status (ZP_CMD_SET, 0, "$x", "v", NULL), ZP_STATUS_DENIED);
    ASSERT_EQ (s_status (ZP_CMD_DEL, 0, "$x", NULL), ZP_STATUS_DENIED);
    ASSERT_EQ (s_status (ZP_CMD_CAS, 0, "$x", "v", "e", NULL), ZP_STATUS_DENIED);
    ASSERT_EQ (s_status (ZP_CMD_CAS, ZP_FLAG_ABSENT, "$x", "v", NULL), ZP_STATUS_DENIED);
    s_msg_t msg;
    zp_request_t request;
    s_msg_init (&msg, ZP_CMD_INCR, 0);
    s_msg_add_str (&msg, "$x");
    s_msg_add (&msg, delta, sizeof delta);
    ASSERT_EQ (s_decode (&msg, &request), ZP_STATUS_DENIED);
    ASSERT_EQ (s_status (ZP_CMD_GET, 0, "$x", NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_EXISTS, 0, "$x", NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_WAIT_CHANGE, 0, "$x", NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_WAIT_EQUAL, 0, "$x", "v", NULL), 0);
    return 0;
}

//  Values (SET, CAS, WAIT_EQUAL) and CAS's expected value: at most
//  ZP_VALUE_MAX bytes, else EMSGSIZE; binary-safe and borrowed
TEST_IMPL (proto_value_size)
{
    byte *big = (byte *) calloc (1, ZP_VALUE_MAX + 1);
    ASSERT_NOT_NULL (big);
    int commands [] = { ZP_CMD_SET, ZP_CMD_WAIT_EQUAL, ZP_CMD_CAS, ZP_CMD_CAS };
    for (size_t index = 0; index < sizeof commands / sizeof commands [0]; index++) {
        for (size_t size = ZP_VALUE_MAX; size <= ZP_VALUE_MAX + 1; size++) {
            s_msg_t msg;
            zp_request_t request;
            s_msg_init (&msg, commands [index], 0);
            s_msg_add_str (&msg, "k");
            //  The second CAS has the large frame as its expected value
            if (index == 3)
                s_msg_add_str (&msg, "v");
            s_msg_add (&msg, big, size);
            if (index == 2)
                s_msg_add_str (&msg, "e");
            int status = s_decode (&msg, &request);
            ASSERT_EQ (status, size > ZP_VALUE_MAX? ZP_STATUS_TOO_LARGE: 0);
            if (status == 0 && index < 3) {
                ASSERT (request.value.data == big);
                ASSERT_EQ (request.value.size, size);
            }
            if (status == 0 && index == 3)
                ASSERT (request.expected.data == big);
        }
    }
    free (big);
    //  Binary values, NULs included
    s_msg_t msg;
    zp_request_t request;
    s_msg_init (&msg, ZP_CMD_SET, 0);
    s_msg_add_str (&msg, "k");
    s_msg_add (&msg, "a\0b", 3);
    ASSERT_EQ (s_decode (&msg, &request), 0);
    ASSERT_EQ (request.value.size, 3);
    return 0;
}

//  TXN: one frame of valid operations; SINCE: a prefix
TEST_IMPL (proto_txn_since)
{
    //  SET "a" = "xy", INCR "n" by 1, DELETE "d"
    byte ops [] = { ZP_TXN_SET, 1, 'a', 0, 0, 0, 2, 'x', 'y',
                    ZP_TXN_INCR, 1, 'n', 0, 0, 0, 0, 0, 0, 0, 1,
                    ZP_TXN_DELETE, 1, 'd' };
    s_msg_t msg;
    zp_request_t request;
    s_msg_init (&msg, ZP_CMD_TXN, 0);
    s_msg_add (&msg, ops, sizeof ops);
    ASSERT_EQ (s_decode (&msg, &request), 0);
    ASSERT_EQ (request.operation_count, 3);
    ASSERT (request.operations.data == ops);
    //  An empty batch is valid
    s_msg_init (&msg, ZP_CMD_TXN, 0);
    s_msg_add (&msg, ops, 0);
    ASSERT_EQ (s_decode (&msg, &request), 0);
    ASSERT_EQ (request.operation_count, 0);
    //  Truncated, an unknown operation, a bad key, missing or extra frames
    for (size_t size = 1; size < sizeof ops; size++) {
        if (size == 9 || size == 20)
            continue;           //  Whole operations
        s_msg_init (&msg, ZP_CMD_TXN, 0);
        s_msg_add (&msg, ops, size);
        ASSERT_EQ (s_decode (&msg, &request), ZP_STATUS_PROTOCOL);
    }
    byte unknown [] = { 'Z', 1, 'a' };
    byte no_key [] = { ZP_TXN_DELETE, 0 };
    s_msg_init (&msg, ZP_CMD_TXN, 0);
    s_msg_add (&msg, unknown, sizeof unknown);
    ASSERT_EQ (s_decode (&msg, &request), ZP_STATUS_PROTOCOL);
    s_msg_init (&msg, ZP_CMD_TXN, 0);
    s_msg_add (&msg, no_key, sizeof no_key);
    ASSERT_EQ (s_decode (&msg, &request), ZP_STATUS_PROTOCOL);
    ASSERT_EQ (s_status (ZP_CMD_TXN, 0, NULL), ZP_STATUS_PROTOCOL);
    s_msg_init (&msg, ZP_CMD_TXN, 0);
    s_msg_add (&msg, ops, sizeof ops);
    s_msg_add_str (&msg, "x");
    ASSERT_EQ (s_decode (&msg, &request), ZP_STATUS_PROTOCOL);

    //  SINCE takes exactly a prefix frame (empty: every key)
    ASSERT_EQ (s_status (ZP_CMD_SINCE, 0, "", NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_SINCE, ZP_FLAG_RESET, "jobs/", NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_SINCE, 0, NULL), ZP_STATUS_PROTOCOL);
    ASSERT_EQ (s_status (ZP_CMD_SINCE, 0, "p", "x", NULL), ZP_STATUS_PROTOCOL);
    s_msg_init (&msg, ZP_CMD_SINCE, 0);
    s_msg_add (&msg, "a\0b", 3);
    ASSERT_EQ (s_decode (&msg, &request), ZP_STATUS_INVALID);
    return 0;
}


//  INFO: a header alone
TEST_IMPL (proto_info)
{
    ASSERT_EQ (s_status (ZP_CMD_INFO, 0, NULL), 0);
    ASSERT_EQ (s_status (ZP_CMD_INFO, 0, "x", NULL), ZP_STATUS_PROTOCOL);
    ASSERT_EQ (s_status (ZP_CMD_INFO, 0, "x", "y", NULL), ZP_STATUS_PROTOCOL);
    return 0;
}
