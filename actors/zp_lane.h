/*  =========================================================================
    zp_lane - multipart messages over a stream socket (the direct lane)

    A forked worker reaches the store over a unix socketpair made before the
    fork: no path, nothing else can connect, two system calls per round
    trip. On the stream a message is
        4 bytes     big-endian: how many bytes of frames follow
        frames      each: 4 bytes big-endian size, then that many bytes
    The store's end is non-blocking: what the socket does not take at once
    waits in the lane's output buffer (zp__lane_queued counts it for the
    peer's budget) until the socket is writable again. A client's end is
    blocking: a request is one sendmsg, and the wait for its reply one recv
    (SO_RCVTIMEO), looking at zsys_interrupted every 250 msecs.
    =========================================================================
*/

#ifndef ZP_LANE_H_INCLUDED
#define ZP_LANE_H_INCLUDED

typedef struct _zp_lane_t zp_lane_t;

//  Bytes of a message's length prefix, and of each frame's size
#define ZP_LANE_PREFIX      4

//  Make a lane on fd, which it owns from now on (closed by destroy, also
//  when this fails). A non-blocking lane (the store's) never waits; a
//  blocking one (a client's) waits in zp__lane_wait. max is the largest
//  message body it accepts (bytes after the prefix); a longer one is a
//  protocol error. NULL with errno (ENOMEM).
zp_lane_t *
    zp__lane_new (int fd, bool blocking, size_t max);

//  Drop the caller's reference and null *self_p; the last one closes the
//  socket and frees the buffers
void
    zp__lane_destroy (zp_lane_t **self_p);

//  A reference for another thread (dropped with zp__lane_destroy): the
//  lane's output side (send, queued, flush) is locked, so two threads may
//  send on it, each message whole in the stream; only one thread reads.
//  Returns self.
zp_lane_t *
    zp__lane_share (zp_lane_t *self);

//  The lane's socket, for a poller
int
    zp__lane_fd (zp_lane_t *self);

//  Send one message: nparts frames. A blocking lane writes it all; a
//  non-blocking one writes what the socket takes and queues the rest.
//  Returns 0, or -1 with errno: ENOTCONN (the peer is gone), ENOMEM, EINTR.
int
    zp__lane_send (zp_lane_t *self, const zp_part_t *parts, size_t nparts);

//  Send one message as zp__lane_send does, with descriptor fd (SCM_RIGHTS)
//  along with its first bytes: the receiver gets a copy (the caller keeps
//  fd). A blocking lane only (EINVAL otherwise).
int
    zp__lane_send_fd (zp_lane_t *self, const zp_part_t *parts, size_t nparts, int fd);

//  Bytes queued for sending (non-blocking lane), as of the last send or
//  flush of any thread (read without the lock)
size_t
    zp__lane_queued (zp_lane_t *self);

//  Write what is queued, as much as the socket takes. 0, or -1 with
//  ENOTCONN when the peer is gone.
int
    zp__lane_flush (zp_lane_t *self);

//  Read what the socket holds into the input buffer, one recv. Returns the
//  bytes read, or -1 with errno: ENOTCONN at end of stream (the peer is
//  gone), EAGAIN nothing to read (non-blocking) or nothing within the
//  receive timeout (blocking), EPROTO a message longer than max, EINTR,
//  ENOMEM.
ssize_t
    zp__lane_fill (zp_lane_t *self);

//  The next whole message in the input buffer, as its body (the frames,
//  without the prefix): borrowed until the next fill or next. Returns true,
//  or false when no whole message is buffered.
bool
    zp__lane_next (zp_lane_t *self, zp_part_t *body);

//  Take the input buffer when the message zp__lane_next handed out last is
//  the only one in it (nothing after it was received): the caller owns it
//  from now (free), and the body's bytes stay valid in it; the lane starts
//  a new buffer. NULL when other bytes follow, or nothing was handed out.
//  *size_p gets the buffer's size.
void *
    zp__lane_take (zp_lane_t *self, size_t *size_p);

//  A non-blocking lane (the store's) keeps the descriptors that came with
//  the bytes it read (at most 4 not taken; more are closed): the oldest
//  one, which the caller owns from now (close-on-exec), or -1 when none is
//  left. A message that carries one is sent whole in one sendmsg, so its
//  descriptor is there once the message is.
int
    zp__lane_take_fd (zp_lane_t *self);

//  Blocking lane: wait until a whole message is buffered or deadline
//  (zclock_mono msecs, -1 never). Returns 1 when one is, 0 when deadline
//  passed, -1 with ENOTCONN, EPROTO, EINTR (SIGINT/SIGTERM) or ENOMEM.
int
    zp__lane_wait (zp_lane_t *self, int64_t deadline);

//  Descriptors of lanes a forked child must not keep: a child that held a
//  copy of another process's lane end would hide that process's death (no
//  end of stream) from the store, and the store's from the other. Mark
//  each end of a lane while this process holds it (zp__lane_destroy
//  unmarks it); a child closes every marked one but its own (the count
//  descriptors of ours), once it has reported. The context marks a new
//  worker's mailbox socket and control channel too, while it holds them.
//  Lock-free: safe in a child forked while another thread marks.
void
    zp__lane_fd_mark (int fd, bool marked);
void
    zp__lane_fd_close_marked (const int *ours, size_t count);
//  Close a lane descriptor that no lane object took, unmarking it first
void
    zp__lane_fd_close (int fd);

//  Split a message body into its frames (borrowed from body), at most max.
//  Returns how many, or -1 with EPROTO when the body is malformed or has
//  more than max frames. A pure function.
int
    zp__lane_split (const zp_part_t *body, zp_part_t *frames, size_t max);

//  The frames of a message body as a zmsg_t (copies). NULL with EPROTO or
//  ENOMEM.
zmsg_t *
    zp__lane_split_msg (const zp_part_t *body);

#endif
