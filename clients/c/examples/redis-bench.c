/*
 * redis-bench — the load generator tw-bench is, pointed at Redis over its Unix
 * socket: the same shapes, measured the same way (examples/bench.h), so that
 * `make bench` (scripts/bench-redis.py) sets tradewired beside Redis. RESP is
 * written and read by hand here (no hiredis): a minimal raw C client.
 *
 *   redis-bench --socket PATH ping [--count 20000]
 *       Sequential PING round trips (after 100 untimed warm-up ones).
 *       Prints: ping count=N p50_us=X p99_us=Y mean_us=Z
 *
 *   redis-bench --socket PATH publish [--count 200000] [--subscribers 1]
 *               [--publishers 1] [--inflight 256] [--size 100] [--timeout 60]
 *       K subscriber connections SUBSCRIBE to a unique channel (each waits for
 *       its confirmation), then P publisher connections (COUNT / P each)
 *       pipeline `PUBLISH channel payload` with a SIZE-byte payload
 *       ("<stamp>xx...") and at most INFLIGHT unanswered each; one thread per
 *       subscriber counts the `message` pushes. `--publishers 50 --inflight 1`
 *       is the unpipelined shape of redis-benchmark's default (50 clients).
 *       Prints the line tw-bench prints (see bench.h):
 *         publish count=N subscribers=K inflight=I publish_per_s=X
 *           delivered_per_s=Y elapsed_s=Z dropped=D publishers=P
 *           disconnected=S latency_us_p50=A latency_us_p99=B
 *       Redis drops nothing silently: a subscriber that falls behind its
 *       client-output-buffer-limit (pubsub class) is disconnected. Such a
 *       subscriber counts in disconnected=, what it did not get in dropped=,
 *       and the run goes on (exit 0: the line reports it).
 */
#define _POSIX_C_SOURCE 200809L

#include "bench.h"

#include <signal.h>
#include <sys/un.h>

typedef struct {
    const char *path;
    char channel[96];
    char *req; /* the PUBLISH request, stamp at stamp_at (-1: none) */
    size_t req_len;
    long long stamp_at;
} redis_ctx;

typedef struct {
    int fd;
} redis_conn;

static void *redis_open(void *ctx, int *fd)
{
    redis_ctx *x = ctx;
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(x->path) >= sizeof a.sun_path)
        die("socket path too long: %s", x->path);
    strcpy(a.sun_path, x->path);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0)
        die("cannot connect to %s", x->path);
    redis_conn *c = malloc(sizeof *c);
    if (!c)
        die("%s", "out of memory");
    c->fd = s;
    *fd = s;
    return c;
}

static void redis_shut(void *ctx, void *handle)
{
    (void)ctx;
    redis_conn *c = handle;
    close(c->fd);
    free(c);
}

static size_t redis_ping_req(void *ctx, char *dst, size_t cap, long long id)
{
    (void)ctx;
    (void)id;
    return (size_t)snprintf(dst, cap, "*1\r\n$4\r\nPING\r\n");
}

static size_t redis_publish_req(void *ctx, char *dst, long long id, unsigned long long stamp)
{
    redis_ctx *x = ctx;
    (void)id;
    memcpy(dst, x->req, x->req_len);
    if (x->stamp_at >= 0)
        stamp_write(dst + x->stamp_at, stamp);
    return x->req_len;
}

/* ------------------------------------------------------------------------ */
/* RESP                                                                       */

typedef struct {
    const char *p;
    size_t n;
} span;

/* The integer in [p, end), or -2 when it is not one (RESP lengths are >= -1). */
static long long resp_int(const char *p, const char *end)
{
    int neg = p < end && *p == '-';
    p += neg;
    if (p == end)
        return -2;
    long long v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || v > (1LL << 40))
            return -2;
        v = v * 10 + (*p - '0');
    }
    return neg ? -v : v;
}

/* One RESP value at buf[0..len): 1 and *used when complete, 0 when more bytes
 * are needed, -1 when malformed. A bulk or simple string's content goes to
 * *self; a top-level array's first `maxel` elements to el[] (their content),
 * its length to *nel. */
static int resp_value(const char *buf, size_t len, size_t *used, span *self, span *el, int maxel, int *nel)
{
    const char *cr = FIND(buf, len, "\r\n");
    if (!cr)
        return len > 64 ? -1 : 0; /* a header line is short */
    size_t head = (size_t)(cr - buf) + 2;
    if (self) {
        self->p = buf + 1;
        self->n = head - 3;
    }
    switch (buf[0]) {
    case '+':
    case '-':
    case ':':
        *used = head;
        return 1;
    case '$': {
        long long n = resp_int(buf + 1, cr);
        if (n == -1) {
            *used = head;
            return 1;
        }
        if (n < 0)
            return -1;
        if (len < head + (size_t)n + 2)
            return 0;
        if (memcmp(buf + head + n, "\r\n", 2) != 0)
            return -1;
        if (self) {
            self->p = buf + head;
            self->n = (size_t)n;
        }
        *used = head + (size_t)n + 2;
        return 1;
    }
    case '*': {
        long long n = resp_int(buf + 1, cr);
        if (n < -1)
            return -1;
        size_t off = head;
        for (long long i = 0; i < n; i++) {
            size_t u;
            span item;
            int r = resp_value(buf + off, len - off, &u, &item, NULL, 0, NULL);
            if (r <= 0)
                return r;
            if (el && i < maxel)
                el[i] = item;
            off += u;
        }
        if (nel)
            *nel = (int)(n < 0 ? 0 : n);
        *used = off;
        return 1;
    }
    default:
        return -1;
    }
}

#define SPAN_IS(s, lit) ((s).n == sizeof(lit) - 1 && memcmp((s).p, (lit), sizeof(lit) - 1) == 0)

static answer_kind redis_answer(void *ctx, const char *buf, size_t len, size_t *used, char *msg, size_t msgcap)
{
    (void)ctx;
    span self;
    int r = resp_value(buf, len, used, &self, NULL, 0, NULL);
    if (r == 0)
        return ANSWER_MORE;
    if (r < 0 || (buf[0] != ':' && buf[0] != '+' && buf[0] != '-')) {
        snprintf(msg, msgcap, "unexpected reply from Redis (starts with '%c')", buf[0]);
        return ANSWER_FATAL;
    }
    if (buf[0] == '-') {
        snprintf(msg, msgcap, "%.*s", (int)self.n, self.p);
        return ANSWER_ERROR;
    }
    return ANSWER_OK;
}

static void redis_subscribe_sub(void *ctx, bench_sub *s, int i)
{
    redis_ctx *x = ctx;
    (void)i;
    s->handle = redis_open(ctx, &s->fd);
    set_blocking(s->fd, 1);
    struct timeval tv = {60, 0};
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[256], buf[512];
    int len = snprintf(req, sizeof req, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n", strlen(x->channel), x->channel);
    if (send_all(s->fd, req, (size_t)len) < 0)
        die("%s", "SUBSCRIBE: send failed");
    size_t have = 0, used;
    span el[3];
    int nel = 0, r;
    while ((r = resp_value(buf, have, &used, NULL, el, 3, &nel)) == 0) {
        ssize_t n = have < sizeof buf ? recv(s->fd, buf + have, sizeof buf - have, 0) : -1;
        if (n <= 0)
            die("%s", "SUBSCRIBE: no confirmation");
        have += (size_t)n;
    }
    if (r < 0 || nel != 3 || !SPAN_IS(el[0], "subscribe") || used != have)
        die("%s", "SUBSCRIBE: unexpected reply");
}

static size_t redis_feed(bench_sub *s, const char *buf, size_t len, unsigned long long t)
{
    size_t off = 0, used;
    span el[3];
    int nel;
    for (;;) {
        int r = resp_value(buf + off, len - off, &used, NULL, el, 3, &nel);
        if (r == 0)
            break;
        if (r < 0) {
            s->failed = 1;
            snprintf(s->errmsg, sizeof s->errmsg, "malformed RESP from Redis");
            break;
        }
        off += used;
        if (buf[off - used] == '*' && nel == 3 && SPAN_IS(el[0], "message")) {
            s->received++;
            unsigned long long stamp;
            if (stamp_read(el[2].p, el[2].n, &stamp) && t > stamp)
                hist_add(s->lat, t - stamp);
        }
    }
    return off;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: redis-bench --socket PATH ping [--count 20000]\n"
            "       redis-bench --socket PATH publish [--count 200000] [--subscribers 1]\n"
            "                   [--publishers 1] [--inflight 256] [--size 100] [--timeout 60]\n");
}

int main(int argc, char **argv)
{
    bench_args a = BENCH_ARGS_INIT;
    redis_ctx x = {0};
    bench_name = "redis-bench";
    signal(SIGPIPE, SIG_IGN);

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (!bench_arg(argc, argv, &i, &a)) {
            fprintf(stderr, "redis-bench: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!a.mode || !a.path) {
        usage(stderr);
        return 2;
    }
    if (bench_args_check(&a))
        return 2;
    x.path = a.path;
    long long size = a.size;

    bench_proto pr = {.ctx = &x, .connect = redis_open, .close = redis_shut, .ping = redis_ping_req, .answer = redis_answer};
    if (strcmp(a.mode, "ping") == 0)
        return bench_ping(&pr, a.count > 0 ? a.count : 20000);

    bench_unique_name(x.channel, sizeof x.channel);
    size_t cap = 128 + strlen(x.channel) + (size_t)size;
    x.req = malloc(cap);
    if (!x.req)
        die("%s", "out of memory");
    int hl = snprintf(x.req, cap, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%lld\r\n", strlen(x.channel), x.channel,
                      size);
    memset(x.req + hl, 'x', (size_t)size);
    x.stamp_at = size >= STAMP_DIGITS ? hl : -1;
    memcpy(x.req + hl + size, "\r\n", 2);
    x.req_len = (size_t)hl + (size_t)size + 2;

    pr.publish = redis_publish_req;
    pr.publish_max = x.req_len;
    pr.subscribe = redis_subscribe_sub;
    pr.feed = redis_feed;
    int status = bench_publish(&pr, &a);
    free(x.req);
    return status;
}
