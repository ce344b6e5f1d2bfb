/*  =========================================================================
    zp_ctx - the context: store, watcher registry and reaper (parent side)

    A context owns a private socket directory (mode 0700, under $TMPDIR or
    /tmp), three actors and every worker it spawns. Destroying it stops and
    reaps every worker, stops the actors and removes the directory.
    A context is used from the thread that created it, which is also the
    thread that forks: workers die with that thread (PR_SET_PDEATHSIG).
    =========================================================================
*/

#ifndef ZP_CTX_H_INCLUDED
#define ZP_CTX_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  Create a context: makes the socket directory and starts the store, the
//  watcher registry and the reaper. CURVE is on for every socket (store,
//  mailboxes, every endpoint bound later) when the environment holds
//  ZPROC_CURVE=1: the context makes fresh keys, its workers inherit them in
//  memory, and only the certificates the context issued (or admitted, see
//  zp_ctx_allow) get in. Directories left by contexts whose process died
//  are removed. A context can be made again at once after another was
//  destroyed, as often as wanted. Every connection to the store costs the
//  process a file descriptor, so zp_ctx_new raises this process's soft
//  RLIMIT_NOFILE to its hard limit (as Redis does at start-up); the raised
//  limit is inherited by the workers and stays after the context is
//  destroyed. The caller owns the context, or NULL
//  with errno: ENOMEM; EMFILE (no file descriptor or ZeroMQ socket left);
//  what mkdtemp or writing in it reports when the socket directory cannot
//  be made under $TMPDIR (EACCES, ENOENT, ENOTDIR, ENOSPC, EROFS...);
//  ENAMETOOLONG when $TMPDIR is too long for an ipc:// path;
//  what opendir reports for a ZPROC_CURVE_ALLOW that is not a readable
//  directory (ENOENT, ENOTDIR, EACCES).
zp_ctx_t *
    zp_ctx_new (void);

//  Stop every worker ($TERM in its mailbox, SIGTERM after the grace period,
//  then SIGKILL), reap them all, stop the actors, remove the socket
//  directory, and those left by contexts whose process died (a worker's
//  own, killed before it could clean up). The $TERM goes out after a
//  SIGINT/SIGTERM too; one that cannot be sent is logged. Parked watchers
//  get EINTR. Nulls *self_p; safe on NULL.
void
    zp_ctx_destroy (zp_ctx_t **self_p);

//  The store's ipc endpoint, e.g. "ipc:///tmp/zproc-XXXXXX/store". Owned by
//  the context. NULL with EINVAL when self is NULL.
const char *
    zp_ctx_endpoint (zp_ctx_t *self);

//  The parent's own state handle, owned by the context (do not destroy it).
//  NULL with EINVAL when self is NULL.
zp_state_t *
    zp_ctx_state (zp_ctx_t *self);

//  The parent's own worker object, named "main", owned by the context: its
//  mailbox takes messages sent to "main"; use zp_worker_recv, send, call
//  and reply on it. In a worker's own context (zp_worker_ctx), it is that
//  worker. NULL with EINVAL when self is NULL.
zp_worker_t *
    zp_ctx_main (zp_ctx_t *self);

//  Fork one worker named name (NULL: "worker-N") running fn (self, props),
//  and return when it is connected and ready. The child gets a fresh
//  ZeroMQ context, its own state handle and a mailbox. Returns a handle
//  owned by the context, or NULL with errno: EINVAL (bad name, NULL fn, or
//  the name is taken), EAGAIN/ENOMEM (fork failed), ENOTCONN (the worker
//  could not reach the store), EINTR (interrupted while waiting).
zp_proc_t *
    zp_ctx_spawn (zp_ctx_t *self, const char *name, zp_worker_fn *fn, void *props);

//  Seed parity: register one worker per function in the NULL-terminated
//  list, each named "worker-N" now, so that messages can be sent to it
//  before it starts ($proc/NAME/status is "registered"); zp_ctx_start_all
//  starts them. Returns 0, or -1 with EINVAL or ENOMEM.
int
    zp_ctx_process_factory (zp_ctx_t *self, void *props, zp_worker_fn *fn, ...);

//  Start every registered worker that has not started yet. Returns 0, or -1
//  with the errno of the first zp_ctx_spawn that failed (the others still
//  start).
int
    zp_ctx_start_all (zp_ctx_t *self);

//  Wait until every worker of this context has exited; timeout_ms -1 waits
//  forever. Returns 0 when every worker exited with 0; when one did not,
//  the status of the first to exit with a failure, as zp_proc_wait gives it
//  (its exit code, or 128+signal), so that `return zp_ctx_wait_all (ctx,
//  -1);` from main passes a failure on. A worker restarted by its policy
//  counts by its final exit; an exit the context caused itself (a worker
//  stopped because it could not start, or by a shutdown) is no failure; a
//  worker killed with zp_proc_kill is. The failure stays: a later call
//  returns it again. Returns -1 with EINVAL (self is NULL), ETIMEDOUT, or
//  EINTR (SIGINT/SIGTERM).
int
    zp_ctx_wait_all (zp_ctx_t *self, int timeout_ms);

//  The number of workers spawned and not yet reaped. 0 when self is NULL.
size_t
    zp_ctx_running (zp_ctx_t *self);

//  The store's CURVE public key (Z85, 40 characters), owned by the context;
//  NULL (errno 0) when CURVE is off, NULL with EINVAL when self is NULL.
const char *
    zp_ctx_public_key (zp_ctx_t *self);

//  With CURVE on, also admit clients holding the certificate whose public
//  key (Z85) this is: a process not forked by the context, e.g. on another
//  host (see zp_state_connect). Certificates in the directory named by the
//  environment variable ZPROC_CURVE_ALLOW at zp_ctx_new are admitted too.
//  Returns 0, or -1 with EINVAL (CURVE off, or not a Z85 key).
int
    zp_ctx_allow (zp_ctx_t *self, const char *public_key);

//  Also serve the store on endpoint, e.g. "tcp://127.0.0.1:*". Returns the
//  endpoint actually bound (owned by the context), or NULL with errno:
//  EINVAL (bad endpoint), EADDRINUSE, or what zmq_bind reported.
const char *
    zp_ctx_bind (zp_ctx_t *self, const char *endpoint);

//  How long zp_ctx_destroy waits after $TERM before SIGTERM, and after
//  SIGTERM before SIGKILL (default 1000 ms; in a worker, half the grace of
//  the context that forked it, so that a context inside a worker finishes
//  its own shutdown before its parent escalates). Negative values are
//  ignored.
void
    zp_ctx_set_grace (zp_ctx_t *self, int grace_ms);

//  Restart policies, in OTP's vocabulary
typedef enum {
    ZP_RESTART_TEMPORARY = 0,   //  Never restarted (the default)
    ZP_RESTART_TRANSIENT,       //  Restarted after an abnormal exit (a code
                                //  other than 0, or a signal)
    ZP_RESTART_PERMANENT        //  Always restarted
} zp_restart_t;

//  The restart policy of the workers spawned from now on. A restarted
//  worker keeps its name, its mailbox and its zp_proc_t; zp_proc_pid gives
//  its new pid. The worker's life is published in the state: see
//  "Process notices" below. EINVAL for an unknown policy.
int
    zp_ctx_set_restart (zp_ctx_t *self, zp_restart_t policy);

//  Restart intensity of the workers spawned from now on: at most
//  max_restarts restarts within period_ms, else the worker is given up
//  (status "failed") and zp_proc_wait returns its last exit code. Default:
//  5 restarts in 10000 ms. EINVAL for negative values.
int
    zp_ctx_set_intensity (zp_ctx_t *self, int max_restarts, int period_ms);

//  Backoff between restarts of the workers spawned from now on: the first
//  restart waits initial_ms, each next one twice as long up to max_ms; a
//  worker that ran longer than the intensity period starts again from
//  initial_ms. Default: 50 ms up to 5000 ms. EINVAL for negative values.
int
    zp_ctx_set_backoff (zp_ctx_t *self, int initial_ms, int max_ms);

//  Group strategies, in OTP's vocabulary: what happens to the context's
//  other workers when one of them is to be restarted
typedef enum {
    ZP_STRATEGY_ONE_FOR_ONE = 0,    //  Only that worker is restarted (the default)
    ZP_STRATEGY_ONE_FOR_ALL,        //  Every other worker is stopped too, then
                                    //  all are restarted, in spawn order
    ZP_STRATEGY_REST_FOR_ONE        //  The same for the workers spawned after it
} zp_strategy_t;

//  The strategy of the context's workers as a group; set it before spawning
//  (EINVAL once a worker was spawned, or for an unknown strategy). A worker
//  stopped for a group restart gets $TERM, SIGTERM after the grace period,
//  SIGKILL after another; a temporary worker is stopped and stays stopped
//  (as in OTP). With one_for_all and rest_for_one the intensity
//  (zp_ctx_set_intensity) counts group restarts: when it runs out the whole
//  group is given up (every worker stopped, status "failed"). Exits the
//  context caused are no failure for zp_ctx_wait_all. Pool workers are not
//  part of the group.
int
    zp_ctx_set_strategy (zp_ctx_t *self, zp_strategy_t strategy);

//  Process notices: the reaper publishes each worker's life in the state,
//  under the reserved prefix "$proc/NAME/" (clients cannot write there:
//  EACCES), for the workers of every context, nested ones included (the
//  workers of workers: a supervision tree is visible at every level), so
//  any process can wait for a start or a death with the
//  ordinary watchers:
//      $proc/NAME/status   registered | starting | running | stopping |
//                          restarting | exited | killed | failed (restarts
//                          given up)
//      $proc/NAME/pid      the current pid, decimal
//      $proc/NAME/code     the last exit code, or 128+signal
//      $proc/NAME/restarts how many times it was restarted (absent: never)
#define ZP_PROC_PREFIX      "$proc/"

//  Find a worker by name; NULL with ENOENT when there is none. The handle is
//  owned by the context.
zp_proc_t *
    zp_ctx_proc (zp_ctx_t *self, const char *name);

#ifdef __cplusplus
}
#endif

#endif
