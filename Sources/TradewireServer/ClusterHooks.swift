import TradewireBus
import TradewireJSON
import TradewireRPC

/// What a cluster node adds to the daemon (PROTOCOL §13). The server does not know the
/// cluster's backend: the daemon's entry point wires these to it.
public struct ClusterHooks: Sendable {
    /// `get_status.cluster`.
    public var status: @Sendable () -> JSONValue
    /// True when this node leads and its book is restored: it may trade.
    public var isLeader: @Sendable () -> Bool
    /// Hands a non-dry `run_pipeline` (its params as JSON text; `timeout` nil for the
    /// configured default) to the leader and returns the leader's answer: the result's JSON
    /// or the error it answered.
    public var handOff: @Sendable (_ params: String, _ timeout: Duration?) async -> Result<[UInt8], RPCError>

    /// Reads the shared journal for `get_event_history`: every node's events, also those
    /// from before this node started.
    public var history: @Sendable (JournalQuery) async -> Result<ClusterHistoryPage, RPCError>

    public init(
        status: @escaping @Sendable () -> JSONValue, isLeader: @escaping @Sendable () -> Bool,
        handOff: @escaping @Sendable (_ params: String, _ timeout: Duration?) async -> Result<[UInt8], RPCError>,
        history: @escaping @Sendable (JournalQuery) async -> Result<ClusterHistoryPage, RPCError>
    ) {
        self.status = status
        self.isLeader = isLeader
        self.handOff = handOff
        self.history = history
    }
}

/// Records of a cluster's shared journal, each with the node that accepted it.
public struct ClusterHistoryPage: Sendable {
    public var records: [(record: JournalRecord, node: String)]
    public var oldestSeq: Int?
    public var newestSeq: Int?

    public init(records: [(record: JournalRecord, node: String)], oldestSeq: Int?, newestSeq: Int?) {
        self.records = records
        self.oldestSeq = oldestSeq
        self.newestSeq = newestSeq
    }
}

extension Daemon {
    /// Runs a non-dry `run_pipeline` another cluster node handed to this one (the leader),
    /// under what is left of the caller's deadline: the result's JSON, or the error object's
    /// JSON (`isError`).
    public func runHandedOffPipeline(params: String, remaining: Duration) async -> (json: String, isError: Bool) {
        await DaemonMethods.runHandedOff(params: params, remaining: remaining, daemon: self)
    }
}
