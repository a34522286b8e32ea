import Logging
import PostgresNIO

/// The cluster's tables and functions, as numbered migrations run at start (under an
/// advisory lock, so nodes starting together apply each one once).
///
/// - `tw_events`: the shared journal. `seq` is assigned by `tw_append` under a
///   transaction-scoped advisory lock, so seqs commit in order (a reader never sees a hole
///   that fills later, which a `bigserial` would produce).
/// - `tw_batches`: each appended batch's key, so a batch retried after a lost connection is
///   answered with its first append's seqs instead of being applied twice.
/// - `tw_lease`: one row, the leader's lease (holder, epoch, expiry by the database clock).
/// - `tw_nodes`: every node's heartbeat and delivery position (lag).
/// - `tw_state`: named state documents (book checkpoints, loop settings).
/// - `tw_calls`: calls handed to the node that can answer them (``ClusterCalls``).
/// - `tw_stage_groups`: each node's remote stage groups (``ClusterStageDirectory``).
/// - `tw_consumers`, `tw_claims`, `tw_dead_letters`, `tw_consumer_members`: durable
///   consumers (``ClusterConsumers``, ``ClusterConsumerSchema``).
public enum ClusterSchema {
    /// The newest schema version this build knows.
    public static var version: Int { migrations.count }

    /// Advisory lock keys (a fixed namespace: 'tw' in the high bytes).
    static let migrationLock: Int64 = 0x7477_0000
    static let appendLock: Int64 = 0x7477_0001

    /// Migrations, in order; never edit one that shipped, add the next.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE tw_events (
                seq bigint PRIMARY KEY,
                event_type text NOT NULL,
                ts_us bigint NOT NULL,
                data text NOT NULL,
                metadata text NOT NULL,
                data_type text NOT NULL,
                node_id text NOT NULL,
                batch_key text NOT NULL,
                epoch bigint
            )
            """,
            """
            CREATE TABLE tw_batches (
                node_id text NOT NULL,
                batch_key text NOT NULL,
                first_seq bigint NOT NULL,
                count integer NOT NULL,
                PRIMARY KEY (node_id, batch_key)
            )
            """,
            "CREATE INDEX tw_batches_first_seq ON tw_batches (first_seq)",
            """
            CREATE TABLE tw_lease (
                id integer PRIMARY KEY CHECK (id = 1),
                holder text,
                epoch bigint NOT NULL,
                acquired_at timestamptz,
                expires_at timestamptz NOT NULL
            )
            """,
            "INSERT INTO tw_lease (id, holder, epoch, expires_at) VALUES (1, NULL, 0, '-infinity')",
            """
            CREATE TABLE tw_nodes (
                node_id text PRIMARY KEY,
                incarnation text NOT NULL,
                started_at timestamptz NOT NULL,
                last_seen timestamptz NOT NULL,
                delivered_seq bigint NOT NULL DEFAULT 0,
                stopped boolean NOT NULL DEFAULT false
            )
            """,
            "CREATE TABLE tw_state (key text PRIMARY KEY, value text NOT NULL, updated_at timestamptz NOT NULL)",
            // The whole append in one statement: lock, fence, take max(seq), insert, notify.
            """
            CREATE FUNCTION tw_append(
                p_node text, p_batch text, p_epoch bigint, p_types text[], p_ts bigint[], p_data text[],
                p_metadata text[], p_data_types text[]
            ) RETURNS TABLE (first_seq bigint, count integer, replayed boolean)
            LANGUAGE plpgsql AS $$
            DECLARE
                base bigint;
                n integer := coalesce(array_length(p_types, 1), 0);
                prior record;
            BEGIN
                IF n = 0 THEN
                    RAISE EXCEPTION 'tw_append: an empty batch';
                END IF;
                PERFORM pg_advisory_xact_lock(\(appendLock));
                SELECT b.first_seq, b.count INTO prior FROM tw_batches b
                    WHERE b.node_id = p_node AND b.batch_key = p_batch;
                IF FOUND THEN
                    RETURN QUERY SELECT prior.first_seq, prior.count, true;
                    RETURN;
                END IF;
                IF p_epoch IS NOT NULL THEN
                    -- FOR SHARE: a takeover (an UPDATE of this row) waits for this append.
                    PERFORM 1 FROM tw_lease l WHERE l.id = 1 AND l.holder = p_node AND l.epoch = p_epoch
                        AND l.expires_at > clock_timestamp() FOR SHARE;
                    IF NOT FOUND THEN
                        RAISE EXCEPTION USING ERRCODE = 'TW001',
                            MESSAGE = format('epoch %s of node %s no longer holds the lease', p_epoch, p_node);
                    END IF;
                END IF;
                SELECT coalesce(max(e.seq), 0) INTO base FROM tw_events e;
                INSERT INTO tw_events (seq, event_type, ts_us, data, metadata, data_type, node_id, batch_key, epoch)
                    SELECT base + i, p_types[i], p_ts[i], p_data[i], p_metadata[i], p_data_types[i], p_node, p_batch, p_epoch
                    FROM generate_series(1, n) AS i;
                INSERT INTO tw_batches (node_id, batch_key, first_seq, count) VALUES (p_node, p_batch, base + 1, n);
                PERFORM pg_notify('tw_events', (base + n)::text);
                RETURN QUERY SELECT base + 1, n, false;
            END
            $$
            """,
        ],
        // 2: calls handed to another node (a follower's run_pipeline to the leader).
        [
            """
            CREATE TABLE tw_calls (
                id bigserial PRIMARY KEY,
                kind text NOT NULL,
                from_node text NOT NULL,
                params text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                deadline_at timestamptz NOT NULL,
                claimed_by text,
                claimed_epoch bigint,
                claimed_at timestamptz,
                reply text,
                is_error boolean,
                done_at timestamptz
            )
            """,
            "CREATE INDEX tw_calls_waiting ON tw_calls (kind, id) WHERE claimed_by IS NULL",
            "CREATE INDEX tw_calls_open ON tw_calls (id) WHERE done_at IS NULL",
            // A new call wakes the nodes that serve it; an answer wakes the caller.
            """
            CREATE FUNCTION tw_calls_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('tw_calls', NEW.id::text);
                RETURN NULL;
            END
            $$
            """,
            """
            CREATE TRIGGER tw_calls_changed AFTER INSERT OR UPDATE OF done_at ON tw_calls
                FOR EACH ROW EXECUTE FUNCTION tw_calls_notify()
            """,
        ],
        // 3: stage groups across nodes (a call may name the node that serves it).
        [
            "ALTER TABLE tw_calls ADD COLUMN target_node text",
            """
            CREATE TABLE tw_stage_groups (
                node_id text NOT NULL,
                stage text NOT NULL,
                name text NOT NULL,
                mode text NOT NULL,
                timeout_ms integer NOT NULL,
                on_failure text NOT NULL,
                durable boolean NOT NULL,
                members integer NOT NULL,
                concurrency integer NOT NULL,
                position integer NOT NULL,
                PRIMARY KEY (node_id, stage, name)
            )
            """,
        ],
        // 4: durable consumers shared by every node (claims with a visibility timeout).
        ClusterConsumerSchema.migration,
    ]

    /// Creates or upgrades the schema; refuses a database whose schema is newer.
    static func migrate(_ database: ClusterDatabase) async throws(ClusterError) {
        let logger = database.logger
        let migrations = Self.migrations
        let applied: Int = try await database.withConnection("migrating the cluster schema", timeout: .seconds(60)) {
            connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLock))", logger: logger)
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS tw_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)",
                    logger: logger)
                var current = 0
                for try await version in try await connection.query(
                    "SELECT coalesce(max(version), 0) FROM tw_schema", logger: logger
                ).decode(Int.self) {
                    current = version
                }
                guard current <= migrations.count else {
                    throw ClusterError(
                        .incompatible,
                        "the cluster database has schema version \(current); this build knows \(migrations.count) (upgrade tradewired)"
                    )
                }
                for version in (current + 1)...max(current + 1, migrations.count) where version <= migrations.count {
                    for statement in migrations[version - 1] {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        "INSERT INTO tw_schema (version, applied_at) VALUES (\(version), now())", logger: logger)
                }
                try await connection.query("COMMIT", logger: logger)
                return migrations.count - current
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
        if applied > 0 {
            logger.notice(
                "cluster.schema.migrated",
                metadata: ["schema.version": "\(migrations.count)", "migrations.applied": "\(applied)"])
        }
    }
}
