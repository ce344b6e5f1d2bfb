/*  =========================================================================
    zp_pool - map a function over inputs on a pool of worker processes

    A pool forks its workers together, named NAME-0, NAME-1, ... and hands
    them tasks as they ask for more (no static split): a slow task never
    holds the others, and small tasks travel in batches sized from how long
    the tasks take, so that many tiny tasks cost few round trips. A task
    whose worker crashed, was killed or returned NULL is tried again, on a
    replacement worker (with the same name) when its worker died; a dead
    worker is seen at once, never waited for.

    Pool workers belong to the pool: neither zp_ctx_wait_all nor the
    context's restart policies or strategy cover them. A pool is used from
    the thread that made it; destroy it before its context (a context
    destroys the pools left on it first).

    While a map runs, its progress is published in the state (reserved
    keys, readable by any process, e.g. `zproc watch '$pool/'`):
        $pool/NAME/total    the number of tasks of the current map
        $pool/NAME/done     how many have succeeded so far
        $pool/NAME/failed   how many failed every try so far
    =========================================================================
*/

#ifndef ZP_POOL_H_INCLUDED
#define ZP_POOL_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  The prefix of the pools' progress keys
#define ZP_POOL_PREFIX      "$pool/"

//  A task, run in a pool worker: returns the output, which the pool takes,
//  or NULL when the task failed. input is the pool's: do not destroy it.
//  props is the pointer given to zp_pool_new, read through fork's copy.
typedef zchunk_t *(zp_task_fn) (zp_worker_t *self, zchunk_t *input, void *props);

//  A result of zp_pool_map_each: the output of inputs [index], which the
//  callback takes, or NULL when that task failed every try
typedef void (zp_result_fn) (size_t index, zchunk_t *output, void *arg);

//  Fork size workers (0: one per CPU) of ctx, all at once, named NAME-0,
//  NAME-1, ... (name NULL: "pool"), each running tasks through fn, and
//  return once every one is ready. Returns the pool, which the caller
//  destroys, or NULL with errno: EINVAL (NULL ctx or fn, a bad name, or a
//  name taken by another worker), EAGAIN/ENOMEM (fork failed), ENOTCONN (a
//  worker could not reach the store), EINTR.
zp_pool_t *
    zp_pool_new (zp_ctx_t *ctx, const char *name, size_t size, zp_task_fn *fn, void *props);

//  Stop the pool's workers (they leave once their current task is done;
//  killed after the context's grace period) and reap them. Nulls *self_p;
//  safe on NULL.
void
    zp_pool_destroy (zp_pool_t **self_p);

//  How many times a task is tried before it is given up (default 3, at
//  least 1). Returns 0, or -1 with EINVAL.
int
    zp_pool_set_tries (zp_pool_t *self, int tries);

//  The number of workers of the pool; 0 when self is NULL.
size_t
    zp_pool_size (zp_pool_t *self);

//  Run fn over every input: outputs [i] = fn (inputs [i]), in input order
//  whatever order the tasks finish in. The inputs stay the caller's; the
//  caller destroys the outputs. outputs has count slots, each set (NULL
//  where a task did not succeed). timeout_ms -1 waits forever. Returns 0
//  when every task succeeded, or -1 with errno: EIO (some tasks failed
//  every try: their outputs are NULL), ETIMEDOUT (the timeout ran out:
//  unfinished tasks are NULL and their workers are replaced), EINTR
//  (SIGINT/SIGTERM), EINVAL (bad arguments, or an input larger than
//  4 GiB - 2).
int
    zp_pool_map (zp_pool_t *self, zchunk_t **inputs, size_t count, zchunk_t **outputs,
                 int timeout_ms);

//  The unordered variant: as zp_pool_map, but each result is handed to
//  callback (index, output, arg) as soon as it comes (a task that failed
//  every try: output NULL), in the order tasks finish; the callback runs in
//  the caller's thread and owns the output. Tasks not finished when the map
//  returns with ETIMEDOUT or EINTR get no call.
int
    zp_pool_map_each (zp_pool_t *self, zchunk_t **inputs, size_t count,
                      zp_result_fn *callback, void *arg, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
