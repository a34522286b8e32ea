import Foundation
import Logging
import Synchronization
import TradewireBus
import TradewireJSON

/// One daemon's membership in a cluster (PROTOCOL §13): it appends the bus's publishes to
/// the shared journal, delivers the journal to the bus in seq order, keeps its heartbeat
/// and delivery position in `tw_nodes`, and takes part in electing the leader.
public final class ClusterMember: Sendable {
    public let nodeID: String
    public let journal: ClusterJournal
    public let nodes: ClusterNodes
    public let elector: LeaderElector
    /// Calls handed to the leader (a follower's non-dry `run_pipeline`).
    public let calls: ClusterCalls
    /// The remote stage groups of every node.
    public let stageDirectory: ClusterStageDirectory
    /// Durable consumers shared by every node.
    public let consumers: ClusterConsumers
    private let logger: Logger
    private let state = Mutex(Snapshot())
    private let tailBox = Mutex<ClusterTail?>(nil)

    /// What `get_status.cluster` reports, refreshed by every heartbeat.
    struct Snapshot {
        var connected = false
        var newestSeq = 0
        var nodes: [ClusterNode] = []
    }

    public init(info: ClusterConnectionInfo, nodeID: String, logger: Logger) {
        self.nodeID = nodeID
        self.logger = logger
        let database = ClusterDatabase(info: info, logger: logger)
        self.journal = ClusterJournal(database: database, nodeID: nodeID, logger: logger)
        self.nodes = ClusterNodes(database: database, nodeID: nodeID)
        self.elector = LeaderElector(lease: ClusterLease(database: database, nodeID: nodeID), logger: logger)
        self.calls = ClusterCalls(database: database, nodeID: nodeID, logger: logger)
        self.stageDirectory = ClusterStageDirectory(database: database, nodeID: nodeID)
        self.consumers = ClusterConsumers(database: database, nodeID: nodeID)
    }

    /// Migrates the schema, registers this node (`.duplicateNode` when its id is live
    /// elsewhere) and returns the journal's newest seq: where this node's delivery starts.
    public func join() async throws(ClusterError) -> Int {
        try await journal.migrate()
        try await nodes.register()
        // What this node's previous run had out went to members that are gone: out again now.
        try await consumers.releaseAll()
        let newest = try await journal.newestSeq()
        state.withLock {
            $0.connected = true
            $0.newestSeq = newest
        }
        logger.notice("cluster.joined", metadata: ["node.id": "\(nodeID)", "journal.newest_seq": "\(newest)"])
        return newest
    }

    /// The epoch this node last led under (nil: it never led): a non-dry iteration's events
    /// are fenced with it, so an iteration that outlives its leadership cannot append.
    public var lastLedEpoch: Int? { lastLed.withLock { $0 } }
    private let lastLed = Mutex<Int?>(nil)

    /// The fence for a publish: pipeline iterations' events (metadata `iteration_id`, not a
    /// dry run) carry the epoch this node last led under; everything else none. A node that
    /// never led fences them with epoch 0, which never holds the lease.
    public func fence(type: String, metadata: JSONObject) -> Int? {
        guard metadata["iteration_id"] != nil, metadata["dry_run"]?.boolValue != true else { return nil }
        return lastLedEpoch ?? 0
    }

    /// Remembers the epoch this node leads under (call on every leadership change).
    func noteLeadership(_ leadership: Leadership) {
        if leadership.isLeader { lastLed.withLock { $0 = leadership.epoch } }
    }

    /// The bus's side of the shared journal.
    public func sequencer(giveUpAfter: Duration = .seconds(5)) -> any SequencingJournal {
        ClusterSequencer(journal: journal, giveUpAfter: giveUpAfter) { [weak self] in self?.tail?.wake() }
    }

    private var tail: ClusterTail? { tailBox.withLock { $0 } }

    /// Delivers the shared journal to `bus` after `afterSeq`, heartbeats and elects, until
    /// cancelled; then releases the lease (when held) and marks this node stopped.
    public func run(
        bus: EventBus, after afterSeq: Int, onLeadershipChange: @escaping @Sendable (Leadership) async -> Void
    ) async {
        let tail = ClusterTail(journal: journal, after: afterSeq, logger: logger)
        tailBox.withLock { $0 = tail }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await tail.run { records in
                    bus.deliverSequenced(
                        records.map { record in
                            SequencedDelivery(
                                event: Event(record: record.record), node: record.node, batchKey: record.batchKey,
                                index: record.indexInBatch)
                        })
                }
            }
            group.addTask {
                await self.elector.run { leadership in
                    self.noteLeadership(leadership)
                    await onLeadershipChange(leadership)
                }
            }
            group.addTask { await self.heartbeats(tail) }
            group.addTask { await self.calls.listen() }
            await group.next()
            group.cancelAll()
        }
        try? await nodes.deregister()
        journal.database.close()
    }

    private func heartbeats(_ tail: ClusterTail) async {
        while !Task.isCancelled {
            do {
                try await nodes.heartbeat(deliveredSeq: tail.deliveredSeq)
                let newest = try await journal.newestSeq()
                let listed = try await nodes.list()
                state.withLock {
                    $0.connected = true
                    $0.newestSeq = newest
                    $0.nodes = listed
                }
            } catch {
                let wasConnected = state.withLock { state in
                    defer { state.connected = false }
                    return state.connected
                }
                if wasConnected { logger.warning("cluster.disconnected", metadata: ["error": "\(error)"]) }
            }
            try? await Task.sleep(for: .seconds(2))
        }
    }

    /// False once a heartbeat failed, until one succeeds again (refreshed every 2 s).
    public var isConnected: Bool { state.withLock { $0.connected } }

    /// `get_status.cluster`.
    public var statusJSON: JSONValue {
        let leadership = elector.leadership
        let snapshot = state.withLock { $0 }
        let delivered = tail?.deliveredSeq ?? 0
        let nodes: [JSONValue] = snapshot.nodes.filter(\.live).map { node in
            [
                "node_id": JSONValue(node.nodeID), "leader": JSONValue(node.nodeID == leadership.leader),
                "last_seen": JSONValue(RFC3339.string(from: node.lastSeen)),
                "lag_events": JSONValue(max(0, snapshot.newestSeq - node.deliveredSeq)),
            ]
        }
        return [
            "node_id": JSONValue(nodeID),
            "leader": leadership.leader.map { JSONValue($0) } ?? .null,
            "epoch": JSONValue(leadership.epoch),
            "state": JSONValue(snapshot.connected ? "connected" : "disconnected"),
            "lag_events": JSONValue(max(0, snapshot.newestSeq - delivered)),
            "nodes": .array(nodes),
        ]
    }
}

/// Appends the bus's batches through the cluster journal from the bus's writer thread
/// (which may block): the async append runs as a task and the thread waits for it.
struct ClusterSequencer: SequencingJournal {
    let journal: ClusterJournal
    let giveUpAfter: Duration
    let committed: @Sendable () -> Void

    func append(_ events: [Event], batchKey: String, fence: Int?) throws {
        let drafts = events.map { event in
            EventDraft(
                type: event.type, timestamp: event.timestamp, data: Array(event.dataJSON),
                metadata: Array(event.metadataJSON), dataType: event.payload.jsonTypeName)
        }
        let result = Mutex<Result<AppendReceipt, ClusterError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let journal = self.journal
        Task {
            let outcome: Result<AppendReceipt, ClusterError>
            do throws(ClusterError) {
                outcome = .success(try await journal.append(drafts, batchKey: batchKey, epoch: fence))
            } catch {
                outcome = .failure(error)
            }
            result.withLock { $0 = outcome }
            done.signal()
        }
        done.wait()
        switch result.withLock({ $0 }) {
        case .success?: committed()
        case .failure(let error)? where error.kind == .fenced: throw SequencingRefusal(error.message)
        case .failure(let error)?: throw error
        case nil: throw ClusterError(.unavailable, "append: no result")
        }
    }
}
