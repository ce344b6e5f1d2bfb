/*  =========================================================================
    test-feed - the feeds between the store and the registry (actors/
    zp_feed.c, compiled into the runner): items in order, a signal for what
    the reader must act on soon and none for what can wait, none lost
    between a take and the next push, leftovers freed with the feed
    =========================================================================
*/

#include "harness.h"
#include "zp_classes.h"
#include <poll.h>

//  True when the feed's descriptor is readable now
static bool
s_signalled (zp_feed_t *feed)
{
    struct pollfd item = { zp__feed_fd (feed), POLLIN, 0 };
    return poll (&item, 1, 0) == 1;
}

static void
s_push (zp_feed_t *feed, zp_feed_kind_t kind, const char *key)
{
    byte identity [] = { 3, 'a', 'b', 'c' };
    zp_feed_item_t *item = zp__feed_item_new (kind, identity, key);
    ASSERT_NOT_NULL (item);
    zp__feed_push (feed, &item);
    ASSERT_NULL (item);
}

//  The keys of a taken chain, in order, as "k1,k2,..."; frees the chain
static char *
s_keys (zp_feed_item_t *item)
{
    char *keys = strdup ("");
    while (item) {
        zp_feed_item_t *next = item->next;
        char *longer = zsys_sprintf ("%s%s%s", keys, *keys? ",": "", item->key);
        free (keys);
        keys = longer;
        zp__feed_item_destroy (&item);
        item = next;
    }
    return keys;
}

TEST_IMPL (feed_signals)
{
    zp_feed_t *feed = zp__feed_new ();
    ASSERT_NOT_NULL (feed);
    ASSERT (!zp__feed_waiting (feed));
    ASSERT_NULL (zp__feed_take (feed, false));

    //  A park waits for the next item that matters: no signal, but there
    s_push (feed, ZP_FEED_PARK, "p1");
    zp__feed_flush (feed);
    ASSERT (!s_signalled (feed));
    ASSERT (zp__feed_waiting (feed));
    //  A change signals, at the flush and not before, once for many
    s_push (feed, ZP_FEED_CHANGE, "c1");
    ASSERT (!s_signalled (feed));
    s_push (feed, ZP_FEED_WITHDRAW, "w1");
    zp__feed_flush (feed);
    ASSERT (s_signalled (feed));
    //  Taken in order, the signal cleared
    char *keys = s_keys (zp__feed_take (feed, true));
    ASSERT_STR_EQ (keys, "p1,c1,w1");
    zstr_free (&keys);
    ASSERT (!s_signalled (feed));
    ASSERT (!zp__feed_waiting (feed));

    //  After a take, the next item that matters signals again
    s_push (feed, ZP_FEED_ANSWERED, "a1");
    zp__feed_flush (feed);
    ASSERT (!s_signalled (feed));
    s_push (feed, ZP_FEED_ANSWER, "a2");
    zp__feed_flush (feed);
    ASSERT (s_signalled (feed));
    //  A look without the signal takes the items and leaves the signal,
    //  which then wakes the reader once for nothing, never the other way
    keys = s_keys (zp__feed_take (feed, false));
    ASSERT_STR_EQ (keys, "a1,a2");
    zstr_free (&keys);
    ASSERT (s_signalled (feed));
    ASSERT_NULL (zp__feed_take (feed, true));
    ASSERT (!s_signalled (feed));
    s_push (feed, ZP_FEED_WITHDRAWN, "d1");
    zp__feed_flush (feed);
    ASSERT (s_signalled (feed));

    //  An ANSWERED that left bytes queued on its lane must wake the store
    keys = s_keys (zp__feed_take (feed, true));
    ASSERT_STR_EQ (keys, "d1");
    zstr_free (&keys);
    ASSERT (!s_signalled (feed));
    zp_feed_item_t *urgent = zp__feed_item_new (ZP_FEED_ANSWERED, NULL, "q1");
    ASSERT_NOT_NULL (urgent);
    ASSERT (!urgent->wakes);
    urgent->wakes = true;
    zp__feed_push (feed, &urgent);
    zp__feed_flush (feed);
    ASSERT (s_signalled (feed));

    //  What nobody took goes with the feed (valgrind sees the rest)
    s_push (feed, ZP_FEED_PARK, "p2");
    zp__feed_destroy (&feed);
    ASSERT_NULL (feed);
    return 0;
}

//  One thread pushes changes as fast as it can, the other sleeps on the
//  descriptor and takes: every item arrives, in order, none stranded
#define FEED_ITEMS      20000

static void *
s_feed_writer (void *args)
{
    zp_feed_t *feed = (zp_feed_t *) args;
    for (int index = 0; index < FEED_ITEMS; index++) {
        char key [16];
        snprintf (key, sizeof key, "%d", index);
        s_push (feed, index % 3? ZP_FEED_CHANGE: ZP_FEED_PARK, key);
        if (index % 7 == 0)
            zp__feed_flush (feed);
    }
    //  The last one matters, so the reader hears of everything
    s_push (feed, ZP_FEED_CHANGE, "end");
    zp__feed_flush (feed);
    return NULL;
}

TEST_IMPL (feed_threads)
{
    zp_feed_t *feed = zp__feed_new ();
    ASSERT_NOT_NULL (feed);
    pthread_t writer;
    ASSERT_EQ (pthread_create (&writer, NULL, s_feed_writer, feed), 0);
    int next = 0;
    bool ended = false;
    while (!ended) {
        struct pollfd item = { zp__feed_fd (feed), POLLIN, 0 };
        ASSERT_EQ (poll (&item, 1, 10000), 1);
        zp_feed_item_t *items = zp__feed_take (feed, true);
        while (items) {
            zp_feed_item_t *following = items->next;
            if (streq (items->key, "end"))
                ended = true;
            else
                ASSERT_EQ (atoi (items->key), next++);
            zp__feed_item_destroy (&items);
            items = following;
        }
    }
    ASSERT_EQ (next, FEED_ITEMS);
    pthread_join (writer, NULL);
    zp__feed_destroy (&feed);
    return 0;
}
