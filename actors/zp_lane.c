/*  =========================================================================
    zp_lane - multipart messages over a stream socket (the direct lane)

    See zp_lane.h for the framing. The input buffer holds what recv gave:
    whole messages are handed out in place (no copy) and consumed from its
    start; a partial one stays and the buffer grows to its announced length
    (bounded by max), so one recv can take a large value whole. The file
    uses nothing else of the library's, so the tests link it directly.
    =========================================================================
*/

#include "zp_classes.h"
#include <sys/socket.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <pthread.h>

//  Input buffer to start with, and the most iovecs one sendmsg carries
#define LANE_BUFFER         (64 * 1024)
#define LANE_IOV            64
//  How often a blocked wait looks at zsys_interrupted, msecs
#define LANE_SIGNAL_CHECK   250
//  Descriptors received and not taken yet that a lane keeps (more are closed)
#define LANE_FDS_IN         4

struct _zp_lane_t {
    int fd;                     //  The stream socket
    bool blocking;              //  Client end: waits; store end: never
    size_t max;                 //  Largest message body accepted
    byte *input;                //  Received bytes
    size_t input_size;          //  Allocated
    size_t input_start;         //  First byte not yet handed out
    size_t input_end;           //  After the last byte received
    byte *output;               //  Bytes the socket did not take yet
    size_t output_size;         //  Allocated
    size_t output_start;        //  First byte not yet written
    size_t output_end;          //  After the last byte queued
    int rcvtimeo;               //  SO_RCVTIMEO now set, msecs (0 = none)
    int fds_in [LANE_FDS_IN];   //  Descriptors received (SCM_RIGHTS), oldest first
    size_t nfds_in;             //  How many
    //  The output side may be shared by two threads (zp__lane_share): the
    //  lock keeps each message whole in the stream and the queue sound
    pthread_mutex_t lock;       //  Guards output, output_* and fd's writes
    size_t queued;              //  output_end - output_start, readable unlocked
    int refs;                   //  Holders (zp__lane_share), atomic
};


//  Lane descriptors this process holds, one bit per descriptor below
//  LANE_FDS_MAX (a lane beyond it is not marked: a child may keep a copy)
#define LANE_FDS_MAX        65536
static uint64_t s_lane_fds [LANE_FDS_MAX / 64];


//  --------------------------------------------------------------------------
//  Constructor, destructor

zp_lane_t *
zp__lane_new (int fd, bool blocking, size_t max)
{
    zp_lane_t *self = (zp_lane_t *) zmalloc (sizeof (zp_lane_t));
    if (!self) {
        zp__lane_fd_close (fd);
        return zp__fail (ENOMEM, NULL);
    }
    self->fd = fd;
    self->blocking = blocking;
    self->max = max;
    self->refs = 1;
    pthread_mutex_init (&self->lock, NULL);
    int flags = fcntl (fd, F_GETFL);
    if (flags < 0
    ||  fcntl (fd, F_SETFL, blocking? flags & ~O_NONBLOCK: flags | O_NONBLOCK) < 0) {
        int saved = errno;
        zp__lane_destroy (&self);
        return zp__fail (saved, NULL);
    }
    return self;
}

void
zp__lane_destroy (zp_lane_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zp_lane_t *self = *self_p;
    *self_p = NULL;
    if (__atomic_sub_fetch (&self->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    if (self->fd >= 0) {
        zp__lane_fd_mark (self->fd, false);
        close (self->fd);
    }
    int fd;
    while ((fd = zp__lane_take_fd (self)) >= 0)
        close (fd);
    free (self->input);
    free (self->output);
    pthread_mutex_destroy (&self->lock);
    free (self);
}

zp_lane_t *
zp__lane_share (zp_lane_t *self)
{
    __atomic_add_fetch (&self->refs, 1, __ATOMIC_RELAXED);
    return self;
}

int
zp__lane_fd (zp_lane_t *self)
{
    return self->fd;
}


//  --------------------------------------------------------------------------
//  Sending

static void
s_put_uint32 (byte *buffer, uint32_t value)
{
    buffer [0] = (byte) (value >> 24);
    buffer [1] = (byte) (value >> 16);
    buffer [2] = (byte) (value >> 8);
    buffer [3] = (byte) value;
}

static uint32_t
s_get_uint32 (const byte *buffer)
{
    return (uint32_t) buffer [0] << 24 | (uint32_t) buffer [1] << 16
         | (uint32_t) buffer [2] << 8 | (uint32_t) buffer [3];
}

//  Append bytes to the output buffer; 0 or -1 with ENOMEM
static int
s_queue (zp_lane_t *self, const void *data, size_t size)
{
    if (self->output_end + size > self->output_size) {
        //  Move what is left to the front first; grow when that is not enough
        size_t left = self->output_end - self->output_start;
        if (left)               //  output is NULL until the first queued byte
            memmove (self->output, self->output + self->output_start, left);
        self->output_start = 0;
        self->output_end = left;
        if (left + size > self->output_size) {
            size_t wanted = self->output_size? self->output_size: LANE_BUFFER;
            while (wanted < left + size)
                wanted *= 2;
            byte *output = (byte *) realloc (self->output, wanted);
            if (!output)
                return zp__fail (ENOMEM, -1);
            self->output = output;
            self->output_size = wanted;
        }
    }
    memcpy (self->output + self->output_end, data, size);
    self->output_end += size;
    return 0;
}

//  One sendmsg of count iovecs, carrying descriptor fd (SCM_RIGHTS) when it
//  is not -1. Returns the bytes written (0 when the socket is full), or -1
//  with ENOTCONN or EINTR.
static ssize_t
s_sendmsg (zp_lane_t *self, struct iovec *iov, size_t count, int fd)
{
    struct msghdr header = { .msg_iov = iov, .msg_iovlen = count };
    union {
        struct cmsghdr align;
        char bytes [CMSG_SPACE (sizeof (int))];
    } control;
    if (fd >= 0) {
        memset (&control, 0, sizeof control);
        header.msg_control = control.bytes;
        header.msg_controllen = sizeof control.bytes;
        struct cmsghdr *item = CMSG_FIRSTHDR (&header);
        item->cmsg_level = SOL_SOCKET;
        item->cmsg_type = SCM_RIGHTS;
        item->cmsg_len = CMSG_LEN (sizeof (int));
        memcpy (CMSG_DATA (item), &fd, sizeof (int));
    }
    ssize_t rc = sendmsg (self->fd, &header, MSG_NOSIGNAL);
    if (rc >= 0)
        return rc;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
    return zp__fail (errno == EINTR? EINTR: ENOTCONN, -1);
}

//  Skip done bytes of an iovec array; returns the first iovec with bytes
//  left, or count when none are
static size_t
s_iov_skip (struct iovec *iov, size_t count, size_t done)
{
    size_t index = 0;
    while (index < count && done >= iov [index].iov_len)
        done -= iov [index++].iov_len;
    if (index < count) {
        iov [index].iov_base = (byte *) iov [index].iov_base + done;
        iov [index].iov_len -= done;
    }
    return index;
}

int
zp__lane_send (zp_lane_t *self, const zp_part_t *parts, size_t nparts)
{
    return zp__lane_send_fd (self, parts, nparts, -1);
}

int
zp__lane_send_fd (zp_lane_t *self, const zp_part_t *parts, size_t nparts, int fd)
{
    //  A descriptor travels with the message's first bytes: never behind
    //  queued ones (a blocking lane queues nothing)
    if (fd >= 0 && !self->blocking)
        return zp__fail (EINVAL, -1);
    //  Prefix and sizes, then the frames: iovecs point at the caller's bytes
    size_t count = 1 + 2 * nparts;
    byte stack_sizes [ZP_LANE_PREFIX * (1 + LANE_IOV / 2)];
    struct iovec stack_iov [1 + LANE_IOV];
    byte *sizes = count <= 1 + LANE_IOV? stack_sizes
                : (byte *) malloc (ZP_LANE_PREFIX * (1 + nparts));
    struct iovec *iov = count <= 1 + LANE_IOV? stack_iov
                      : (struct iovec *) malloc (count * sizeof (struct iovec));
    int rc = 0;
    if (!sizes || !iov) {
        rc = zp__fail (ENOMEM, -1);
        goto done;
    }
    uint64_t total = 0;
    for (size_t index = 0; index < nparts; index++) {
        total += ZP_LANE_PREFIX + parts [index].size;
        s_put_uint32 (sizes + ZP_LANE_PREFIX * (1 + index), (uint32_t) parts [index].size);
        iov [1 + 2 * index] = (struct iovec) { sizes + ZP_LANE_PREFIX * (1 + index),
                                               ZP_LANE_PREFIX };
        iov [2 + 2 * index] = (struct iovec) { (void *) parts [index].data, parts [index].size };
    }
    if (total > UINT32_MAX) {
        rc = zp__fail (EMSGSIZE, -1);
        goto done;
    }
    s_put_uint32 (sizes, (uint32_t) total);
    iov [0] = (struct iovec) { sizes, ZP_LANE_PREFIX };
    size_t first = 0;
    pthread_mutex_lock (&self->lock);
    //  Behind queued bytes: queue it all, order matters
    if (self->output_end == self->output_start) {
        while (first < count) {
            size_t batch = count - first < IOV_MAX? count - first: IOV_MAX;
            ssize_t done = s_sendmsg (self, iov + first, batch, fd);
            if (done < 0 && errno == EINTR)
                continue;
            if (done > 0)
                fd = -1;        //  It went with the first bytes
            if (done < 0) {
                rc = -1;
                break;
            }
            if (done == 0 && !self->blocking)
                break;
            first += s_iov_skip (iov + first, batch, (size_t) done);
        }
    }
    for (; first < count && rc == 0; first++)
        rc = s_queue (self, iov [first].iov_base, iov [first].iov_len);
    __atomic_store_n (&self->queued, self->output_end - self->output_start, __ATOMIC_RELAXED);
    pthread_mutex_unlock (&self->lock);

done:
    if (sizes != stack_sizes)
        free (sizes);
    if (iov != stack_iov)
        free (iov);
    return rc;
}

size_t
zp__lane_queued (zp_lane_t *self)
{
    //  Not locked: the store asks for every lane before each poll, and must
    //  not wait while the registry writes a wake-up
    return __atomic_load_n (&self->queued, __ATOMIC_RELAXED);
}

int
zp__lane_flush (zp_lane_t *self)
{
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    while (self->output_start < self->output_end) {
        struct iovec iov = {
            self->output + self->output_start, self->output_end - self->output_start
        };
        ssize_t done = s_sendmsg (self, &iov, 1, -1);
        if (done < 0 && errno == EINTR)
            continue;
        if (done <= 0) {
            rc = (int) done;
            break;
        }
        self->output_start += (size_t) done;
    }
    if (self->output_start == self->output_end)
        self->output_start = self->output_end = 0;
    __atomic_store_n (&self->queued, self->output_end - self->output_start, __ATOMIC_RELAXED);
    pthread_mutex_unlock (&self->lock);
    return rc;
}


//  --------------------------------------------------------------------------
//  Receiving

//  Bytes the next message needs in all (prefix and body), 0 when its prefix
//  is not here yet
static size_t
s_next_length (zp_lane_t *self)
{
    if (self->input_end - self->input_start < ZP_LANE_PREFIX)
        return 0;
    return ZP_LANE_PREFIX + (size_t) s_get_uint32 (self->input + self->input_start);
}

//  The store's end: one recvmsg into the input buffer, keeping the
//  descriptors that came with the bytes (a peer sends one with a LANE
//  request); those past LANE_FDS_IN are closed
static ssize_t
s_recvmsg (zp_lane_t *self)
{
    struct iovec iov = {
        self->input + self->input_end, self->input_size - self->input_end
    };
    union {
        struct cmsghdr align;
        char bytes [CMSG_SPACE (LANE_FDS_IN * sizeof (int))];
    } control;
    struct msghdr header = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = control.bytes, .msg_controllen = sizeof control.bytes
    };
    ssize_t rc = recvmsg (self->fd, &header, MSG_CMSG_CLOEXEC);
    if (rc < 0)
        return rc;
    for (struct cmsghdr *item = CMSG_FIRSTHDR (&header); item;
         item = CMSG_NXTHDR (&header, item)) {
        if (item->cmsg_level != SOL_SOCKET || item->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (item->cmsg_len - CMSG_LEN (0)) / sizeof (int);
        for (size_t index = 0; index < count; index++) {
            int fd;
            memcpy (&fd, CMSG_DATA (item) + index * sizeof (int), sizeof fd);
            if (self->nfds_in < LANE_FDS_IN)
                self->fds_in [self->nfds_in++] = fd;
            else
                close (fd);
        }
    }
    return rc;
}

ssize_t
zp__lane_fill (zp_lane_t *self)
{
    if (self->input_start == self->input_end)
        self->input_start = self->input_end = 0;
    size_t needed = s_next_length (self);
    if (needed && needed - ZP_LANE_PREFIX > self->max)
        return zp__fail (EPROTO, -1);
    //  Room for the whole next message, or for a buffer's worth
    if (needed < LANE_BUFFER)
        needed = LANE_BUFFER;
    if (self->input_start + needed > self->input_size) {
        size_t left = self->input_end - self->input_start;
        if (left)               //  input is NULL after zp__lane_take
            memmove (self->input, self->input + self->input_start, left);
        self->input_start = 0;
        self->input_end = left;
        if (needed > self->input_size) {
            byte *input = (byte *) realloc (self->input, needed);
            if (!input)
                return zp__fail (ENOMEM, -1);
            self->input = input;
            self->input_size = needed;
        }
    }
    ssize_t rc;
    if (self->blocking)
        rc = recv (self->fd, self->input + self->input_end,
                   self->input_size - self->input_end, 0);
    else
        rc = s_recvmsg (self);
    if (rc > 0) {
        self->input_end += (size_t) rc;
        return rc;
    }
    if (rc == 0)
        return zp__fail (ENOTCONN, -1);
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return -1;
    return zp__fail (ENOTCONN, -1);
}

bool
zp__lane_next (zp_lane_t *self, zp_part_t *body)
{
    size_t length = s_next_length (self);
    if (!length || self->input_end - self->input_start < length)
        return false;
    body->data = self->input + self->input_start + ZP_LANE_PREFIX;
    body->size = length - ZP_LANE_PREFIX;
    self->input_start += length;
    return true;
}

void *
zp__lane_take (zp_lane_t *self, size_t *size_p)
{
    if (!self->input || self->input_start != self->input_end)
        return NULL;
    void *input = self->input;
    *size_p = self->input_size;
    self->input = NULL;
    self->input_size = self->input_start = self->input_end = 0;
    return input;
}

int
zp__lane_take_fd (zp_lane_t *self)
{
    if (!self->nfds_in)
        return -1;
    int fd = self->fds_in [0];
    memmove (self->fds_in, self->fds_in + 1, --self->nfds_in * sizeof (int));
    return fd;
}

//  Set SO_RCVTIMEO when it differs from what is set: a call with the same
//  timeout as the last one costs no system call
static void
s_set_rcvtimeo (zp_lane_t *self, int timeout)
{
    if (timeout == self->rcvtimeo)
        return;
    struct timeval value = { timeout / 1000, (timeout % 1000) * 1000 };
    if (setsockopt (self->fd, SOL_SOCKET, SO_RCVTIMEO, &value, sizeof value) == 0)
        self->rcvtimeo = timeout;
}

int
zp__lane_wait (zp_lane_t *self, int64_t deadline)
{
    while (true) {
        size_t length = s_next_length (self);
        if (length && self->input_end - self->input_start >= length)
            return 1;
        if (zsys_interrupted)
            return zp__fail (EINTR, -1);
        //  Not zp__remaining: this file is self-contained, for its tests
        int64_t wait = deadline < 0? -1: deadline - zclock_mono ();
        if (deadline >= 0 && wait <= 0)
            return 0;
        //  A signal taken by another thread does not end the recv: look at
        //  zsys_interrupted now and then
        if (wait < 0 || wait > LANE_SIGNAL_CHECK)
            wait = LANE_SIGNAL_CHECK;
        s_set_rcvtimeo (self, (int) wait);
        if (zp__lane_fill (self) < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
    }
}

void
zp__lane_fd_mark (int fd, bool marked)
{
    if (fd < 0 || fd >= LANE_FDS_MAX)
        return;
    uint64_t bit = (uint64_t) 1 << (fd % 64);
    if (marked)
        __atomic_fetch_or (&s_lane_fds [fd / 64], bit, __ATOMIC_SEQ_CST);
    else
        __atomic_fetch_and (&s_lane_fds [fd / 64], ~bit, __ATOMIC_SEQ_CST);
}

void
zp__lane_fd_close (int fd)
{
    if (fd >= 0) {
        zp__lane_fd_mark (fd, false);
        close (fd);
    }
}

void
zp__lane_fd_close_marked (const int *ours, size_t count)
{
    for (int word = 0; word < LANE_FDS_MAX / 64; word++) {
        uint64_t bits = __atomic_load_n (&s_lane_fds [word], __ATOMIC_SEQ_CST);
        for (int bit = 0; bits && bit < 64; bit++)
            if (bits & ((uint64_t) 1 << bit)) {
                int fd = word * 64 + bit;
                bits &= ~((uint64_t) 1 << bit);
                size_t index = 0;
                while (index < count && ours [index] != fd)
                    index++;
                if (index == count) {
                    zp__lane_fd_mark (fd, false);
                    close (fd);
                }
            }
    }
}

int
zp__lane_split (const zp_part_t *body, zp_part_t *frames, size_t max)
{
    const byte *cursor = (const byte *) body->data;
    size_t left = body->size, count = 0;
    while (left) {
        if (left < ZP_LANE_PREFIX || count == max)
            return zp__fail (EPROTO, -1);
        size_t size = s_get_uint32 (cursor);
        cursor += ZP_LANE_PREFIX;
        left -= ZP_LANE_PREFIX;
        if (size > left)
            return zp__fail (EPROTO, -1);
        frames [count].data = cursor;
        frames [count].size = size;
        count++;
        cursor += size;
        left -= size;
    }
    return (int) count;
}

zmsg_t *
zp__lane_split_msg (const zp_part_t *body)
{
    zmsg_t *msg = zmsg_new ();
    const byte *cursor = (const byte *) body->data;
    size_t left = body->size;
    while (msg && left) {
        size_t size = 0;
        if (left < ZP_LANE_PREFIX || (size = s_get_uint32 (cursor)) > left - ZP_LANE_PREFIX) {
            zmsg_destroy (&msg);
            return zp__fail (EPROTO, NULL);
        }
        if (zmsg_addmem (msg, cursor + ZP_LANE_PREFIX, size) < 0)
            zmsg_destroy (&msg);
        cursor += ZP_LANE_PREFIX + size;
        left -= ZP_LANE_PREFIX + size;
    }
    return msg? msg: zp__fail (ENOMEM, NULL);
}
