/*  =========================================================================
    redis-watch - Redis' watch wake-up, measured as zproc-bench's wake_rt

    A ping-pong over keyspace notifications (notify-keyspace-events K$):
    the leader sets "ping" and waits for the notice that "pong" changed;
    the follower, a forked process, waits for the notice that "ping"
    changed and sets "pong". One ping-pong is two wake-ups, each a SET's
    round trip plus the server's push to a subscriber: the wake-up latency
    is the median ping-pong divided by two. Unlike zproc's get_when_change,
    a notice carries no value (reading it would be one more round trip).

    Built by bench/compare.sh: gcc -O2 -o redis-watch redis-watch.c -lhiredis
    Usage: redis-watch SOCKET [ROUNDS [WARMUP]]
    Prints the wake-up latency in microseconds; exit status 1 on failure.
    =========================================================================
*/

#include <hiredis/hiredis.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

//  A step that takes this long has failed, it is not slow
#define WAIT_S          10

static uint64_t
s_now_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (uint64_t) now.tv_sec * 1000000000ULL + (uint64_t) now.tv_nsec;
}

static int
s_compare_u64 (const void *left, const void *right)
{
    uint64_t a = *(const uint64_t *) left, b = *(const uint64_t *) right;
    return a < b? -1: a > b? 1: 0;
}

//  A connection with a timeout on every reply; NULL after saying why
static redisContext *
s_connect (const char *path)
{
    struct timeval timeout = { WAIT_S, 0 };
    redisContext *redis = redisConnectUnixWithTimeout (path, timeout);
    if (!redis || redis->err) {
        fprintf (stderr, "redis-watch: cannot connect to %s: %s\n", path,
                 redis? redis->errstr: "out of memory");
        redisFree (redis);
        return NULL;
    }
    redisSetTimeout (redis, timeout);
    return redis;
}

//  Run a command that must not fail; 0 or -1 after saying why
static int
s_command (redisContext *redis, const char *format, const char *arg1, const char *arg2)
{
    redisReply *reply = (redisReply *) redisCommand (redis, format, arg1, arg2);
    int rc = reply && reply->type != REDIS_REPLY_ERROR? 0: -1;
    if (rc < 0)
        fprintf (stderr, "redis-watch: '%s' failed: %s\n", format,
                 reply? reply->str: redis->errstr);
    if (reply)
        freeReplyObject (reply);
    return rc;
}

//  Wait for the next notice on a subscribed connection; 0 or -1
static int
s_notice (redisContext *sub)
{
    redisReply *reply;
    if (redisGetReply (sub, (void **) &reply) != REDIS_OK) {
        fprintf (stderr, "redis-watch: no notice: %s\n", sub->errstr);
        return -1;
    }
    //  ["message", channel, event]
    int rc = reply->type == REDIS_REPLY_ARRAY && reply->elements == 3
          && reply->element [0]->type == REDIS_REPLY_STRING
          && strcmp (reply->element [0]->str, "message") == 0? 0: -1;
    if (rc < 0)
        fprintf (stderr, "redis-watch: unexpected reply on the subscription\n");
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

int
main (int argc, char *argv [])
{
    if (argc < 2 || argc > 4 || strcmp (argv [1], "--help") == 0) {
        fprintf (argc < 2? stderr: stdout, "usage: redis-watch SOCKET [ROUNDS [WARMUP]]\n");
        return argc < 2? 2: 0;
    }
    const char *path = argv [1];
    int rounds = argc > 2? atoi (argv [2]): 5000;
    int warmup = argc > 3? atoi (argv [3]): 500;
    if (rounds < 1 || warmup < 0) {
        fprintf (stderr, "redis-watch: bad ROUNDS or WARMUP\n");
        return 2;
    }
    uint64_t *samples = (uint64_t *) malloc (rounds * sizeof (uint64_t));
    redisContext *redis = samples? s_connect (path): NULL;
    if (!redis
    ||  s_command (redis, "CONFIG SET notify-keyspace-events %s", "K$", NULL) < 0
    ||  s_command (redis, "DEL ping pong", NULL, NULL) < 0)
        return 1;
    redisContext *sub = s_connect (path);
    if (!sub || s_subscribe (sub, "pong") < 0)
        return 1;

    int ready [2];
    if (pipe (ready) < 0) {
        perror ("redis-watch: pipe");
        return 1;
    }
    fflush (NULL);
    pid_t pid = fork ();
    if (pid < 0) {
        perror ("redis-watch: fork");
        return 1;
    }
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        close (ready [0]);
        //  Its own connections: the parent's are not shared across fork
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
    int status = 0;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0 && !(WIFEXITED (status) && WEXITSTATUS (status) == 0))
        rc = -1;
    if (rc == 0) {
        qsort (samples, rounds, sizeof (uint64_t), s_compare_u64);
        uint64_t median = rounds % 2? samples [rounds / 2]
                        : (samples [rounds / 2 - 1] + samples [rounds / 2]) / 2;
        printf ("%.2f\n", median / 2000.0);
    }
    redisFree (sub);
    redisFree (redis);
    free (samples);
    return rc == 0? 0: 1;
}
