/*  =========================================================================
    zp_change - one numbered change of the state, shared by reference
    =========================================================================
*/

#include "zp_classes.h"

//  --------------------------------------------------------------------------
//  Make a change in one block: the struct, the key and the value

zp_change_t *
zp__change_new (uint64_t seq, const char *key, size_t key_size,
                const void *value, size_t size, bool deleted)
{
    zp_change_t *self = (zp_change_t *) malloc (sizeof (zp_change_t) + key_size + 1 + size);
    if (!self)
        return NULL;
    self->refs = 1;
    self->seq = seq;
    self->batch_end = seq;
    self->deleted = deleted;
    self->key_size = key_size;
    self->size = size;
    self->key = (char *) (self + 1);
    memcpy (self->key, key, key_size);
    self->key [key_size] = 0;
    self->value = (byte *) self->key + key_size + 1;
    self->block = NULL;
    if (size)
        memcpy (self->value, value, size);
    return self;
}

zp_change_t *
zp__change_new_in (uint64_t seq, const char *key, size_t key_size,
                   const void *value, size_t size, void *block)
{
    zp_change_t *self = zp__change_new (seq, key, key_size, NULL, 0, false);
    if (self) {
        self->value = (byte *) value;
        self->size = size;
        self->block = block;
    }
    return self;
}


//  --------------------------------------------------------------------------
//  Take one more reference

zp_change_t *
zp__change_ref (zp_change_t *self)
{
    __atomic_add_fetch (&self->refs, 1, __ATOMIC_RELAXED);
    return self;
}


//  --------------------------------------------------------------------------
//  Drop one reference

void
zp__change_unref (zp_change_t **self_p)
{
    zp_change_t *self = *self_p;
    if (self && __atomic_sub_fetch (&self->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        free (self->block);
        free (self);
    }
    *self_p = NULL;
}

void
zp__change_destructor (void **item_p)
{
    zp__change_unref ((zp_change_t **) item_p);
}
