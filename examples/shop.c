/*  =========================================================================
    shop - batches and a replica: four clerks sell from one stock

    The parent stocks the shop ("stock/ITEM") and sets a price list
    ("price/ITEM") that the clerks read all the time and nobody changes:
    each clerk keeps a replica of "price/", so reading a price costs no round
    trip while nothing changed in the store, and one (bringing the copy up
    to date) when something did. A sale is one batch: "the stock is still what I read" (a
    precondition), the stock one less, the till and the clerk's count up.
    When another clerk sold the same item first, the precondition fails
    (EAGAIN), nothing is applied, and the clerk reads again and retries. So
    nothing is sold twice and the till matches the prices exactly:

        shop: 20 items sold by 4 clerks, till 80 (expected 80), stock left 0
    =========================================================================
*/

#include <zproc/zproc.h>

#define CLERKS      4

static const char *s_items [] = { "apple", "pear" };
#define ITEMS       2
#define STOCK       10              //  Of each item

//  A clerk sells, alternating items, until both are out of stock
static void
s_clerk (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    //  Prices are read on every sale and never change: a local copy
    if (zp_state_replicate (state, "price/") < 0)
        return;
    zp_txn_t *sale = zp_txn_new (state);
    char counter [64];
    snprintf (counter, sizeof counter, "sold/%s", zp_worker_name (self));
    int out_of_stock = 0;
    for (int turn = 0; sale && out_of_stock < ITEMS; turn++) {
        const char *item = s_items [turn % ITEMS];
        char stock_key [32], price_key [32];
        snprintf (stock_key, sizeof stock_key, "stock/%s", item);
        snprintf (price_key, sizeof price_key, "price/%s", item);
        int64_t price = 0;
        char *stock = zp_state_get_str (state, stock_key);
        if (!stock || zp_state_get_int (state, price_key, &price) < 0)
            break;
        if (atoi (stock) == 0) {
            out_of_stock++;
            zstr_free (&stock);
            continue;
        }
        out_of_stock = 0;
        char left [16];
        snprintf (left, sizeof left, "%d", atoi (stock) - 1);
        zp_txn_require_str (sale, stock_key, stock);
        zp_txn_set_str (sale, stock_key, left);
        zp_txn_incr (sale, "till", price, NULL);
        zp_txn_incr (sale, counter, 1, NULL);
        if (zp_txn_commit (sale) < 0 && errno != EAGAIN) {
            zstr_free (&stock);
            break;          //  EAGAIN: sold by someone else meanwhile, retry
        }
        zstr_free (&stock);
    }
    zp_txn_destroy (&sale);
}

int
main (void)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx) {
        fprintf (stderr, "shop: zp_ctx_new: %s\n", zp_strerror (errno));
        return 1;
    }
    zp_state_t *state = zp_ctx_state (ctx);
    //  Open the shop in one batch: nobody sees a half-stocked shop
    zp_txn_t *opening = zp_txn_new (state);
    int64_t expected = 0;
    for (int index = 0; index < ITEMS; index++) {
        char key [32], price [16];
        snprintf (price, sizeof price, "%d", 3 + 2 * index);
        snprintf (key, sizeof key, "price/%s", s_items [index]);
        zp_txn_set_str (opening, key, price);
        snprintf (key, sizeof key, "stock/%s", s_items [index]);
        zp_txn_set_str (opening, key, "10");
        expected += STOCK * (3 + 2 * index);
    }
    zp_txn_set_str (opening, "till", "0");
    int rc = zp_txn_commit (opening);
    zp_txn_destroy (&opening);
    for (int index = 0; index < CLERKS && rc == 0; index++)
        if (!zp_ctx_spawn (ctx, NULL, s_clerk, NULL))
            rc = -1;
    if (rc == 0)
        rc = zp_ctx_wait_all (ctx, 30000);
    //  The books, read at one moment
    zp_state_t *books = rc == 0? zp_state_snapshot (state, NULL): NULL;
    if (!books) {
        fprintf (stderr, "shop: %s\n", rc > 0? "a clerk failed": zp_strerror (errno));
        zp_ctx_destroy (&ctx);
        return 1;
    }
    int64_t till = 0, sold = 0, left = 0, value;
    zp_state_get_int (books, "till", &till);
    zlistx_t *keys = zp_state_keys (books, "sold/");
    for (const char *key = (const char *) zlistx_first (keys); key;
         key = (const char *) zlistx_next (keys))
        if (zp_state_get_int (books, key, &value) == 0)
            sold += value;
    zlistx_destroy (&keys);
    for (int index = 0; index < ITEMS; index++) {
        char key [32];
        snprintf (key, sizeof key, "stock/%s", s_items [index]);
        if (zp_state_get_int (books, key, &value) == 0)
            left += value;
    }
    printf ("shop: %" PRId64 " items sold by %d clerks, till %" PRId64
            " (expected %" PRId64 "), stock left %" PRId64 "\n",
            sold, CLERKS, till, expected, left);
    zp_state_destroy (&books);
    zp_ctx_destroy (&ctx);
    return sold == ITEMS * STOCK && till == expected && left == 0? 0: 1;
}
