/*
 * tradewire.c — C client for tradewired (see tradewire.h, docs/PROTOCOL.md).
 */
#if defined(__linux__)
#define _GNU_SOURCE /* struct ucred, SO_PEERCRED */
#else
#define _POSIX_C_SOURCE 200809L
#endif
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE
#endif

#include "tradewire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define TW_INITIAL_RBUF (64u * 1024u)
#define TW_MIN_MAX_MESSAGE 1024u
/* Incoming requests (daemon -> us) held at most; a conforming daemon sends at
 * most the registration's concurrency (<= 1024) at once. */
#define TW_MAX_QUEUED_REQUESTS 1024u
/* How often the stage server wakes to look at tw_stop_serving()'s flag. */
#define TW_SERVE_SLICE_MS 250

/* A tw_call in progress (frames form a stack: a notification callback may
 * issue a nested tw_call). */
typedef struct tw_frame {
    json_int_t id;
    json_t *resp;          /* the response message, owned              */
    int local_err;         /* a TW_ERR_* raised while waiting, or 0    */
    char local_msg[256];
    struct tw_frame *next; /* outer frame                              */
} tw_frame;

typedef struct tw_qitem {
    json_t *msg;           /* the whole notification message, owned    */
    struct tw_qitem *next;
} tw_qitem;

/* The stage call being served: the public part first, so a
 * const tw_stage_call * handed to the callback converts back. */
typedef struct tw_stage_ctx {
    tw_stage_call pub;
    tw_client *c;
    json_t *id;            /* the request's id, borrowed from its message */
    int64_t deadline_ns;   /* monotonic; -1 = unknown                     */
    int cancelled;
} tw_stage_ctx;

struct tw_client {
    int fd;
    char *path;

    /* read side: unprocessed bytes are rbuf[rstart, rlen); rscan is where the
     * newline search resumes (no '\n' in [rstart, rscan)). */
    char *rbuf;
    size_t rcap, rstart, rlen, rscan;
    int discarding;        /* dropping an over-long line up to its '\n' */
    size_t max_msg;

    /* write side */
    char *wbuf;
    size_t wcap;

    json_int_t next_id;
    int timeout_ms;
    tw_frame *frames;

    tw_notification_cb cb;
    void *ud;
    int in_callback;
    int writing;
    unsigned long dispatched;

    tw_qitem *qhead, *qtail;
    size_t qlen;

    /* problems seen while no call was waiting; reported by tw_poll */
    int stray_code;
    char stray_type[64];
    char stray_msg[512];

    json_t *last_error_data;

    /* requests from the daemon (api_level 2 stages), oldest first */
    tw_qitem *rqhead, *rqtail;
    size_t rqlen;
    int serving;                       /* inside tw_serve_stage          */
    volatile sig_atomic_t stop_serving; /* tw_stop_serving()              */
    int shutdown_seen;                 /* a `shutdown` notification came */
    tw_stage_ctx *current;             /* the call being served, or NULL */
    char *registration;                /* "r-..." while serving          */
};

/* ------------------------------------------------------------------------ */

static void set_err(tw_error *err, int code, const char *type, const char *fmt, ...)
{
    if (!err)
        return;
    err->code = code;
    snprintf(err->type, sizeof err->type, "%s", type ? type : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

static void clear_err(tw_error *err)
{
    if (!err)
        return;
    err->code = 0;
    err->type[0] = '\0';
    err->message[0] = '\0';
}

static const char *local_type(int code)
{
    switch (code) {
    case TW_ERR_CONNECT:     return "connect_failed";
    case TW_ERR_TIMEOUT:     return "timeout";
    case TW_ERR_IO:          return "io_error";
    case TW_ERR_CLOSED:      return "connection_closed";
    case TW_ERR_PROTOCOL:    return "protocol_error";
    case TW_ERR_TOO_LARGE:   return "incoming_too_large";
    case TW_ERR_INVALID_ARG: return "invalid_argument";
    case TW_ERR_NOMEM:       return "out_of_memory";
    case TW_ERR_BUSY:        return "busy";
    case TW_ERR_UNSAFE_DIR:  return "unsafe_socket_dir";
    case TW_ERR_UNTRUSTED_PEER: return "untrusted_peer";
    default:                 return "unknown";
    }
}

#define LERR(err, code, ...) set_err((err), (code), local_type(code), __VA_ARGS__)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t deadline_from(int timeout_ms)
{
    if (timeout_ms < 0)
        return -1;
    return now_ns() + (int64_t)timeout_ms * 1000000LL;
}

/* Milliseconds left until deadline, for poll(): -1 = infinite, rounded up. */
static int remaining_ms(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - now_ns();
    if (left <= 0)
        return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

/* ------------------------------------------------------------------------ */

/* The default socket path; *is_last = 1 when it is the last rule
 * (/tmp/tradewire-$UID/tradewire.sock), whose directory gets checked. */
static int default_socket_path(char *buf, size_t n, int *is_last)
{
    const char *s = getenv("TRADEWIRE_SOCKET");
    int len;
    *is_last = 0;
    if (s && *s) {
        len = snprintf(buf, buf ? n : 0, "%s", s);
    } else {
        const char *x = getenv("XDG_RUNTIME_DIR");
        if (x && *x) {
            size_t xl = strlen(x);
            const char *sep = (x[xl - 1] == '/') ? "" : "/";
            len = snprintf(buf, buf ? n : 0, "%s%stradewire.sock", x, sep);
        } else {
            len = snprintf(buf, buf ? n : 0, "/tmp/tradewire-%lu/tradewire.sock",
                           (unsigned long)getuid());
            *is_last = 1;
        }
    }
    if (!buf || len < 0 || (size_t)len >= n)
        return -1;
    return len;
}

int tw_default_socket_path(char *buf, size_t n)
{
    int is_last;
    return default_socket_path(buf, n, &is_last);
}

#define TW_DIR_ADVICE " (the daemon's socket directory must be a real directory owned by you " \
                      "with mode 0700; another user may have created it)"

int tw_check_socket_dir(const char *dir, tw_error *err)
{
    struct stat st;
    clear_err(err);
    if (!dir || !*dir) {
        LERR(err, TW_ERR_INVALID_ARG, "tw_check_socket_dir: dir is required");
        return -1;
    }
    if (lstat(dir, &st) != 0) {
        int e = errno;
        if (e == ENOENT)
            LERR(err, TW_ERR_CONNECT,
                 "no daemon: socket directory %s does not exist (is tradewired running?)", dir);
        else
            LERR(err, TW_ERR_UNSAFE_DIR, "refusing %s: cannot lstat it: %s", dir, strerror(e));
        return -1;
    }
    unsigned long me = (unsigned long)getuid();
    if (S_ISLNK(st.st_mode)) {
        LERR(err, TW_ERR_UNSAFE_DIR, "refusing %s: is a symlink" TW_DIR_ADVICE, dir);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        LERR(err, TW_ERR_UNSAFE_DIR, "refusing %s: is not a directory" TW_DIR_ADVICE, dir);
        return -1;
    }
    if ((unsigned long)st.st_uid != me) {
        LERR(err, TW_ERR_UNSAFE_DIR, "refusing %s: owned by uid %lu, not %lu" TW_DIR_ADVICE, dir,
             (unsigned long)st.st_uid, me);
        return -1;
    }
    if ((st.st_mode & 07777) != 0700) {
        LERR(err, TW_ERR_UNSAFE_DIR, "refusing %s: mode %04o, expected 0700" TW_DIR_ADVICE, dir,
             (unsigned)(st.st_mode & 07777));
        return -1;
    }
    return 0;
}

/* The server at the other end of fd must run as us or as root. */
static int check_peer(int fd, const char *path, tw_error *err)
{
    unsigned long uid;
    long pid = 0;
#if defined(SO_PEERCRED)
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof cr) {
        LERR(err, TW_ERR_UNTRUSTED_PEER, "refusing %s: cannot read the server's credentials (SO_PEERCRED): %s",
             path, strerror(errno));
        return -1;
    }
    uid = (unsigned long)cr.uid;
    pid = (long)cr.pid;
#else
    uid_t u;
    gid_t g;
    if (getpeereid(fd, &u, &g) != 0) {
        LERR(err, TW_ERR_UNTRUSTED_PEER, "refusing %s: cannot read the server's credentials (getpeereid): %s",
             path, strerror(errno));
        return -1;
    }
    uid = (unsigned long)u;
#endif
    unsigned long me = (unsigned long)getuid();
    if (uid != me && uid != 0) {
        char who[48] = "";
        if (pid > 0)
            snprintf(who, sizeof who, " (pid %ld)", pid);
        LERR(err, TW_ERR_UNTRUSTED_PEER,
             "refusing %s: server runs as uid %lu%s; only uid %lu (you) or 0 (root) is trusted: it is "
             "not your tradewire daemon, nothing was sent", path, uid, who, me);
        return -1;
    }
    return 0;
}

static void mark_broken(tw_client *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

tw_client *tw_connect(const char *path, tw_error *err)
{
    char defpath[sizeof(((struct sockaddr_un *)0)->sun_path) + 64];
    struct sockaddr_un sa;

    clear_err(err);
    if (!path || !*path) {
        int is_last;
        if (default_socket_path(defpath, sizeof defpath, &is_last) < 0) {
            LERR(err, TW_ERR_CONNECT, "default socket path is too long");
            return NULL;
        }
        path = defpath;
        if (is_last) {
            /* /tmp/tradewire-$UID/tradewire.sock: is the directory really ours? */
            char dir[64];
            snprintf(dir, sizeof dir, "/tmp/tradewire-%lu", (unsigned long)getuid());
            if (tw_check_socket_dir(dir, err) < 0)
                return NULL;
        }
    }
    if (strlen(path) >= sizeof sa.sun_path) {
        LERR(err, TW_ERR_CONNECT, "socket path too long (max %zu bytes): %s",
             sizeof sa.sun_path - 1, path);
        return NULL;
    }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);

    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        LERR(err, TW_ERR_CONNECT, "socket: %s", strerror(errno));
        return NULL;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
#if defined(SO_NOSIGPIPE)
    {
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
    }
#endif
    int r;
    do {
        r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        int e = errno;
        close(fd);
        LERR(err, TW_ERR_CONNECT, "cannot connect to %s: %s%s", path, strerror(e),
             (e == ENOENT || e == ECONNREFUSED) ? " (is tradewired running?)" : "");
        return NULL;
    }
    if (check_peer(fd, path, err) < 0) {
        close(fd);
        return NULL;
    }
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        LERR(err, TW_ERR_CONNECT, "fcntl(O_NONBLOCK): %s", strerror(e));
        return NULL;
    }

    tw_client *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        LERR(err, TW_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->fd = fd;
    c->path = strdup(path);
    c->rcap = TW_INITIAL_RBUF;
    c->rbuf = malloc(c->rcap);
    c->wcap = 4096;
    c->wbuf = malloc(c->wcap);
    if (!c->path || !c->rbuf || !c->wbuf) {
        tw_close(c);
        LERR(err, TW_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->max_msg = TW_DEFAULT_MAX_MESSAGE_BYTES;
    c->timeout_ms = TW_DEFAULT_TIMEOUT_MS;
    c->next_id = 1;
    return c;
}

void tw_close(tw_client *c)
{
    if (!c)
        return;
    mark_broken(c);
    while (c->qhead) {
        tw_qitem *q = c->qhead;
        c->qhead = q->next;
        json_decref(q->msg);
        free(q);
    }
    while (c->rqhead) {
        tw_qitem *q = c->rqhead;
        c->rqhead = q->next;
        json_decref(q->msg);
        free(q);
    }
    free(c->registration);
    json_decref(c->last_error_data);
    free(c->rbuf);
    free(c->wbuf);
    free(c->path);
    free(c);
}

const char *tw_socket_path(const tw_client *c) { return c ? c->path : NULL; }
int tw_fileno(const tw_client *c) { return c ? c->fd : -1; }
int tw_is_open(const tw_client *c) { return c && c->fd >= 0; }

void tw_set_max_message_size(tw_client *c, size_t bytes)
{
    if (!c)
        return;
    if (bytes < TW_MIN_MAX_MESSAGE)
        bytes = TW_MIN_MAX_MESSAGE;
    c->max_msg = bytes;
}

size_t tw_max_message_size(const tw_client *c) { return c ? c->max_msg : 0; }

void tw_set_timeout(tw_client *c, int timeout_ms)
{
    if (c)
        c->timeout_ms = timeout_ms < 0 ? TW_TIMEOUT_INFINITE : timeout_ms;
}

json_t *tw_last_error_data(const tw_client *c) { return c ? c->last_error_data : NULL; }

void tw_set_notification_handler(tw_client *c, tw_notification_cb cb, void *ud)
{
    if (!c)
        return;
    c->cb = cb;
    c->ud = ud;
}

size_t tw_pending_notifications(const tw_client *c) { return c ? c->qlen : 0; }

json_t *tw_next_notification(tw_client *c)
{
    if (!c || !c->qhead)
        return NULL;
    tw_qitem *q = c->qhead;
    c->qhead = q->next;
    if (!c->qhead)
        c->qtail = NULL;
    c->qlen--;
    json_t *m = q->msg;
    free(q);
    return m;
}

/* ------------------------------------------------------------------------ */
/* Incoming messages                                                          */

/* A problem not attributable to a response: fail the innermost waiting call,
 * or remember it for the next tw_poll. */
static void report_problem(tw_client *c, int code, const char *msg)
{
    if (c->frames && !c->frames->resp && !c->frames->local_err) {
        c->frames->local_err = code;
        snprintf(c->frames->local_msg, sizeof c->frames->local_msg, "%s", msg);
    } else if (!c->stray_code) {
        c->stray_code = code;
        snprintf(c->stray_type, sizeof c->stray_type, "%s", local_type(code));
        snprintf(c->stray_msg, sizeof c->stray_msg, "%s", msg);
    }
}

static void enqueue(tw_client *c, json_t *msg)
{
    tw_qitem *q = malloc(sizeof *q);
    if (!q) {
        json_decref(msg);
        report_problem(c, TW_ERR_NOMEM, "out of memory queueing a notification");
        return;
    }
    q->msg = msg;
    q->next = NULL;
    if (c->qtail)
        c->qtail->next = q;
    else
        c->qhead = q;
    c->qtail = q;
    c->qlen++;
}

/* $/cancelRequest {"id"}: the call being served is marked cancelled (its
 * reply is not sent); a queued one is dropped unanswered; anything else (a
 * call already answered) is ignored. */
static void handle_cancel(tw_client *c, json_t *id)
{
    if (!id)
        return;
    if (c->current && json_equal(c->current->id, id)) {
        c->current->cancelled = 1;
        return;
    }
    tw_qitem *prev = NULL;
    for (tw_qitem *q = c->rqhead; q; prev = q, q = q->next) {
        json_t *qid = json_object_get(q->msg, "id");
        if (qid && json_equal(qid, id)) {
            if (prev)
                prev->next = q->next;
            else
                c->rqhead = q->next;
            if (c->rqtail == q)
                c->rqtail = prev;
            c->rqlen--;
            json_decref(q->msg);
            free(q);
            return;
        }
    }
}

/* Takes ownership of msg. */
static void handle_message(tw_client *c, json_t *msg)
{
    if (!json_is_object(msg)) {
        /* We never send batches, so an array is unexpected. */
        json_decref(msg);
        report_problem(c, TW_ERR_PROTOCOL, "unexpected non-object message from daemon");
        return;
    }
    json_t *id = json_object_get(msg, "id");
    json_t *method = json_object_get(msg, "method");
    /* JSON-RPC: "method" makes a request (with "id") or a notification
     * (without); a response never has "method". */
    int is_response = !method && id && (json_object_get(msg, "result") || json_object_get(msg, "error"));

    if (json_is_string(method) && !id) {
        const char *m = json_string_value(method);
        if (strcmp(m, "$/cancelRequest") == 0) {
            handle_cancel(c, json_object_get(json_object_get(msg, "params"), "id"));
            json_decref(msg);
            return;
        }
        if (strcmp(m, "shutdown") == 0)
            c->shutdown_seen = 1;
        enqueue(c, msg);
        return;
    }
    if (json_is_string(method)) {
        /* A request from the daemon (api_level 2, docs/PROTOCOL.md §9: sent
         * to a connection serving a pipeline stage). Queued: tw_serve_stage
         * answers it, or (not serving) drain() answers -32601. */
        if (c->rqlen >= TW_MAX_QUEUED_REQUESTS) {
            json_decref(msg);
            report_problem(c, TW_ERR_PROTOCOL, "too many requests from the daemon queued; one was dropped unanswered");
            return;
        }
        tw_qitem *q = malloc(sizeof *q);
        if (!q) {
            json_decref(msg);
            report_problem(c, TW_ERR_NOMEM, "out of memory queueing a request from the daemon");
            return;
        }
        q->msg = msg;
        q->next = NULL;
        if (c->rqtail)
            c->rqtail->next = q;
        else
            c->rqhead = q;
        c->rqtail = q;
        c->rqlen++;
        return;
    }
    if (is_response) {
        if (json_is_integer(id)) {
            json_int_t v = json_integer_value(id);
            for (tw_frame *f = c->frames; f; f = f->next) {
                if (f->id == v) {
                    if (!f->resp && !f->local_err) {
                        f->resp = msg;
                        return;
                    }
                    break;
                }
            }
            json_decref(msg); /* late or unknown response: discard */
            return;
        }
        if (json_is_null(id) && json_object_get(msg, "error")) {
            /* message_too_large / parse_error / forbidden: id null. */
            tw_frame *f = c->frames;
            if (f && !f->resp && !f->local_err) {
                f->resp = msg;
                return;
            }
            if (!c->stray_code) {
                json_t *e = json_object_get(msg, "error");
                json_t *code = json_object_get(e, "code");
                json_t *data = json_object_get(e, "data");
                const char *type = json_string_value(json_object_get(data, "type"));
                const char *m = json_string_value(json_object_get(e, "message"));
                c->stray_code = json_is_integer(code) ? (int)json_integer_value(code)
                                                      : TW_ERR_PROTOCOL;
                snprintf(c->stray_type, sizeof c->stray_type, "%s", type ? type : "");
                snprintf(c->stray_msg, sizeof c->stray_msg, "%s", m ? m : "error");
            }
            json_decref(msg);
            return;
        }
        json_decref(msg); /* a response with a string id: not ours */
        return;
    }
    json_decref(msg);
    report_problem(c, TW_ERR_PROTOCOL, "message from daemon is neither a response nor a notification");
}

static int is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

/* Parses every complete line in the buffer. Never calls user code. */
static void process_lines(tw_client *c)
{
    for (;;) {
        char *start = c->rbuf + c->rstart;
        char *scan = c->rbuf + c->rscan;
        char *nl = memchr(scan, '\n', c->rlen - c->rscan);
        if (!nl) {
            c->rscan = c->rlen;
            break;
        }
        size_t len = (size_t)(nl - start);
        c->rstart = c->rscan = (size_t)(nl - c->rbuf) + 1;
        if (len > 0 && start[len - 1] == '\r')
            len--;
        if (is_blank(start, len))
            continue;
        if (len > c->max_msg) {
            report_problem(c, TW_ERR_TOO_LARGE, "incoming message longer than the maximum message size was discarded");
            continue;
        }
        json_error_t jerr;
        json_t *msg = json_loadb(start, len, 0, &jerr);
        if (!msg) {
            char m[256];
            snprintf(m, sizeof m, "invalid JSON from daemon: %s", jerr.text);
            report_problem(c, TW_ERR_PROTOCOL, m);
            continue;
        }
        handle_message(c, msg);
    }
    if (c->rstart == c->rlen)
        c->rstart = c->rscan = c->rlen = 0;
}

/* One recv(). Returns >0 bytes read, 0 if it would block, -1 on error/EOF
 * (err filled, connection marked broken). Complete lines are processed. */
static int read_some(tw_client *c, tw_error *err)
{
    if (c->fd < 0) {
        LERR(err, TW_ERR_CLOSED, "connection is closed");
        return -1;
    }
    if (c->discarding) {
        /* drop the over-long line up to its newline */
        ssize_t n;
        do {
            n = recv(c->fd, c->rbuf, c->rcap, 0);
        } while (n < 0 && errno == EINTR);
        if (n == 0) {
            mark_broken(c);
            LERR(err, TW_ERR_CLOSED, "connection closed by the daemon");
            return -1;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            int e = errno;
            mark_broken(c);
            LERR(err, TW_ERR_IO, "recv: %s", strerror(e));
            return -1;
        }
        char *nl = memchr(c->rbuf, '\n', (size_t)n);
        if (nl) {
            size_t rest = (size_t)n - (size_t)(nl + 1 - c->rbuf);
            memmove(c->rbuf, nl + 1, rest);
            c->rstart = c->rscan = 0;
            c->rlen = rest;
            c->discarding = 0;
            process_lines(c);
        }
        return (int)n;
    }

    /* make room: compact, then grow up to max_msg + 2 ("\r\n") */
    if (c->rstart > 0 && (c->rlen == c->rcap || c->rcap - c->rlen < 4096)) {
        memmove(c->rbuf, c->rbuf + c->rstart, c->rlen - c->rstart);
        c->rlen -= c->rstart;
        c->rscan -= c->rstart;
        c->rstart = 0;
    }
    if (c->rlen == c->rcap) {
        size_t limit = c->max_msg + 2;
        if (c->rcap < limit) {
            size_t ncap = c->rcap * 2;
            if (ncap > limit)
                ncap = limit;
            char *nb = realloc(c->rbuf, ncap);
            if (!nb) {
                LERR(err, TW_ERR_NOMEM, "out of memory growing the read buffer");
                return -1;
            }
            c->rbuf = nb;
            c->rcap = ncap;
        } else {
            /* a partial line already longer than allowed */
            c->rstart = c->rscan = c->rlen = 0;
            c->discarding = 1;
            report_problem(c, TW_ERR_TOO_LARGE, "incoming message longer than the maximum message size was discarded");
            return 1;
        }
    }
    ssize_t n;
    do {
        n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
        mark_broken(c);
        LERR(err, TW_ERR_CLOSED, "connection closed by the daemon");
        return -1;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        int e = errno;
        mark_broken(c);
        LERR(err, TW_ERR_IO, "recv: %s", strerror(e));
        return -1;
    }
    c->rlen += (size_t)n;
    process_lines(c);
    if (c->rlen - c->rstart > c->max_msg + 1) {
        /* the pending partial line can no longer fit */
        c->rstart = c->rscan = c->rlen = 0;
        c->discarding = 1;
        report_problem(c, TW_ERR_TOO_LARGE, "incoming message longer than the maximum message size was discarded");
    }
    return (int)n;
}

static void reject_requests(tw_client *c);

/* Dispatches queued notifications to the handler, unless that is not
 * allowed right now (no handler, inside the callback, mid-write). Outside
 * tw_serve_stage, answers queued requests from the daemon with -32601. */
static void drain(tw_client *c)
{
    if (c->rqhead && !c->serving && !c->writing)
        reject_requests(c);
    while (c->cb && !c->in_callback && !c->writing && c->qhead) {
        json_t *msg = tw_next_notification(c);
        const char *method = json_string_value(json_object_get(msg, "method"));
        json_t *params = json_object_get(msg, "params");
        c->in_callback = 1;
        c->cb(method, params, c->ud);
        c->in_callback = 0;
        c->dispatched++;
        json_decref(msg);
    }
}

/* Waits until fd is readable (or writable when want_out). Returns the poll
 * revents, 0 on timeout, -1 on error. */
static int wait_fd(tw_client *c, int want_out, int64_t deadline, tw_error *err)
{
    struct pollfd p;
    for (;;) {
        p.fd = c->fd;
        p.events = POLLIN | (want_out ? POLLOUT : 0);
        p.revents = 0;
        int r = poll(&p, 1, remaining_ms(deadline));
        if (r > 0)
            return p.revents ? p.revents : POLLIN;
        if (r == 0)
            return 0;
        if (errno != EINTR) {
            LERR(err, TW_ERR_IO, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

/* Sends wbuf[0, len), reading (and queueing) incoming data meanwhile so a
 * daemon pushing notifications can never deadlock us. */
static int send_all(tw_client *c, size_t len, int64_t deadline, tw_error *err)
{
    size_t off = 0;
    int flags = 0;
#ifdef MSG_NOSIGNAL
    flags |= MSG_NOSIGNAL;
#endif
    c->writing = 1;
    while (off < len) {
        ssize_t n = send(c->fd, c->wbuf + off, len - off, flags);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int ev = wait_fd(c, 1, deadline, err);
            if (ev < 0)
                goto fail;
            if (ev == 0) {
                c->writing = 0;
                /* A partial request is on the wire: the stream is now
                 * unusable, so close it. */
                if (off > 0)
                    mark_broken(c);
                LERR(err, TW_ERR_TIMEOUT, "timed out sending the request%s",
                     off > 0 ? " (connection closed)" : "");
                return -1;
            }
            if (ev & (POLLIN | POLLHUP)) {
                if (read_some(c, err) < 0)
                    goto fail;
            }
            continue;
        }
        {
            int e = errno;
            if (e == EPIPE || e == ECONNRESET) {
                /* The daemon may have said why before closing (e.g. -32020
                 * forbidden, id null): read what is left so it reaches the
                 * waiting call. */
                tw_error tmp;
                while (c->fd >= 0 && read_some(c, &tmp) > 0)
                    ;
                mark_broken(c);
                LERR(err, TW_ERR_CLOSED, "connection closed by the daemon");
            } else {
                mark_broken(c);
                LERR(err, TW_ERR_IO, "send: %s", strerror(e));
            }
        }
        goto fail;
    }
    c->writing = 0;
    return 0;
fail:
    c->writing = 0;
    return -1;
}

/* Encodes msg compactly into wbuf followed by '\n'; *len = bytes incl. the
 * newline. Returns 0, or -1 with err (what = "request" / "reply"). */
static int encode_line(tw_client *c, json_t *msg, size_t *len, const char *what, tw_error *err)
{
    size_t need = json_dumpb(msg, c->wbuf, c->wcap, JSON_COMPACT);
    if (need == 0) {
        LERR(err, TW_ERR_INVALID_ARG, "cannot encode %s", what);
        return -1;
    }
    if (need + 1 > c->wcap) {
        size_t ncap = c->wcap;
        while (ncap < need + 1)
            ncap *= 2;
        char *nb = realloc(c->wbuf, ncap);
        if (!nb) {
            LERR(err, TW_ERR_NOMEM, "out of memory");
            return -1;
        }
        c->wbuf = nb;
        c->wcap = ncap;
        need = json_dumpb(msg, c->wbuf, c->wcap, JSON_COMPACT);
    }
    c->wbuf[need] = '\n';
    *len = need + 1;
    return 0;
}

/* Fills err from a response message and returns its result (new ref). */
static json_t *take_result(tw_client *c, json_t *resp, tw_error *err)
{
    json_t *res = json_object_get(resp, "result");
    json_t *e = json_object_get(resp, "error");
    json_decref(c->last_error_data);
    c->last_error_data = NULL;
    if (!e && res) {
        json_incref(res);
        return res;
    }
    json_t *code = json_object_get(e, "code");
    json_t *msg = json_object_get(e, "message");
    json_t *data = json_object_get(e, "data");
    const char *type = json_string_value(json_object_get(data, "type"));
    if (!json_is_object(e) || !json_is_integer(code)) {
        LERR(err, TW_ERR_PROTOCOL, "malformed error object in response");
        return NULL;
    }
    if (data) {
        json_incref(data);
        c->last_error_data = data;
    }
    set_err(err, (int)json_integer_value(code), type ? type : "",
            "%s", json_is_string(msg) ? json_string_value(msg) : "error");
    return NULL;
}

json_t *tw_call(tw_client *c, const char *method, json_t *params,
                int timeout_ms, tw_error *err)
{
    clear_err(err);
    if (!c || !method || !*method) {
        LERR(err, TW_ERR_INVALID_ARG, "tw_call: client and method are required");
        return NULL;
    }
    if (c->fd < 0) {
        LERR(err, TW_ERR_CLOSED, "connection is closed");
        return NULL;
    }
    int64_t deadline = deadline_from(timeout_ms);

    json_t *req = json_object();
    json_int_t id = c->next_id++;
    if (!req || json_object_set_new(req, "jsonrpc", json_string("2.0")) ||
        json_object_set_new(req, "id", json_integer(id)) ||
        json_object_set_new(req, "method", json_string(method)) ||
        (params && json_object_set(req, "params", params))) {
        json_decref(req);
        LERR(err, TW_ERR_INVALID_ARG, "cannot build request (method not valid UTF-8?)");
        return NULL;
    }
    size_t need;
    if (encode_line(c, req, &need, "request", err) < 0) {
        json_decref(req);
        return NULL;
    }
    json_decref(req);

    tw_frame f;
    memset(&f, 0, sizeof f);
    f.id = id;
    f.next = c->frames;
    c->frames = &f;

    json_t *result = NULL;
    if (send_all(c, need, deadline, err) < 0) {
        if (f.resp) /* an id-null error read while failing, e.g. forbidden */
            result = take_result(c, f.resp, err);
        goto out;
    }
    drain(c);
    for (;;) {
        if (f.resp || f.local_err)
            break;
        int r = read_some(c, err);
        if (r < 0)
            goto out;
        drain(c);
        if (r > 0)
            continue;
        if (f.resp || f.local_err)
            break;
        int ev = wait_fd(c, 0, deadline, err);
        if (ev < 0)
            goto out;
        if (ev == 0) {
            LERR(err, TW_ERR_TIMEOUT, "no response to '%s' within %d ms", method, timeout_ms);
            goto out;
        }
    }
    if (f.resp)
        result = take_result(c, f.resp, err);
    else
        LERR(err, f.local_err, "%s", f.local_msg);
out:
    c->frames = f.next;
    json_decref(f.resp);
    return result;
}

int tw_poll(tw_client *c, int timeout_ms, tw_error *err)
{
    clear_err(err);
    if (!c) {
        LERR(err, TW_ERR_INVALID_ARG, "tw_poll: client is NULL");
        return -1;
    }
    if (c->in_callback) {
        LERR(err, TW_ERR_BUSY, "tw_poll called from the notification callback");
        return -1;
    }
    int64_t deadline = deadline_from(timeout_ms);
    unsigned long start = c->dispatched;
#define TW_AVAILABLE() (c->cb ? (c->dispatched - start) : c->qlen)
#define TW_STRAY()                                                             \
    do {                                                                       \
        if (c->stray_code) {                                                   \
            set_err(err, c->stray_code, c->stray_type, "%s", c->stray_msg);    \
            c->stray_code = 0;                                                 \
            return -1;                                                         \
        }                                                                      \
    } while (0)

    drain(c);
    TW_STRAY();
    while (TW_AVAILABLE() == 0) {
        if (c->fd < 0) {
            LERR(err, TW_ERR_CLOSED, "connection is closed");
            return -1;
        }
        int r = read_some(c, err);
        drain(c);
        TW_STRAY();
        if (r < 0) {
            if (TW_AVAILABLE() == 0)
                return -1;
            clear_err(err); /* report the dispatched ones; the error comes next time */
            break;
        }
        if (r > 0)
            continue;
        int ev = wait_fd(c, 0, deadline, err);
        if (ev < 0)
            return -1;
        if (ev == 0)
            return 0;
    }
    /* take what is readable without blocking (one more read) */
    if (c->fd >= 0) {
        tw_error tmp;
        if (read_some(c, &tmp) >= 0)
            drain(c);
    }
    size_t n = TW_AVAILABLE();
#undef TW_AVAILABLE
#undef TW_STRAY
    return n > 0x7fffffff ? 0x7fffffff : (int)n;
}

/* ------------------------------------------------------------------------ */
/* Convenience                                                                */

/* Calls method with params (taken: released here; NULL = none) and checks
 * that the result's member `key` is true. 0, or -1 with err filled. */
static int call_for_true(tw_client *c, const char *method, json_t *p, const char *key, tw_error *err)
{
    json_t *r = tw_call(c, method, p, c ? c->timeout_ms : 0, err);
    json_decref(p);
    if (!r)
        return -1;
    int ok = json_is_true(json_object_get(r, key));
    json_decref(r);
    if (!ok) {
        LERR(err, TW_ERR_PROTOCOL, "%s result has no \"%s\": true", method, key);
        return -1;
    }
    return 0;
}

int tw_ping(tw_client *c, tw_error *err)
{
    return call_for_true(c, "ping", NULL, "pong", err);
}

int tw_publish(tw_client *c, const char *event_type, json_t *data,
               json_t *metadata, json_int_t *seq_out, tw_error *err)
{
    if (!c || !event_type) {
        LERR(err, TW_ERR_INVALID_ARG, "tw_publish: client and event_type are required");
        return -1;
    }
    json_t *p = json_object();
    if (!p || json_object_set_new(p, "event_type", json_string(event_type)) ||
        (data && json_object_set(p, "data", data)) ||
        (metadata && json_object_set(p, "metadata", metadata))) {
        json_decref(p);
        LERR(err, TW_ERR_INVALID_ARG, "tw_publish: cannot build params");
        return -1;
    }
    json_t *r = tw_call(c, "publish", p, c->timeout_ms, err);
    json_decref(p);
    if (!r)
        return -1;
    json_t *seq = json_object_get(r, "seq");
    int ok = json_is_integer(seq);
    if (ok && seq_out)
        *seq_out = json_integer_value(seq);
    json_decref(r);
    if (!ok) {
        LERR(err, TW_ERR_PROTOCOL, "publish result has no integer \"seq\"");
        return -1;
    }
    return 0;
}

/* Sends subscribe with params (taken: released here) and copies the
 * subscription id into sub_id_out (n bytes incl. NUL) when not NULL. */
static int subscribe_with(tw_client *c, json_t *p, const char *who, char *sub_id_out, size_t n, tw_error *err)
{
    if (!p) {
        LERR(err, TW_ERR_INVALID_ARG, "%s: cannot build params", who);
        return -1;
    }
    json_t *r = tw_call(c, "subscribe", p, c->timeout_ms, err);
    json_decref(p);
    if (!r)
        return -1;
    const char *sid = json_string_value(json_object_get(r, "subscription"));
    int rc = 0;
    if (!sid) {
        LERR(err, TW_ERR_PROTOCOL, "subscribe result has no \"subscription\"");
        rc = -1;
    } else if (sub_id_out) {
        if (n == 0 || strlen(sid) >= n) {
            if (n > 0)
                snprintf(sub_id_out, n, "%s", sid);
            LERR(err, TW_ERR_INVALID_ARG, "subscription id '%s' does not fit in %zu bytes (subscribed anyway)", sid, n);
            rc = -1;
        } else {
            memcpy(sub_id_out, sid, strlen(sid) + 1);
        }
    }
    json_decref(r);
    return rc;
}

/* Sets key to value (a new reference, taken) unless p is NULL already; on
 * failure releases both and returns NULL, so calls chain and one check at the
 * end covers them all. */
static json_t *with_member(json_t *p, const char *key, json_t *value)
{
    if (!p) {
        json_decref(value);
        return NULL;
    }
    if (json_object_set_new(p, key, value)) { /* jansson releases value, also on failure */
        json_decref(p);
        return NULL;
    }
    return p;
}

int tw_subscribe(tw_client *c, const char *pattern, json_int_t since_seq,
                 char *sub_id_out, size_t n, tw_error *err)
{
    if (!c || !pattern) {
        LERR(err, TW_ERR_INVALID_ARG, "tw_subscribe: client and pattern are required");
        return -1;
    }
    json_t *p = with_member(json_object(), "event_type", json_string(pattern));
    if (since_seq >= 0)
        p = with_member(p, "since_seq", json_integer(since_seq));
    return subscribe_with(c, p, "tw_subscribe", sub_id_out, n, err);
}

int tw_subscribe_consumer(tw_client *c, const char *consumer, const char *pattern,
                          const tw_consumer_options *options,
                          char *sub_id_out, size_t n, tw_error *err)
{
    static const tw_consumer_options defaults = TW_CONSUMER_OPTIONS_INIT;
    if (!c || !consumer || !pattern) {
        LERR(err, TW_ERR_INVALID_ARG, "tw_subscribe_consumer: client, consumer and pattern are required");
        return -1;
    }
    const tw_consumer_options *o = options ? options : &defaults;
    json_t *p = with_member(json_object(), "event_type", json_string(pattern));
    p = with_member(p, "consumer", json_string(consumer));
    if (o->since_seq >= 0)
        p = with_member(p, "since_seq", json_integer(o->since_seq));
    if (o->ack_wait_ms > 0)
        p = with_member(p, "ack_wait_ms", json_integer(o->ack_wait_ms));
    if (o->max_deliver > 0)
        p = with_member(p, "max_deliver", json_integer(o->max_deliver));
    if (o->max_in_flight > 0)
        p = with_member(p, "max_in_flight", json_integer(o->max_in_flight));
    return subscribe_with(c, p, "tw_subscribe_consumer", sub_id_out, n, err);
}

/* Calls method with params (taken: released here) and returns the result's
 * integer member `key` (>= 0), or -1 with err filled. */
static int call_for_count(tw_client *c, const char *method, json_t *p, const char *key, tw_error *err)
{
    if (!p) {
        LERR(err, TW_ERR_INVALID_ARG, "%s: cannot build params", method);
        return -1;
    }
    json_t *r = tw_call(c, method, p, c->timeout_ms, err);
    json_decref(p);
    if (!r)
        return -1;
    json_t *v = json_object_get(r, key);
    int rc = json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 0x7fffffff
                 ? (int)json_integer_value(v)
                 : -1;
    json_decref(r);
    if (rc < 0)
        LERR(err, TW_ERR_PROTOCOL, "%s result has no integer \"%s\"", method, key);
    return rc;
}

static int ack_by(tw_client *c, const char *consumer, const char *key, json_int_t seq, tw_error *err)
{
    if (!c || !consumer) {
        LERR(err, TW_ERR_INVALID_ARG, "tw_ack: client and consumer are required");
        return -1;
    }
    json_t *p = with_member(json_object(), "consumer", json_string(consumer));
    p = with_member(p, key, json_integer(seq));
    return call_for_count(c, "ack", p, "acked", err);
}

int tw_ack(tw_client *c, const char *consumer, json_int_t seq, tw_error *err)
{
    return ack_by(c, consumer, "seq", seq, err);
}

int tw_ack_up_to(tw_client *c, const char *consumer, json_int_t up_to_seq, tw_error *err)
{
    return ack_by(c, consumer, "up_to_seq", up_to_seq, err);
}

int tw_nak(tw_client *c, const char *consumer, json_int_t seq, int delay_ms,
           const char *error, tw_error *err)
{
    if (!c || !consumer) {
        LERR(err, TW_ERR_INVALID_ARG, "tw_nak: client and consumer are required");
        return -1;
    }
    json_t *p = with_member(json_object(), "consumer", json_string(consumer));
    p = with_member(p, "seq", json_integer(seq));
    if (delay_ms >= 0)
        p = with_member(p, "delay_ms", json_integer(delay_ms));
    if (error)
        p = with_member(p, "error", json_string(error));
    if (!p) {
        LERR(err, TW_ERR_INVALID_ARG, "tw_nak: cannot build params (is error valid UTF-8?)");
        return -1;
    }
    return call_for_true(c, "nak", p, "ok", err);
}

static const char *str_or_empty(json_t *v)
{
    const char *s = json_string_value(v);
    return s ? s : "";
}

int tw_parse_event(json_t *msg, tw_event *ev, tw_error *err)
{
    if (!msg || !ev) {
        LERR(err, TW_ERR_INVALID_ARG, "tw_parse_event: message and event are required");
        return -1;
    }
    memset(ev, 0, sizeof *ev);
    json_t *params = msg;
    json_t *method = json_object_get(msg, "method");
    if (method) {
        if (!json_is_string(method) || strcmp(json_string_value(method), "event") != 0) {
            LERR(err, TW_ERR_PROTOCOL, "not an \"event\" notification");
            return -1;
        }
        params = json_object_get(msg, "params");
    }
    json_t *event = json_object_get(params, "event");
    json_t *seq = json_object_get(event, "seq");
    const char *type = json_string_value(json_object_get(event, "event_type"));
    if (!json_is_object(event) || !json_is_integer(seq) || !type) {
        LERR(err, TW_ERR_PROTOCOL, "event notification without an event object with seq and event_type");
        return -1;
    }
    json_t *delivery = json_object_get(params, "delivery");
    if (delivery && !json_is_null(delivery)) {
        const char *consumer = json_string_value(json_object_get(delivery, "consumer"));
        json_t *attempt = json_object_get(delivery, "attempt");
        if (!consumer || !json_is_integer(attempt) || json_integer_value(attempt) < 1 ||
            json_integer_value(attempt) > 0x7fffffff) {
            LERR(err, TW_ERR_PROTOCOL, "event delivery without a string consumer and an attempt >= 1");
            return -1;
        }
        ev->consumer = consumer;
        ev->attempt = (int)json_integer_value(attempt);
    }
    json_t *data = json_object_get(event, "data");
    json_t *metadata = json_object_get(event, "metadata");
    ev->subscription = str_or_empty(json_object_get(params, "subscription"));
    ev->seq = json_integer_value(seq);
    ev->event_type = type;
    ev->timestamp = str_or_empty(json_object_get(event, "timestamp"));
    ev->data = data ? data : json_null();
    ev->metadata = json_is_object(metadata) ? metadata : NULL;
    ev->event = event;
    return 0;
}

static int unsubscribe_by(tw_client *c, const char *key, const char *value, tw_error *err)
{
    if (!c || !value) {
        LERR(err, TW_ERR_INVALID_ARG, "tw_unsubscribe: client and %s are required", key);
        return -1;
    }
    json_t *p = json_object();
    if (!p || json_object_set_new(p, key, json_string(value))) {
        json_decref(p);
        LERR(err, TW_ERR_INVALID_ARG, "tw_unsubscribe: cannot build params");
        return -1;
    }
    json_t *r = tw_call(c, "unsubscribe", p, c->timeout_ms, err);
    json_decref(p);
    if (!r)
        return -1;
    json_t *removed = json_object_get(r, "removed");
    int rc = json_is_integer(removed) ? (int)json_integer_value(removed) : -1;
    json_decref(r);
    if (rc < 0)
        LERR(err, TW_ERR_PROTOCOL, "unsubscribe result has no integer \"removed\"");
    return rc;
}

int tw_unsubscribe(tw_client *c, const char *subscription_id, tw_error *err)
{
    return unsubscribe_by(c, "subscription", subscription_id, err);
}

int tw_unsubscribe_pattern(tw_client *c, const char *pattern, tw_error *err)
{
    return unsubscribe_by(c, "event_type", pattern, err);
}

/* Copies id into out (n bytes incl. NUL) when out is not NULL. 0, or -1 (err
 * filled, out holds it truncated) when it does not fit. */
static int copy_id(const char *what, const char *id, char *out, size_t n, tw_error *err)
{
    if (!out)
        return 0;
    size_t len = strlen(id);
    if (n == 0 || len >= n) {
        if (n > 0)
            snprintf(out, n, "%s", id);
        LERR(err, TW_ERR_INVALID_ARG, "%s '%s' does not fit in %zu bytes", what, id, n);
        return -1;
    }
    memcpy(out, id, len + 1);
    return 0;
}

int tw_get_identity(tw_client *c, char *journal_id_out, size_t jn,
                    char *instance_id_out, size_t in, tw_error *err)
{
    if (!c) {
        LERR(err, TW_ERR_INVALID_ARG, "tw_get_identity: client is required");
        return -1;
    }
    if (journal_id_out && jn > 0)
        journal_id_out[0] = '\0';
    if (instance_id_out && in > 0)
        instance_id_out[0] = '\0';
    json_t *r = tw_call(c, "get_status", NULL, c->timeout_ms, err);
    if (!r)
        return -1;
    const char *instance = json_string_value(json_object_get(r, "instance_id"));
    json_t *journal = json_object_get(r, "journal");
    const char *jid = json_string_value(json_object_get(journal, "journal_id"));
    int rc;
    if (!instance) {
        LERR(err, TW_ERR_PROTOCOL, "get_status result has no string \"instance_id\"");
        rc = -1;
    } else if (journal && !json_is_null(journal) && (!jid || !*jid)) {
        LERR(err, TW_ERR_PROTOCOL, "get_status \"journal\" has no non-empty string \"journal_id\"");
        rc = -1;
    } else if (copy_id("instance_id", instance, instance_id_out, in, err) < 0 ||
               (jid && copy_id("journal_id", jid, journal_id_out, jn, err) < 0)) {
        rc = -1;
    } else {
        rc = jid ? 1 : 0;
    }
    json_decref(r);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Serving a pipeline stage (api_level 2, docs/PROTOCOL.md §9)               */

static int64_t realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int take_digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*p)[0];
        if (ch < '0' || ch > '9')
            return -1;
        x = x * 10 + (ch - '0');
        (*p)++;
    }
    *v = x;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* RFC 3339 date-time ("2025-01-02T03:04:05.678Z", "...+01:00") ->
 * milliseconds since the epoch. Returns 0, or -1 when it does not parse. */
static int parse_rfc3339_ms(const char *s, int64_t *out)
{
    int Y, Mo, D, h, mi, se;
    const char *p = s;
    if (!p)
        return -1;
    if (take_digits(&p, 4, &Y) || *p != '-' || (p++, take_digits(&p, 2, &Mo)) || *p != '-' ||
        (p++, take_digits(&p, 2, &D)))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (take_digits(&p, 2, &h) || *p != ':' || (p++, take_digits(&p, 2, &mi)) || *p != ':' ||
        (p++, take_digits(&p, 2, &se)))
        return -1;
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        static const int scale[3] = {100, 10, 1};
        while (*p >= '0' && *p <= '9') {
            if (nd < 3)
                frac += (*p - '0') * scale[nd];
            nd++;
            p++;
        }
        if (nd == 0)
            return -1;
    }
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (take_digits(&p, 2, &oh) || *p != ':' || (p++, take_digits(&p, 2, &om)) || oh > 23 || om > 59)
            return -1;
        off = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (*p || Mo < 1 || Mo > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    int64_t secs = days_from_civil(Y, Mo, D) * 86400 + h * 3600 + mi * 60 + se - (int64_t)off * 60;
    *out = secs * 1000 + frac;
    return 0;
}

/* A JSON string from s, replacing text that is not valid UTF-8. */
static json_t *safe_string(const char *s, const char *fallback)
{
    json_t *v = json_string(s ? s : fallback);
    return v ? v : json_string(fallback);
}

/* Sends one reply line: {"jsonrpc","id","result"} when result (BORROWED) is
 * not NULL, else {"jsonrpc","id","error":{code, message, data:{type}}}.
 * A reply longer than the max message size becomes a handler_error.
 * Returns 0, or -1 with err (connection problems). */
static int send_reply(tw_client *c, json_t *id, json_t *result, int code, const char *type,
                      const char *message, tw_error *err)
{
    char big[160];
    json_t *r = json_object();
    if (!r || json_object_set_new(r, "jsonrpc", json_string("2.0")) ||
        json_object_set(r, "id", id ? id : json_null())) {
        json_decref(r);
        LERR(err, TW_ERR_NOMEM, "out of memory building a reply");
        return -1;
    }
    if (result) {
        size_t n = json_dumpb(result, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
        if (n == 0) {
            result = NULL;
            code = TW_STAGE_HANDLER_ERROR;
            type = "handler_error";
            message = "the stage handler's result cannot be encoded as JSON";
        } else if (n + 64 > c->max_msg) {
            snprintf(big, sizeof big, "result too large: %zu bytes, the client's maximum message size is %zu",
                     n, c->max_msg);
            result = NULL;
            code = TW_STAGE_HANDLER_ERROR;
            type = "handler_error";
            message = big;
        }
    }
    int bad = 0;
    if (result) {
        bad = json_object_set(r, "result", result);
    } else {
        json_t *e = json_pack("{s:i, s:o, s:{s:s}}", "code", code, "message",
                              safe_string(message, "stage handler failed"), "data", "type", type);
        bad = !e || json_object_set_new(r, "error", e);
    }
    size_t len;
    if (bad || encode_line(c, r, &len, "reply", err) < 0) {
        json_decref(r);
        if (bad)
            LERR(err, TW_ERR_NOMEM, "out of memory building a reply");
        return -1;
    }
    json_decref(r);
    return send_all(c, len, deadline_from(c->timeout_ms), err);
}

static tw_qitem *pop_request(tw_client *c)
{
    tw_qitem *q = c->rqhead;
    if (q) {
        c->rqhead = q->next;
        if (!c->rqhead)
            c->rqtail = NULL;
        c->rqlen--;
    }
    return q;
}

/* Not serving: every queued request gets -32601. */
static void reject_requests(tw_client *c)
{
    tw_qitem *q;
    while (c->fd >= 0 && (q = pop_request(c))) {
        char m[200];
        tw_error tmp;
        snprintf(m, sizeof m, "%.120s: this connection does not serve a stage (or stopped serving)",
                 json_string_value(json_object_get(q->msg, "method")));
        (void)send_reply(c, json_object_get(q->msg, "id"), NULL, -32601, "method_not_found", m, &tmp);
        json_decref(q->msg);
        free(q);
    }
}

/* Reads what is on the socket without blocking (bounded work). */
static void peek_socket(tw_client *c)
{
    tw_error tmp;
    for (int i = 0; i < 64 && c->fd >= 0 && !c->writing; i++)
        if (read_some(c, &tmp) <= 0)
            break;
}

static const char *str_member(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

/* Serves the oldest queued request. Returns 0, or -1 with err when the reply
 * could not be written (connection gone). */
static int serve_one(tw_client *c, tw_stage_cb cb, void *user, tw_error *err)
{
    tw_qitem *q = pop_request(c);
    json_t *msg = q->msg;
    free(q);
    json_t *id = json_object_get(msg, "id");
    const char *method = json_string_value(json_object_get(msg, "method"));
    json_t *params = json_object_get(msg, "params");
    int rc;

    if (strcmp(method, "stage.handle") != 0) {
        char m[200];
        snprintf(m, sizeof m, "method not found: %.120s", method);
        rc = send_reply(c, id, NULL, -32601, "method_not_found", m, err);
        json_decref(msg);
        return rc;
    }
    if (!json_is_object(params)) {
        rc = send_reply(c, id, NULL, -32602, "invalid_params", "stage.handle params must be an object", err);
        json_decref(msg);
        return rc;
    }

    tw_stage_ctx x;
    memset(&x, 0, sizeof x);
    x.c = c;
    x.id = id;
    x.deadline_ns = -1;
    x.pub.id = json_is_string(id) ? json_string_value(id) : "";
    x.pub.registration = str_member(params, "registration");
    x.pub.stage = str_member(params, "stage");
    x.pub.name = str_member(params, "name");
    x.pub.mode = str_member(params, "mode");
    x.pub.iteration_id = str_member(params, "iteration_id");
    x.pub.deadline = str_member(params, "deadline");
    x.pub.iteration = json_integer_value(json_object_get(params, "iteration"));
    x.pub.dry_run = json_is_true(json_object_get(params, "dry_run"));
    x.pub.input = json_object_get(params, "input");
    if (!x.pub.input)
        x.pub.input = json_null();
    x.pub.output = json_object_get(params, "output");
    x.pub.account = json_object_get(params, "account");
    x.pub.deadline_ms_left = -1;
    int64_t dl;
    if (parse_rfc3339_ms(x.pub.deadline, &dl) == 0) {
        int64_t left = dl - realtime_ms();
        if (left < 0)
            left = 0;
        x.deadline_ns = now_ns() + left * 1000000LL;
        x.pub.deadline_ms_left = (long long)left;
    }

    tw_error uerr;
    clear_err(&uerr);
    c->current = &x;
    json_t *res = cb(&x.pub, user, &uerr);
    /* a $/cancelRequest already on the socket suppresses the reply */
    if (!x.cancelled)
        peek_socket(c);
    c->current = NULL;

    if (x.cancelled || c->fd < 0) {
        rc = c->fd < 0 ? -1 : 0;
        if (rc < 0)
            LERR(err, TW_ERR_CLOSED, "connection closed by the daemon");
    } else if (res) {
        rc = send_reply(c, id, res, 0, NULL, NULL, err);
    } else {
        rc = send_reply(c, id, NULL, TW_STAGE_HANDLER_ERROR, "handler_error",
                        uerr.message[0] ? uerr.message : "stage handler failed", err);
    }
    json_decref(res);
    json_decref(msg);
    return rc;
}

static int serve_loop(tw_client *c, tw_stage_cb cb, void *user, tw_error *err)
{
    for (;;) {
        drain(c);
        if (c->rqhead) {
            if (serve_one(c, cb, user, err) < 0)
                return c->shutdown_seen ? (clear_err(err), 0) : -1;
            continue;
        }
        if (c->stop_serving) {
            tw_error tmp;
            json_t *p = json_pack("{s:s}", "registration", c->registration);
            json_t *r = p ? tw_call(c, "unregister_stage", p, c->timeout_ms, &tmp) : NULL;
            json_decref(p);
            json_decref(r);
            /* calls that arrived before the daemon took the membership away */
            while (c->rqhead && c->fd >= 0)
                if (serve_one(c, cb, user, &tmp) < 0)
                    break;
            drain(c);
            return 0;
        }
        if (c->shutdown_seen)
            return 0;
        if (c->fd < 0) {
            LERR(err, TW_ERR_CLOSED, "connection closed by the daemon");
            return -1;
        }
        /* problems with nothing to answer (an over-long line discarded, a
         * line that was not JSON, an id-null error): serving goes on */
        c->stray_code = 0;
        int r = read_some(c, err);
        if (r < 0) {
            drain(c);
            if (c->shutdown_seen) {
                clear_err(err);
                return 0;
            }
            return -1;
        }
        if (r > 0)
            continue;
        struct pollfd pf = {c->fd, POLLIN, 0};
        if (c->stop_serving)
            continue;
        int pr = poll(&pf, 1, TW_SERVE_SLICE_MS);
        if (pr < 0 && errno != EINTR) {
            LERR(err, TW_ERR_IO, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

int tw_serve_stage(tw_client *c, const char *stage, const char *name,
                   const tw_stage_options *options, tw_stage_cb callback,
                   void *user, tw_error *err)
{
    clear_err(err);
    if (!c || !stage || !*stage || !name || !*name || !callback) {
        LERR(err, TW_ERR_INVALID_ARG, "tw_serve_stage: client, stage, name and callback are required");
        return -1;
    }
    if (c->serving) {
        LERR(err, TW_ERR_BUSY, "tw_serve_stage: this client already serves a stage");
        return -1;
    }
    if (c->fd < 0) {
        LERR(err, TW_ERR_CLOSED, "connection is closed");
        return -1;
    }
    if (c->stop_serving) {
        c->stop_serving = 0;
        return 0;
    }
    json_t *p = json_object();
    const tw_stage_options *o = options;
    if (!p || json_object_set_new(p, "stage", json_string(stage)) ||
        json_object_set_new(p, "name", json_string(name)) ||
        (o && o->mode && json_object_set_new(p, "mode", json_string(o->mode))) ||
        (o && o->timeout_ms > 0 && json_object_set_new(p, "timeout_ms", json_integer(o->timeout_ms))) ||
        (o && o->on_failure && json_object_set_new(p, "on_failure", json_string(o->on_failure))) ||
        (o && o->concurrency > 0 && json_object_set_new(p, "concurrency", json_integer(o->concurrency))) ||
        (o && o->durable >= 0 && json_object_set_new(p, "durable", json_boolean(o->durable)))) {
        json_decref(p);
        LERR(err, TW_ERR_INVALID_ARG, "tw_serve_stage: cannot build register_stage params (not UTF-8?)");
        return -1;
    }
    c->serving = 1;
    c->shutdown_seen = 0;
    json_t *r = tw_call(c, "register_stage", p, c->timeout_ms, err);
    json_decref(p);
    const char *reg = r ? json_string_value(json_object_get(r, "registration")) : NULL;
    int rc = -1;
    if (r && !reg) {
        LERR(err, TW_ERR_PROTOCOL, "register_stage result has no \"registration\"");
    } else if (r) {
        c->registration = strdup(reg);
        if (!c->registration)
            LERR(err, TW_ERR_NOMEM, "out of memory");
        else
            rc = serve_loop(c, callback, user, err);
    }
    json_decref(r);
    free(c->registration);
    c->registration = NULL;
    c->current = NULL;
    c->serving = 0;
    c->stop_serving = 0;
    c->stray_code = 0; /* seen while serving: nothing left to report them to */
    return rc;
}

void tw_stop_serving(tw_client *c)
{
    if (c)
        c->stop_serving = 1;
}

int tw_stage_call_cancelled(const tw_stage_call *call)
{
    if (!call)
        return 0;
    tw_stage_ctx *x = (tw_stage_ctx *)(uintptr_t)call;
    if (x->cancelled)
        return 1;
    if (x->c->current != x)
        return 0;
    peek_socket(x->c);
    return x->cancelled || x->c->fd < 0;
}

long long tw_stage_call_ms_left(const tw_stage_call *call)
{
    if (!call)
        return -1;
    const tw_stage_ctx *x = (const tw_stage_ctx *)(const void *)call;
    if (x->deadline_ns < 0)
        return -1;
    int64_t left = x->deadline_ns - now_ns();
    return left <= 0 ? 0 : (long long)(left / 1000000);
}

const char *tw_stage_registration(const tw_client *c)
{
    return c && c->serving ? c->registration : NULL;
}
