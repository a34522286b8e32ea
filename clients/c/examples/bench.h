/*
 * bench.h — the load generator shared by tw-bench (tradewired, JSON lines)
 * and redis-bench (Redis, RESP written by hand), so that both measure the
 * same shapes the same way. Each of the two includes it once and supplies a
 * bench_proto: how to connect, subscribe, frame a ping or a publish, and read
 * answers and deliveries. Everything here is static.
 *
 * ping: sequential round trips on one connection after 100 untimed warm-up
 *   ones. Prints: ping count=N p50_us=X p99_us=Y mean_us=Z
 *
 * publish: K subscriber connections subscribe (each waits for its
 *   acknowledgement), then P publisher connections publish COUNT messages in
 *   all (COUNT / P each), each keeping at most INFLIGHT unanswered; one
 *   thread polls the publishers, one thread per subscriber counts
 *   deliveries. Every payload of at least 20 bytes starts with the publisher's
 *   CLOCK_MONOTONIC in nanoseconds (20 digits, stamped when its batch is
 *   written); a subscriber subtracts it from the time the read that brought
 *   the delivery returned, which gives the publish -> receipt latency.
 *   Prints one line:
 *     publish count=N subscribers=K inflight=I publish_per_s=X
 *       delivered_per_s=Y elapsed_s=Z dropped=D [protocol keys]
 *       publishers=P disconnected=S [latency_us_p50=A latency_us_p99=B]
 *   publish_per_s   = answered publishes / (last answer - first send)
 *   delivered_per_s = deliveries to all subscribers / (the last delivery -
 *                     first send)
 *   elapsed_s       = first send -> all answers and deliveries
 *   dropped         = deliveries the server reported skipped, plus those a
 *                     disconnected subscriber did not get
 *   disconnected    = subscribers whose connection the server closed
 *   latency_us_*    = publish -> receipt, over every stamped delivery to every
 *                     subscriber (log-linear histogram, 1.6 % resolution);
 *                     absent when no delivery carried a stamp (SIZE < 20 for
 *                     Redis, < 30 for tradewired's {"pad":"..."} data)
 *   A subscriber is done when received + dropped == the publishes answered
 *   without an error. TIMEOUT bounds every wait without progress: the run then
 *   stops, prints the line with what it got, and exits 3.
 */
#ifndef TW_BENCH_H
#define TW_BENCH_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

#define RBUF_SIZE (1u << 20)
#define STAMP_DIGITS 20

static const char *bench_name = "bench";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static const char *find(const char *hay, size_t n, const char *needle, size_t m)
{
    if (m == 0 || n < m)
        return NULL;
    const char *end = hay + n - m;
    const char *p = hay;
    while (p <= end) {
        p = memchr(p, needle[0], (size_t)(end - p) + 1);
        if (!p)
            return NULL;
        if (memcmp(p, needle, m) == 0)
            return p;
        p++;
    }
    return NULL;
}
#define FIND(h, n, lit) find((h), (n), (lit), sizeof(lit) - 1)

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", bench_name);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

static void set_blocking(int fd, int blocking)
{
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl >= 0)
        fcntl(fd, F_SETFL, blocking ? (fl & ~O_NONBLOCK) : (fl | O_NONBLOCK));
}

/* Sends all of buf (retrying on EAGAIN). 0, or -1 on failure. */
static int send_all(int fd, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

/* Option parsing: --name VALUE or --name=VALUE. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static long long num_or_die(const char *s, const char *name, long long min)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min) {
        fprintf(stderr, "%s: %s wants an integer >= %lld\n", bench_name, name, min);
        exit(2);
    }
    return v;
}

/* A name no other run uses: bench.PID.NANOS. */
static void bench_unique_name(char *dst, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(dst, cap, "bench.%ld.%lld%09ld", (long)getpid(), (long long)ts.tv_sec, ts.tv_nsec);
}

/* The command line both programs share. */
typedef struct {
    const char *path; /* --socket */
    const char *mode; /* ping | publish */
    long long count, subscribers, publishers, inflight, size, timeout;
} bench_args;

#define BENCH_ARGS_INIT {NULL, NULL, -1, 1, 1, 256, 100, 60}

/* 1 when argv[*i] (and its value) is one of the shared options or the mode. */
static int bench_arg(int argc, char **argv, int *i, bench_args *a)
{
    const char *v;
    if ((v = opt_value(argc, argv, i, "--socket")))
        a->path = v;
    else if ((v = opt_value(argc, argv, i, "--count")))
        a->count = num_or_die(v, "--count", 1);
    else if ((v = opt_value(argc, argv, i, "--subscribers")))
        a->subscribers = num_or_die(v, "--subscribers", 0);
    else if ((v = opt_value(argc, argv, i, "--publishers")))
        a->publishers = num_or_die(v, "--publishers", 1);
    else if ((v = opt_value(argc, argv, i, "--inflight")))
        a->inflight = num_or_die(v, "--inflight", 1);
    else if ((v = opt_value(argc, argv, i, "--size")))
        a->size = num_or_die(v, "--size", 0);
    else if ((v = opt_value(argc, argv, i, "--timeout")))
        a->timeout = num_or_die(v, "--timeout", 1);
    else if (!a->mode && (strcmp(argv[*i], "ping") == 0 || strcmp(argv[*i], "publish") == 0))
        a->mode = argv[*i];
    else
        return 0;
    return 1;
}

/* 0 when the shared options are within bounds, else 2 (with a message). */
static int bench_args_check(const bench_args *a)
{
    if (a->subscribers > 1000 || a->publishers > 1000 || a->size > (16 << 20) || a->inflight > 1000000) {
        fprintf(stderr, "%s: --subscribers and --publishers <= 1000, --size <= 16 MiB, --inflight <= 1000000\n",
                bench_name);
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* latency: stamps and a log-linear histogram                                 */

/* The 20 decimal digits of ns at dst (no terminator). */
static void stamp_write(char *dst, unsigned long long ns)
{
    for (int i = STAMP_DIGITS - 1; i >= 0; i--) {
        dst[i] = (char)('0' + ns % 10);
        ns /= 10;
    }
}

/* 1 and *ns when p starts with 20 digits, else 0. */
static int stamp_read(const char *p, size_t avail, unsigned long long *ns)
{
    if (avail < STAMP_DIGITS)
        return 0;
    unsigned long long v = 0;
    for (int i = 0; i < STAMP_DIGITS; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (unsigned long long)(p[i] - '0');
    }
    *ns = v;
    return 1;
}

#define HIST_BITS 6
#define HIST_SUB (1 << HIST_BITS)
#define HIST_LEN ((64 - HIST_BITS + 1) * HIST_SUB)

/* Values below 64 ns have a bucket each; above, 64 buckets per power of two. */
typedef struct {
    long long n;
    long long count[HIST_LEN];
} hist_t;

static int msb64(unsigned long long v)
{
    int e = 0;
    while (v >>= 1)
        e++;
    return e;
}

static void hist_add(hist_t *h, unsigned long long v)
{
    size_t i;
    if (v < HIST_SUB) {
        i = (size_t)v;
    } else {
        int e = msb64(v);
        i = (size_t)(e - HIST_BITS + 1) * HIST_SUB + (size_t)((v >> (e - HIST_BITS)) - HIST_SUB);
    }
    h->count[i]++;
    h->n++;
}

/* The middle of bucket i. */
static double hist_value(size_t i)
{
    if (i < HIST_SUB)
        return (double)i;
    size_t e = i / HIST_SUB + HIST_BITS - 1, m = i % HIST_SUB + HIST_SUB;
    double lo = (double)m * (double)(1ull << (e - HIST_BITS));
    return lo + (double)(1ull << (e - HIST_BITS)) / 2;
}

/* The value at rank ceil(p * n) (p in 0..1). */
static double hist_percentile(const hist_t *h, double p)
{
    long long rank = (long long)((double)h->n * p + 0.999999);
    if (rank < 1)
        rank = 1;
    long long seen = 0;
    for (size_t i = 0; i < HIST_LEN; i++) {
        seen += h->count[i];
        if (seen >= rank)
            return hist_value(i);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* the protocol a benchmark speaks                                            */

typedef struct bench_sub bench_sub;

typedef enum {
    ANSWER_OK,    /* an answer (result)                                   */
    ANSWER_ERROR, /* an answer (error; msg says which)                    */
    ANSWER_SKIP,  /* not an answer (a notification): consumed, ignored    */
    ANSWER_MORE,  /* incomplete: read more                                */
    ANSWER_FATAL  /* stop (the server is going away, or garbage; msg)     */
} answer_kind;

typedef struct {
    void *ctx;
    /* Connects (exits on failure); *fd is the socket, the result the handle. */
    void *(*connect)(void *ctx, int *fd);
    void (*close)(void *ctx, void *handle);
    /* Writes ping request `id` at dst (cap bytes); its length. */
    size_t (*ping)(void *ctx, char *dst, size_t cap, long long id);
    /* Writes publish request `id` stamped with `stamp` (see top) at dst; at
     * most publish_max bytes. */
    size_t (*publish)(void *ctx, char *dst, long long id, unsigned long long stamp);
    size_t publish_max;
    /* The answer at buf[0..len): its kind, *used = its length. */
    answer_kind (*answer)(void *ctx, const char *buf, size_t len, size_t *used, char *msg, size_t msgcap);
    /* Subscribes subscriber i (exits on failure) and sets s->handle, s->fd. */
    void (*subscribe)(void *ctx, bench_sub *s, int i);
    /* Reads the complete messages at buf[0..len) received at t (ns),
     * counting s->received / s->dropped, adding latencies to s->lat; the
     * bytes used. Sets s->failed + s->errmsg to stop. */
    size_t (*feed)(bench_sub *s, const char *buf, size_t len, unsigned long long t);
    /* Optional: the subscriber thread is about to leave (not after a failure). */
    void (*sub_finish)(bench_sub *s);
    /* Optional: keys to print after dropped=, and what to do after the run
     * (with the first publisher's handle, subscribers closed); nonzero makes
     * the exit status 1 (errors the run met on the way). */
    void (*print_keys)(void *ctx, bench_sub *subs, int n);
    int (*after_run)(void *ctx, void *publisher, bench_sub *subs, int n);
    /* A subscriber connection closed by the server is a failure (exit 3),
     * not only a disconnect to report. */
    int disconnect_fails;
} bench_proto;

typedef struct {
    pthread_mutex_t mu;
    long long expected; /* events each subscriber should account for */
    int stop;           /* give up now */
} bench_shared;

struct bench_sub {
    const bench_proto *pr;
    bench_shared *sh;
    void *handle;
    int fd;
    long long received;
    long long dropped;
    int disconnected;
    double last_event; /* time of the last delivery received */
    size_t rbuf_size;
    hist_t *lat;
    void *ext; /* the protocol's own per-subscriber state */
    /* written by the thread under sh->mu, read by main under it: */
    long long progress; /* received, refreshed once per read */
    int done;           /* received + dropped >= expected, or disconnected */
    int finished;       /* thread has left its loop */
    /* the thread's own; main reads them after pthread_join: */
    int failed;
    char errmsg[160];
};

/* ------------------------------------------------------------------------ */
/* ping                                                                       */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Reads until one answer (notifications skipped): 0 result, 1 error, -1 I/O
 * failure or a fatal answer. */
static int read_answer(const bench_proto *pr, int fd, char *buf, size_t cap, size_t *have)
{
    char msg[160];
    for (;;) {
        size_t used = 0;
        answer_kind k = *have ? pr->answer(pr->ctx, buf, *have, &used, msg, sizeof msg) : ANSWER_MORE;
        if (k == ANSWER_FATAL)
            return -1;
        if (k != ANSWER_MORE) {
            memmove(buf, buf + used, *have - used);
            *have -= used;
            if (k == ANSWER_SKIP)
                continue;
            return k == ANSWER_OK ? 0 : 1;
        }
        if (*have == cap)
            return -1;
        ssize_t n = recv(fd, buf + *have, cap - *have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        *have += (size_t)n;
    }
}

static int bench_ping(const bench_proto *pr, long long count)
{
    int fd;
    void *h = pr->connect(pr->ctx, &fd);
    set_blocking(fd, 1);
    struct timeval tv = {60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    double *samples = malloc((size_t)count * sizeof *samples);
    char *buf = malloc(RBUF_SIZE);
    if (!samples || !buf)
        die("%s", "out of memory");
    size_t have = 0;
    char req[128];
    const int warmup = 100;
    for (long long i = 0; i < warmup + count; i++) {
        size_t len = pr->ping(pr->ctx, req, sizeof req, i + 1);
        double t0 = now_s();
        int r = send_all(fd, req, len) < 0 ? -1 : read_answer(pr, fd, buf, RBUF_SIZE, &have);
        double t1 = now_s();
        if (r < 0)
            die("%s", "ping: connection failed or timed out");
        if (r > 0)
            die("%s", "ping: the server answered with an error");
        if (i >= warmup)
            samples[i - warmup] = (t1 - t0) * 1e6;
    }
    double sum = 0;
    for (long long i = 0; i < count; i++)
        sum += samples[i];
    qsort(samples, (size_t)count, sizeof *samples, cmp_double);
    size_t i50 = (size_t)((count - 1) / 2);
    size_t i99 = (size_t)((count * 99 + 99) / 100) - 1; /* ceil(0.99 n) - 1 */
    if (i99 >= (size_t)count)
        i99 = (size_t)count - 1;
    printf("ping count=%lld p50_us=%.1f p99_us=%.1f mean_us=%.1f\n", count, samples[i50], samples[i99],
           sum / (double)count);
    fflush(stdout);
    free(samples);
    free(buf);
    pr->close(pr->ctx, h);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* publish                                                                    */


static void *bench_sub_thread(void *arg)
{
    bench_sub *s = arg;
    const bench_proto *pr = s->pr;
    const size_t cap = s->rbuf_size;
    char *buf = malloc(cap);
    size_t have = 0;
    if (!buf) {
        s->failed = 1;
        snprintf(s->errmsg, sizeof s->errmsg, "out of memory");
    }
    while (buf) {
        pthread_mutex_lock(&s->sh->mu);
        long long expected = s->sh->expected;
        int stop = s->sh->stop;
        s->progress = s->received;
        if (s->received + s->dropped >= expected)
            s->done = 1;
        int done = s->done;
        pthread_mutex_unlock(&s->sh->mu);
        if (done || stop || s->failed)
            break;

        /* blocking recv with a 100 ms SO_RCVTIMEO: one syscall per wake-up */
        ssize_t n = recv(s->fd, buf + have, cap - have, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (n <= 0) {
            s->disconnected = 1;
            if (pr->disconnect_fails) {
                s->failed = 1;
                snprintf(s->errmsg, sizeof s->errmsg, "subscriber connection closed");
            }
            pthread_mutex_lock(&s->sh->mu);
            s->done = 1;
            pthread_mutex_unlock(&s->sh->mu);
            break;
        }
        unsigned long long t = now_ns();
        have += (size_t)n;
        long long before = s->received;
        size_t used = pr->feed(s, buf, have, t);
        have -= used;
        if (have == cap && !s->failed) {
            s->failed = 1;
            snprintf(s->errmsg, sizeof s->errmsg, "message longer than %zu bytes", cap);
        }
        memmove(buf, buf + used, have);
        if (s->received != before)
            s->last_event = (double)t / 1e9;
    }
    if (!s->failed && pr->sub_finish)
        pr->sub_finish(s);
    free(buf);
    pthread_mutex_lock(&s->sh->mu);
    s->finished = 1;
    pthread_mutex_unlock(&s->sh->mu);
    return NULL;
}

typedef struct {
    void *handle;
    int fd;
    long long quota, sent, answered;
    char *wbuf;
    size_t wcap, woff, wlen;
    char *rbuf;
    size_t rlen;
} bench_pub;

/* Reads what pub p's socket has and counts its answers. 0, or -1 to abort. */
static int pub_read(const bench_proto *pr, bench_pub *p, long long *errors)
{
    ssize_t n = recv(p->fd, p->rbuf + p->rlen, RBUF_SIZE - p->rlen, 0);
    if (n == 0) {
        fprintf(stderr, "%s: publisher connection closed by the server\n", bench_name);
        return -1;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        fprintf(stderr, "%s: publisher recv: %s\n", bench_name, strerror(errno));
        return -1;
    }
    p->rlen += (size_t)n;
    size_t off = 0;
    char msg[160];
    for (;;) {
        size_t used = 0;
        answer_kind k = pr->answer(pr->ctx, p->rbuf + off, p->rlen - off, &used, msg, sizeof msg);
        if (k == ANSWER_MORE)
            break;
        if (k == ANSWER_FATAL) {
            fprintf(stderr, "%s: %s\n", bench_name, msg);
            return -1;
        }
        off += used;
        if (k == ANSWER_ERROR) {
            if (*errors == 0)
                fprintf(stderr, "%s: publish error (first one shown): %s\n", bench_name, msg);
            ++*errors;
        }
        if (k != ANSWER_SKIP)
            p->answered++;
    }
    p->rlen -= off;
    memmove(p->rbuf, p->rbuf + off, p->rlen);
    if (p->rlen == RBUF_SIZE) {
        fprintf(stderr, "%s: answer too long\n", bench_name);
        return -1;
    }
    return 0;
}

/* Writes what pub p may send (refilling its buffer with stamped requests in
 * batches of at least inflight/16) and sends what the socket takes. 1 if
 * anything was sent, 0 if not, -1 to abort. */
static int pub_write(const bench_proto *pr, bench_pub *p, long long inflight)
{
    if (p->woff == p->wlen) {
        long long batch_min = inflight / 16 > 0 ? inflight / 16 : 1;
        long long room = inflight - (p->sent - p->answered), left = p->quota - p->sent;
        long long n = room < left ? room : left;
        if (n > 0 && (n >= batch_min || n == left || p->sent == p->answered)) {
            p->woff = p->wlen = 0;
            unsigned long long stamp = now_ns();
            for (long long k = 0; k < n && p->wlen + pr->publish_max <= p->wcap; k++) {
                p->wlen += pr->publish(pr->ctx, p->wbuf + p->wlen, p->sent + 1, stamp);
                p->sent++;
            }
        }
    }
    if (p->woff == p->wlen)
        return 0;
    ssize_t n = send(p->fd, p->wbuf + p->woff, p->wlen - p->woff, MSG_NOSIGNAL);
    if (n > 0) {
        p->woff += (size_t)n;
        return 1;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        fprintf(stderr, "%s: publisher send: %s\n", bench_name, strerror(errno));
        return -1;
    }
    return 0;
}

/* The publish shape of a (count 200000 unless given). */
static int bench_publish(const bench_proto *pr, const bench_args *a)
{
    struct {
        long long count;
        int subscribers, publishers;
        long long inflight; /* per publisher */
        double timeout_s;
    } opts = {a->count > 0 ? a->count : 200000, (int)a->subscribers, (int)a->publishers, a->inflight,
              (double)a->timeout},
      *o = &opts;
    const int nsubs = o->subscribers, npubs = o->publishers;
    bench_shared sh;
    pthread_mutex_init(&sh.mu, NULL);
    sh.expected = o->count;
    sh.stop = 0;

    /* subscribers: connect + subscribe (acknowledged) before anything is published */
    bench_sub *subs = calloc((size_t)(nsubs > 0 ? nsubs : 1), sizeof *subs);
    pthread_t *tids = calloc((size_t)(nsubs > 0 ? nsubs : 1), sizeof *tids);
    if (!subs || !tids)
        die("%s", "out of memory");
    size_t rbuf_size = RBUF_SIZE;
    if (pr->publish_max * 2 + 65536 > rbuf_size)
        rbuf_size = pr->publish_max * 2 + 65536;
    for (int i = 0; i < nsubs; i++) {
        bench_sub *s = &subs[i];
        s->pr = pr;
        s->sh = &sh;
        s->rbuf_size = rbuf_size;
        s->lat = calloc(1, sizeof *s->lat);
        if (!s->lat)
            die("%s", "out of memory");
        pr->subscribe(pr->ctx, s, i);
        set_blocking(s->fd, 1);
        struct timeval tv = {0, 100 * 1000};
        setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        int big = 4 << 20;
        setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    }

    /* publishers: connected, one round trip each, non-blocking */
    bench_pub *pubs = calloc((size_t)npubs, sizeof *pubs);
    struct pollfd *pfd = calloc((size_t)npubs, sizeof *pfd);
    if (!pubs || !pfd)
        die("%s", "out of memory");
    for (int i = 0; i < npubs; i++) {
        bench_pub *p = &pubs[i];
        p->handle = pr->connect(pr->ctx, &p->fd);
        set_blocking(p->fd, 1);
        char req[128], rb[4096];
        size_t have = 0, len = pr->ping(pr->ctx, req, sizeof req, 1);
        if (send_all(p->fd, req, len) < 0 || read_answer(pr, p->fd, rb, sizeof rb, &have) != 0)
            die("%s", "publisher: the first ping failed");
        set_blocking(p->fd, 0);
        p->quota = o->count / npubs + (i < o->count % npubs ? 1 : 0);
        p->wcap = (size_t)o->inflight * pr->publish_max;
        if (p->wcap > ((size_t)64 << 20))
            p->wcap = (size_t)64 << 20;
        if (p->wcap < pr->publish_max)
            p->wcap = pr->publish_max;
        p->wbuf = malloc(p->wcap);
        p->rbuf = malloc(RBUF_SIZE);
        if (!p->wbuf || !p->rbuf)
            die("%s", "out of memory");
        pfd[i].fd = p->fd;
    }

    for (int i = 0; i < nsubs; i++)
        if (pthread_create(&tids[i], NULL, bench_sub_thread, &subs[i]) != 0)
            die("%s", "pthread_create failed");

    long long answered = 0, errors = 0;
    int aborted = 0;
    double t_first = now_s(), t_last_progress = t_first;
    int progress = 0;
    while (answered < o->count && !aborted) {
        /* One publisher that just made progress reads without asking poll first
         * (a read that finds nothing costs what poll would). */
        int skip_poll = npubs == 1 && progress;
        progress = 0;
        for (int i = 0; i < npubs && !aborted; i++) {
            int w = pub_write(pr, &pubs[i], o->inflight);
            if (w < 0)
                aborted = 1;
            progress |= w > 0;
            pfd[i].events = (short)(POLLIN | (pubs[i].woff < pubs[i].wlen ? POLLOUT : 0));
            pfd[i].revents = 0;
        }
        if (aborted)
            break;
        int ready = 1;
        if (skip_poll)
            pfd[0].revents = POLLIN;
        else
            ready = poll(pfd, (nfds_t)npubs, 100);
        for (int i = 0; i < npubs && ready > 0 && !aborted; i++) {
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            long long before = pubs[i].answered;
            if (pub_read(pr, &pubs[i], &errors) < 0)
                aborted = 1;
            answered += pubs[i].answered - before;
            progress |= pubs[i].answered != before;
        }
        if (progress) {
            t_last_progress = now_s();
        } else if (now_s() - t_last_progress > o->timeout_s) {
            fprintf(stderr, "%s: no publish progress for %.0f s (%lld of %lld answered)\n", bench_name, o->timeout_s,
                    answered, o->count);
            aborted = 1;
        }
    }
    double t_pub_end = now_s();

    pthread_mutex_lock(&sh.mu);
    sh.expected = answered - errors; /* every successful publish is one delivery per subscriber */
    if (aborted)
        sh.stop = 1;
    pthread_mutex_unlock(&sh.mu);

    /* wait for the subscribers: bounded by --timeout without progress */
    int timed_out = 0;
    long long last_total = -1;
    double t_progress = now_s();
    for (;;) {
        int all_done = 1;
        long long total = 0;
        pthread_mutex_lock(&sh.mu);
        for (int i = 0; i < nsubs; i++) {
            if (!subs[i].finished)
                all_done = 0;
            total += subs[i].progress;
        }
        pthread_mutex_unlock(&sh.mu);
        if (all_done || aborted)
            break;
        if (total != last_total) {
            last_total = total;
            t_progress = now_s();
        } else if (now_s() - t_progress > o->timeout_s) {
            timed_out = 1;
            break;
        }
        struct timespec nap = {0, 20 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    pthread_mutex_lock(&sh.mu);
    sh.stop = 1;
    pthread_mutex_unlock(&sh.mu);
    for (int i = 0; i < nsubs; i++)
        pthread_join(tids[i], NULL);

    long long received = 0, dropped = 0;
    int failed = 0, disconnected = 0;
    double t_last_event = 0;
    hist_t *lat = calloc(1, sizeof *lat);
    if (!lat)
        die("%s", "out of memory");
    for (int i = 0; i < nsubs; i++) {
        bench_sub *s = &subs[i];
        if (s->disconnected) {
            disconnected++;
            if (s->received + s->dropped < sh.expected)
                s->dropped = sh.expected - s->received;
            fprintf(stderr, "%s: subscriber %d disconnected by the server after %lld of %lld deliveries\n",
                    bench_name, i, s->received, sh.expected);
        }
        received += s->received;
        dropped += s->dropped;
        if (s->last_event > t_last_event)
            t_last_event = s->last_event;
        if (s->failed) {
            fprintf(stderr, "%s: subscriber %d: %s\n", bench_name, i, s->errmsg);
            failed = 1;
        }
        if (!s->done && !s->failed)
            fprintf(stderr, "%s: subscriber %d got %lld + %lld dropped of %lld deliveries\n", bench_name, i,
                    s->received, s->dropped, sh.expected);
        lat->n += s->lat->n;
        for (size_t k = 0; k < HIST_LEN; k++)
            lat->count[k] += s->lat->count[k];
    }
    double pub_elapsed = t_pub_end - t_first;
    double del_elapsed = t_last_event > t_first ? t_last_event - t_first : 0;
    double elapsed = (t_last_event > t_pub_end ? t_last_event : t_pub_end) - t_first;
    printf("publish count=%lld subscribers=%d inflight=%lld publish_per_s=%.0f delivered_per_s=%.0f "
           "elapsed_s=%.3f dropped=%lld",
           o->count, nsubs, o->inflight, pub_elapsed > 0 ? (double)answered / pub_elapsed : 0.0,
           del_elapsed > 0 ? (double)received / del_elapsed : 0.0, elapsed, dropped);
    if (pr->print_keys)
        pr->print_keys(pr->ctx, subs, nsubs);
    printf(" publishers=%d disconnected=%d", npubs, disconnected);
    if (lat->n > 0)
        printf(" latency_us_p50=%.1f latency_us_p99=%.1f", hist_percentile(lat, 0.50) / 1e3,
               hist_percentile(lat, 0.99) / 1e3);
    printf("\n");
    fflush(stdout);
    if (errors)
        fprintf(stderr, "%s: %lld publish requests were answered with an error\n", bench_name, errors);
    if (timed_out)
        fprintf(stderr, "%s: gave up waiting for deliveries after %.0f s without progress\n", bench_name,
                o->timeout_s);

    for (int i = 0; i < nsubs; i++)
        pr->close(pr->ctx, subs[i].handle);
    int run_errors = pr->after_run ? pr->after_run(pr->ctx, pubs[0].handle, subs, nsubs) : 0;
    for (int i = 0; i < npubs; i++) {
        pr->close(pr->ctx, pubs[i].handle);
        free(pubs[i].wbuf);
        free(pubs[i].rbuf);
    }
    for (int i = 0; i < nsubs; i++)
        free(subs[i].lat);
    free(lat);
    free(pubs);
    free(pfd);
    free(subs);
    free(tids);
    pthread_mutex_destroy(&sh.mu);
    if (aborted || timed_out || failed)
        return 3;
    return errors || run_errors ? 1 : 0;
}

#endif
