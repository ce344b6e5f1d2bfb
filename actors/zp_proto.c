/*  =========================================================================
    zp_proto - encoding of the wire protocol's header (see zp_proto.h)
    =========================================================================
*/

#include "zp_classes.h"

//  --------------------------------------------------------------------------
//  Put / get big-endian numbers

void
zp__put_uint64 (byte *buffer, uint64_t value)
{
    for (int index = 7; index >= 0; index--) {
        buffer [index] = (byte) (value & 0xFF);
        value >>= 8;
    }
}

uint64_t
zp__get_uint64 (const byte *buffer)
{
    uint64_t value = 0;
    for (int index = 0; index < 8; index++)
        value = (value << 8) | buffer [index];
    return value;
}


//  --------------------------------------------------------------------------
//  Encode a header into 16 bytes

void
zp__header_encode (const zp_header_t *header, byte *buffer)
{
    buffer [0] = ZP_PROTO_VERSION;
    buffer [1] = header->command;
    buffer [2] = header->status;
    buffer [3] = header->flags;
    buffer [4] = (byte) (header->request_id >> 24);
    buffer [5] = (byte) (header->request_id >> 16);
    buffer [6] = (byte) (header->request_id >> 8);
    buffer [7] = (byte) (header->request_id);
    zp__put_uint64 (buffer + 8, header->seq);
}


//  --------------------------------------------------------------------------
//  Decode 16 bytes into a header; -1 when size or version is wrong

int
zp__header_decode (zp_header_t *header, const byte *buffer, size_t size)
{
    if (size != ZP_HEADER_SIZE || buffer [0] != ZP_PROTO_VERSION)
        return -1;
    header->command = buffer [1];
    header->status = buffer [2];
    header->flags = buffer [3];
    header->request_id = ((uint32_t) buffer [4] << 24) | ((uint32_t) buffer [5] << 16)
                       | ((uint32_t) buffer [6] << 8) | (uint32_t) buffer [7];
    header->seq = zp__get_uint64 (buffer + 8);
    return 0;
}


//  --------------------------------------------------------------------------
//  Status code <-> errno

static const int s_status_errno [] = {
    [ZP_STATUS_OK] = 0,
    [ZP_STATUS_NOT_FOUND] = ENOENT,
    [ZP_STATUS_INVALID] = EINVAL,
    [ZP_STATUS_TOO_LARGE] = EMSGSIZE,
    [ZP_STATUS_CONFLICT] = EAGAIN,
    [ZP_STATUS_DENIED] = EACCES,
    [ZP_STATUS_SHUTDOWN] = EINTR,
    [ZP_STATUS_PROTOCOL] = EPROTO,
    [ZP_STATUS_NO_BUFFERS] = ENOBUFS
};

int
zp__status_errno (int status)
{
    if (status < 0 || status >= (int) (sizeof s_status_errno / sizeof s_status_errno [0]))
        return EPROTO;
    return s_status_errno [status];
}


//  --------------------------------------------------------------------------
//  True when a key of size bytes is valid (1 to ZP_KEY_MAX bytes, no NUL)

bool
zp__key_valid (const char *key, size_t size)
{
    return key && size > 0 && size <= ZP_KEY_MAX && memchr (key, 0, size) == NULL;
}


//  --------------------------------------------------------------------------
//  True when a key is reserved

bool
zp__key_reserved (const char *key)
{
    return key [0] == '$';
}


//  --------------------------------------------------------------------------
//  True when a prefix is valid: at most ZP_KEY_MAX bytes, no NUL

bool
zp__prefix_valid (const char *prefix, size_t size)
{
    return size == 0 || (prefix && size <= ZP_KEY_MAX && memchr (prefix, 0, size) == NULL);
}


//  --------------------------------------------------------------------------
//  Decode and validate a request. The checks come in one order for every
//  command: the key (EINVAL), the number and size of the fixed frames
//  (EPROTO), a reserved key (EACCES), the size of a value (EMSGSIZE).

//  What each command takes after its header
typedef struct {
    bool known;                 //  A command a client may send
    bool keyed;                 //  Frame 1 is a key
    bool writes;                //  Refused on a reserved key
    int min_frames;             //  Frames, the header included
    int max_frames;
} s_shape_t;

static const s_shape_t s_shapes [ZP_CMD_COUNT] = {
    [ZP_CMD_HELLO]          = { true, false, false, 1, 1 },
    [ZP_CMD_GET]            = { true, true,  false, 2, 2 },
    [ZP_CMD_SET]            = { true, true,  true,  3, 3 },
    [ZP_CMD_DEL]            = { true, true,  true,  2, 2 },
    [ZP_CMD_EXISTS]         = { true, true,  false, 2, 2 },
    [ZP_CMD_KEYS]           = { true, false, false, 1, 2 },
    [ZP_CMD_SIZE]           = { true, false, false, 1, 1 },
    [ZP_CMD_INCR]           = { true, true,  true,  3, 3 },
    [ZP_CMD_CAS]            = { true, true,  true,  3, 4 },
    [ZP_CMD_DUMP]           = { true, false, false, 1, 2 },
    [ZP_CMD_WAIT_CHANGE]    = { true, true,  false, 2, 2 },
    [ZP_CMD_WAIT_EQUAL]     = { true, true,  false, 3, 3 },
    [ZP_CMD_WAIT_AVAILABLE] = { true, true,  false, 2, 2 },
    [ZP_CMD_CANCEL]         = { true, false, false, 1, 1 },
    [ZP_CMD_WATCH]          = { true, false, false, 3, 3 },
    [ZP_CMD_CREDIT]         = { true, false, false, 1, 1 },
    [ZP_CMD_TXN]            = { true, false, false, 2, 2 },
    [ZP_CMD_SINCE]          = { true, false, false, 2, 2 },
    [ZP_CMD_INFO]           = { true, false, false, 1, 1 },
    [ZP_CMD_LANE]           = { true, false, false, 1, 1 },
};

static zp_part_t
s_part (const zp_part_t *frames, size_t count, size_t index)
{
    zp_part_t none = { "", 0 };
    return index < count? frames [index]: none;
}

int
zp__request_decode (zp_request_t *request, const zp_part_t *frames, size_t count)
{
    memset (request, 0, sizeof *request);
    request->value = request->expected = request->prefix = request->operations
                   = s_part (frames, 0, 0);
    if (count == 0 || !frames
    ||  zp__header_decode (&request->header, (const byte *) frames [0].data,
                           frames [0].size) < 0)
        return -1;              //  Nobody to answer
    int command = request->header.command;
    if (command >= ZP_CMD_COUNT || !s_shapes [command].known)
        return ZP_STATUS_PROTOCOL;
    const s_shape_t *shape = &s_shapes [command];
    if (count > ZP_REQUEST_FRAMES_MAX)
        return ZP_STATUS_PROTOCOL;
    if (shape->keyed) {
        zp_part_t key = s_part (frames, count, 1);
        if (!zp__key_valid ((const char *) key.data, key.size))
            return ZP_STATUS_INVALID;
        memcpy (request->key, key.data, key.size);
        request->key [key.size] = 0;
        request->key_size = key.size;
    }
    //  CAS takes an expected value unless it expects no key at all
    int frames_wanted_min = shape->min_frames, frames_wanted_max = shape->max_frames;
    if (command == ZP_CMD_CAS)
        frames_wanted_min = frames_wanted_max
                          = request->header.flags & ZP_FLAG_ABSENT? 3: 4;
    if ((int) count < frames_wanted_min || (int) count > frames_wanted_max)
        return ZP_STATUS_PROTOCOL;
    switch (command) {
        case ZP_CMD_SET:
        case ZP_CMD_WAIT_EQUAL:
            request->value = frames [2];
            break;
        case ZP_CMD_CAS:
            request->value = frames [2];
            request->expected = s_part (frames, count, 3);
            break;
        case ZP_CMD_INCR:
            if (frames [2].size != 8)
                return ZP_STATUS_PROTOCOL;
            request->delta = (int64_t) zp__get_uint64 ((const byte *) frames [2].data);
            break;
        case ZP_CMD_TXN: {
            int operations = zp__txn_validate ((const byte *) frames [1].data, frames [1].size);
            if (operations < 0)
                return ZP_STATUS_PROTOCOL;
            request->operations = frames [1];
            request->operation_count = (size_t) operations;
            break;
        }
        case ZP_CMD_KEYS:
        case ZP_CMD_DUMP:
        case ZP_CMD_SINCE:
        case ZP_CMD_WATCH:
            request->prefix = s_part (frames, count, 1);
            if (command == ZP_CMD_WATCH) {
                if (frames [2].size != 4)
                    return ZP_STATUS_PROTOCOL;
                const byte *credit = (const byte *) frames [2].data;
                request->credit = ((uint32_t) credit [0] << 24) | ((uint32_t) credit [1] << 16)
                                | ((uint32_t) credit [2] << 8) | credit [3];
            }
            if (!zp__prefix_valid ((const char *) request->prefix.data, request->prefix.size))
                return ZP_STATUS_INVALID;
            break;
        default:
            break;
    }
    //  A SET with the NOTICE flag is zproc's own notice: a worker's own
    //  context publishing $proc/ and $pool/ keys
    bool notice = request->header.command == ZP_CMD_SET
               && (request->header.flags & ZP_FLAG_NOTICE);
    if (shape->writes && zp__key_reserved (request->key) && !notice)
        return ZP_STATUS_DENIED;
    if (request->value.size > ZP_VALUE_MAX || request->expected.size > ZP_VALUE_MAX)
        return ZP_STATUS_TOO_LARGE;
    return 0;
}


//  --------------------------------------------------------------------------
//  Receive one multipart message into an array of frames

void
zp__frames_close (zmq_msg_t *frames, size_t *stored_p)
{
    for (size_t index = 0; index < *stored_p; index++)
        zmq_msg_close (&frames [index]);
    *stored_p = 0;
}

size_t
zp__frames_recv (void *sock, zmq_msg_t *frames, size_t max, size_t *stored_p)
{
    zp__frames_close (frames, stored_p);
    zmq_msg_t dropped;
    size_t count = 0;
    bool more = true;
    while (more) {
        zmq_msg_t *frame = count < max? &frames [count]: &dropped;
        zmq_msg_init (frame);
        //  A multipart message arrives whole: only its first frame can be
        //  missing
        if (zmq_msg_recv (frame, sock, count? 0: ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (frame);
            break;
        }
        more = zmq_msg_more (frame);
        if (frame == &dropped)
            zmq_msg_close (frame);
        count++;
    }
    *stored_p = count < max? count: max;
    return count;
}


//  --------------------------------------------------------------------------
//  Parse whole values as numbers: the same rules in the store (incr) and in
//  every client (get_int, get_double)

static bool
s_number_text (const void *data, size_t size, char *buffer, size_t limit)
{
    if (size == 0 || size >= limit || isspace (*(const byte *) data))
        return false;
    memcpy (buffer, data, size);
    buffer [size] = 0;
    return strlen (buffer) == size;
}

bool
zp__parse_int (const void *data, size_t size, int64_t *value)
{
    char buffer [32];
    if (!s_number_text (data, size, buffer, sizeof buffer))
        return false;
    char *end;
    errno = 0;
    long long parsed = strtoll (buffer, &end, 10);
    if (errno || *end)
        return false;
    *value = parsed;
    return true;
}

bool
zp__parse_double (const void *data, size_t size, double *value)
{
    char buffer [64];
    if (!s_number_text (data, size, buffer, sizeof buffer))
        return false;
    char *end;
    errno = 0;
    double parsed = strtod (buffer, &end);
    if (errno || *end)
        return false;
    *value = parsed;
    return true;
}


//  --------------------------------------------------------------------------
//  Sort a list of strings bytewise

static int
s_compare_strings (const void *first, const void *second)
{
    return strcmp (*(const char * const *) first, *(const char * const *) second);
}

int
zp__sort_strings (zlistx_t *list)
{
    size_t size = zlistx_size (list);
    if (size < 2)
        return 0;
    char **strings = (char **) malloc (size * sizeof (char *));
    if (!strings)
        return zp__fail (ENOMEM, -1);
    size_t index = 0;
    for (char *string = (char *) zlistx_first (list); string;
         string = (char *) zlistx_next (list))
        strings [index++] = string;
    qsort (strings, size, sizeof (char *), s_compare_strings);
    //  Same items, new order: detach them all, then add them back
    while (zlistx_detach (list, NULL))
        ;
    for (index = 0; index < size; index++)
        zlistx_add_end (list, strings [index]);
    free (strings);
    return 0;
}


//  --------------------------------------------------------------------------
//  TXN operations

int
zp__txn_next (const byte **cursor, const byte *end, zp_txn_op_t *op)
{
    const byte *at = *cursor;
    if (at == end)
        return 0;
    if (end - at < 2)
        return -1;
    memset (op, 0, sizeof *op);
    op->op = at [0];
    op->key_size = at [1];
    op->key = (const char *) at + 2;
    at += 2;
    if ((size_t) (end - at) < op->key_size || !zp__key_valid (op->key, op->key_size))
        return -1;
    at += op->key_size;
    switch (op->op) {
        case ZP_TXN_SET:
        case ZP_TXN_REQUIRE:
            if (end - at < 4)
                return -1;
            op->size = ((size_t) at [0] << 24) | ((size_t) at [1] << 16)
                     | ((size_t) at [2] << 8) | at [3];
            at += 4;
            if (op->size > ZP_VALUE_MAX || (size_t) (end - at) < op->size)
                return -1;
            op->value = at;
            at += op->size;
            break;
        case ZP_TXN_INCR:
            if (end - at < 8)
                return -1;
            op->delta = (int64_t) zp__get_uint64 (at);
            at += 8;
            break;
        case ZP_TXN_DELETE:
        case ZP_TXN_REQUIRE_ABSENT:
            break;
        default:
            return -1;
    }
    *cursor = at;
    return 1;
}

size_t
zp__txn_op_size (int op, size_t key_size, size_t size)
{
    size_t tail = op == ZP_TXN_SET || op == ZP_TXN_REQUIRE? 4 + size
                : op == ZP_TXN_INCR? 8: 0;
    return 2 + key_size + tail;
}

byte *
zp__txn_put (byte *buffer, int op, const char *key, size_t key_size, const void *data,
             size_t size)
{
    *buffer++ = (byte) op;
    *buffer++ = (byte) key_size;
    memcpy (buffer, key, key_size);
    buffer += key_size;
    if (op == ZP_TXN_SET || op == ZP_TXN_REQUIRE) {
        for (int shift = 24; shift >= 0; shift -= 8)
            *buffer++ = (byte) (size >> shift);
    }
    else
    if (op == ZP_TXN_INCR)
        size = 8;
    else
        size = 0;
    if (size)
        memcpy (buffer, data, size);
    return buffer + size;
}

int
zp__txn_validate (const byte *data, size_t size)
{
    const byte *cursor = data;
    const byte *end = data + size;
    zp_txn_op_t op;
    int count = 0;
    int rc;
    while ((rc = zp__txn_next (&cursor, end, &op)) == 1)
        count++;
    return rc < 0? -1: count;
}
