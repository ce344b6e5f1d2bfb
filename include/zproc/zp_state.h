/*  =========================================================================
    zp_state - a handle to the shared key/value state (any process)

    Keys are non-empty strings of at most ZP_KEY_MAX (255) bytes; values are
    binary-safe byte strings of at most ZP_VALUE_MAX (16 MiB). As in Redis,
    the int and double helpers store and parse decimal text: incr works on
    a value that parses as int64 (a missing key counts as 0), and a getter
    whose value does not parse fails with EINVAL.

    Every call is one round trip to the store; a handle is used by one
    thread at a time. Calls wait for the store at most the handle's timeout
    (zp_state_set_timeout) and then fail with ENOTCONN. Watchers wait as
    long as their own timeout_ms says (-1: forever) and fail with ETIMEDOUT.
    Any call that reaches the store may also fail with ENOBUFS: the handle's
    connection pins more than its budget at the store (64 MiB of replies not
    yet taken, parked watcher requests with their values, watch streams). A
    handle that makes one call at a time and reads its answer never meets
    it, however large the answer.

    Watch semantics: a change made after a watcher call began is never
    missed, however the messages race: a watcher counts every change that
    this handle had not yet seen when the call began (every change the store
    applied after its previous reply to this handle). So a loop of
    get_when_change calls sees every change of the key, in order, as long
    as the store's change log still holds it.
    =========================================================================
*/

#ifndef ZP_STATE_H_INCLUDED
#define ZP_STATE_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  Connect to the store at endpoint (ipc:// or tcp://). server_public_key
//  is the store's CURVE public key in Z85 (zp_ctx_public_key), or NULL for
//  no CURVE. With CURVE, the handle presents the certificate in the file
//  named by the environment variable ZPROC_CLIENT_CERT (a zcert file with
//  its secret part), else a fresh one, which a store admits only after
//  zp_ctx_allow. Returns a handle the caller owns, or NULL with errno:
//  EINVAL (bad endpoint, key or certificate file), ENOTCONN (no store
//  answered within the default timeout), EACCES (refused by CURVE), EMFILE
//  (no file descriptor left in this process for its socket; never an
//  abort).
zp_state_t *
    zp_state_connect (const char *endpoint, const char *server_public_key);

//  Same, presenting cert (the caller keeps it; it is copied).
zp_state_t *
    zp_state_connect_cert (const char *endpoint, const char *server_public_key,
                           zcert_t *cert);

//  Close the handle. Nulls *self_p; safe on NULL. Never destroy the handle
//  that zp_ctx_state or zp_worker_state returned: its owner does.
void
    zp_state_destroy (zp_state_t **self_p);

//  How long a plain call waits for the store before failing with ENOTCONN
//  (-1 waits forever). The default, which also bounds zp_state_connect, is
//  5000 ms, or the value of the environment variable ZPROC_TIMEOUT.
void
    zp_state_set_timeout (zp_state_t *self, int timeout_ms);

//  The sequence number of the last change this handle has seen (0 before
//  any); useful for logging and tests.
uint64_t
    zp_state_seq (zp_state_t *self);

//  Set key to a string, an int64 or a double (both as decimal text), or to
//  size bytes of data (data may be NULL when size is 0). Returns 0, or -1
//  with errno: EINVAL (bad key or NULL argument), EMSGSIZE (value over
//  ZP_VALUE_MAX), EACCES (reserved key), ENOTCONN, EINTR.
int
    zp_state_set_str (zp_state_t *self, const char *key, const char *value);
int
    zp_state_set_int (zp_state_t *self, const char *key, int64_t value);
int
    zp_state_set_double (zp_state_t *self, const char *key, double value);
int
    zp_state_set_bytes (zp_state_t *self, const char *key, const void *data, size_t size);

//  The value of key as a fresh string the caller frees (a value holding a
//  NUL byte is cut there; use get_bytes for binary values). NULL with
//  errno: ENOENT, EINVAL, ENOTCONN, EINTR.
char *
    zp_state_get_str (zp_state_t *self, const char *key);

//  The value of key parsed as a decimal int64 / a double, stored in *value.
//  Returns 0, or -1 with errno: ENOENT, EINVAL (bad argument, or the value
//  does not parse), ENOTCONN, EINTR.
int
    zp_state_get_int (zp_state_t *self, const char *key, int64_t *value);
int
    zp_state_get_double (zp_state_t *self, const char *key, double *value);

//  The value of key as a chunk the caller destroys; NULL with errno:
//  ENOENT, EINVAL, ENOTCONN, EINTR.
zchunk_t *
    zp_state_get_bytes (zp_state_t *self, const char *key);

//  Remove key. Returns 0, or -1 with errno: ENOENT, EINVAL, EACCES,
//  ENOTCONN, EINTR.
int
    zp_state_delete (zp_state_t *self, const char *key);

//  True when key exists. False on any error, with errno set (0 when the key
//  simply does not exist).
bool
    zp_state_exists (zp_state_t *self, const char *key);

//  The keys that start with prefix (NULL or "" = all), sorted bytewise, as a
//  list of strings the caller destroys. NULL with errno: EINVAL, ENOTCONN,
//  EINTR.
zlistx_t *
    zp_state_keys (zp_state_t *self, const char *prefix);

//  The number of keys; 0 on error, with errno set (0 when empty).
size_t
    zp_state_size (zp_state_t *self);

//  The store's statistics, as Redis's INFO: one "NAME VALUE" line per
//  figure, values in decimal, in this order (more may follow in later
//  versions): keys (how many), bytes (of the keys and values held), seq
//  (the last change's sequence number), log and log_bytes (changes, and
//  bytes of their values, in the change log), clients (connections the
//  store knows, lanes included), lanes (those on a direct lane), streams
//  (open watch streams), parked (watcher requests waiting), rss (resident
//  memory of the process the store runs in, bytes), pid (that process).
//  A fresh string the caller frees, or NULL with errno: EINVAL (NULL self,
//  or a view), ENOTCONN, EINTR.
char *
    zp_state_info (zp_state_t *self);

//  Atomically add delta to the int64 value of key (a missing key counts as
//  0) and store the new value in *result (result may be NULL). Returns 0,
//  or -1 with errno: EINVAL (not an int64, or overflow), EACCES, ENOTCONN,
//  EINTR.
int
    zp_state_incr (zp_state_t *self, const char *key, int64_t delta, int64_t *result);

//  Atomically set key to value if its current value equals expected
//  (expected NULL: only if the key is absent). Returns 0 when swapped, -1
//  with EAGAIN when the current value differs, or with EINVAL, EMSGSIZE,
//  EACCES, ENOTCONN, EINTR.
int
    zp_state_cas_str (zp_state_t *self, const char *key, const char *expected,
                      const char *value);

//  Block until key changes (set or deleted; see "Watch semantics"), and
//  return its new value as a string the caller frees. timeout_ms -1 waits
//  forever. NULL with errno: ENOENT (the change was a delete), ETIMEDOUT,
//  EINTR, EINVAL, ENOTCONN. Once it has returned a change, a worker's handle
//  (zp_worker_state, on the direct lane) asks the store for the key's next
//  one at once, without waiting, so that the next call on the same key
//  costs no round trip of its own when the change comes meanwhile (a loop
//  of calls, a ping-pong between processes): that request stays parked at
//  the store (zp_state_info counts it) until the key changes, a call on
//  another key, or zp_state_destroy.
char *
    zp_state_get_when_change (zp_state_t *self, const char *key, int timeout_ms);

//  Block until key equals value; returns at once when it already does.
//  Returns 0, or -1 with ETIMEDOUT, EINTR, EINVAL, ENOTCONN.
int
    zp_state_get_when_equal_str (zp_state_t *self, const char *key, const char *value,
                                 int timeout_ms);

//  Block until key exists; returns at once when it already does. Returns 0,
//  or -1 with ETIMEDOUT, EINTR, EINVAL, ENOTCONN.
int
    zp_state_get_when_available (zp_state_t *self, const char *key, int timeout_ms);

//  Block until predicate (view, arg) returns true. The predicate runs in the
//  caller's process on a consistent read-only view of the state: first on
//  the state as it is now, then again after each change (after the whole
//  of a batch: a view never holds half of one). On the view, the getters,
//  exists, keys and size work without round trips; writes and watchers
//  fail with EACCES. Returns 0, or -1 with ETIMEDOUT, EINTR, EINVAL,
//  ENOTCONN, EACCES (self is a view).
int
    zp_state_get_when (zp_state_t *self, zp_predicate_fn *predicate, void *arg,
                       int timeout_ms);

//  A read-only view of every key under prefix (NULL or "" = all) and its
//  value, at one sequence number (zp_state_seq of the view), copied in one
//  round trip; a snapshot never holds half of a batch. The getters, exists,
//  keys and size work on the view without round trips (size counts the
//  view's keys); writes, watchers, zp_watch_new, zp_state_replicate and a
//  commit of a batch on it fail with EACCES. The caller destroys the view
//  with zp_state_destroy; it does not depend on self. The view holds a copy
//  of every value: about 160 bytes per key plus the key and the value.
//  NULL with errno: EINVAL (bad prefix), ENOMEM, ENOTCONN, EINTR.
zp_state_t *
    zp_state_snapshot (zp_state_t *self, const char *prefix);

//  Keep a local copy (a replica) of the keys under prefix (NULL or "" =
//  all) in this handle, so that a getter (get_str, get_int, get_double,
//  get_bytes, exists) of a key under prefix answers without a round trip
//  while the store has applied no change since the replica was last brought
//  up to date, and brings it up to date in one round trip otherwise (the
//  changes since, or the whole prefix again when the store's change log no
//  longer holds them). Reads stay linearizable: a read that begins after a
//  write returned, in any process, sees that write or a later one.
//  "No change since" is one read of memory that the store shares with the
//  handles of its context and of the workers it forked (zp_ctx_state,
//  zp_worker_state); any other handle (zp_state_connect, other hosts) has
//  none, and pays one round trip per read, still correct. A change
//  anywhere in the store, under prefix or not, costs the next read of the
//  replica that round trip. Writes through the handle go to the store as
//  always. Calling it again replaces the prefix; the replica lives as long
//  as the handle. Memory: a copy of every key and value under prefix, plus
//  about 160 bytes per key (doc/RATIONALE.md). Returns 0 (the replica is
//  up to date), or -1 with errno and no replica: EINVAL (bad prefix),
//  EACCES (self is a view), ENOMEM, ENOTCONN, EINTR.
int
    zp_state_replicate (zp_state_t *self, const char *prefix);

#ifdef __cplusplus
}
#endif

#endif
