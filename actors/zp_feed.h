/*  =========================================================================
    zp_feed - what the store and the watcher registry tell each other

    Two feeds, one each way. The store's tells the registry, in store
    order, of the changes of keys with requests parked on them, the
    requests to park, and the ones withdrawn; the registry's tells the
    store how each parked request ended. A locked list of items and an
    eventfd, not a libzmq inproc pipe: an item reaches a sleeping thread
    with one write on the sender's side and one read on the receiver's (an
    inproc message costs about twice the thread wake-up here, see
    doc/PERFORMANCE.md). One thread pushes at a time, one takes at a time
    (the store's feed is taken by whichever thread serves the registry,
    under its lock, zp_watchers.h); the writer never blocks.
    =========================================================================
*/

#ifndef ZP_FEED_H_INCLUDED
#define ZP_FEED_H_INCLUDED

typedef struct _zp_feed_t zp_feed_t;

//  What an item says
typedef enum {
    //  From the store
    ZP_FEED_CHANGE,             //  A key with parked requests changed
    ZP_FEED_PARK,               //  Park a request until a change satisfies it
    ZP_FEED_WITHDRAW,           //  The peer gave up a parked request
    //  From the registry: a parked request ended
    ZP_FEED_ANSWER,             //  Send this reply on to the peer
    ZP_FEED_ANSWERED,           //  Answered on the peer's lane already
    ZP_FEED_WITHDRAWN           //  Withdrawn, unanswered
} zp_feed_kind_t;

typedef struct _zp_feed_item_t zp_feed_item_t;
struct _zp_feed_item_t {
    zp_feed_kind_t kind;
    zp_change_t *change;        //  CHANGE: a reference, the item's
    byte *identity;             //  All but CHANGE: the peer, length byte first
    zp_header_t header;         //  PARK, ANSWER: the request or its reply;
                                //  WITHDRAW, ANSWERED: its request id
    char *key;                  //  PARK and what ends it: the key waited on
    zchunk_t *value;            //  PARK of WAIT_EQUAL: the value waited for;
                                //  ANSWER: the reply's value, or NULL
    zp_lane_t *lane;            //  PARK: the peer's lane (a reference), or NULL
    bool wakes;                 //  The reader must act on it soon (signalled);
                                //  false for PARK and ANSWERED unless set
    zp_feed_item_t *next;       //  The next item taken with it
};

//  An empty item of kind, with copies of identity (length byte first) and
//  key when they are not NULL. NULL with ENOMEM.
zp_feed_item_t *
    zp__feed_item_new (zp_feed_kind_t kind, const byte *identity, const char *key);

//  Free an item and what it holds (the change's and lane's references
//  too); nulls *self_p
void
    zp__feed_item_destroy (zp_feed_item_t **self_p);

//  A new, empty feed. NULL with errno (EMFILE, ENOMEM).
zp_feed_t *
    zp__feed_new (void);

//  Free the feed and the items nobody took; nulls *self_p. Both threads
//  must be done with it.
void
    zp__feed_destroy (zp_feed_t **self_p);

//  Append an item (the feed takes it, *item_p is nulled). Never blocks,
//  never fails. The reader hears of it at the next zp__feed_flush; of a
//  PARK or an ANSWERED, with the next item of another kind, or when it
//  looks anyway (zp__feed_waiting).
void
    zp__feed_push (zp_feed_t *self, zp_feed_item_t **item_p);

//  Wake the reader if items came since it last took them: once until it
//  takes them, however many pushes and flushes come meanwhile; none for
//  items taken already. Any thread may flush.
void
    zp__feed_flush (zp_feed_t *self);

//  Readable (POLLIN) while items may wait
int
    zp__feed_fd (zp_feed_t *self);

//  True when items wait, signalled or not (no system call)
bool
    zp__feed_waiting (zp_feed_t *self);

//  Every item waiting, oldest first, chained by next (the caller owns them),
//  or NULL. signalled: the descriptor was readable, and is cleared first
//  (it stays readable only if more came meanwhile); without it, a look that
//  costs no system call, at any time.
zp_feed_item_t *
    zp__feed_take (zp_feed_t *self, bool signalled);

#endif
