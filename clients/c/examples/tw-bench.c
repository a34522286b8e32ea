/*
 * tw-bench — load generator for tradewired (an independent load source for
 * `make bench`).
 *
 *   tw-bench [--socket PATH] ping [--count 20000]
 *       Sequential ping round trips (after 100 untimed warm-up pings).
 *       Prints: ping count=N p50_us=X p99_us=Y mean_us=Z
 *
 *   tw-bench [--socket PATH] publish [--count 200000] [--subscribers 1]
 *            [--inflight 256] [--size 100] [--timeout 60]
 *       K subscriber connections subscribe to a unique event type (each waits
 *       for its subscribe ack), then one publisher connection pipelines
 *       `publish` requests with ~SIZE bytes of data and at most INFLIGHT
 *       unanswered; one thread per subscriber counts `event` notifications
 *       (and the counts of `events_dropped` notices).
 *       Prints: publish count=N subscribers=K inflight=I publish_per_s=X
 *               delivered_per_s=Y elapsed_s=Z dropped=D
 *       publish_per_s   = N / (last publish response - first send)
 *       delivered_per_s = events received by all subscribers / (time the last
 *                         subscriber got its last event - first send)
 *       elapsed_s       = first send -> all responses and events received
 *       dropped         = events reported skipped by events_dropped notices
 *       A subscriber is done when received + dropped == N (minus publishes
 *       answered with an error, reported on stderr). --timeout bounds every
 *       wait (no progress for that long): the run then stops, prints the
 *       line with what it got, and exits 3.
 *
 *   tw-bench [--socket PATH] publish --consumer [--ack-every 64]
 *            [--max-in-flight 0] [the options above]
 *       The same, but each subscriber is a durable consumer of its own
 *       (docs/PROTOCOL.md §11; subscribe with "consumer", removed with
 *       delete_consumer at the end) and acknowledges with
 *       `ack {consumer, up_to_seq}` every ACK_EVERY events (and once at the
 *       end), pipelined on its connection without waiting for the answers.
 *       --max-in-flight is the consumer's bound (0: the daemon's default, 256).
 *       The line gains: consumer=1 ack_every=A acks=N ack_errors=E
 *       redelivered=R (deliveries with attempt > 1, counted as received).
 *
 * The hot paths use raw pipelined lines on the socket (libtradewire only
 * connects and subscribes) and never build or parse JSON per message.
 */
#define _POSIX_C_SOURCE 200809L

#include "../tradewire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
    fprintf(stderr, "tw-bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

static tw_client *connect_or_die(const char *path)
{
    tw_error err;
    tw_client *c = tw_connect(path, &err);
    if (!c)
        die("%s", err.message);
    return c;
}

static void set_blocking(int fd, int blocking)
{
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl >= 0)
        fcntl(fd, F_SETFL, blocking ? (fl & ~O_NONBLOCK) : (fl | O_NONBLOCK));
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
        fprintf(stderr, "tw-bench: %s wants an integer >= %lld\n", name, min);
        exit(2);
    }
    return v;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tw-bench [--socket PATH] ping [--count 20000]\n"
            "       tw-bench [--socket PATH] publish [--count 200000] [--subscribers 1]\n"
            "                [--inflight 256] [--size 100] [--timeout 60]\n"
            "                [--consumer [--ack-every 64] [--max-in-flight N]]\n");
}

/* ------------------------------------------------------------------------ */
/* ping                                                                       */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sends one line and reads one response line (blocking fd). Returns 0 if the
 * response is a result, 1 if an error, -1 on I/O failure. */
static int ping_once(int fd, char *req, size_t reqlen, char *buf, size_t cap, size_t *have)
{
    size_t off = 0;
    while (off < reqlen) {
        ssize_t n = send(fd, req + off, reqlen - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    for (;;) {
        char *nl = memchr(buf, '\n', *have);
        if (nl) {
            size_t len = (size_t)(nl - buf) + 1;
            int is_result = FIND(buf, len, "\"result\"") != NULL;
            int is_resp = FIND(buf, len, "\"id\"") != NULL;
            memmove(buf, nl + 1, *have - len);
            *have -= len;
            if (!is_resp)
                continue; /* a notification: skip */
            return is_result ? 0 : 1;
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

static int run_ping(const char *path, long long count)
{
    tw_client *c = connect_or_die(path);
    int fd = tw_fileno(c);
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
        int len = snprintf(req, sizeof req, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"ping\"}\n", i + 1);
        double t0 = now_s();
        int r = ping_once(fd, req, (size_t)len, buf, RBUF_SIZE, &have);
        double t1 = now_s();
        if (r < 0)
            die("%s", "ping: connection failed or timed out");
        if (r > 0)
            die("%s", "ping: the daemon answered with an error");
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
    tw_close(c);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* publish                                                                    */

typedef struct {
    pthread_mutex_t mu;
    long long expected; /* events each subscriber should account for */
    int stop;           /* give up now */
} shared_t;

/* Consumer mode (--consumer): what a subscriber acknowledges, and how. */
typedef struct {
    int on;                 /* the subscribers are consumers                  */
    long long ack_every;    /* ack up_to_seq after this many deliveries       */
    char name[128];         /* this subscriber's consumer name                */
    long long unacked;      /* deliveries since the last ack                  */
    long long last_seq;     /* the highest seq delivered                      */
    long long acks;         /* ack requests sent                              */
    long long ack_errors;   /* ack requests answered with an error            */
    long long redelivered;  /* deliveries with attempt > 1                    */
    long long next_id;
} consumer_t;

typedef struct {
    shared_t *sh;
    tw_client *client;
    int fd;
    long long received;
    long long dropped;
    double last_event; /* time of the last event received */
    size_t rbuf_size;
    /* written by the thread under sh->mu, read by main under it: */
    long long progress; /* received, refreshed once per read */
    int done;           /* received + dropped >= expected */
    int finished;       /* thread has left its loop */
    consumer_t cons;    /* --consumer: the thread's own                  */
    /* the thread's own; main reads them after pthread_join: */
    int failed;
    char errmsg[160];
} sub_t;

/* The integer after `key` in line (0 when absent): the hot path reads seq and
 * attempt without parsing the JSON (the payload is {"pad":"xx..."}). */
static long long int_after(const char *line, size_t len, const char *key, size_t keylen)
{
    const char *p = find(line, len, key, keylen);
    if (!p)
        return 0;
    long long v = 0;
    for (p += keylen; p < line + len && *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (*p - '0');
    return v;
}
#define INT_AFTER(line, len, lit) int_after((line), (len), (lit), sizeof(lit) - 1)

/* Sends one line on the subscriber's (blocking) socket. 0, or -1 on failure. */
static int send_line(int fd, const char *buf, size_t len)
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

/* --consumer: ack {consumer, up_to_seq: the highest seq delivered}, unanswered
 * (the answer is read, and checked, with the events). */
static void consumer_ack(sub_t *s)
{
    consumer_t *k = &s->cons;
    if (!k->on || k->unacked == 0)
        return;
    char req[256];
    int len = snprintf(req, sizeof req,
                       "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"ack\",\"params\":{\"consumer\":\"%s\","
                       "\"up_to_seq\":%lld}}\n",
                       ++k->next_id, k->name, k->last_seq);
    if (send_line(s->fd, req, (size_t)len) < 0) {
        s->failed = 1;
        snprintf(s->errmsg, sizeof s->errmsg, "ack: send failed: %s", strerror(errno));
        return;
    }
    k->acks++;
    k->unacked = 0;
}

static void consumer_delivery(sub_t *s, const char *line, size_t len)
{
    consumer_t *k = &s->cons;
    long long seq = INT_AFTER(line, len, "\"seq\":");
    if (seq > k->last_seq)
        k->last_seq = seq;
    if (INT_AFTER(line, len, "\"attempt\":") > 1)
        k->redelivered++;
    if (++k->unacked >= k->ack_every)
        consumer_ack(s);
}

static void sub_line(sub_t *s, const char *line, size_t len)
{
    if (FIND(line, len, "\"method\":\"event\"")) {
        s->received++;
        if (s->cons.on)
            consumer_delivery(s, line, len);
        return;
    }
    if (s->cons.on && FIND(line, len, "\"result\"")) /* an ack's answer */
        return;
    /* rare: parse properly */
    json_t *m = json_loadb(line, len, 0, NULL);
    const char *method = json_string_value(json_object_get(m, "method"));
    if (method && strcmp(method, "event") == 0) {
        s->received++;
    } else if (method && strcmp(method, "events_dropped") == 0) {
        json_t *cnt = json_object_get(json_object_get(m, "params"), "count");
        if (json_is_integer(cnt))
            s->dropped += json_integer_value(cnt);
    } else if (method && strcmp(method, "shutdown") == 0) {
        s->failed = 1;
        snprintf(s->errmsg, sizeof s->errmsg, "daemon is shutting down");
    } else if (json_object_get(m, "error")) {
        if (s->cons.ack_errors++ == 0) {
            char *e = json_dumps(json_object_get(m, "error"), JSON_COMPACT);
            fprintf(stderr, "tw-bench: ack error (first one shown): %s\n", e ? e : "?");
            free(e);
        }
    }
    json_decref(m);
}

static void *sub_thread(void *arg)
{
    sub_t *s = arg;
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
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s->failed = 1;
            snprintf(s->errmsg, sizeof s->errmsg, "subscriber connection closed");
            break;
        }
        have += (size_t)n;
        long long before = s->received;
        char *p = buf, *end = buf + have, *nl;
        while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            if (nl > p)
                sub_line(s, p, (size_t)(nl - p));
            p = nl + 1;
        }
        have = (size_t)(end - p);
        if (have == cap) {
            s->failed = 1;
            snprintf(s->errmsg, sizeof s->errmsg, "line longer than %zu bytes", cap);
            break;
        }
        memmove(buf, p, have);
        if (s->received != before)
            s->last_event = now_s();
    }
    if (!s->failed)
        consumer_ack(s); /* what is left below ack_every */
    free(buf);
    pthread_mutex_lock(&s->sh->mu);
    s->finished = 1;
    pthread_mutex_unlock(&s->sh->mu);
    return NULL;
}

typedef struct {
    int on;                /* --consumer                                   */
    long long ack_every;   /* --ack-every                                  */
    long long max_in_flight; /* --max-in-flight (0: omitted)               */
} consumer_opts;

/* Subscribes subscriber i: a plain subscription, or a consumer of its own. */
static void subscribe_one(sub_t *s, int i, const char *type, const consumer_opts *co)
{
    tw_error err;
    if (!co->on) {
        if (tw_subscribe(s->client, type, -1, NULL, 0, &err) < 0)
            die("subscribe: %s", err.message);
        return;
    }
    s->cons.on = 1;
    s->cons.ack_every = co->ack_every;
    snprintf(s->cons.name, sizeof s->cons.name, "%s.c%d", type, i);
    tw_consumer_options o = TW_CONSUMER_OPTIONS_INIT;
    o.max_in_flight = (int)co->max_in_flight;
    if (tw_subscribe_consumer(s->client, s->cons.name, type, &o, NULL, 0, &err) < 0)
        die("subscribe (consumer): %s", err.message);
}

/* Removes the consumers a --consumer run made (best effort). */
static void delete_consumers(tw_client *c, sub_t *subs, int nsubs)
{
    for (int i = 0; i < nsubs; i++) {
        if (!subs[i].cons.on)
            continue;
        tw_error err;
        json_t *p = json_pack("{s:s}", "consumer", subs[i].cons.name);
        json_t *r = tw_call(c, "delete_consumer", p, 10000, &err);
        if (!r)
            fprintf(stderr, "tw-bench: delete_consumer %s: %s\n", subs[i].cons.name, err.message);
        json_decref(r);
        json_decref(p);
    }
}

static int run_publish(const char *path, long long count, int nsubs, long long inflight, long long size,
                       double timeout_s, const consumer_opts *co)
{
    char type[96];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(type, sizeof type, "bench.%ld.%lld%09ld", (long)getpid(), (long long)ts.tv_sec, ts.tv_nsec);

    shared_t sh;
    pthread_mutex_init(&sh.mu, NULL);
    sh.expected = count;
    sh.stop = 0;

    /* subscribers: connect + subscribe (acked) before anything is published */
    sub_t *subs = calloc((size_t)(nsubs > 0 ? nsubs : 1), sizeof *subs);
    pthread_t *tids = calloc((size_t)(nsubs > 0 ? nsubs : 1), sizeof *tids);
    if (!subs || !tids)
        die("%s", "out of memory");
    size_t rbuf_size = RBUF_SIZE;
    if ((size_t)size * 2 + 65536 > rbuf_size)
        rbuf_size = (size_t)size * 2 + 65536;
    for (int i = 0; i < nsubs; i++) {
        subs[i].sh = &sh;
        subs[i].rbuf_size = rbuf_size;
        subs[i].client = connect_or_die(path);
        tw_set_timeout(subs[i].client, (int)(timeout_s * 1000));
        subscribe_one(&subs[i], i, type, co);
        subs[i].fd = tw_fileno(subs[i].client);
        set_blocking(subs[i].fd, 1);
        struct timeval tv = {0, 100 * 1000};
        setsockopt(subs[i].fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        int big = 4 << 20;
        setsockopt(subs[i].fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    }

    /* publisher */
    tw_client *pc = connect_or_die(path);
    {
        tw_error err;
        tw_set_timeout(pc, (int)(timeout_s * 1000));
        if (tw_ping(pc, &err) < 0)
            die("ping: %s", err.message);
    }
    int fd = tw_fileno(pc);
    set_blocking(fd, 0);

    /* request template: PREFIX <id> SUFFIX */
    static const char prefix[] = "{\"jsonrpc\":\"2.0\",\"id\":";
    size_t padlen = size > 10 ? (size_t)size - 10 : 0; /* {"pad":""} is 10 bytes */
    size_t suffix_cap = 128 + strlen(type) + padlen;
    char *suffix = malloc(suffix_cap);
    if (!suffix)
        die("%s", "out of memory");
    int sl = snprintf(suffix, suffix_cap, ",\"method\":\"publish\",\"params\":{\"event_type\":\"%s\",\"data\":{\"pad\":\"", type);
    memset(suffix + sl, 'x', padlen);
    memcpy(suffix + sl + padlen, "\"}}}\n", 5);
    size_t suffix_len = (size_t)sl + padlen + 5;
    size_t req_max = sizeof prefix - 1 + 20 + suffix_len;

    size_t wcap = (size_t)inflight * req_max;
    if (wcap > ((size_t)64 << 20))
        wcap = (size_t)64 << 20;
    if (wcap < req_max)
        wcap = req_max;
    char *wbuf = malloc(wcap);
    char *rbuf = malloc(RBUF_SIZE); /* publish responses are short */
    if (!wbuf || !rbuf)
        die("%s", "out of memory");
    size_t woff = 0, wlen = 0, rlen = 0;

    for (int i = 0; i < nsubs; i++)
        if (pthread_create(&tids[i], NULL, sub_thread, &subs[i]) != 0)
            die("%s", "pthread_create failed");

    long long sent = 0, acked = 0, errors = 0;
    long long batch_min = inflight / 16 > 0 ? inflight / 16 : 1;
    int aborted = 0;
    double t_first = now_s(), t_last_progress = t_first;
    while (acked < count) {
        int progress = 0;
        if (woff == wlen) {
            long long room = inflight - (sent - acked), left = count - sent;
            long long n = room < left ? room : left;
            if (n > 0 && (n >= batch_min || n == left || sent == acked)) {
                woff = wlen = 0;
                for (long long k = 0; k < n && wlen + req_max <= wcap; k++) {
                    memcpy(wbuf + wlen, prefix, sizeof prefix - 1);
                    wlen += sizeof prefix - 1;
                    wlen += (size_t)sprintf(wbuf + wlen, "%lld", sent + 1);
                    memcpy(wbuf + wlen, suffix, suffix_len);
                    wlen += suffix_len;
                    sent++;
                }
            }
        }
        int want_out = 0;
        if (woff < wlen) {
            ssize_t n = send(fd, wbuf + woff, wlen - woff, MSG_NOSIGNAL);
            if (n > 0) {
                woff += (size_t)n;
                progress = 1;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                want_out = 1;
            } else if (n < 0 && errno != EINTR) {
                fprintf(stderr, "tw-bench: publisher send: %s\n", strerror(errno));
                aborted = 1;
                break;
            }
        }
        ssize_t n = recv(fd, rbuf + rlen, RBUF_SIZE - rlen, 0);
        if (n > 0) {
            rlen += (size_t)n;
            char *p = rbuf, *end = rbuf + rlen, *nl;
            while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
                size_t len = (size_t)(nl - p);
                if (len > 0) {
                    if (FIND(p, len, "\"result\"")) {
                        acked++;
                    } else {
                        json_t *m = json_loadb(p, len, 0, NULL);
                        json_t *e = json_object_get(m, "error");
                        const char *method = json_string_value(json_object_get(m, "method"));
                        if (e) {
                            if (errors == 0) {
                                char *s = json_dumps(e, JSON_COMPACT);
                                fprintf(stderr, "tw-bench: publish error (first one shown): %s\n", s ? s : "?");
                                free(s);
                            }
                            errors++;
                            acked++;
                        } else if (method && strcmp(method, "shutdown") == 0) {
                            fprintf(stderr, "tw-bench: daemon is shutting down\n");
                            aborted = 1;
                        }
                        json_decref(m);
                    }
                }
                p = nl + 1;
            }
            rlen = (size_t)(end - p);
            memmove(rbuf, p, rlen);
            if (rlen == RBUF_SIZE) {
                fprintf(stderr, "tw-bench: response line too long\n");
                aborted = 1;
            }
            progress = 1;
            if (aborted)
                break;
        } else if (n == 0) {
            fprintf(stderr, "tw-bench: publisher connection closed by the daemon\n");
            aborted = 1;
            break;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            fprintf(stderr, "tw-bench: publisher recv: %s\n", strerror(errno));
            aborted = 1;
            break;
        }
        if (progress) {
            t_last_progress = now_s();
        } else {
            struct pollfd pf = {fd, (short)(POLLIN | (want_out ? POLLOUT : 0)), 0};
            poll(&pf, 1, 100);
            if (now_s() - t_last_progress > timeout_s) {
                fprintf(stderr, "tw-bench: no publish progress for %.0f s (%lld of %lld answered)\n", timeout_s,
                        acked, count);
                aborted = 1;
                break;
            }
        }
    }
    double t_pub_end = now_s();

    pthread_mutex_lock(&sh.mu);
    sh.expected = acked - errors; /* every successful publish is one event per subscriber */
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
        } else if (now_s() - t_progress > timeout_s) {
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

    long long received = 0, dropped = 0, acks = 0, ack_errors = 0, redelivered = 0;
    double t_last_event = 0;
    int failed = 0;
    for (int i = 0; i < nsubs; i++) {
        received += subs[i].received;
        dropped += subs[i].dropped;
        acks += subs[i].cons.acks;
        ack_errors += subs[i].cons.ack_errors;
        redelivered += subs[i].cons.redelivered;
        if (subs[i].last_event > t_last_event)
            t_last_event = subs[i].last_event;
        if (subs[i].failed) {
            fprintf(stderr, "tw-bench: subscriber %d: %s\n", i, subs[i].errmsg);
            failed = 1;
        }
        if (!subs[i].done && !subs[i].failed)
            fprintf(stderr, "tw-bench: subscriber %d got %lld + %lld dropped of %lld events\n", i,
                    subs[i].received, subs[i].dropped, sh.expected);
    }
    double pub_elapsed = t_pub_end - t_first;
    double del_elapsed = t_last_event > t_first ? t_last_event - t_first : 0;
    double elapsed = (t_last_event > t_pub_end ? t_last_event : t_pub_end) - t_first;
    printf("publish count=%lld subscribers=%d inflight=%lld publish_per_s=%.0f delivered_per_s=%.0f "
           "elapsed_s=%.3f dropped=%lld",
           count, nsubs, inflight, pub_elapsed > 0 ? (double)acked / pub_elapsed : 0.0,
           del_elapsed > 0 ? (double)received / del_elapsed : 0.0, elapsed, dropped);
    if (co->on)
        printf(" consumer=1 ack_every=%lld acks=%lld ack_errors=%lld redelivered=%lld", co->ack_every, acks,
               ack_errors, redelivered);
    printf("\n");
    fflush(stdout);
    if (errors)
        fprintf(stderr, "tw-bench: %lld publish requests were answered with an error\n", errors);
    if (timed_out)
        fprintf(stderr, "tw-bench: gave up waiting for events after %.0f s without progress\n", timeout_s);

    for (int i = 0; i < nsubs; i++)
        tw_close(subs[i].client);
    delete_consumers(pc, subs, nsubs); /* fd is non-blocking again, as the library wants it */
    tw_close(pc);
    free(subs);
    free(tids);
    free(suffix);
    free(wbuf);
    free(rbuf);
    pthread_mutex_destroy(&sh.mu);
    if (aborted || timed_out || failed)
        return 3;
    return errors || ack_errors ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *mode = NULL, *v;
    long long count = -1, subs = 1, inflight = 256, size = 100, timeout = 60;
    consumer_opts co = {0, 64, 0};
    signal(SIGPIPE, SIG_IGN);

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if ((v = opt_value(argc, argv, &i, "--socket"))) {
            path = v;
        } else if ((v = opt_value(argc, argv, &i, "--count"))) {
            count = num_or_die(v, "--count", 1);
        } else if ((v = opt_value(argc, argv, &i, "--subscribers"))) {
            subs = num_or_die(v, "--subscribers", 0);
        } else if ((v = opt_value(argc, argv, &i, "--inflight"))) {
            inflight = num_or_die(v, "--inflight", 1);
        } else if ((v = opt_value(argc, argv, &i, "--size"))) {
            size = num_or_die(v, "--size", 0);
        } else if ((v = opt_value(argc, argv, &i, "--timeout"))) {
            timeout = num_or_die(v, "--timeout", 1);
        } else if (strcmp(argv[i], "--consumer") == 0) {
            co.on = 1;
        } else if ((v = opt_value(argc, argv, &i, "--ack-every"))) {
            co.ack_every = num_or_die(v, "--ack-every", 1);
        } else if ((v = opt_value(argc, argv, &i, "--max-in-flight"))) {
            co.max_in_flight = num_or_die(v, "--max-in-flight", 0);
        } else if (!mode && (strcmp(argv[i], "ping") == 0 || strcmp(argv[i], "publish") == 0)) {
            mode = argv[i];
        } else {
            fprintf(stderr, "tw-bench: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!mode) {
        usage(stderr);
        return 2;
    }
    if (subs > 1000 || size > (16 << 20) || inflight > 1000000 || co.max_in_flight > 1000000) {
        fprintf(stderr, "tw-bench: --subscribers <= 1000, --size <= 16 MiB, --inflight and --max-in-flight "
                        "<= 1000000\n");
        return 2;
    }
    if (strcmp(mode, "ping") == 0)
        return run_ping(path, count > 0 ? count : 20000);
    return run_publish(path, count > 0 ? count : 200000, (int)subs, inflight, size, (double)timeout, &co);
}
