/*  =========================================================================
    zp_txn - batches of writes applied atomically (see zp_txn.h)

    A batch is encoded as it is built, into one buffer that becomes the one
    payload frame of a TXN request (doc/PROTOCOL.md): an operation byte, the
    key's length (1 byte) and the key, then a value (4-byte length and the
    bytes) or a delta (8 bytes). The store answers with the new value of
    every incr, 8 bytes each, in order; the batch keeps where each goes.
    =========================================================================
*/

#include "zp_classes.h"

struct _zp_txn_t {
    zp_state_t *state;          //  The handle it commits on, borrowed
    byte *ops;                  //  The encoded operations
    size_t size;                //  Bytes used in ops
    size_t max;                 //  Bytes allocated for ops
    size_t count;               //  Operations in the batch
    int64_t **results;          //  Where each incr's result goes (NULL: nowhere)
    size_t incrs;               //  Incrs in the batch
    size_t max_incrs;           //  Slots allocated in results
};


//  --------------------------------------------------------------------------
//  Constructor

zp_txn_t *
zp_txn_new (zp_state_t *state)
{
    if (!state)
        return zp__fail (EINVAL, NULL);
    zp_txn_t *self = (zp_txn_t *) zmalloc (sizeof (zp_txn_t));
    if (!self)
        return zp__fail (ENOMEM, NULL);
    self->state = state;
    return self;
}


//  --------------------------------------------------------------------------
//  Destructor

void
zp_txn_destroy (zp_txn_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zp_txn_t *self = *self_p;
    free (self->ops);
    free (self->results);
    free (self);
    *self_p = NULL;
}


//  --------------------------------------------------------------------------
//  Append one operation: op, key, then size bytes of data (a value, or for
//  INCR the encoded delta). The batch is unchanged on error.

static int
s_add (zp_txn_t *self, int op, const char *key, const void *data, size_t size)
{
    if (!self || !key)
        return zp__fail (EINVAL, -1);
    size_t key_size = strnlen (key, ZP_KEY_MAX + 1);
    if (!zp__key_valid (key, key_size) || (!data && size))
        return zp__fail (EINVAL, -1);
    if (size > ZP_VALUE_MAX)
        return zp__fail (EMSGSIZE, -1);
    size_t needed = self->size + zp__txn_op_size (op, key_size, size);
    if (needed > self->max) {
        size_t max = self->max? self->max * 2: 256;
        while (max < needed)
            max *= 2;
        byte *ops = (byte *) realloc (self->ops, max);
        if (!ops)
            return zp__fail (ENOMEM, -1);
        self->ops = ops;
        self->max = max;
    }
    zp__txn_put (self->ops + self->size, op, key, key_size, data, size);
    self->size = needed;
    self->count++;
    return 0;
}


//  --------------------------------------------------------------------------
//  Operations

int
zp_txn_set_bytes (zp_txn_t *self, const char *key, const void *data, size_t size)
{
    return s_add (self, ZP_TXN_SET, key, data, size);
}

int
zp_txn_set_str (zp_txn_t *self, const char *key, const char *value)
{
    if (!value)
        return zp__fail (EINVAL, -1);
    return zp_txn_set_bytes (self, key, value, strlen (value));
}

int
zp_txn_delete (zp_txn_t *self, const char *key)
{
    return s_add (self, ZP_TXN_DELETE, key, NULL, 0);
}

int
zp_txn_incr (zp_txn_t *self, const char *key, int64_t delta, int64_t *result)
{
    if (self && self->incrs == self->max_incrs) {
        size_t max = self->max_incrs? self->max_incrs * 2: 16;
        int64_t **results = (int64_t **) realloc (self->results, max * sizeof (int64_t *));
        if (!results)
            return zp__fail (ENOMEM, -1);
        self->results = results;
        self->max_incrs = max;
    }
    byte encoded [8];
    zp__put_uint64 (encoded, (uint64_t) delta);
    if (s_add (self, ZP_TXN_INCR, key, encoded, sizeof encoded) < 0)
        return -1;
    self->results [self->incrs++] = result;
    return 0;
}

int
zp_txn_require_str (zp_txn_t *self, const char *key, const char *value)
{
    if (value)
        return s_add (self, ZP_TXN_REQUIRE, key, value, strlen (value));
    return s_add (self, ZP_TXN_REQUIRE_ABSENT, key, NULL, 0);
}


//  --------------------------------------------------------------------------
//  Commit: one round trip; the batch is empty afterwards whatever happened

int
zp_txn_commit (zp_txn_t *self)
{
    if (!self)
        return zp__fail (EINVAL, -1);
    int rc = 0;
    if (self->size > ZP_TXN_MAX)
        rc = zp__fail (EMSGSIZE, -1);
    else
    if (self->count) {
        zp_part_t part = { self->ops, self->size };
        zframe_t *frame = NULL;
        rc = zp__state_write (self->state, ZP_CMD_TXN, &part, 1, &frame);
        if (rc == 0 && self->incrs && (!frame || zframe_size (frame) != self->incrs * 8))
            rc = zp__fail (EPROTO, -1);
        for (size_t index = 0; rc == 0 && index < self->incrs; index++)
            if (self->results [index])
                *self->results [index] = (int64_t) zp__get_uint64 (zframe_data (frame)
                                                                   + index * 8);
    }
    self->size = 0;
    self->count = 0;
    self->incrs = 0;
    //  A big batch gives its memory back
    if (self->max > 65536) {
        free (self->ops);
        self->ops = NULL;
        self->max = 0;
    }
    return rc;
}

size_t
zp_txn_size (zp_txn_t *self)
{
    return self? self->count: 0;
}
