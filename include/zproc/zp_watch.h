/*  =========================================================================
    zp_watch - every change under a prefix, in store order

    A watch sees every change under its prefix made after it was created
    (see "Watch semantics" in zp_state.h), in store order. If it falls
    further behind than the store's change log holds, zp_watch_next reports
    the gap once with EAGAIN and goes on with the oldest change the log
    still has: it never skips a change silently.
    =========================================================================
*/

#ifndef ZP_WATCH_H_INCLUDED
#define ZP_WATCH_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  Watch the keys under prefix (NULL or "" = all keys) through the store
//  that state talks to. The watch has its own socket; state may be used
//  while the watch lives. Returns a watch the caller destroys, or NULL with
//  errno: EINVAL, ENOTCONN, EINTR, EACCES (state is a read-only view),
//  EMFILE (no file descriptor left for its socket).
zp_watch_t *
    zp_watch_new (zp_state_t *state, const char *prefix);

//  Destroy the watch. Nulls *self_p; safe on NULL.
void
    zp_watch_destroy (zp_watch_t **self_p);

//  The next change: *key_p gets the key and *value_p the new value (NULL
//  when the key was deleted); the caller frees both. value_p may be NULL
//  when the value is not wanted. timeout_ms -1 waits forever, 0 polls.
//  Returns 0, or -1 with errno: ETIMEDOUT, EINTR, EINVAL, ENOTCONN, EAGAIN
//  (a gap: changes were lost to the log's bound; the next call goes on).
int
    zp_watch_next (zp_watch_t *self, char **key_p, char **value_p, int timeout_ms);

//  Same as zp_watch_next, binary-safe: *value_p gets the new value as a
//  chunk the caller destroys (NULL when the key was deleted).
int
    zp_watch_next_bytes (zp_watch_t *self, char **key_p, zchunk_t **value_p, int timeout_ms);

//  The sequence number of the change last returned by zp_watch_next.
uint64_t
    zp_watch_seq (zp_watch_t *self);

//  True when the change last returned was made by a batch (zp_txn) and
//  more changes of that batch under the watch's prefix come next: a reader
//  that wants never to act on half a batch reads on until this is false.
bool
    zp_watch_batch_more (zp_watch_t *self);

//  The watch's socket, owned by the watch, for zpoller/zloop: readable when
//  a change is waiting. Read it with zp_watch_next.
zsock_t *
    zp_watch_sock (zp_watch_t *self);

#ifdef __cplusplus
}
#endif

#endif
