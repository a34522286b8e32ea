/// Schema version 4: durable consumers that every node of a cluster shares (PROTOCOL §11,
/// §13), kept as claims with a visibility timeout.
///
/// - `tw_consumers`: each consumer's settings and position (the newest seq it has read:
///   every matching event at or below it has a claim, was acknowledged, or is a dead letter).
/// - `tw_claims`: the events a consumer has out or waiting (unacknowledged). A claim out at a
///   node carries its `node_id` and becomes visible again at `visible_at` (its ack deadline);
///   a waiting one (a nak with a delay, a member that left) has no node and goes out at
///   `visible_at`. The table holds at most `max_in_flight` rows per consumer, so it stays
///   small however long the journal grows.
/// - `tw_dead_letters`: what a consumer gave up on, at most ``maximumDeadLetters`` per
///   consumer (the oldest is evicted and counted).
/// - `tw_consumer_members`: how many members each node has per consumer (for
///   `get_consumers`).
enum ClusterConsumerSchema {
    /// Dead letters kept per consumer (as on a single node).
    static let maximumDeadLetters = 10_000
    /// Events one claim scans past its consumer's position at most (a consumer whose pattern
    /// matches little moves through the journal in bounded steps).
    static let maximumScan = 100_000
    /// SQLSTATEs the functions raise.
    static let unknownConsumerSQLState = "TW002"
    static let tooManyConsumersSQLState = "TW003"
    /// Serializes the creation of consumers (so the bound on their number holds).
    static let creationLock: Int64 = 0x7477_0002

    static let migration: [String] = [
        """
        CREATE TABLE tw_consumers (
            name text PRIMARY KEY,
            pattern text NOT NULL,
            like_pattern text NOT NULL,
            ack_wait_ms integer NOT NULL,
            max_deliver integer NOT NULL,
            max_in_flight integer NOT NULL,
            position bigint NOT NULL,
            dead_letters_evicted bigint NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """,
        """
        CREATE TABLE tw_claims (
            consumer text NOT NULL REFERENCES tw_consumers (name) ON DELETE CASCADE,
            seq bigint NOT NULL,
            event_type text NOT NULL,
            attempts integer NOT NULL,
            node_id text,
            visible_at timestamptz NOT NULL,
            last_error text,
            first_failed timestamptz,
            last_failed timestamptz,
            PRIMARY KEY (consumer, seq)
        )
        """,
        "CREATE INDEX tw_claims_node ON tw_claims (node_id) WHERE node_id IS NOT NULL",
        """
        CREATE TABLE tw_dead_letters (
            id bigserial PRIMARY KEY,
            consumer text NOT NULL REFERENCES tw_consumers (name) ON DELETE CASCADE,
            seq bigint NOT NULL,
            event_type text NOT NULL,
            attempts integer NOT NULL,
            last_error text NOT NULL,
            first_failed timestamptz NOT NULL,
            last_failed timestamptz NOT NULL
        )
        """,
        "CREATE INDEX tw_dead_letters_consumer ON tw_dead_letters (consumer, id)",
        """
        CREATE TABLE tw_consumer_members (
            consumer text NOT NULL REFERENCES tw_consumers (name) ON DELETE CASCADE,
            node_id text NOT NULL,
            members integer NOT NULL,
            PRIMARY KEY (consumer, node_id)
        )
        """,
        // Creates a consumer, or returns the one that exists (its settings decide).
        """
        CREATE FUNCTION tw_open_consumer(
            p_name text, p_pattern text, p_like text, p_ack_wait bigint, p_max_deliver bigint,
            p_max_in_flight bigint, p_since bigint, p_limit bigint
        ) RETURNS TABLE (o_pattern text, o_ack_wait integer, o_max_deliver integer, o_max_in_flight integer,
            o_created boolean)
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(\(creationLock));
            RETURN QUERY SELECT c.pattern, c.ack_wait_ms, c.max_deliver, c.max_in_flight, false
                FROM tw_consumers c WHERE c.name = p_name;
            IF FOUND THEN
                RETURN;
            END IF;
            IF (SELECT count(*) FROM tw_consumers) >= p_limit THEN
                RAISE EXCEPTION USING ERRCODE = '\(tooManyConsumersSQLState)',
                    MESSAGE = format('Too many consumers (limit %s); delete one first', p_limit);
            END IF;
            INSERT INTO tw_consumers (name, pattern, like_pattern, ack_wait_ms, max_deliver, max_in_flight, position)
                VALUES (p_name, p_pattern, p_like, p_ack_wait, p_max_deliver, p_max_in_flight,
                    coalesce(p_since, (SELECT coalesce(max(e.seq), 0) FROM tw_events e)));
            RETURN QUERY SELECT p_pattern, p_ack_wait::integer, p_max_deliver::integer, p_max_in_flight::integer, true;
        END
        $$
        """,
        // Moves claims to the dead letters (`p_error` nil: each keeps its own last error),
        // evicting the oldest beyond the bound.
        """
        CREATE FUNCTION tw_bury(p_consumer text, p_seqs bigint[], p_error text) RETURNS integer
        LANGUAGE plpgsql AS $$
        DECLARE
            buried integer;
            excess integer;
        BEGIN
            WITH doomed AS (
                DELETE FROM tw_claims k WHERE k.consumer = p_consumer AND k.seq = ANY(p_seqs) RETURNING k.*)
            INSERT INTO tw_dead_letters (consumer, seq, event_type, attempts, last_error, first_failed, last_failed)
                SELECT d.consumer, d.seq, d.event_type, d.attempts,
                    coalesce(p_error, d.last_error, 'max_deliver reached'),
                    coalesce(d.first_failed, clock_timestamp()), coalesce(d.last_failed, clock_timestamp())
                FROM doomed d ORDER BY d.seq;
            GET DIAGNOSTICS buried = ROW_COUNT;
            SELECT count(*) - \(maximumDeadLetters) INTO excess FROM tw_dead_letters d WHERE d.consumer = p_consumer;
            IF excess > 0 THEN
                DELETE FROM tw_dead_letters WHERE id IN (
                    SELECT d.id FROM tw_dead_letters d WHERE d.consumer = p_consumer ORDER BY d.id LIMIT excess);
                UPDATE tw_consumers SET dead_letters_evicted = dead_letters_evicted + excess WHERE name = p_consumer;
            END IF;
            RETURN buried;
        END
        $$
        """,
        // One node takes up to p_limit events of a consumer to deliver: expired deliveries on
        // their last attempt become dead letters; then redeliveries (expired, or waiting and
        // due), oldest first; then new events after the position while fewer than
        // max_in_flight are unacknowledged. Returns each with its attempt and the event (a
        // pruned one: o_found false). The consumer's row lock serializes the nodes.
        """
        CREATE FUNCTION tw_claim(p_consumer text, p_node text, p_limit bigint)
        RETURNS TABLE (o_seq bigint, o_attempts integer, o_found boolean, o_type text, o_ts bigint, o_data text,
            o_metadata text, o_data_type text)
        LANGUAGE plpgsql AS $$
        DECLARE
            c record;
            expired bigint[];
            redo_seqs bigint[];
            redo_attempts integer[];
            new_seqs bigint[];
            new_types text[];
            taken integer;
            room integer;
            newest bigint;
            ceiling bigint;
            deadline timestamptz;
        BEGIN
            SELECT * INTO c FROM tw_consumers k WHERE k.name = p_consumer FOR UPDATE;
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = '\(unknownConsumerSQLState)',
                    MESSAGE = format('consumer %s does not exist', p_consumer);
            END IF;
            deadline := clock_timestamp() + c.ack_wait_ms * interval '1 millisecond';
            SELECT array_agg(k.seq) INTO expired FROM tw_claims k
                WHERE k.consumer = p_consumer AND k.node_id IS NOT NULL AND k.visible_at <= clock_timestamp()
                    AND k.attempts >= c.max_deliver;
            IF expired IS NOT NULL THEN
                PERFORM tw_bury(p_consumer, expired, 'ack_wait expired');
            END IF;
            WITH redo AS (
                UPDATE tw_claims k SET attempts = k.attempts + 1, node_id = p_node, visible_at = deadline,
                    last_error = CASE WHEN k.node_id IS NULL THEN k.last_error
                        ELSE coalesce(k.last_error, 'ack_wait expired') END,
                    first_failed = CASE WHEN k.node_id IS NULL THEN k.first_failed
                        ELSE coalesce(k.first_failed, clock_timestamp()) END,
                    last_failed = CASE WHEN k.node_id IS NULL THEN k.last_failed ELSE clock_timestamp() END
                WHERE k.consumer = p_consumer AND k.seq IN (
                    SELECT w.seq FROM tw_claims w
                    WHERE w.consumer = p_consumer AND w.visible_at <= clock_timestamp()
                        AND (w.node_id IS NULL OR w.attempts < c.max_deliver)
                    ORDER BY w.seq LIMIT p_limit)
                RETURNING k.seq, k.attempts)
            SELECT array_agg(r.seq ORDER BY r.seq), array_agg(r.attempts ORDER BY r.seq)
                INTO redo_seqs, redo_attempts FROM redo r;
            taken := coalesce(array_length(redo_seqs, 1), 0);
            room := least(p_limit - taken,
                c.max_in_flight - (SELECT count(*) FROM tw_claims k WHERE k.consumer = p_consumer)::integer);
            IF room > 0 THEN
                -- Seqs commit in order (tw_append): every seq up to the newest is visible.
                SELECT coalesce(max(e.seq), 0) INTO newest FROM tw_events e;
                ceiling := least(newest, c.position + \(maximumScan));
                IF ceiling > c.position THEN
                    SELECT array_agg(x.seq ORDER BY x.seq), array_agg(x.event_type ORDER BY x.seq)
                        INTO new_seqs, new_types
                    FROM (SELECT e.seq, e.event_type FROM tw_events e
                        WHERE e.seq > c.position AND e.seq <= ceiling AND e.event_type LIKE c.like_pattern
                        ORDER BY e.seq LIMIT room) x;
                    taken := coalesce(array_length(new_seqs, 1), 0);
                    IF taken > 0 THEN
                        INSERT INTO tw_claims (consumer, seq, event_type, attempts, node_id, visible_at)
                            SELECT p_consumer, new_seqs[i], new_types[i], 1, p_node, deadline
                            FROM generate_series(1, taken) AS i;
                    END IF;
                    UPDATE tw_consumers SET position = CASE WHEN taken = room THEN new_seqs[taken] ELSE ceiling END
                        WHERE name = p_consumer;
                END IF;
            END IF;
            RETURN QUERY
                SELECT s.seq, s.attempts, e.seq IS NOT NULL, e.event_type, e.ts_us, e.data, e.metadata, e.data_type
                FROM unnest(coalesce(redo_seqs, '{}'::bigint[]) || coalesce(new_seqs, '{}'::bigint[]),
                    coalesce(redo_attempts, '{}'::integer[])
                        || array_fill(1, ARRAY[coalesce(array_length(new_seqs, 1), 0)])) AS s(seq, attempts)
                LEFT JOIN tw_events e ON e.seq = s.seq
                ORDER BY s.seq;
        END
        $$
        """,
        // A negative acknowledgement: the event waits p_delay_ms, or becomes a dead letter
        // when it used its attempts. False when it was not out.
        """
        CREATE FUNCTION tw_nak(p_consumer text, p_seq bigint, p_delay_ms bigint, p_error text) RETURNS boolean
        LANGUAGE plpgsql AS $$
        DECLARE
            tries integer;
        BEGIN
            UPDATE tw_claims k SET node_id = NULL, visible_at = clock_timestamp() + p_delay_ms * interval '1 millisecond',
                last_error = coalesce(p_error, 'nak'), first_failed = coalesce(k.first_failed, clock_timestamp()),
                last_failed = clock_timestamp()
            WHERE k.consumer = p_consumer AND k.seq = p_seq AND k.node_id IS NOT NULL
            RETURNING k.attempts INTO tries;
            IF NOT FOUND THEN
                RETURN false;
            END IF;
            IF tries >= (SELECT c.max_deliver FROM tw_consumers c WHERE c.name = p_consumer) THEN
                PERFORM tw_bury(p_consumer, ARRAY[p_seq], NULL);
            END IF;
            RETURN true;
        END
        $$
        """,
    ]
}
