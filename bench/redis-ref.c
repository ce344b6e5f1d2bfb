/*  =========================================================================
    redis-ref - Redis' side of bench/compare.sh where redis-benchmark has none

    rt: GET and SET round trips of one blocking connection, each timed on
    its own and the medians printed, as zproc-bench's get_rt and set_rt
    (16-byte value). redis-benchmark reports its median from a latency
    histogram that counts in steps of 8 us below a few ms (its lowest
    value is 10 us, with two significant digits): "0.063" ms stands for
    anything from 56 to 63 us, too coarse a reference for a round trip of
    20 to 70 us.

    watch: Redis' watch wake-up, measured as zproc-bench's wake_rt. A
    ping-pong over keyspace notifications (notify-keyspace-events K$): the
    leader sets "ping" and waits for the notice that "pong" changed; the
    follower, a forked process, waits for the notice that "ping" changed
    and sets "pong". One ping-pong is two wake-ups, each a SET's round trip
    plus the server's push to a subscriber: the wake-up latency is the
    median ping-pong divided by two. Unlike zproc's get_when_change, a
    notice carries no value (reading it would be one more round trip).

    incr: INCR on one key by CLIENTS forked processes, each with its own
    blocking connection, one command at a time, measured as zproc-bench's
    incr_ops_8: each client warms up on another key, waits for a common
    start (a pipe's write end closing) and does COUNT INCR; the run lasts
    from the first client's start to the last one's end. This is what a
    program of worker processes sharing a counter in Redis runs; unlike
    redis-benchmark -c 8, whose 8 connections are served by one process
    and one event loop, every INCR here wakes a client process.

    Built by bench/compare.sh: gcc -O2 -o redis-ref redis-ref.c -lhiredis
    Usage: redis-ref rt SOCKET [ROUNDS [WARMUP]]
           redis-ref watch SOCKET [ROUNDS [WARMUP]]
           redis-ref incr SOCKET [CLIENTS [COUNT]]
    rt prints the GET and the SET round trip in microseconds; watch prints
    the wake-up latency in microseconds; incr prints INCR/s and
    1 or 0: whether the key ended at CLIENTS x COUNT. Exit status 1 on
    failure (a wrong count is a result, not a failure).
    =========================================================================
*/

#include <hiredis/hiredis.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "bench-time.h"

//  A step that takes this long has failed, it is not slow
#define WAIT_S          10
//  incr: at most so many clients; untimed INCR of each on another key,
//  as zproc-bench's workers
#define MAX_CLIENTS     64
#define INCR_WARMUP     200

//  A connection with a timeout on every reply; NULL after saying why
static redisContext *
s_connect (const char *path)
{
    struct timeval timeout = { WAIT_S, 0 };
    redisContext *redis = redisConnectUnixWithTimeout (path, timeout);
    if (!redis || redis->err) {
        fprintf (stderr, "redis-ref: cannot connect to %s: %s\n", path,
                 redis? redis->errstr: "out of memory");
        redisFree (redis);
        return NULL;
    }
    redisSetTimeout (redis, timeout);
    return redis;
}

//  Run a command that must not fail; its reply, for the caller to free, or
//  NULL after saying why
static redisReply *
s_reply (redisContext *redis, const char *format, const char *arg1, const char *arg2)
{
    redisReply *reply = (redisReply *) redisCommand (redis, format, arg1, arg2);
    if (reply && reply->type != REDIS_REPLY_ERROR)
        return reply;
    fprintf (stderr, "redis-ref: '%s' failed: %s\n", format, reply? reply->str: redis->errstr);
    if (reply)
        freeReplyObject (reply);
    return NULL;
}

//  Run a command that must not fail, its reply unread; 0 or -1
static int
s_command (redisContext *redis, const char *format, const char *arg1, const char *arg2)
{
    redisReply *reply = s_reply (redis, format, arg1, arg2);
    if (!reply)
        return -1;
    freeReplyObject (reply);
    return 0;
}

//  Fork a child that dies with this process; its pid (0 in the child), or
//  -1 after saying why. Each child makes its own connections: a parent's
//  are not shared across fork.
static pid_t
s_fork (void)
{
    fflush (NULL);
    pid_t pid = fork ();
    if (pid < 0)
        perror ("redis-ref: fork");
    else
    if (pid == 0)
        prctl (PR_SET_PDEATHSIG, SIGKILL);
    return pid;
}

//  Wait for a child; 0 when it exited with status 0, else -1
static int
s_reap (pid_t pid)
{
    int status = 0;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED (status) && WEXITSTATUS (status) == 0? 0: -1;
}


//  --------------------------------------------------------------------------
//  rt

#define RT_KEY      "redis-ref:rt"
#define RT_VALUE    "0123456789abcdef"

//  Prints the median GET and SET round trips in us; 0 or -1
static int
s_rt (const char *path, int rounds, int warmup)
{
    uint64_t *samples = (uint64_t *) malloc (rounds * sizeof (uint64_t));
    redisContext *redis = samples? s_connect (path): NULL;
    int rc = redis? s_command (redis, "SET %s %s", RT_KEY, RT_VALUE): -1;
    const char *commands [2] = { "GET %s", "SET %s %s" };
    double medians [2];
    for (int which = 0; rc == 0 && which < 2; which++) {
        for (int round = 0; rc == 0 && round < warmup + rounds; round++) {
            uint64_t start = s_now_ns ();
            rc = s_command (redis, commands [which], RT_KEY, RT_VALUE);
            if (round >= warmup)
                samples [round - warmup] = s_now_ns () - start;
        }
        medians [which] = s_median_ns (samples, (size_t) rounds) / 1000.0;
    }
    if (rc == 0)
        printf ("%.2f %.2f\n", medians [0], medians [1]);
    redisFree (redis);
    free (samples);
    return rc;
}


//  --------------------------------------------------------------------------
//  watch

//  Wait for the next notice on a subscribed connection; 0 or -1
static int
s_notice (redisContext *sub)
{
    redisReply *reply;
    if (redisGetReply (sub, (void **) &reply) != REDIS_OK) {
        fprintf (stderr, "redis-ref: no notice: %s\n", sub->errstr);
        return -1;
    }
    //  ["message", channel, event]
    int rc = reply->type == REDIS_REPLY_ARRAY && reply->elements == 3
          && reply->element [0]->type == REDIS_REPLY_STRING
          && strcmp (reply->element [0]->str, "message") == 0? 0: -1;
    if (rc < 0)
        fprintf (stderr, "redis-ref: unexpected reply on the subscription\n");
    freeReplyObject (reply);
    return rc;
}

//  Subscribe to the notices of key; 0 or -1
static int
s_subscribe (redisContext *sub, const char *key)
{
    char channel [128];
    snprintf (channel, sizeof channel, "__keyspace@0__:%s", key);
    return s_command (sub, "SUBSCRIBE %s", channel, NULL);
}

//  The follower: sets "pong" after each notice on "ping"; tells the leader
//  through ready_fd when it is subscribed
static int
s_follower (const char *path, int rounds, int ready_fd)
{
    redisContext *redis = s_connect (path);
    redisContext *sub = redis? s_connect (path): NULL;
    int rc = sub && s_subscribe (sub, "ping") == 0? 0: -1;
    if (write (ready_fd, rc == 0? "y": "n", 1) != 1)
        rc = -1;
    close (ready_fd);
    for (int round = 0; rc == 0 && round < rounds; round++) {
        char value [16];
        snprintf (value, sizeof value, "%d", round);
        if (s_notice (sub) < 0 || s_command (redis, "SET pong %s", value, NULL) < 0)
            rc = -1;
    }
    redisFree (sub);
    redisFree (redis);
    return rc;
}

//  The leader: prints the median wake-up in us; 0 or -1
static int
s_watch (const char *path, int rounds, int warmup)
{
    uint64_t *samples = (uint64_t *) malloc (rounds * sizeof (uint64_t));
    redisContext *redis = samples? s_connect (path): NULL;
    if (!redis
    ||  s_command (redis, "CONFIG SET notify-keyspace-events %s", "K$", NULL) < 0
    ||  s_command (redis, "DEL ping pong", NULL, NULL) < 0)
        return -1;
    redisContext *sub = s_connect (path);
    if (!sub || s_subscribe (sub, "pong") < 0)
        return -1;

    int ready [2];
    if (pipe (ready) < 0) {
        perror ("redis-ref: pipe");
        return -1;
    }
    pid_t pid = s_fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close (ready [0]);
        _exit (s_follower (path, warmup + rounds, ready [1]) == 0? 0: 1);
    }
    close (ready [1]);
    char answer = 'n';
    int rc = read (ready [0], &answer, 1) == 1 && answer == 'y'? 0: -1;
    close (ready [0]);
    for (int round = 0; rc == 0 && round < warmup + rounds; round++) {
        char value [16];
        snprintf (value, sizeof value, "%d", round);
        uint64_t start = s_now_ns ();
        if (s_command (redis, "SET ping %s", value, NULL) < 0 || s_notice (sub) < 0)
            rc = -1;
        uint64_t end = s_now_ns ();
        if (round >= warmup)
            samples [round - warmup] = end - start;
    }
    if (rc < 0)
        kill (pid, SIGKILL);
    if (s_reap (pid) < 0)
        rc = -1;
    if (rc == 0) {
        printf ("%.2f\n", s_median_ns (samples, (size_t) rounds) / 2000.0);
    }
    redisFree (sub);
    redisFree (redis);
    free (samples);
    return rc;
}


//  --------------------------------------------------------------------------
//  incr

//  One client: connects and warms up, says so on ready_fd, waits until
//  go_fd reaches its end, does count INCR of key and writes its start and
//  end times to times_fd (16 bytes: one write, whole in a pipe)
static int
s_incr_client (const char *path, const char *key, int count,
               int ready_fd, int go_fd, int times_fd)
{
    redisContext *redis = s_connect (path);
    int rc = redis? 0: -1;
    for (int turn = 0; rc == 0 && turn < INCR_WARMUP; turn++)
        rc = s_command (redis, "INCR %s-warmup", key, NULL);
    if (write (ready_fd, rc == 0? "y": "n", 1) != 1)
        rc = -1;
    close (ready_fd);
    char byte;
    if (rc == 0 && read (go_fd, &byte, 1) != 0)
        rc = -1;
    uint64_t times [2] = { s_now_ns (), 0 };
    for (int turn = 0; rc == 0 && turn < count; turn++)
        rc = s_command (redis, "INCR %s", key, NULL);
    times [1] = s_now_ns ();
    if (rc == 0 && write (times_fd, times, sizeof times) != sizeof times)
        rc = -1;
    redisFree (redis);
    return rc;
}

//  Runs the clients; prints INCR/s and whether the count is exact; 0 or -1
static int
s_incr (const char *path, int clients, int count)
{
    const char *key = "redis-ref:incr";
    redisContext *redis = s_connect (path);
    if (!redis || s_command (redis, "DEL %s %s-warmup", key, key) < 0)
        return -1;
    int ready [2], go [2], times [2];
    if (pipe (ready) < 0 || pipe (go) < 0 || pipe (times) < 0) {
        perror ("redis-ref: pipe");
        return -1;
    }
    pid_t pids [MAX_CLIENTS];
    int started = 0, rc = 0;
    for (; started < clients; started++) {
        pid_t pid = s_fork ();
        if (pid < 0) {
            rc = -1;
            break;
        }
        if (pid == 0) {
            //  The parent's go [1] must be the last write end: its close
            //  is the start
            close (ready [0]);
            close (go [1]);
            close (times [0]);
            _exit (s_incr_client (path, key, count, ready [1], go [0], times [1]) == 0? 0: 1);
        }
        pids [started] = pid;
    }
    close (ready [1]);
    close (go [0]);
    close (times [1]);
    //  Every client ready, or one gone and the others stopped: a client
    //  that died before its answer shortens the read at the end
    for (int index = 0; rc == 0 && index < started; index++) {
        char answer = 'n';
        if (read (ready [0], &answer, 1) != 1 || answer != 'y')
            rc = -1;
    }
    if (rc < 0)
        for (int index = 0; index < started; index++)
            kill (pids [index], SIGKILL);
    close (go [1]);

    uint64_t first = UINT64_MAX, last = 0;
    for (int index = 0; rc == 0 && index < started; index++) {
        uint64_t span [2];
        if (read (times [0], span, sizeof span) != sizeof span)
            rc = -1;
        else {
            first = span [0] < first? span [0]: first;
            last = span [1] > last? span [1]: last;
        }
    }
    for (int index = 0; index < started; index++)
        if (s_reap (pids [index]) < 0)
            rc = -1;
    close (ready [0]);
    close (times [0]);

    redisReply *reply = rc == 0? s_reply (redis, "GET %s", key, NULL): NULL;
    if (reply) {
        long long total = reply->type == REDIS_REPLY_STRING? strtoll (reply->str, NULL, 10): 0;
        long long expected = (long long) clients * count;
        if (total != expected)
            fprintf (stderr, "redis-ref: %s counted %lld, expected %lld\n", key, total,
                     expected);
        printf ("%.0f %d\n", expected / ((last - first) / 1e9), total == expected);
        freeReplyObject (reply);
    }
    else
        rc = -1;
    redisFree (redis);
    return rc;
}

int
main (int argc, char *argv [])
{
    const char *usage = "usage: redis-ref rt SOCKET [ROUNDS [WARMUP]]\n"
                        "       redis-ref watch SOCKET [ROUNDS [WARMUP]]\n"
                        "       redis-ref incr SOCKET [CLIENTS [COUNT]]\n";
    if (argc == 2 && strcmp (argv [1], "--help") == 0) {
        fputs (usage, stdout);
        return 0;
    }
    bool rt = argc > 1 && strcmp (argv [1], "rt") == 0;
    bool watch = argc > 1 && strcmp (argv [1], "watch") == 0;
    bool incr = argc > 1 && strcmp (argv [1], "incr") == 0;
    if ((!rt && !watch && !incr) || argc < 3 || argc > 5) {
        fputs (usage, stderr);
        return 2;
    }
    const char *path = argv [2];
    //  rt, watch: ROUNDS, WARMUP; incr: CLIENTS, COUNT
    int first = argc > 3? atoi (argv [3]): rt? 20000: watch? 5000: 8;
    int second = argc > 4? atoi (argv [4]): rt? 1000: watch? 500: 5000;
    if (!incr && (first < 1 || second < 0)) {
        fprintf (stderr, "redis-ref: bad ROUNDS or WARMUP\n");
        return 2;
    }
    if (incr && (first < 1 || first > MAX_CLIENTS || second < 1)) {
        fprintf (stderr, "redis-ref: CLIENTS must be 1 to %d, COUNT at least 1\n", MAX_CLIENTS);
        return 2;
    }
    int rc = rt? s_rt (path, first, second)
           : watch? s_watch (path, first, second): s_incr (path, first, second);
    return rc == 0? 0: 1;
}
