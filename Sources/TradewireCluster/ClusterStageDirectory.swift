import Foundation
import Logging
import PostgresNIO
import TradewireJSON

/// One node's remote stage group, as `tw_stage_groups` lists it.
public struct ClusterStageGroup: Sendable, Equatable {
    public var nodeID: String
    public var stage: String
    public var name: String
    public var mode: String
    public var timeoutMilliseconds: Int
    public var onFailure: String
    public var durable: Bool
    /// Members connected to that node.
    public var members: Int
    /// The calls those members take at once (the sum of their `concurrency`).
    public var concurrency: Int
    /// The group's place among the node's groups (creation order).
    public var position: Int

    public init(
        nodeID: String, stage: String, name: String, mode: String, timeoutMilliseconds: Int, onFailure: String,
        durable: Bool, members: Int, concurrency: Int, position: Int
    ) {
        self.nodeID = nodeID
        self.stage = stage
        self.name = name
        self.mode = mode
        self.timeoutMilliseconds = timeoutMilliseconds
        self.onFailure = onFailure
        self.durable = durable
        self.members = members
        self.concurrency = concurrency
        self.position = position
    }
}

/// Where the cluster's remote stage groups are (PROTOCOL §13: a member connected to any
/// node serves the leader's calls): every node writes its own groups into
/// `tw_stage_groups`, and reads the other live nodes'.
public struct ClusterStageDirectory: Sendable {
    public let database: ClusterDatabase
    public let nodeID: String
    /// Groups one node may list (the server's own bound is 64 per stage, 5 stages).
    public static let maximumGroups = 320

    public init(database: ClusterDatabase, nodeID: String) {
        self.database = database
        self.nodeID = nodeID
    }

    /// Replaces this node's groups with `groups` (their `nodeID` is ignored), in one
    /// transaction.
    public func publish(_ groups: [ClusterStageGroup]) async throws(ClusterError) {
        let groups = Array(groups.prefix(Self.maximumGroups))
        let node = nodeID
        let logger = database.logger
        try await database.withConnection("publishing node \(node)'s stage groups") { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                try await connection.query("DELETE FROM tw_stage_groups WHERE node_id = \(node)", logger: logger)
                if !groups.isEmpty {
                    let stages = groups.map(\.stage)
                    let names = groups.map(\.name)
                    let modes = groups.map(\.mode)
                    let timeouts = groups.map(\.timeoutMilliseconds)
                    let failures = groups.map(\.onFailure)
                    let durables = groups.map(\.durable)
                    let members = groups.map(\.members)
                    let concurrencies = groups.map(\.concurrency)
                    let positions = groups.map(\.position)
                    try await connection.query(
                        """
                        INSERT INTO tw_stage_groups
                            (node_id, stage, name, mode, timeout_ms, on_failure, durable, members, concurrency, position)
                        SELECT \(node), * FROM unnest(\(stages)::text[], \(names)::text[], \(modes)::text[], \
                        \(timeouts)::integer[], \(failures)::text[], \(durables)::boolean[], \(members)::integer[], \
                        \(concurrencies)::integer[], \(positions)::integer[])
                        """, logger: logger)
                }
                try await connection.query("COMMIT", logger: logger)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// The groups of every other live node, by node and position.
    public func others() async throws(ClusterError) -> [ClusterStageGroup] {
        let node = nodeID
        let window = ClusterNodes.livenessWindow.inSeconds
        let rows = try await database.query(
            """
            SELECT g.node_id, g.stage, g.name, g.mode, g.timeout_ms, g.on_failure, g.durable, g.members,
                g.concurrency, g.position
            FROM tw_stage_groups g JOIN tw_nodes n ON n.node_id = g.node_id
            WHERE g.node_id <> \(node) AND NOT n.stopped
                AND n.last_seen > clock_timestamp() - make_interval(secs => \(window))
            ORDER BY g.node_id, g.position
            """, "reading the cluster's stage groups")
        do {
            return try rows.map { row in
                let (id, stage, name, mode, timeout, failure, durable, members, concurrency, position) =
                    try row.decode((String, String, String, String, Int, String, Bool, Int, Int, Int).self)
                return ClusterStageGroup(
                    nodeID: id, stage: stage, name: name, mode: mode, timeoutMilliseconds: timeout, onFailure: failure,
                    durable: durable, members: members, concurrency: concurrency, position: position)
            }
        } catch {
            throw ClusterError(.database, "reading the cluster's stage groups: unexpected row (\(error))")
        }
    }
}
