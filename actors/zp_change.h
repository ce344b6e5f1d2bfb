/*  =========================================================================
    zp_change - one numbered change of the state, shared by reference

    A change is made once by the store and then shared, never copied: the
    store's map holds the change that set each key's current value, the
    change log holds the recent ones, and the watcher registry holds those
    it is handing out. The reference count is atomic because the store and
    the registry are different threads.
    =========================================================================
*/

#ifndef ZP_CHANGE_H_INCLUDED
#define ZP_CHANGE_H_INCLUDED

typedef struct {
    int refs;                   //  Reference count, atomic
    uint64_t seq;               //  Store sequence number of the change
    uint64_t batch_end;         //  Seq of the last change of its batch (its own when alone)
    bool deleted;               //  True when the change removed the key
    size_t key_size;            //  Length of key, without the NUL
    size_t size;                //  Size of value in bytes
    char *key;                  //  The key, NUL-terminated, in this block
    byte *value;                //  The new value, in this block or in block
    void *block;                //  A buffer holding value, freed with the change, or NULL
} zp_change_t;

//  Make a change holding copies of key and value (NULL + deleted for a
//  delete), with one reference. NULL when out of memory.
zp_change_t *
    zp__change_new (uint64_t seq, const char *key, size_t key_size,
                    const void *value, size_t size, bool deleted);

//  Make a change whose value stays where it is, in block, a buffer the
//  change takes (freed with it): no copy of a large value. Only the key is
//  copied. NULL when out of memory (block is then still the caller's).
zp_change_t *
    zp__change_new_in (uint64_t seq, const char *key, size_t key_size,
                       const void *value, size_t size, void *block);

//  Take one more reference; returns the change
zp_change_t *
    zp__change_ref (zp_change_t *self);

//  Drop one reference, free the change with the last one; nulls *self_p
void
    zp__change_unref (zp_change_t **self_p);

//  Destructor for containers (czmq_destructor shape)
void
    zp__change_destructor (void **item_p);

#endif
