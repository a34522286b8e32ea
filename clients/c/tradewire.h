/*
 * tradewire.h — C client for the tradewire daemon (tradewired).
 *
 * JSON-RPC 2.0 over a Unix domain socket, newline-delimited JSON
 * (the protocol: docs/PROTOCOL.md in the tradewire repository; the client
 * speaks api_level 2). JSON values are jansson json_t.
 *
 * Threading: a tw_client is not thread-safe; use one client per thread (or
 * serialise access yourself). The library has no global state.
 *
 * Ownership conventions (jansson reference counting):
 *   - json_t parameters passed IN (params, data, metadata) are BORROWED: the
 *     library never steals them; you still own (and must json_decref) them.
 *   - json_t results returned by tw_call() / tw_next_notification() are NEW
 *     references: the caller owns them and must json_decref them.
 *   - json_t values passed to the notification callback are BORROWED and valid
 *     only during the callback (json_incref them to keep them).
 */
#ifndef TRADEWIRE_H
#define TRADEWIRE_H

#include <stddef.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TW_VERSION "0.1.0"
#define TW_API_LEVEL 2

/* Default upper bound for one incoming line (bytes before the newline):
 * the daemon's 1 MiB request limit plus 1 MiB of margin, because an event
 * notification wraps the published data and the daemon may re-escape it. */
#define TW_DEFAULT_MAX_MESSAGE_BYTES (2u * 1024u * 1024u)
/* Default timeout of the convenience calls (tw_ping, tw_publish, ...). */
#define TW_DEFAULT_TIMEOUT_MS 30000
/* Pass as timeout_ms to wait without a deadline. */
#define TW_TIMEOUT_INFINITE (-1)

/*
 * Error codes.
 *
 * tw_error.code is 0 on success, the daemon's JSON-RPC error code for an RPC
 * error (all codes in docs/PROTOCOL.md are <= -32000; tw_error.type then holds the
 * error's data.type, e.g. "method_not_found"), or one of the LOCAL codes below
 * (range -1 .. -99, never sent by the daemon; tw_error.type then holds the
 * snake_case name given next to each code). Use tw_error_is_local().
 */
enum {
    TW_OK               = 0,
    TW_ERR_CONNECT      = -1,  /* "connect_failed": socket/connect failed      */
    TW_ERR_TIMEOUT      = -2,  /* "timeout": no response before the deadline;
                                  the connection stays usable (a late response
                                  is discarded)                                */
    TW_ERR_IO           = -3,  /* "io_error": read/write failed; conn closed   */
    TW_ERR_CLOSED       = -4,  /* "connection_closed": daemon closed the
                                  connection (or tw_client already broken)     */
    TW_ERR_PROTOCOL     = -5,  /* "protocol_error": a line from the daemon was
                                  not valid JSON-RPC, or a result had an
                                  unexpected shape; the line is discarded and
                                  the connection stays usable                  */
    TW_ERR_TOO_LARGE    = -6,  /* "incoming_too_large": an incoming line longer
                                  than the max message size was discarded; the
                                  connection stays usable                      */
    TW_ERR_INVALID_ARG  = -7,  /* "invalid_argument": bad argument to the API  */
    TW_ERR_NOMEM        = -8,  /* "out_of_memory"                              */
    TW_ERR_BUSY         = -9,  /* "busy": tw_poll() called from inside the
                                  notification callback                        */
    TW_ERR_UNSAFE_DIR   = -10, /* "unsafe_socket_dir": the default socket
                                  directory /tmp/tradewire-$UID is a symlink,
                                  not a directory, owned by another uid or not
                                  mode 0700 (another user may have planted
                                  it); nothing was connected to               */
    TW_ERR_UNTRUSTED_PEER = -11 /* "untrusted_peer": the server at the socket
                                  runs as another user (SO_PEERCRED uid is
                                  neither ours nor 0); closed before anything
                                  was sent                                    */
};

typedef struct tw_error {
    int  code;          /* 0, a JSON-RPC code (<= -32000) or a TW_ERR_* code */
    char type[64];      /* data.type of an RPC error, or the local name      */
    char message[512];  /* human-readable message                            */
} tw_error;

/* True when code is one of the library's local TW_ERR_* codes. */
static inline int tw_error_is_local(int code) { return code < 0 && code > -100; }

typedef struct tw_client tw_client;

/* Notification callback: method is e.g. "event", "events_dropped", "shutdown";
 * params is the notification's params (borrowed; may be NULL if absent).
 * The callback may call tw_call() (and the convenience calls) on the same
 * client; it must not call tw_poll() (TW_ERR_BUSY) or tw_close(). */
typedef void (*tw_notification_cb)(const char *method, json_t *params, void *ud);

/* ---- socket path ------------------------------------------------------- */

/* Writes the default socket path (docs/PROTOCOL.md §1) into buf:
 *   $TRADEWIRE_SOCKET, else $XDG_RUNTIME_DIR/tradewire.sock,
 *   else /tmp/tradewire-$UID/tradewire.sock   (UID = getuid()).
 * An environment variable that is set but empty counts as unset.
 * Returns the length of the path (like strlen), or -1 if buf is NULL or too
 * small (buf then holds a truncated, NUL-terminated string when n > 0). */
int tw_default_socket_path(char *buf, size_t n);

/* Checks a default socket directory (/tmp/tradewire-$UID) the way
 * tw_connect() does before using it: lstat(dir) must show a real directory
 * (not a symlink) owned by getuid() with mode exactly 0700. Returns 0, or -1
 * with err filled: TW_ERR_CONNECT when it does not exist ("no daemon: socket
 * directory DIR does not exist (is tradewired running?)"), TW_ERR_UNSAFE_DIR
 * otherwise ("refusing DIR: mode 0755, expected 0700", "...: is a symlink",
 * "...: owned by uid 65534, not 1000"). */
int tw_check_socket_dir(const char *dir, tw_error *err);

/* ---- connection -------------------------------------------------------- */

/* Connects to the daemon. path NULL (or "") = tw_default_socket_path().
 * Never talks to an impostor:
 *   - when the path is the last default (/tmp/tradewire-$UID/tradewire.sock:
 *     no path, no TRADEWIRE_SOCKET, no XDG_RUNTIME_DIR), its directory must
 *     pass tw_check_socket_dir() before connecting;
 *   - for every path, right after connecting and before sending anything, the
 *     server's credentials (SO_PEERCRED; getpeereid() where that is missing)
 *     must show our uid or 0 (root), else TW_ERR_UNTRUSTED_PEER.
 * Returns NULL with err filled (TW_ERR_CONNECT, TW_ERR_UNSAFE_DIR,
 * TW_ERR_UNTRUSTED_PEER, TW_ERR_NOMEM) on failure. */
tw_client *tw_connect(const char *path, tw_error *err);

/* Closes the connection and frees everything (queued notifications too).
 * NULL is accepted. */
void tw_close(tw_client *c);

/* The socket path this client connected to. */
const char *tw_socket_path(const tw_client *c);

/* The socket fd, for poll()/select() integration (wait for POLLIN, then call
 * tw_poll(c, 0, ...)). Do not read from or write to it yourself.
 * -1 once the connection is broken. */
int tw_fileno(const tw_client *c);

/* 1 while the connection is usable, 0 after an I/O error or EOF. */
int tw_is_open(const tw_client *c);

/* Maximum accepted incoming line (bytes before the newline); default
 * TW_DEFAULT_MAX_MESSAGE_BYTES. Raise it if the daemon runs with a larger
 * --max-message-bytes or you fetch large histories. Minimum 1024. */
void   tw_set_max_message_size(tw_client *c, size_t bytes);
size_t tw_max_message_size(const tw_client *c);

/* Timeout used by the convenience calls below (default TW_DEFAULT_TIMEOUT_MS;
 * TW_TIMEOUT_INFINITE for none). A publish of a pipeline event waits for
 * the whole chain (up to 300 s): raise it for that. */
void tw_set_timeout(tw_client *c, int timeout_ms);

/* ---- requests ---------------------------------------------------------- */

/* Sends {"jsonrpc":"2.0","id":N,"method":method,"params":params} (params
 * omitted when NULL; params is BORROWED) and blocks until the response with
 * that id arrives or timeout_ms elapses (TW_TIMEOUT_INFINITE = no deadline;
 * 0 = only what is already available, like poll()).
 * Returns the "result" value (a NEW reference, never NULL on success; a JSON
 * null result is returned as json_null()) or NULL with err filled:
 *   RPC error  -> err->code = error.code, err->type = error.data.type,
 *                 err->message = error.message; tw_last_error_data() has data.
 *   local      -> a TW_ERR_* code.
 * Notifications arriving meanwhile go to the notification handler (if set)
 * or are queued (tw_next_notification). Responses with other ids (e.g. the
 * late answer to a call that timed out) are discarded. An error response with
 * id null (message_too_large, forbidden, parse_error) is taken as the answer
 * to the call in progress. */
json_t *tw_call(tw_client *c, const char *method, json_t *params,
                int timeout_ms, tw_error *err);

/* The "data" object of the last RPC error returned on this client (e.g. with
 * "errors": [{path, message}] for invalid_params), BORROWED, valid until the
 * next call; NULL if none. */
json_t *tw_last_error_data(const tw_client *c);

/* ---- notifications ----------------------------------------------------- */

/* Sets (or clears, with NULL) the notification handler. With a handler set,
 * notifications are dispatched as soon as they are read (inside tw_call()
 * and tw_poll()), queued ones first. Without one they are queued. */
void tw_set_notification_handler(tw_client *c, tw_notification_cb cb, void *ud);

/* Reads notifications: waits up to timeout_ms (TW_TIMEOUT_INFINITE = forever,
 * 0 = don't block) until at least one is available, then also takes what can
 * be read without blocking.
 * With a handler: dispatches them and returns the number dispatched.
 * Without: queues them and returns the number queued in total.
 * Returns 0 on timeout, -1 on error (err filled; check tw_is_open()). */
int tw_poll(tw_client *c, int timeout_ms, tw_error *err);

/* Pops the oldest queued notification: the whole message object
 * {"jsonrpc","method","params"} as a NEW reference, or NULL if none queued. */
json_t *tw_next_notification(tw_client *c);

/* Number of queued notifications. */
size_t tw_pending_notifications(const tw_client *c);

/* ---- convenience (use the client's timeout, see tw_set_timeout) -------- */

/* ping -> {"pong": true}. Returns 0, or -1 with err filled. */
int tw_ping(tw_client *c, tw_error *err);

/* publish {event_type, data?, metadata?}. data / metadata BORROWED; NULL =
 * omitted (data then defaults to JSON null). Stores result.seq in *seq_out
 * when seq_out is not NULL. Returns 0 or -1. */
int tw_publish(tw_client *c, const char *event_type, json_t *data,
               json_t *metadata, json_int_t *seq_out, tw_error *err);

/* subscribe {event_type: pattern, since_seq?}. since_seq < 0 = none.
 * Copies the subscription id ("s-...") into sub_id_out (if not NULL; n bytes
 * incl. NUL; 64 is plenty). Returns 0 or -1. */
int tw_subscribe(tw_client *c, const char *pattern, json_int_t since_seq,
                 char *sub_id_out, size_t n, tw_error *err);

/* unsubscribe {subscription}. Returns the number removed (0 if nothing
 * matched) or -1. */
int tw_unsubscribe(tw_client *c, const char *subscription_id, tw_error *err);

/* unsubscribe {event_type: pattern} (exact pattern string of this
 * connection's subscriptions). Returns the number removed or -1. */
int tw_unsubscribe_pattern(tw_client *c, const char *pattern, tw_error *err);

/* ---- events and durable consumers (docs/PROTOCOL.md §3, §11) ----------- */

/* One "event" notification, parsed. Every pointer is BORROWED from the
 * message it was parsed from: valid while that message lives (in the
 * notification callback: during the callback; from tw_next_notification:
 * until you json_decref the message). */
typedef struct tw_event {
    const char *subscription;  /* params.subscription, "s-..." ("" when absent) */
    json_int_t seq;            /* event.seq                                    */
    const char *event_type;    /* event.event_type                             */
    const char *timestamp;     /* event.timestamp, RFC 3339 ("" when absent)   */
    json_t *data;              /* event.data (JSON null when absent)           */
    json_t *metadata;          /* event.metadata (an object), or NULL          */
    json_t *event;             /* the whole Event object                       */
    /* Set when the event came through a durable consumer (params.delivery): */
    const char *consumer;      /* delivery.consumer; NULL for a plain
                                  subscription                                 */
    int attempt;               /* delivery.attempt: 1 for the first delivery,
                                  2+ for redeliveries; 0 for a plain
                                  subscription                                 */
} tw_event;

/* Parses an "event" notification into ev. msg is either the whole message
 * ({"jsonrpc","method":"event","params"}, as tw_next_notification returns
 * it) or its params (as the notification callback gets them).
 * Returns 0, or -1 with err filled: TW_ERR_INVALID_ARG (NULL arguments),
 * TW_ERR_PROTOCOL (another method, no event object, no integer "seq" or no
 * string "event_type", or a "delivery" without a string "consumer" and an
 * integer "attempt" >= 1). */
int tw_parse_event(json_t *msg, tw_event *ev, tw_error *err);

/* Options of a consumer subscription; 0 / -1 = omitted (the daemon's
 * default). ack_wait_ms, max_deliver and max_in_flight are fixed when the
 * consumer is created; later members may omit them (another value gets
 * -32602). */
typedef struct tw_consumer_options {
    json_int_t since_seq;  /* a NEW consumer starts after this seq; -1 = omit
                              (it starts with the next event published)      */
    int ack_wait_ms;       /* redelivered when not acked within; 0 = omit
                              (default 30000)                               */
    int max_deliver;       /* attempts before it becomes a dead letter; 0 =
                              omit (default 5)                              */
    int max_in_flight;     /* unacknowledged deliveries out at once, over all
                              members; 0 = omit (default 256)               */
} tw_consumer_options;
#define TW_CONSUMER_OPTIONS_INIT { -1, 0, 0, 0 }

/* subscribe {event_type: pattern, consumer, since_seq?, ack_wait_ms?,
 * max_deliver?, max_in_flight?}: joins (or creates) the durable consumer
 * `consumer` (1-64 characters of A-Z a-z 0-9 _ . : -). Every connection
 * subscribed with one name shares its events (each event goes to one of
 * them). Events arrive as "event" notifications with params.delivery
 * (tw_parse_event: ev.consumer, ev.attempt) and must be acknowledged with
 * tw_ack / tw_ack_up_to from this connection, else they are delivered again
 * after ack_wait_ms. options NULL = all omitted. Copies the subscription id
 * as tw_subscribe does. Returns 0 or -1 (e.g. -32602 invalid_params for a
 * bad name or a pattern other than the consumer's). */
int tw_subscribe_consumer(tw_client *c, const char *consumer, const char *pattern,
                          const tw_consumer_options *options,
                          char *sub_id_out, size_t n, tw_error *err);

/* ack {consumer, seq}: settles the event whichever member it went to;
 * returns the number acknowledged (1, or 0 when the seq is not outstanding
 * for the consumer), or -1 (-32040 unknown_consumer when this connection is
 * not subscribed with that consumer). */
int tw_ack(tw_client *c, const char *consumer, json_int_t seq, tw_error *err);

/* ack {consumer, up_to_seq}: acknowledges every event THIS CONNECTION has
 * out for the consumer with seq <= up_to_seq, in one request (batched
 * acking); returns how many, or -1 as tw_ack. */
int tw_ack_up_to(tw_client *c, const char *consumer, json_int_t up_to_seq, tw_error *err);

/* nak {consumer, seq, delay_ms?, error?}: the event is delivered again (with
 * attempt + 1) after delay_ms (< 0 = omit: at once); error (NULL = omit) is
 * kept as the dead letter's last_error if that was its last attempt.
 * Returns 0 or -1 (-32040 as tw_ack). */
int tw_nak(tw_client *c, const char *consumer, json_int_t seq, int delay_ms,
           const char *error, tw_error *err);

/* ---- the daemon's seq space: resuming after a reconnect (§10) ---------- */

/* A buffer of this size holds any journal_id or instance_id (UUIDs today). */
#define TW_ID_SIZE 64

/* get_status -> who is answering. Copies get_status "journal"."journal_id"
 * into journal_id_out and "instance_id" into instance_id_out. Either buffer
 * may be NULL (its size is then ignored); jn / in are their sizes in bytes
 * incl. the NUL (TW_ID_SIZE is plenty). The buffers are the caller's; the
 * library allocates nothing and keeps no pointer to them.
 * Returns:
 *    1  the daemon keeps a journal: journal_id_out holds its journal_id
 *       (non-empty; fixed for the daemon's data dir, kept across restarts);
 *    0  the daemon is ephemeral ("journal": null): journal_id_out is "";
 *   -1  error, err filled: the call failed (as tw_call), TW_ERR_PROTOCOL
 *       (no string "instance_id", or a "journal" object without a non-empty
 *       string "journal_id"), or TW_ERR_INVALID_ARG (an id does not fit its
 *       buffer: it holds the id truncated).
 * instance_id is new at every daemon start, journal or not.
 *
 * The resume rule. Keep the journal_id you saw and the last seq you handled;
 * after reconnecting (the connection dropped, or the daemon restarted), call
 * this again:
 *   - the same journal_id (non-empty both times): the same seq space, seqs
 *     carried on across any restart: resubscribe with since_seq = the last
 *     seq you handled (tw_subscribe); nothing is missed or repeated while the
 *     journal's retention still holds the gap (else an events_dropped notice
 *     with "count": null says what is gone);
 *   - a different journal_id, or none (ephemeral, then or now): a NEW seq
 *     space, where your last seq means nothing: start over (since_seq 0 =
 *     everything the daemon holds, -1 = only new events).
 * (Without a journal, an unchanged instance_id means the very same daemon
 * process, only the connection dropped: its seqs still hold, so since_seq
 * works there too. A different instance_id is a restart: a new seq space.) */
int tw_get_identity(tw_client *c, char *journal_id_out, size_t jn,
                    char *instance_id_out, size_t in, tw_error *err);

/* ---- serving a pipeline stage (api_level 2, docs/PROTOCOL.md §9, §14) -- */

/*
 * A connection can serve a pipeline stage: it registers (register_stage) and
 * the daemon then sends it JSON-RPC *requests* ("stage.handle", ids "c-...")
 * over the same connection. tw_serve_stage() does both and answers each call
 * with what your callback returns.
 *
 * Calls are served ONE AT A TIME, in arrival order, on the calling thread.
 * With options.concurrency > 1 the daemon may send several calls at once:
 * they are queued and still served one after the other (each against its own
 * deadline), so keep concurrency at 1 (the default) unless you know better;
 * to serve in parallel, open several connections (one tw_serve_stage each,
 * same stage and name: the daemon spreads calls over the group's members).
 */

/* One stage.handle call. Everything is BORROWED and valid only during the
 * callback (json_incref / strdup what you keep). */
typedef struct tw_stage_call {
    const char *id;            /* the daemon's request id, "c-..."           */
    const char *registration;  /* "r-..." (params.registration)              */
    const char *stage;         /* data | strategy | quant | risk | execution  */
    const char *name;          /* the group name                             */
    const char *mode;          /* "after" | "replace"                        */
    const char *iteration_id;
    const char *deadline;      /* RFC 3339 UTC, as sent ("" when absent)      */
    json_int_t iteration;
    int dry_run;               /* 1 in a run_pipeline dry run                */
    json_t *input;             /* params.input (JSON null when absent)        */
    json_t *output;            /* params.output; NULL when absent (replace)   */
    json_t *account;           /* params.account (risk, execution); or NULL  */
    long long deadline_ms_left;/* ms until the deadline (monotonic), computed
                                  as the call is handed to the callback (0 if
                                  already past, -1 when the deadline is absent
                                  or unparseable); tw_stage_call_ms_left()
                                  gives it anew                              */
} tw_stage_call;

typedef struct tw_stage_options {
    const char *mode;          /* "after" | "replace"; NULL = omit (daemon
                                  default "after")                           */
    int timeout_ms;            /* per-call timeout; 0 = omit (default 5000)  */
    const char *on_failure;    /* "skip" | "fallback" | "fail_closed"; NULL =
                                  omit (the stage's default)                 */
    int concurrency;           /* 0 = omit (1); see the note above           */
    int durable;               /* -1 = omit, 0 = false, 1 = true             */
} tw_stage_options;
#define TW_STAGE_OPTIONS_INIT { NULL, 0, NULL, 0, -1 }

/* The error code of the reply sent when the callback fails
 * (data.type "handler_error"). */
#define TW_STAGE_HANDLER_ERROR (-32000)

/* Stage callback: returns a NEW reference to the result (it is sent as the
 * reply's "result" and released by the library), or NULL after filling
 * err->message (err arrives cleared; the reply is then the error
 * {"code": -32000, "message": err->message, "data": {"type": "handler_error"}}).
 * It may use the client (tw_call, tw_publish, ... — calls arriving meanwhile
 * are queued), may poll tw_stage_call_cancelled(), and may call
 * tw_stop_serving(). It must not call tw_serve_stage() (TW_ERR_BUSY), tw_poll()
 * on a client with a notification handler set, or tw_close(). */
typedef json_t *(*tw_stage_cb)(const tw_stage_call *call, void *user, tw_error *err);

/* Registers this connection as a member of the group (stage, name) with
 * register_stage {stage, name, mode?, timeout_ms?, on_failure?, concurrency?,
 * durable?} (options NULL = all omitted) and serves its stage.handle calls
 * until:
 *   - tw_stop_serving(conn) is called: calls already received are served,
 *     the membership is removed (unregister_stage {registration}), returns 0;
 *   - the daemon sends the `shutdown` notification: calls already received are
 *     served, returns 0 (later calls are not answered: close the connection);
 *   - the connection closes or fails: returns -1, err TW_ERR_CLOSED/TW_ERR_IO.
 * Registration refused: returns -1 with the daemon's error (err->code e.g.
 * -32602 invalid_params or -32030 stage_conflict, err->type, err->message;
 * tw_last_error_data() has data). Other failures: -1 with a TW_ERR_* code
 * (TW_ERR_BUSY when already serving on this client, TW_ERR_INVALID_ARG).
 * The registration request uses the client's timeout (tw_set_timeout).
 *
 * Wire behaviour:
 *   - each stage.handle call gets one reply with its id: the callback's result,
 *     or the handler_error above; a result whose encoding is longer than
 *     tw_max_message_size() is replaced by a handler_error ("result too
 *     large"), never sent truncated;
 *   - any other request method gets -32601 (data.type "method_not_found");
 *     params that are not an object get -32602 (invalid_params);
 *   - `$/cancelRequest {"id"}` is consumed by the library: for the call being
 *     served it marks the call cancelled (see tw_stage_call_cancelled) and no
 *     reply is sent; for a queued call it drops the call unanswered; for
 *     anything else (a call already answered) it is ignored;
 *   - every other notification (event, events_dropped, shutdown, ...) goes to
 *     the notification handler, or the queue, as with tw_call();
 *   - an incoming line longer than tw_max_message_size() is discarded (a call
 *     that large is never answered: the daemon's timeout and on_failure apply);
 *     serving goes on.
 * Outside tw_serve_stage a request from the daemon (e.g. one racing
 * tw_stop_serving's unregister) is answered with -32601 at the next tw_call
 * or tw_poll. */
int tw_serve_stage(tw_client *conn, const char *stage, const char *name,
                   const tw_stage_options *options, tw_stage_cb callback,
                   void *user, tw_error *err);

/* Asks tw_serve_stage() on conn to stop (see above). Only sets a flag: safe
 * from a signal handler and from the stage callback. Serving notices it
 * within 250 ms. Calling it before tw_serve_stage() makes that return 0
 * without registering. */
void tw_stop_serving(tw_client *conn);

/* 1 when the daemon cancelled this call ($/cancelRequest: its deadline passed
 * or its iteration was abandoned) or the connection is gone, else 0. Reads
 * what is already on the socket without blocking, so a long-running callback
 * may poll it and give up early (its result is then discarded unsent). Valid
 * only during the callback. */
int tw_stage_call_cancelled(const tw_stage_call *call);

/* Milliseconds left until the call's deadline, now (monotonic clock): 0 when
 * past, -1 when the call had no parseable deadline. */
long long tw_stage_call_ms_left(const tw_stage_call *call);

/* The registration id ("r-...") while tw_serve_stage() runs on conn (after
 * the daemon accepted the registration), else NULL. */
const char *tw_stage_registration(const tw_client *conn);

#ifdef __cplusplus
}
#endif

#endif /* TRADEWIRE_H */
