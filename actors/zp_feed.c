/*  =========================================================================
    zp_feed - what the store and the watcher registry tell each other

    A list under a mutex and an eventfd. The writer signals once until the
    reader takes the list, and only for an item the reader must act on
    soon (item->wakes). A PARK needs nothing done before the next change
    of its key, so it waits for the next item that wakes the registry
    (which looks at the feed now and then while it shuts down, to answer
    those with EINTR); an ANSWERED only settles the store's accounts, which
    it does when it next looks, unless the answer left bytes queued on the
    lane, which the store must send as the socket takes them. A reader
    woken by the signal clears it before it detaches the list, so an item
    pushed after the detach signals again: none that matters waits
    unsignalled.
    =========================================================================
*/

#include "zp_classes.h"
#include <pthread.h>
#include <sys/eventfd.h>

struct _zp_feed_t {
    pthread_mutex_t lock;       //  Guards head and tail
    zp_feed_item_t *head;       //  Oldest item, or NULL
    zp_feed_item_t *tail;       //  Newest item
    int signal;                 //  eventfd: non-zero while items may wait
    bool signalled;             //  A signal is due or sent since the last take
    bool signal_due;            //  Write the signal at the next flush (atomic:
                                //  any thread may flush)
};


//  --------------------------------------------------------------------------
//  Items

zp_feed_item_t *
zp__feed_item_new (zp_feed_kind_t kind, const byte *identity, const char *key)
{
    zp_feed_item_t *self = (zp_feed_item_t *) zmalloc (sizeof (zp_feed_item_t));
    if (!self)
        return zp__fail (ENOMEM, NULL);
    self->kind = kind;
    self->wakes = kind != ZP_FEED_PARK && kind != ZP_FEED_ANSWERED;
    if (identity) {
        self->identity = (byte *) malloc (1 + identity [0]);
        if (self->identity)
            memcpy (self->identity, identity, 1 + identity [0]);
    }
    if (key)
        self->key = strdup (key);
    if ((identity && !self->identity) || (key && !self->key)) {
        zp__feed_item_destroy (&self);
        return zp__fail (ENOMEM, NULL);
    }
    return self;
}

void
zp__feed_item_destroy (zp_feed_item_t **self_p)
{
    zp_feed_item_t *self = *self_p;
    if (self) {
        zp__change_unref (&self->change);
        free (self->identity);
        zstr_free (&self->key);
        zchunk_destroy (&self->value);
        zp__lane_destroy (&self->lane);
        free (self);
        *self_p = NULL;
    }
}


//  --------------------------------------------------------------------------
//  The feed

zp_feed_t *
zp__feed_new (void)
{
    zp_feed_t *self = (zp_feed_t *) zmalloc (sizeof (zp_feed_t));
    if (!self)
        return zp__fail (ENOMEM, NULL);
    self->signal = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->signal < 0) {
        int saved = errno;
        free (self);
        return zp__fail (saved, NULL);
    }
    pthread_mutex_init (&self->lock, NULL);
    return self;
}

void
zp__feed_destroy (zp_feed_t **self_p)
{
    zp_feed_t *self = *self_p;
    if (!self)
        return;
    zp_feed_item_t *item = self->head;
    while (item) {
        zp_feed_item_t *next = item->next;
        zp__feed_item_destroy (&item);
        item = next;
    }
    close (self->signal);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

void
zp__feed_push (zp_feed_t *self, zp_feed_item_t **item_p)
{
    zp_feed_item_t *item = *item_p;
    *item_p = NULL;
    item->next = NULL;
    pthread_mutex_lock (&self->lock);
    if (self->head)
        self->tail->next = item;
    else
        __atomic_store_n (&self->head, item, __ATOMIC_RELEASE);
    self->tail = item;
    if (item->wakes && !self->signalled) {
        self->signalled = true;
        __atomic_store_n (&self->signal_due, true, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock (&self->lock);
}

void
zp__feed_flush (zp_feed_t *self)
{
    //  An eventfd write fails only when its counter would overflow, which
    //  one write per take cannot reach
    uint64_t one = 1;
    if (__atomic_exchange_n (&self->signal_due, false, __ATOMIC_RELAXED)
    &&  write (self->signal, &one, sizeof one) < 0)
        zsys_error ("zproc feed: cannot signal its reader: %s", strerror (errno));
}

int
zp__feed_fd (zp_feed_t *self)
{
    return self->signal;
}

bool
zp__feed_waiting (zp_feed_t *self)
{
    return __atomic_load_n (&self->head, __ATOMIC_ACQUIRE) != NULL;
}

zp_feed_item_t *
zp__feed_take (zp_feed_t *self, bool signalled)
{
    uint64_t count;
    if (signalled && read (self->signal, &count, sizeof count) < 0 && errno != EAGAIN)
        zsys_error ("zproc feed: cannot read the signal: %s", strerror (errno));
    pthread_mutex_lock (&self->lock);
    zp_feed_item_t *items = self->head;
    __atomic_store_n (&self->head, NULL, __ATOMIC_RELAXED);
    self->tail = NULL;
    self->signalled = false;
    //  What was taken needs no signal any more (a writer that took its own
    //  items, zp__watchers_serve, has nothing to wake the reader for)
    __atomic_store_n (&self->signal_due, false, __ATOMIC_RELAXED);
    pthread_mutex_unlock (&self->lock);
    return items;
}
