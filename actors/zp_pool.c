/*  =========================================================================
    zp_pool - map a function over inputs on a pool of worker processes

    Each pool worker is forked with one end of a unix socketpair made just
    before the fork: the pool writes batches of tasks into it and reads
    results back, with no broker and no ZeroMQ hop in between, and the end
    of file on it (or the worker's pidfd) says at once that the worker died.
    The parent's side is non-blocking and driven by one poll loop, so a
    worker that is slow to read never holds the others.

    Batches: the pool keeps at most BATCHES_IN_FLIGHT batches queued at each
    worker and sizes each batch from the tasks' measured cost (the workers
    report how long they ran them): about BATCH_TARGET_NS of work, never
    more than a fair share of what is left, so slow tasks go one by one and
    tiny ones by thousands.

    Blame: each worker writes the index of the task it runs into a page
    shared with the parent (mmap before fork). When a worker dies, that task
    is charged a try; the others it held (queued, or done with results not
    yet sent) go back to the queue without being charged.

    Wire (host byte order: both ends are the same program on one machine):
        pool -> worker  batch:  u32 tasks, u32 bytes that follow; per task:
                                u32 index, u32 size, size bytes
        worker -> pool  results: u32 results, u32 bytes that follow,
                                u32 flags (END_OF_BATCH), u32 zero, u64
                                nsecs spent running them; per result: u32 index, u32
                                size (NO_OUTPUT: the task returned NULL),
                                size bytes
    =========================================================================
*/

#include "zp_classes.h"
#include <poll.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/mman.h>

//  Attempts per task, unless zp_pool_set_tries says otherwise
#define DEFAULT_TRIES       3
//  Work in one batch, nsecs
#define BATCH_TARGET_NS     2000000
//  Input bytes after which a batch is closed
#define BATCH_MAX_BYTES     (256 * 1024)
//  Batches queued at one worker
#define BATCHES_IN_FLIGHT   2
//  Result bytes after which a worker sends what it has, mid-batch
#define RESULTS_FLUSH_BYTES (1024 * 1024)
//  How often progress is published during a map, msecs
#define PROGRESS_INTERVAL   50
//  How often the map looks at interrupts and at children without a
//  pidfd, msecs
#define POLL_INTERVAL       50
//  How long destroy waits for workers to leave by themselves before
//  SIGTERM, msecs
#define TERM_AFTER          100
//  A slot whose worker fails to start this many times in a row is given up
#define START_FAILURES_MAX  3
//  Size of a result for a task that returned NULL
#define NO_OUTPUT           UINT32_MAX
//  The largest input
#define INPUT_MAX           (UINT32_MAX - 1)
//  Flag: the last results of a batch
#define END_OF_BATCH        1
//  Header sizes
#define BATCH_HEADER        8
#define RESULTS_HEADER      24
#define ENTRY_HEADER        8
//  Shared-page slot stride (one cache line per worker)
#define RUNNING_STRIDE      16

typedef struct {
    zp_pool_t *pool;            //  Our pool, for the child
    size_t number;              //  i, in NAME-i
    char *name;                 //  NAME-i
    pid_t pid;                  //  The worker; 0 when there is none
    int fd;                     //  Our end of the socketpair; -1 when none
    int child_fd;               //  The worker's end, open only around fork
    int pidfd;                  //  Readable when the worker exits; -1 when none
    int control_fd;             //  Its control channel, for its start-up report;
                                //  -1 once read (pools stop workers themselves)
    int start_failures;         //  Failed starts in a row
    byte *out;                  //  Bytes queued for the worker
    size_t out_size;            //  How many
    size_t out_sent;            //  How many of them were written
    size_t out_max;             //  Allocated
    byte *in;                   //  Bytes read from the worker, not yet parsed
    size_t in_size;             //  How many
    size_t in_max;              //  Allocated
    uint32_t *inflight;         //  Tasks sent to the worker, in order (ring)
    size_t inflight_head;       //  The oldest
    size_t inflight_size;       //  How many
    size_t inflight_max;        //  Ring capacity, a power of two (positions wrap
                                //  by a mask: a division per task showed in profiles)
    int batches;                //  Batches sent and not fully answered
} slot_t;

//  One map: its tasks and what became of them
typedef struct {
    zchunk_t **inputs;          //  The caller's inputs (checked once)
    size_t count;               //  How many
    zp_result_fn *callback;     //  Takes each result
    void *arg;                  //  Its argument
    int *tries;                 //  Tries made, per task
    uint32_t *pending;          //  Tasks waiting for a worker (ring of count)
    size_t pending_head;        //  The first to go
    size_t pending_size;        //  How many
    size_t done;                //  Tasks that succeeded
    size_t failed;              //  Tasks that failed every try
    int64_t published;          //  When progress was last published
} map_t;

struct _zp_pool_t {
    zp_ctx_t *ctx;              //  The context we fork from
    pid_t owner;                //  The process that made the pool
    char *name;                 //  The pool's name
    char *key_total;            //  $pool/NAME/total
    char *key_done;             //  $pool/NAME/done
    char *key_failed;           //  $pool/NAME/failed
    zp_task_fn *fn;             //  The task
    void *props;                //  Its argument
    int tries;                  //  Attempts per task
    size_t size;                //  Number of workers
    slot_t *slots;              //  One per worker
    volatile uint32_t *running; //  Shared with the workers: per slot, 1 +
                                //  the task it runs, or 0
    size_t running_bytes;       //  Size of that mapping
    uint64_t task_ns;           //  Estimated cost of one task, 0 unknown
};


//  --------------------------------------------------------------------------
//  Small helpers

static void
s_close (int *fd_p)
{
    if (*fd_p >= 0)
        close (*fd_p);
    *fd_p = -1;
}

//  Close a worker's control channel (a lane descriptor, zp__ctx_fork_all)
static void
s_close_control (int *fd_p)
{
    zp__lane_fd_close (*fd_p);
    *fd_p = -1;
}

static void
s_put_u32 (byte *buffer, uint32_t value)
{
    memcpy (buffer, &value, 4);
}

static uint32_t
s_get_u32 (const byte *buffer)
{
    uint32_t value;
    memcpy (&value, buffer, 4);
    return value;
}

//  Make room for more bytes at the end of a buffer; -1 with ENOMEM
static int
s_reserve (byte **buffer_p, size_t *max_p, size_t needed)
{
    if (needed <= *max_p)
        return 0;
    size_t max = *max_p? *max_p: 4096;
    while (max < needed)
        max *= 2;
    byte *buffer = (byte *) realloc (*buffer_p, max);
    if (!buffer)
        return zp__fail (ENOMEM, -1);
    *buffer_p = buffer;
    *max_p = max;
    return 0;
}

static uint64_t
s_now_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (uint64_t) now.tv_sec * 1000000000 + (uint64_t) now.tv_nsec;
}


//  --------------------------------------------------------------------------
//  In the worker: read batches, run them, send the results. Returns at the
//  end of file (the pool is gone) or on any error, and the worker exits.

//  Read exactly size bytes; -1 at end of file or on error
static int
s_read_exact (int fd, byte *buffer, size_t size)
{
    while (size) {
        ssize_t bytes = read (fd, buffer, size);
        if (bytes <= 0) {
            //  SIGTERM: the pool is being destroyed
            if (bytes < 0 && errno == EINTR && !zsys_interrupted)
                continue;
            return -1;
        }
        buffer += bytes;
        size -= (size_t) bytes;
    }
    return 0;
}

static int
s_write_all (int fd, const byte *buffer, size_t size)
{
    while (size) {
        ssize_t bytes = send (fd, buffer, size, MSG_NOSIGNAL);
        if (bytes < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buffer += bytes;
        size -= (size_t) bytes;
    }
    return 0;
}

//  Send the results gathered in out (after room for the header)
static int
s_send_results (int fd, byte *out, size_t size, uint32_t results, uint32_t flags,
                uint64_t busy_ns)
{
    s_put_u32 (out, results);
    s_put_u32 (out + 4, (uint32_t) (size - RESULTS_HEADER));
    s_put_u32 (out + 8, flags);
    s_put_u32 (out + 12, 0);
    memcpy (out + 16, &busy_ns, 8);
    return s_write_all (fd, out, size);
}

static void
s_worker_run (zp_worker_t *worker, void *props)
{
    slot_t *slot = (slot_t *) props;
    zp_pool_t *pool = slot->pool;
    //  What we inherited of the other workers' lanes is not ours (their
    //  ends too, when they were forked with us)
    for (size_t index = 0; index < pool->size; index++) {
        s_close (&pool->slots [index].fd);
        s_close (&pool->slots [index].pidfd);
        if (index != slot->number)
            s_close (&pool->slots [index].child_fd);
    }
    int fd = slot->child_fd;
    volatile uint32_t *running = pool->running + slot->number * RUNNING_STRIDE;
    byte header [BATCH_HEADER];
    byte *batch = NULL, *out = NULL;
    size_t batch_max = 0, out_max = 0;
    zchunk_t *input = NULL;
    while (s_read_exact (fd, header, sizeof header) == 0) {
        uint32_t tasks = s_get_u32 (header);
        size_t size = s_get_u32 (header + 4);
        if (s_reserve (&batch, &batch_max, size) < 0 || s_read_exact (fd, batch, size) < 0
        ||  s_reserve (&out, &out_max, RESULTS_HEADER) < 0)
            break;
        size_t out_size = RESULTS_HEADER, offset = 0;
        uint32_t results = 0;
        //  The clock is read once per batch (and flush): it costs as much
        //  as a tiny task on some machines
        uint64_t started = s_now_ns ();
        for (uint32_t task = 0; task < tasks; task++) {
            if (offset + ENTRY_HEADER > size)
                goto done;
            uint32_t index = s_get_u32 (batch + offset);
            uint32_t input_size = s_get_u32 (batch + offset + 4);
            offset += ENTRY_HEADER;
            if (input_size > size - offset)
                goto done;
            //  One input chunk serves every task that fits in it
            if (input && zchunk_max_size (input) < input_size)
                zchunk_destroy (&input);
            if (!input)
                input = zchunk_new (NULL, input_size);
            if (input)
                zchunk_set (input, batch + offset, input_size);
            offset += input_size;
            *running = index + 1;
            zchunk_t *output = input? pool->fn (worker, input, pool->props): NULL;
            *running = 0;
            size_t output_size = output? zchunk_size (output): 0;
            if (output_size > INPUT_MAX)
                zchunk_destroy (&output);       //  Too large to send: failed
            if (s_reserve (&out, &out_max, out_size + ENTRY_HEADER + output_size) < 0)
                goto done;
            s_put_u32 (out + out_size, index);
            s_put_u32 (out + out_size + 4, output? (uint32_t) output_size: NO_OUTPUT);
            out_size += ENTRY_HEADER;
            if (output_size)
                memcpy (out + out_size, zchunk_data (output), output_size);
            out_size += output_size;
            zchunk_destroy (&output);
            results++;
            bool last = task + 1 == tasks;
            if (last || out_size >= RESULTS_FLUSH_BYTES) {
                uint64_t now = s_now_ns ();
                if (s_send_results (fd, out, out_size, results, last? END_OF_BATCH: 0,
                                    now - started) < 0)
                    goto done;
                out_size = RESULTS_HEADER;
                results = 0;
                started = s_now_ns ();
            }
        }
        if (tasks == 0 && s_send_results (fd, out, out_size, 0, END_OF_BATCH, 0) < 0)
            break;
    }
done:
    zchunk_destroy (&input);
    free (batch);
    free (out);
    close (fd);
}


//  --------------------------------------------------------------------------
//  Tasks of a map: the queue, and what happens when one ends

static void
s_pending_push_front (map_t *map, uint32_t index)
{
    map->pending_head = (map->pending_head? map->pending_head: map->count) - 1;
    map->pending [map->pending_head] = index;
    map->pending_size++;
}

static uint32_t
s_pending_pop (map_t *map)
{
    uint32_t index = map->pending [map->pending_head];
    if (++map->pending_head == map->count)
        map->pending_head = 0;
    map->pending_size--;
    return index;
}

//  A try of the task failed: queue it again, or give it up
static void
s_task_failed (zp_pool_t *self, map_t *map, uint32_t index)
{
    if (++map->tries [index] < self->tries)
        s_pending_push_front (map, index);
    else {
        map->failed++;
        map->callback (index, NULL, map->arg);
    }
}

static void
s_publish (zp_pool_t *self, map_t *map)
{
    char text [24];
    snprintf (text, sizeof text, "%zu", map->done);
    zp__ctx_publish (self->ctx, self->key_done, text);
    snprintf (text, sizeof text, "%zu", map->failed);
    zp__ctx_publish (self->ctx, self->key_failed, text);
    map->published = zclock_mono ();
}


//  --------------------------------------------------------------------------
//  Workers: start one in a slot, and bury one

static void
s_slot_reset (slot_t *slot)
{
    slot->out_size = slot->out_sent = 0;
    slot->in_size = 0;
    slot->inflight_head = slot->inflight_size = 0;
    slot->batches = 0;
}

//  Before a worker's fork: its channel to the pool; -1 with errno
static int
s_slot_prepare (zp_pool_t *self, slot_t *slot)
{
    int pair [2];
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
        slot->start_failures++;
        return -1;
    }
    //  Both ends are known to the children, which close all but their own
    slot->fd = pair [0];
    slot->child_fd = pair [1];
    self->running [slot->number * RUNNING_STRIDE] = 0;
    return 0;
}

//  After its fork (zp__ctx_fork_all): the slot's worker runs, or the slot
//  is empty again; -1 with errno
static int
s_slot_forked (slot_t *slot, zp_fork_t *forked)
{
    s_close (&slot->child_fd);
    if (forked->pid < 0) {
        s_close (&slot->fd);
        slot->control_fd = -1;
        slot->start_failures++;
        return zp__fail (forked->err, -1);
    }
    slot->pid = forked->pid;
    slot->control_fd = forked->control_fd;
    fcntl (slot->fd, F_SETFL, fcntl (slot->fd, F_GETFL) | O_NONBLOCK);
    slot->pidfd = zp__pidfd_open (slot->pid);
    s_slot_reset (slot);
    return 0;
}

//  What forks a slot's worker
static zp_fork_t
s_slot_fork (slot_t *slot)
{
    return (zp_fork_t) { .name = slot->name, .fn = s_worker_run, .props = slot };
}

//  Fork a worker into an empty slot; -1 with errno
static int
s_slot_start (zp_pool_t *self, slot_t *slot)
{
    if (s_slot_prepare (self, slot) < 0)
        return -1;
    zp_fork_t forked = s_slot_fork (slot);
    zp__ctx_fork_all (self->ctx, &forked, 1);
    return s_slot_forked (slot, &forked);
}

//  Reap the slot's worker (killing it if it lives; reaped: it was reaped
//  already), remove what it left, and, during a map, charge the task it was
//  running and queue the others again
static void
s_slot_bury (zp_pool_t *self, slot_t *slot, map_t *map, bool reaped)
{
    if (!reaped) {
        kill (slot->pid, SIGKILL);
        int status;
        while (waitpid (slot->pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    zp__mailbox_remove (zp__ctx_dir (self->ctx), slot->name);
    s_close (&slot->fd);
    s_close (&slot->pidfd);
    s_close_control (&slot->control_fd);
    slot->pid = 0;
    uint32_t running = self->running [slot->number * RUNNING_STRIDE];
    //  Back to the queue in reverse, so that they keep their order
    while (map && slot->inflight_size) {
        slot->inflight_size--;
        uint32_t index = slot->inflight [(slot->inflight_head + slot->inflight_size)
                                         & (slot->inflight_max - 1)];
        if (index + 1 == running)
            s_task_failed (self, map, index);
        else
            s_pending_push_front (map, index);
    }
    s_slot_reset (slot);
}


//  --------------------------------------------------------------------------
//  Talking to a worker

//  Write what is queued for the worker; -1 when it is gone
static int
s_slot_flush (slot_t *slot)
{
    while (slot->out_sent < slot->out_size) {
        ssize_t bytes = send (slot->fd, slot->out + slot->out_sent,
                              slot->out_size - slot->out_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (bytes < 0)
            return errno == EAGAIN || errno == EINTR? 0: -1;
        slot->out_sent += (size_t) bytes;
    }
    slot->out_size = slot->out_sent = 0;
    return 0;
}

static int
s_inflight_push (slot_t *slot, uint32_t index)
{
    if (slot->inflight_size == slot->inflight_max) {
        //  Grow the ring, unrolled at the start of the new one
        size_t max = slot->inflight_max? slot->inflight_max * 2: 64;
        uint32_t *ring = (uint32_t *) malloc (max * sizeof (uint32_t));
        if (!ring)
            return zp__fail (ENOMEM, -1);
        for (size_t at = 0; at < slot->inflight_size; at++)
            ring [at] = slot->inflight [(slot->inflight_head + at) & (slot->inflight_max - 1)];
        free (slot->inflight);
        slot->inflight = ring;
        slot->inflight_head = 0;
        slot->inflight_max = max;
    }
    slot->inflight [(slot->inflight_head + slot->inflight_size) & (slot->inflight_max - 1)] = index;
    slot->inflight_size++;
    return 0;
}

//  How many tasks the next batch takes: about BATCH_TARGET_NS of work, at
//  most a fair share of what is left, at least one
static size_t
s_batch_size (zp_pool_t *self, map_t *map)
{
    size_t size = self->task_ns? (size_t) (BATCH_TARGET_NS / self->task_ns): 1;
    size_t share = (map->pending_size + self->size * BATCHES_IN_FLIGHT - 1)
                 / (self->size * BATCHES_IN_FLIGHT);
    size = size < share? size: share;
    return size? size: 1;
}

//  Queue a batch of pending tasks for the worker; -1 when it is gone
static int
s_slot_dispatch (zp_pool_t *self, slot_t *slot, map_t *map)
{
    size_t tasks = s_batch_size (self, map);
    size_t start = slot->out_size, bytes = 0, taken = 0;
    if (s_reserve (&slot->out, &slot->out_max, start + BATCH_HEADER) < 0)
        return -1;
    slot->out_size += BATCH_HEADER;
    while (taken < tasks && map->pending_size) {
        uint32_t index = map->pending [map->pending_head];
        zchunk_t *input = map->inputs [index];
        size_t size = zchunk_size (input);
        if (taken && bytes + size > BATCH_MAX_BYTES)
            break;
        if (s_reserve (&slot->out, &slot->out_max, slot->out_size + ENTRY_HEADER + size) < 0
        ||  s_inflight_push (slot, index) < 0)
            break;
        s_pending_pop (map);
        s_put_u32 (slot->out + slot->out_size, index);
        s_put_u32 (slot->out + slot->out_size + 4, (uint32_t) size);
        memcpy (slot->out + slot->out_size + ENTRY_HEADER, zchunk_data (input), size);
        slot->out_size += ENTRY_HEADER + size;
        bytes += ENTRY_HEADER + size;
        taken++;
    }
    if (!taken) {
        slot->out_size = start;
        return zp__fail (ENOMEM, -1);
    }
    s_put_u32 (slot->out + start, (uint32_t) taken);
    s_put_u32 (slot->out + start + 4, (uint32_t) bytes);
    slot->batches++;
    return s_slot_flush (slot);
}

//  Take the complete results in the slot's input; -1 when the worker broke
//  the protocol
static int
s_slot_parse (zp_pool_t *self, slot_t *slot, map_t *map)
{
    size_t offset = 0;
    int rc = 0;
    while (slot->in_size - offset >= RESULTS_HEADER) {
        const byte *header = slot->in + offset;
        uint32_t results = s_get_u32 (header);
        size_t size = s_get_u32 (header + 4);
        uint32_t flags = s_get_u32 (header + 8);
        uint64_t busy_ns;
        memcpy (&busy_ns, header + 16, 8);
        if (slot->in_size - offset - RESULTS_HEADER < size)
            break;
        const byte *entry = header + RESULTS_HEADER, *end = entry + size;
        for (uint32_t result = 0; result < results && rc == 0; result++) {
            uint32_t index = entry + ENTRY_HEADER <= end? s_get_u32 (entry): 0;
            uint32_t output_size = entry + ENTRY_HEADER <= end? s_get_u32 (entry + 4): 0;
            size_t data_size = output_size == NO_OUTPUT? 0: output_size;
            if (entry + ENTRY_HEADER > end || (size_t) (end - entry - ENTRY_HEADER) < data_size
            ||  !slot->inflight_size || slot->inflight [slot->inflight_head] != index) {
                rc = -1;
                break;
            }
            slot->inflight_head = (slot->inflight_head + 1) & (slot->inflight_max - 1);
            slot->inflight_size--;
            if (output_size == NO_OUTPUT)
                s_task_failed (self, map, index);
            else {
                map->done++;
                map->callback (index, zchunk_new (entry + ENTRY_HEADER, data_size), map->arg);
            }
            entry += ENTRY_HEADER + data_size;
        }
        if (rc < 0)
            break;
        if (results) {
            uint64_t task_ns = busy_ns / results;
            self->task_ns = self->task_ns? (self->task_ns + task_ns) / 2: task_ns;
            self->task_ns = self->task_ns? self->task_ns: 1;
        }
        if (flags & END_OF_BATCH)
            slot->batches--;
        offset += RESULTS_HEADER + size;
    }
    memmove (slot->in, slot->in + offset, slot->in_size - offset);
    slot->in_size -= offset;
    return rc;
}

//  Read what the worker sent and take its results; -1 at the end of file
//  (the worker died) or when it broke the protocol
static int
s_slot_read (zp_pool_t *self, slot_t *slot, map_t *map)
{
    while (true) {
        if (s_reserve (&slot->in, &slot->in_max, slot->in_size + 65536) < 0)
            return -1;
        ssize_t bytes = read (slot->fd, slot->in + slot->in_size, slot->in_max - slot->in_size);
        if (bytes == 0)
            return -1;
        if (bytes < 0)
            return errno == EAGAIN || errno == EINTR? 0: -1;
        slot->in_size += (size_t) bytes;
        if (s_slot_parse (self, slot, map) < 0)
            return -1;
    }
}


//  --------------------------------------------------------------------------
//  Constructor and destructor

//  The context destroys an attached pool through a czmq_destructor: a call
//  through a pointer cast from zp_pool_destroy would be one through the
//  wrong function type (clang's -fsanitize=function reports it)
static void
s_pool_destroy_attached (void **item_p)
{
    zp_pool_t *self = (zp_pool_t *) *item_p;
    zp_pool_destroy (&self);
    *item_p = NULL;
}

zp_pool_t *
zp_pool_new (zp_ctx_t *ctx, const char *name, size_t size, zp_task_fn *fn, void *props)
{
    if (!ctx || !fn)
        return zp__fail (EINVAL, NULL);
    name = name? name: "pool";
    if (size == 0) {
        long cpus = sysconf (_SC_NPROCESSORS_ONLN);
        size = cpus > 0? (size_t) cpus: 1;
    }
    zp_pool_t *self = (zp_pool_t *) zmalloc (sizeof (zp_pool_t));
    if (!self)
        return zp__fail (ENOMEM, NULL);
    self->ctx = ctx;
    self->owner = getpid ();
    self->fn = fn;
    self->props = props;
    self->tries = DEFAULT_TRIES;
    self->name = strdup (name);
    self->key_total = zsys_sprintf ("%s%s/total", ZP_POOL_PREFIX, name);
    self->key_done = zsys_sprintf ("%s%s/done", ZP_POOL_PREFIX, name);
    self->key_failed = zsys_sprintf ("%s%s/failed", ZP_POOL_PREFIX, name);
    self->slots = (slot_t *) calloc (size, sizeof (slot_t));
    self->running_bytes = size * RUNNING_STRIDE * sizeof (uint32_t);
    void *running = mmap (NULL, self->running_bytes, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    self->running = running == MAP_FAILED? NULL: (volatile uint32_t *) running;
    if (!self->name || !self->key_total || !self->key_done || !self->key_failed
    ||  !self->slots || !self->running) {
        zp_pool_destroy (&self);
        return zp__fail (ENOMEM, NULL);
    }
    self->size = size;
    int rc = 0;
    for (size_t index = 0; index < size; index++) {
        slot_t *slot = &self->slots [index];
        slot->pool = self;
        slot->number = index;
        slot->fd = slot->child_fd = slot->pidfd = slot->control_fd = -1;
        slot->name = zsys_sprintf ("%s-%zu", name, index);
        if (!slot->name)
            rc = ENOMEM;
        else
        if (!zp__ctx_name_free (ctx, slot->name))
            rc = EINVAL;
    }
    //  Fork them all back to back, then wait for them together
    zp_fork_t *forks = NULL;
    if (rc == 0 && !(forks = (zp_fork_t *) calloc (size, sizeof (zp_fork_t))))
        rc = ENOMEM;
    size_t prepared = 0;
    while (rc == 0 && prepared < size) {
        slot_t *slot = &self->slots [prepared];
        if (s_slot_prepare (self, slot) < 0)
            rc = errno;
        else
            forks [prepared++] = s_slot_fork (slot);
    }
    bool forked = rc == 0;
    if (forked)
        zp__ctx_fork_all (ctx, forks, size);
    for (size_t index = 0; index < prepared; index++) {
        slot_t *slot = &self->slots [index];
        if (!forked) {
            s_close (&slot->child_fd);
            s_close (&slot->fd);
        }
        else
        if (s_slot_forked (slot, &forks [index]) < 0 && !rc)
            rc = errno;
    }
    free (forks);
    for (size_t index = 0; index < size; index++) {
        slot_t *slot = &self->slots [index];
        if (slot->control_fd >= 0) {
            int status = zp__ctx_await_ready (slot->control_fd);
            s_close_control (&slot->control_fd);
            rc = rc? rc: status;
        }
    }
    if (rc == 0 && zp__ctx_attach (ctx, self, s_pool_destroy_attached) < 0)
        rc = ENOMEM;
    if (rc) {
        zp_pool_destroy (&self);
        return zp__fail (rc, NULL);
    }
    return self;
}

void
zp_pool_destroy (zp_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zp_pool_t *self = *self_p;
    *self_p = NULL;
    //  A forked child's copy of a pool is not its own
    if (self->owner == getpid ()) {
        zp__ctx_detach (self->ctx, self);
        //  The end of file tells each worker to leave once its task is done;
        //  SIGTERM those that do not see it (a process forked since holds
        //  our end too), SIGKILL after the grace period
        for (size_t index = 0; index < self->size; index++) {
            s_close (&self->slots [index].fd);
            s_close_control (&self->slots [index].control_fd);
        }
        int64_t started = zclock_mono ();
        int64_t term_at = started + TERM_AFTER;
        int64_t deadline = started + zp__ctx_grace (self->ctx);
        struct pollfd *exits = (struct pollfd *) calloc (self->size, sizeof (struct pollfd));
        bool signalled = false;
        while (true) {
            if (!signalled && zclock_mono () >= term_at) {
                for (size_t index = 0; index < self->size; index++)
                    if (self->slots [index].pid > 0)
                        kill (self->slots [index].pid, SIGTERM);
                signalled = true;
            }
            size_t nexits = 0;
            bool running = false, unwatched = !exits;
            for (size_t index = 0; index < self->size; index++) {
                slot_t *slot = &self->slots [index];
                int status;
                pid_t pid = slot->pid > 0? waitpid (slot->pid, &status, WNOHANG): 0;
                if (pid != 0)
                    s_slot_bury (self, slot, NULL, pid > 0);
                else
                if (slot->pid > 0) {
                    running = true;
                    if (slot->pidfd >= 0 && exits)
                        exits [nexits++] = (struct pollfd) { slot->pidfd, POLLIN, 0 };
                    else
                        unwatched = true;
                }
            }
            if (!running || zclock_mono () >= deadline)
                break;
            //  Woken by the first exit; without a pidfd, a look every 5 ms
            int timeout = zp__remaining (signalled || deadline < term_at? deadline: term_at);
            if (unwatched && timeout > 5)
                timeout = 5;
            if (poll (exits, nexits, timeout) < 0 && errno != EINTR)
                zclock_sleep (5);
        }
        free (exits);
        for (size_t index = 0; index < self->size; index++)
            if (self->slots [index].pid > 0)
                s_slot_bury (self, &self->slots [index], NULL, false);
    }
    for (size_t index = 0; self->slots && index < self->size; index++) {
        slot_t *slot = &self->slots [index];
        s_close (&slot->pidfd);
        free (slot->name);
        free (slot->out);
        free (slot->in);
        free (slot->inflight);
    }
    if (self->running)
        munmap ((void *) self->running, self->running_bytes);
    free (self->slots);
    free (self->key_total);
    free (self->key_done);
    free (self->key_failed);
    free (self->name);
    free (self);
}


//  --------------------------------------------------------------------------
//  Settings

int
zp_pool_set_tries (zp_pool_t *self, int tries)
{
    if (!self || tries < 1)
        return zp__fail (EINVAL, -1);
    self->tries = tries;
    return 0;
}

size_t
zp_pool_size (zp_pool_t *self)
{
    return self? self->size: 0;
}


//  --------------------------------------------------------------------------
//  The map

//  Bury the workers that have exited (without a pidfd, that is how their
//  death is seen), after reading what they sent
static void
s_bury_dead (zp_pool_t *self, map_t *map)
{
    for (size_t index = 0; index < self->size; index++) {
        slot_t *slot = &self->slots [index];
        int status;
        pid_t pid = slot->pid > 0? waitpid (slot->pid, &status, WNOHANG): 0;
        if (pid != 0) {
            if (map)
                s_slot_read (self, slot, map);
            s_slot_bury (self, slot, map, pid > 0);
        }
    }
}

//  Run the map until every task has ended, or the deadline, or a signal.
//  Returns 0, or -1 with ETIMEDOUT or EINTR.
static int
s_map_run (zp_pool_t *self, map_t *map, int64_t deadline)
{
    struct pollfd *items = (struct pollfd *) calloc (self->size * 2, sizeof (struct pollfd));
    slot_t **owners = (slot_t **) calloc (self->size * 2, sizeof (slot_t *));
    int rc = items && owners? 0: zp__fail (ENOMEM, -1);
    while (rc == 0 && map->done + map->failed < map->count) {
        if (zsys_interrupted) {
            rc = zp__fail (EINTR, -1);
            break;
        }
        if (deadline >= 0 && zclock_mono () >= deadline) {
            rc = zp__fail (ETIMEDOUT, -1);
            break;
        }
        //  Hand out work, replacing the workers that died while work waits
        size_t nitems = 0;
        bool unwatched = false, alive = false;
        for (size_t index = 0; index < self->size; index++) {
            slot_t *slot = &self->slots [index];
            if (slot->pid == 0 && map->pending_size
            &&  slot->start_failures < START_FAILURES_MAX)
                s_slot_start (self, slot);
            if (slot->pid == 0)
                continue;
            while (slot->batches < BATCHES_IN_FLIGHT && map->pending_size)
                if (s_slot_dispatch (self, slot, map) < 0)
                    break;
            alive = true;
            unwatched |= slot->pidfd < 0;
            items [nitems] = (struct pollfd) {
                slot->fd, (short) (POLLIN | (slot->out_size? POLLOUT: 0)), 0
            };
            owners [nitems++] = slot;
            if (slot->pidfd >= 0 || slot->control_fd >= 0) {
                //  The start-up report first: then the death of a worker
                items [nitems] = (struct pollfd) {
                    slot->control_fd >= 0? slot->control_fd: slot->pidfd, POLLIN, 0
                };
                owners [nitems++] = slot;
            }
        }
        if (!alive) {
            //  No worker can start: what waits fails
            while (map->pending_size) {
                uint32_t index = s_pending_pop (map);
                map->tries [index] = self->tries;
                map->failed++;
                map->callback (index, NULL, map->arg);
            }
            continue;
        }
        int timeout = zp__remaining (deadline);
        if (timeout < 0 || timeout > POLL_INTERVAL)
            timeout = POLL_INTERVAL;
        int ready = poll (items, nitems, timeout);
        if (ready < 0 && errno != EINTR) {
            rc = -1;
            break;
        }
        for (size_t item = 0; ready > 0 && item < nitems; item++) {
            slot_t *slot = owners [item];
            if (!items [item].revents || slot->pid == 0)
                continue;
            bool dead = false;
            if (items [item].fd == slot->fd) {
                if (items [item].revents & POLLOUT)
                    dead = s_slot_flush (slot) < 0;
                if (items [item].revents & (POLLIN | POLLHUP | POLLERR))
                    dead |= s_slot_read (self, slot, map) < 0;
            }
            else
            if (items [item].fd == slot->control_fd) {
                int status = zp__ctx_await_ready (slot->control_fd);
                s_close_control (&slot->control_fd);
                if (status == 0)
                    slot->start_failures = 0;
                else {
                    slot->start_failures++;
                    dead = true;
                }
            }
            else {
                //  It died: what it sent before is read first
                s_slot_read (self, slot, map);
                dead = true;
            }
            if (dead)
                s_slot_bury (self, slot, map, false);
        }
        if (unwatched)
            s_bury_dead (self, map);
        if (zclock_mono () - map->published >= PROGRESS_INTERVAL)
            s_publish (self, map);
    }
    free (items);
    free (owners);
    return rc;
}

static void
s_map_free (map_t *map)
{
    free (map->tries);
    free (map->pending);
}

int
zp_pool_map_each (zp_pool_t *self, zchunk_t **inputs, size_t count,
                  zp_result_fn *callback, void *arg, int timeout_ms)
{
    if (!self || (count && !inputs) || !callback || count > INPUT_MAX
    ||  self->owner != getpid ())
        return zp__fail (EINVAL, -1);
    int64_t deadline = zp__deadline (timeout_ms);
    map_t map;
    memset (&map, 0, sizeof map);
    map.count = count;
    map.callback = callback;
    map.arg = arg;
    map.inputs = inputs;
    map.tries = (int *) calloc (count + 1, sizeof (int));
    map.pending = (uint32_t *) malloc ((count + 1) * sizeof (uint32_t));
    if (!map.tries || !map.pending) {
        s_map_free (&map);
        return zp__fail (ENOMEM, -1);
    }
    for (size_t index = 0; index < count; index++)
        if (!inputs [index] || zchunk_size (inputs [index]) > INPUT_MAX) {
            s_map_free (&map);
            return zp__fail (EINVAL, -1);
        }
    for (size_t index = 0; index < count; index++)
        map.pending [index] = (uint32_t) index;
    map.pending_size = count;
    char text [24];
    snprintf (text, sizeof text, "%zu", count);
    zp__ctx_publish (self->ctx, self->key_total, text);
    s_publish (self, &map);

    s_bury_dead (self, NULL);
    for (size_t index = 0; index < self->size; index++)
        self->slots [index].start_failures = 0;
    int rc = count? s_map_run (self, &map, deadline): 0;
    int saved = errno;
    //  Workers still busy with this map's tasks are replaced: nothing of
    //  it may reach the next one
    for (size_t index = 0; index < self->size; index++) {
        slot_t *slot = &self->slots [index];
        if (slot->pid > 0 && (slot->inflight_size || slot->batches))
            s_slot_bury (self, slot, NULL, false);
    }
    s_publish (self, &map);
    s_map_free (&map);
    if (rc < 0)
        return zp__fail (saved, -1);
    return map.failed? zp__fail (EIO, -1): 0;
}

//  The ordered map keeps each result in its slot
static void
s_store_output (size_t index, zchunk_t *output, void *arg)
{
    ((zchunk_t **) arg) [index] = output;
}

int
zp_pool_map (zp_pool_t *self, zchunk_t **inputs, size_t count, zchunk_t **outputs,
             int timeout_ms)
{
    if (!self || (count && !outputs))
        return zp__fail (EINVAL, -1);
    for (size_t index = 0; index < count; index++)
        outputs [index] = NULL;
    return zp_pool_map_each (self, inputs, count, s_store_output, outputs, timeout_ms);
}
