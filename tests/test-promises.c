/*  =========================================================================
    test-promises - what the README promises, tried as a user would:
    contexts that come and go, exit codes that come back, a shutdown that
    asks before it forces, mail that outlives its sender
    =========================================================================
*/

#include "harness.h"

//  One context made, used and destroyed; asserts each step
static void
s_ctx_cycle (int cycle)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx)
        test_fail (__FILE__, __LINE__, errno, "zp_ctx_new failed in cycle %d", cycle);
    zp_state_t *state = zp_ctx_state (ctx);
    ASSERT_EQ (zp_state_set_int (state, "cycle", cycle), 0);
    int64_t value = -1;
    ASSERT_EQ (zp_state_get_int (state, "cycle", &value), 0);
    ASSERT_EQ (value, cycle);
    zp_ctx_destroy (&ctx);
}


//  A context is never refused because another one just went: its inproc
//  endpoints must not be named after an address malloc hands out again
TEST_IMPL (promise_ctx_churn)
{
    for (int cycle = 0; cycle < 1000; cycle++)
        s_ctx_cycle (cycle);
    //  And with another context alive beside them
    zp_ctx_t *other = zp_ctx_new ();
    ASSERT_NOT_NULL (other);
    for (int cycle = 0; cycle < 200; cycle++) {
        s_ctx_cycle (cycle);
        ASSERT_EQ (zp_state_set_int (zp_ctx_state (other), "cycle", cycle), 0);
    }
    zp_ctx_destroy (&other);
    return 0;
}
