/*  =========================================================================
    fuzz-decode.c - libFuzzer target for the request decoder
    (zp__request_decode, actors/zp_proto.c)

    The input is cut into frames, each a 2-byte big-endian length and that
    many bytes (the last one takes what is left), at most eight frames. The
    decoder must never crash, read outside its frames, or hand back a
    request that breaks its contract. Built by configure when clang has
    libFuzzer; `make fuzz` runs it for FUZZ_SECONDS (default 60).
    =========================================================================
*/

#include "zp_classes.h"

#define FUZZ_FRAMES     8

//  Abort (a finding) unless part lies inside frames
static void
s_check_borrowed (const zp_part_t *part, const zp_part_t *frames, size_t count)
{
    if (part->size == 0)
        return;
    for (size_t index = 0; index < count; index++) {
        const byte *start = (const byte *) frames [index].data;
        const byte *data = (const byte *) part->data;
        if (data >= start && data + part->size <= start + frames [index].size)
            return;
    }
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    zp_part_t frames [FUZZ_FRAMES];
    size_t count = 0;
    while (size >= 2 && count < FUZZ_FRAMES) {
        size_t length = ((size_t) data [0] << 8) | data [1];
        data += 2;
        size -= 2;
        if (length > size || count == FUZZ_FRAMES - 1)
            length = size;
        frames [count++] = (zp_part_t) { data, length };
        data += length;
        size -= length;
    }
    zp_request_t request;
    int status = zp__request_decode (&request, frames, count);
    if (status < -1 || status > ZP_STATUS_PROTOCOL)
        abort ();
    if (status != 0)
        return 0;
    //  A valid request keeps every promise of zp_request_t
    if (count == 0 || count > ZP_REQUEST_FRAMES_MAX
    ||  request.header.command == 0 || request.header.command >= ZP_CMD_COUNT
    ||  request.key_size > ZP_KEY_MAX || strlen (request.key) != request.key_size
    ||  request.value.size > ZP_VALUE_MAX || request.expected.size > ZP_VALUE_MAX
    ||  !zp__prefix_valid ((const char *) request.prefix.data, request.prefix.size))
        abort ();
    s_check_borrowed (&request.value, frames, count);
    s_check_borrowed (&request.expected, frames, count);
    s_check_borrowed (&request.prefix, frames, count);
    s_check_borrowed (&request.operations, frames, count);
    //  A TXN's operations walk to the end, as many as counted
    if (request.header.command == ZP_CMD_TXN) {
        const byte *cursor = (const byte *) request.operations.data;
        const byte *end = cursor + request.operations.size;
        zp_txn_op_t op;
        size_t operations = 0;
        while (zp__txn_next (&cursor, end, &op) == 1)
            operations++;
        if (cursor != end || operations != request.operation_count)
            abort ();
    }
    return 0;
}
