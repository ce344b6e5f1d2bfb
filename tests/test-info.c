/*  =========================================================================
    test-info - the store's statistics (INFO, zp_state_info)
    =========================================================================
*/

#include "harness.h"

//  Parks a watcher on a key nobody writes, after saying it is about to
static void
s_parker (zp_worker_t *self, void *props)
{
    zp_state_t *state = zp_worker_state (self);
    zp_state_set_str (state, "parker/ready", "1");
    char *value = zp_state_get_when_change (state, "never", -1);
    zstr_free (&value);
}


TEST_IMPL (info_fields)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_EQ (zp_state_set_str (state, "alpha", "1"), 0);
    ASSERT_EQ (zp_state_set_str (state, "beta", "xyz"), 0);
    ASSERT_EQ (zp_state_set_str (state, "beta", "22"), 0);
    char *info = zp_state_info (state);
    ASSERT_NOT_NULL (info);
    //  Every figure, in this order, one line each
    const char *names [] = {
        "keys", "bytes", "seq", "log", "log_bytes", "clients", "lanes", "streams",
        "parked", "rss", "pid"
    };
    const char *line = info;
    for (size_t index = 0; index < sizeof names / sizeof names [0]; index++) {
        ASSERT (strncmp (line, names [index], strlen (names [index])) == 0);
        ASSERT_EQ (line [strlen (names [index])], ' ');
        line = strchr (line, '\n');
        ASSERT_NOT_NULL (line);
        line++;
    }
    ASSERT_EQ (*line, 0);
    ASSERT_EQ (test_info_field (info, "keys"), 2);
    ASSERT_EQ (test_info_field (info, "bytes"), strlen ("alpha1beta22"));
    ASSERT_EQ (test_info_field (info, "seq"), 3);
    ASSERT_EQ (test_info_field (info, "log"), 3);
    ASSERT_EQ (test_info_field (info, "log_bytes"), strlen ("1xyz22"));
    ASSERT_GE (test_info_field (info, "clients"), 1);
    ASSERT_EQ (test_info_field (info, "streams"), 0);
    ASSERT_EQ (test_info_field (info, "parked"), 0);
    ASSERT_GT (test_info_field (info, "rss"), 1024 * 1024);
    ASSERT_EQ (test_info_field (info, "pid"), getpid ());
    zstr_free (&info);

    //  A stream, and a worker parked on a watcher (on its direct lane)
    zp_watch_t *watch = zp_watch_new (state, "beta");
    ASSERT_NOT_NULL (watch);
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "parker", s_parker, NULL));
    ASSERT_EQ (zp_state_get_when_available (state, "parker/ready", test_ms (5000)), 0);
    test_parked_t wanted = { state, 1 };
    ASSERT_EQ (wait_until (test_parked_is, &wanted, test_ms (5000)), 0);
    info = zp_state_info (state);
    ASSERT_NOT_NULL (info);
    ASSERT_EQ (test_info_field (info, "streams"), 1);
    ASSERT_GE (test_info_field (info, "clients"), 3);
    ASSERT_GE (test_info_field (info, "lanes"), 1);
    zstr_free (&info);

    //  Not on a view; not on nothing
    zp_state_t *view = zp_state_snapshot (state, NULL);
    ASSERT_NOT_NULL (view);
    ASSERT_NULL_ERRNO (zp_state_info (view), EINVAL);
    zp_state_destroy (&view);
    ASSERT_NULL_ERRNO (zp_state_info (NULL), EINVAL);
    zp_watch_destroy (&watch);
    zp_ctx_destroy (&ctx);
    return 0;
}
