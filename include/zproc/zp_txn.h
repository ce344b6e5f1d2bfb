/*  =========================================================================
    zp_txn - batches of writes applied atomically (transactions)

    A batch collects operations locally, without a round trip; zp_txn_commit
    sends them to the store in one request, and the store applies every one
    of them or none. Operations apply in the order they were added: an incr
    after a set of the same key adds to the value just set, a precondition
    after a write of its key checks the value written. Nothing but data is
    sent: no code runs in the store.

    The changes of one batch take consecutive sequence numbers. Nobody ever
    sees half a batch: a reply, a watcher, a watch stream (zp_watch tells
    where a batch ends), a snapshot and a replica see all of it or none.

    A batch belongs to one handle and is used by one thread at a time, like
    its handle; destroy the batch before its handle.
    =========================================================================
*/

#ifndef ZP_TXN_H_INCLUDED
#define ZP_TXN_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  An encoded batch holds at most this many bytes: its values, plus its
//  keys and 2 to 13 bytes of framing per operation. A commit of a larger
//  batch fails with EMSGSIZE.
#define ZP_TXN_MAX      ZP_VALUE_MAX

//  An empty batch on state (borrowed: the handle must outlive the batch).
//  The caller owns the batch. NULL with errno: EINVAL (state NULL), ENOMEM.
zp_txn_t *
    zp_txn_new (zp_state_t *state);

//  Destroy the batch, dropping what it holds uncommitted. Nulls *self_p;
//  safe on NULL.
void
    zp_txn_destroy (zp_txn_t **self_p);

//  Add a set of key to a string / to size bytes of data (data may be NULL
//  when size is 0). Returns 0, or -1 with errno and the batch unchanged:
//  EINVAL (self, key or value NULL, bad key), EMSGSIZE (value over
//  ZP_VALUE_MAX), ENOMEM. A set to the value a key already holds is still
//  a change, as with zp_state_set_*.
int
    zp_txn_set_str (zp_txn_t *self, const char *key, const char *value);
int
    zp_txn_set_bytes (zp_txn_t *self, const char *key, const void *data, size_t size);

//  Add a delete of key. Deleting a key that is absent when the batch is
//  applied changes nothing and is no error. Returns 0, or -1 with errno and
//  the batch unchanged: EINVAL (self NULL, bad key), ENOMEM.
int
    zp_txn_delete (zp_txn_t *self, const char *key);

//  Add delta to the int64 value of key (a missing key counts as 0, as in
//  zp_state_incr). *result (result may be NULL) gets the new value when,
//  and only when, the commit succeeds; it must stay valid until then.
//  Returns 0, or -1 with errno and the batch unchanged: EINVAL (self NULL,
//  bad key), ENOMEM.
int
    zp_txn_incr (zp_txn_t *self, const char *key, int64_t delta, int64_t *result);

//  Add a precondition: when the batch is applied, key holds value (value
//  NULL: key is absent). A precondition changes nothing. Returns 0, or -1
//  with errno and the batch unchanged: EINVAL (self NULL, bad key),
//  EMSGSIZE (value over ZP_VALUE_MAX), ENOMEM.
int
    zp_txn_require_str (zp_txn_t *self, const char *key, const char *value);

//  Send the batch to the store, in one round trip, and apply it: every
//  operation or none. Committing an empty batch does nothing and returns 0.
//  The batch is empty again afterwards, whatever the result. Returns 0 when
//  applied, or -1 with errno, and then nothing was applied:
//      EAGAIN      a precondition did not hold (retry with fresh values)
//      EINVAL      an operation is invalid: incr of a value that is not an
//                  int64, or an overflow (or self NULL)
//      EMSGSIZE    the batch is over ZP_TXN_MAX bytes
//      EACCES      a write to a reserved key ("$..."), or the handle is a
//                  read-only view (zp_state_snapshot, a predicate's view)
//      ENOTCONN    no answer from the store within the handle's timeout
//                  (the store may still apply the batch later, whole)
//      EINTR       interrupted (SIGINT/SIGTERM)
int
    zp_txn_commit (zp_txn_t *self);

//  The number of operations in the batch (preconditions included)
size_t
    zp_txn_size (zp_txn_t *self);

#ifdef __cplusplus
}
#endif

#endif
