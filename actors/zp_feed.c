/*  =========================================================================
    zp_feed - what the store and the watcher registry tell each other

    A list under a mutex and an eventfd. The writer signals only when it
    made the list non-empty; the reader clears the signal before it
    detaches the list, so an item pushed after the detach finds the list
    empty and signals again: none is left behind without a signal.
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
    bool unsignalled;           //  Writer's: it filled an empty list, no signal yet
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
    bool was_empty = self->head == NULL;
    if (was_empty)
        self->head = item;
    else
        self->tail->next = item;
    self->tail = item;
    pthread_mutex_unlock (&self->lock);
    if (was_empty)
        self->unsignalled = true;
}

void
zp__feed_flush (zp_feed_t *self)
{
    //  An eventfd write fails only when its counter would overflow, which
    //  one write per empty-to-non-empty cannot reach
    uint64_t one = 1;
    if (self->unsignalled && write (self->signal, &one, sizeof one) < 0)
        zsys_error ("zproc feed: cannot signal its reader: %s", strerror (errno));
    self->unsignalled = false;
}

int
zp__feed_fd (zp_feed_t *self)
{
    return self->signal;
}

zp_feed_item_t *
zp__feed_take (zp_feed_t *self)
{
    uint64_t count;
    if (read (self->signal, &count, sizeof count) < 0 && errno != EAGAIN)
        zsys_error ("zproc feed: cannot read the signal: %s", strerror (errno));
    pthread_mutex_lock (&self->lock);
    zp_feed_item_t *items = self->head;
    self->head = self->tail = NULL;
    pthread_mutex_unlock (&self->lock);
    return items;
}
