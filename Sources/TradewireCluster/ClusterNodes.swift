import Foundation
import PostgresNIO
import TradewireJSON

/// A node as `tw_nodes` records it.
public struct ClusterNode: Sendable, Equatable {
    public var nodeID: String
    public var lastSeen: Date
    /// The newest seq the node delivered (its lag is the journal's newest seq minus this).
    public var deliveredSeq: Int
    /// True when the node stopped cleanly.
    public var stopped: Bool
    /// True when it was seen within the liveness window.
    public var live: Bool
}

/// The nodes of a cluster: registration (a node id is unique among live nodes), heartbeats
/// with each node's delivery position, and the listing `tradewire cluster` shows.
public struct ClusterNodes: Sendable {
    public let database: ClusterDatabase
    public let nodeID: String
    /// This run of the node (a restart is a new incarnation of the same id).
    public let incarnation: String
    /// A node not seen for this long is not live (3 missed heartbeats of 2 s).
    public static let livenessWindow: Duration = .seconds(6)

    public init(database: ClusterDatabase, nodeID: String, incarnation: String = UUID().uuidString) {
        self.database = database
        self.nodeID = nodeID
        self.incarnation = incarnation
    }

    /// Registers this node. When the id's record looks live, waits (up to the liveness
    /// window) to tell a crashed predecessor, whose heartbeat has stopped, from a live twin,
    /// whose heartbeat goes on: `.duplicateNode` for the twin.
    public func register() async throws(ClusterError) {
        let clock = ContinuousClock()
        let deadline = clock.now + Self.livenessWindow + .seconds(1)
        var firstSeen: Double?
        while true {
            if try await tryRegister() { return }
            let seen = try await lastSeen()
            if let firstSeen, let seen, seen > firstSeen { break }  // it heartbeats: a live twin
            if firstSeen == nil { firstSeen = seen }
            guard clock.now < deadline else { break }
            try? await Task.sleep(for: .milliseconds(500))
        }
        throw ClusterError(
            .duplicateNode,
            "node id '\(nodeID)' is already used by a live node of this cluster (choose another --node-id)")
    }

    private func tryRegister() async throws(ClusterError) -> Bool {
        let node = nodeID
        let incarnation = self.incarnation
        let window = Self.livenessWindow.inSeconds
        let rows = try await database.query(
            """
            INSERT INTO tw_nodes (node_id, incarnation, started_at, last_seen, delivered_seq, stopped)
            VALUES (\(node), \(incarnation), clock_timestamp(), clock_timestamp(), 0, false)
            ON CONFLICT (node_id) DO UPDATE SET incarnation = excluded.incarnation, started_at = excluded.started_at,
                last_seen = excluded.last_seen, stopped = false
            WHERE tw_nodes.stopped OR tw_nodes.incarnation = excluded.incarnation
                OR tw_nodes.last_seen < clock_timestamp() - make_interval(secs => \(window))
            RETURNING node_id
            """, "registering node \(node)")
        return !rows.isEmpty
    }

    private func lastSeen() async throws(ClusterError) -> Double? {
        let node = nodeID
        let rows = try await database.query(
            "SELECT extract(epoch FROM last_seen)::float8 FROM tw_nodes WHERE node_id = \(node)", "reading node \(node)"
        )
        return try? rows.first?.decode(Double.self)
    }

    /// Records that this node is alive and how far it delivered.
    public func heartbeat(deliveredSeq: Int) async throws(ClusterError) {
        let node = nodeID
        let incarnation = self.incarnation
        _ = try await database.query(
            """
            UPDATE tw_nodes SET last_seen = clock_timestamp(), delivered_seq = \(deliveredSeq)
            WHERE node_id = \(node) AND incarnation = \(incarnation)
            """, "heartbeat of node \(node)", timeout: .seconds(2))
    }

    /// Marks this node stopped (a clean stop).
    public func deregister() async throws(ClusterError) {
        let node = nodeID
        let incarnation = self.incarnation
        _ = try await database.query(
            "UPDATE tw_nodes SET stopped = true WHERE node_id = \(node) AND incarnation = \(incarnation)",
            "deregistering node \(node)", timeout: .seconds(2))
    }

    /// Every node the cluster knows, by id.
    public func list() async throws(ClusterError) -> [ClusterNode] {
        let window = Self.livenessWindow.inSeconds
        let rows = try await database.query(
            """
            SELECT node_id, extract(epoch FROM last_seen)::float8, delivered_seq, stopped,
                (NOT stopped AND last_seen > clock_timestamp() - make_interval(secs => \(window)))
            FROM tw_nodes ORDER BY node_id
            """, "listing nodes")
        do {
            return try rows.map { row in
                let (id, seen, delivered, stopped, live) = try row.decode((String, Double, Int, Bool, Bool).self)
                return ClusterNode(
                    nodeID: id, lastSeen: Date(timeIntervalSince1970: seen), deliveredSeq: delivered, stopped: stopped,
                    live: live)
            }
        } catch {
            throw ClusterError(.database, "listing nodes: unexpected row (\(error))")
        }
    }
}
