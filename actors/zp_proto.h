/*  =========================================================================
    zp_proto - the wire protocol between state handles and the store

    Every request and reply starts with a 16-byte header frame:
        byte 0      protocol version (ZP_PROTO_VERSION)
        byte 1      command
        byte 2      status (replies): ZP_STATUS_*
        byte 3      flags: ZP_FLAG_*
        bytes 4-7   request id, big-endian; a reply echoes it
        bytes 8-15  sequence number, big-endian (see each command)
    The frames that follow are given per command in doc/PROTOCOL.md.
    =========================================================================
*/

#ifndef ZP_PROTO_H_INCLUDED
#define ZP_PROTO_H_INCLUDED

#define ZP_PROTO_VERSION    1
#define ZP_HEADER_SIZE      16

//  Commands; a reply carries its request's command
typedef enum {
    ZP_CMD_HELLO = 1,           //  -> seq = store's current sequence number
    ZP_CMD_GET,                 //  key -> value
    ZP_CMD_SET,                 //  key, value
    ZP_CMD_DEL,                 //  key
    ZP_CMD_EXISTS,              //  key
    ZP_CMD_KEYS,                //  prefix -> key...
    ZP_CMD_SIZE,                //  -> count (8 bytes)
    ZP_CMD_INCR,                //  key, delta (8 bytes) -> result (8 bytes)
    ZP_CMD_CAS,                 //  key, value [, expected] (FLAG_ABSENT: none)
    ZP_CMD_DUMP,                //  prefix -> key, value, key, value...
    ZP_CMD_WAIT_CHANGE,         //  key; seq = baseline -> value, seq = change's
    ZP_CMD_WAIT_EQUAL,          //  key, value
    ZP_CMD_WAIT_AVAILABLE,      //  key
    ZP_CMD_CANCEL,              //  request id = the parked request; no reply
    ZP_CMD_WATCH,               //  prefix, credit (4 bytes); seq = baseline
    ZP_CMD_CREDIT,              //  seq = more events the watch can take; no reply
    ZP_CMD_EVENT,               //  store -> watch: key [, value]; seq = change's
    ZP_CMD_GAP,                 //  store -> watch: changes lost; seq = next one kept
    ZP_CMD_TXN,                 //  operations (one frame) -> incr results (8 bytes each)
    ZP_CMD_SINCE,               //  prefix; seq = since -> SET/DELETE operations (one
                                //  frame, as TXN's); FLAG_RESET: all
    ZP_CMD_INFO,                //  -> name, value, name, value... (statistics)
    ZP_CMD_LANE,                //  On a lane, with a descriptor (SCM_RIGHTS): serve
                                //  it as a new lane; EINVAL elsewhere
    ZP_CMD_COUNT                //  Not a command: the number of them
} zp_command_t;

//  Reply status codes; the wire never carries host errno values
typedef enum {
    ZP_STATUS_OK = 0,
    ZP_STATUS_NOT_FOUND,        //  ENOENT
    ZP_STATUS_INVALID,          //  EINVAL
    ZP_STATUS_TOO_LARGE,        //  EMSGSIZE
    ZP_STATUS_CONFLICT,         //  EAGAIN
    ZP_STATUS_DENIED,           //  EACCES
    ZP_STATUS_SHUTDOWN,         //  EINTR
    ZP_STATUS_PROTOCOL,         //  EPROTO: malformed request
    ZP_STATUS_NO_BUFFERS        //  ENOBUFS: the connection's budget at the store is spent
} zp_status_t;

//  Header flags
#define ZP_FLAG_ABSENT      1   //  CAS: expect no key; EVENT: key deleted
#define ZP_FLAG_MORE        2   //  EVENT: more events of the same batch follow
#define ZP_FLAG_RESET       4   //  SINCE: the whole state under prefix, not changes
#define ZP_FLAG_NOTICE      8   //  SET: zproc's own notice, may write a reserved key

//  Operations in a TXN request's frame: op, key size (1 byte), key, then
//  a value (4-byte big-endian size, bytes) for SET and REQUIRE, a delta
//  (8 bytes) for INCR, nothing for DELETE and REQUIRE_ABSENT
#define ZP_TXN_SET              'S'
#define ZP_TXN_DELETE           'D'
#define ZP_TXN_INCR             'I'
#define ZP_TXN_REQUIRE          'R'
#define ZP_TXN_REQUIRE_ABSENT   'A'

//  One operation of a TXN request, decoded: pointers into the request
typedef struct {
    int op;                     //  ZP_TXN_*
    const char *key;            //  The key, NOT NUL-terminated
    size_t key_size;            //  Its length, 1 to ZP_KEY_MAX
    const byte *value;          //  SET, REQUIRE: the value
    size_t size;                //  Its size
    int64_t delta;              //  INCR: the delta
} zp_txn_op_t;

//  Decode the operation at *cursor (before end) into op and move *cursor
//  past it. Returns 1, 0 at end, -1 when the bytes are not a valid
//  operation (unknown op, bad key, truncated, value over ZP_VALUE_MAX).
int
    zp__txn_next (const byte **cursor, const byte *end, zp_txn_op_t *op);

//  Validate a whole TXN frame: the number of operations, or -1
int
    zp__txn_validate (const byte *data, size_t size);

//  The encoded size of an operation with a key of key_size bytes and, for
//  SET and REQUIRE, a value of size bytes
size_t
    zp__txn_op_size (int op, size_t key_size, size_t size);

//  Encode an operation at buffer (zp__txn_op_size bytes): op, key, then
//  for SET and REQUIRE the value's size and the size bytes of data, for
//  INCR the 8 bytes of data (the encoded delta). Returns the end.
byte *
    zp__txn_put (byte *buffer, int op, const char *key, size_t key_size, const void *data,
                 size_t size);


typedef struct {
    uint8_t command;            //  A zp_command_t
    uint8_t status;             //  A zp_status_t
    uint8_t flags;              //  ZP_FLAG_* bits
    uint32_t request_id;        //  Matches replies to requests
    uint64_t seq;               //  Sequence number, meaning per command
} zp_header_t;

//  One frame of a message: borrowed data
typedef struct {
    const void *data;           //  The frame's bytes
    size_t size;                //  How many
} zp_part_t;

//  A request has at most this many frames (header, key, value, expected)
#define ZP_REQUEST_FRAMES_MAX   4

//  A decoded request: its header and its arguments, validated. The key is
//  copied (NUL-terminated); the other arguments borrow the frames given to
//  zp__request_decode and live as long as they do.
typedef struct {
    zp_header_t header;         //  The request's header
    char key [ZP_KEY_MAX + 1];  //  Its key ("" for commands without one)
    size_t key_size;            //  Length of key
    zp_part_t value;            //  SET, CAS, WAIT_EQUAL: the value
    zp_part_t expected;         //  CAS without ZP_FLAG_ABSENT: the value expected
    zp_part_t prefix;           //  KEYS, DUMP, WATCH, SINCE: the prefix (size 0: every key)
    zp_part_t operations;       //  TXN: the operations' frame (see zp__txn_next)
    size_t operation_count;     //  TXN: how many operations it holds
    int64_t delta;              //  INCR: the delta
    uint32_t credit;            //  WATCH: events the client can take at first
} zp_request_t;

//  Decode and validate a request: frames [0] is its header (no routing id:
//  the transport strips it), count how many frames there are. A pure
//  function: no socket, no store state. Returns 0 for a valid request;
//  a ZP_STATUS_* to answer it with (the header is decoded, so the reply can
//  echo it); -1 when there is nobody to answer (no frame, or a header of
//  the wrong size or version).
int
    zp__request_decode (zp_request_t *request, const zp_part_t *frames, size_t count);

//  True when a (valid) key is reserved: "$...", written by zproc alone
bool
    zp__key_reserved (const char *key);

//  True when a prefix of size bytes is valid: at most ZP_KEY_MAX bytes, no
//  NUL; empty means every key
bool
    zp__prefix_valid (const char *prefix, size_t size);

//  Encode a header into 16 bytes
void
    zp__header_encode (const zp_header_t *header, byte *buffer);

//  Decode 16 bytes into a header; -1 when size or version is wrong
int
    zp__header_decode (zp_header_t *header, const byte *buffer, size_t size);

//  Put / get a big-endian 64-bit number
void
    zp__put_uint64 (byte *buffer, uint64_t value);
uint64_t
    zp__get_uint64 (const byte *buffer);

//  The errno of a status code
int
    zp__status_errno (int status);

//  Parse a whole value as a decimal int64 / a double; false when it does
//  not parse (empty, spaces, trailing bytes, out of range)
bool
    zp__parse_int (const void *data, size_t size, int64_t *value);
bool
    zp__parse_double (const void *data, size_t size, double *value);

//  Sort a list of strings bytewise, in place (CZMQ 4.2's zlistx_sort can
//  stop before the list is sorted). Returns 0, or -1 with ENOMEM.
int
    zp__sort_strings (zlistx_t *list);

//  True when a key of size bytes is valid (1 to ZP_KEY_MAX bytes, no NUL)
bool
    zp__key_valid (const char *key, size_t size);



//  Receive one multipart message from sock into frames, at most max of them,
//  without waiting for it. Returns how many frames the message had (0 when
//  none was waiting); frames beyond max are read and dropped. *stored_p
//  gets how many are in frames; their previous contents are closed first.
size_t
    zp__frames_recv (void *sock, zmq_msg_t *frames, size_t max, size_t *stored_p);

//  Close the stored frames and set *stored_p to 0
void
    zp__frames_close (zmq_msg_t *frames, size_t *stored_p);
#endif
