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
    /// Hands a call only the leader answers (a non-dry `run_pipeline`, `set_trading_state`,
    /// `get_portfolio`: its method and params as JSON text; `timeout` nil for the configured
    /// iteration deadline) to the leader and returns the leader's answer: the result's JSON or
    /// the error it answered.
    public var handOff:
        @Sendable (_ method: String, _ params: String, _ timeout: Duration?) async -> Result<[UInt8], RPCError>

    /// Reads the shared journal for `get_event_history`: every node's events, also those
    /// from before this node started.
    public var history: @Sendable (JournalQuery) async -> Result<ClusterHistoryPage, RPCError>

    /// Where the cluster keeps its durable consumers (nil: each node keeps its own).
    public var consumers: (any SharedConsumerStore)?

    public init(
        status: @escaping @Sendable () -> JSONValue, isLeader: @escaping @Sendable () -> Bool,
        handOff:
            @escaping @Sendable (_ method: String, _ params: String, _ timeout: Duration?) async -> Result<
                [UInt8], RPCError
            >,
        history: @escaping @Sendable (JournalQuery) async -> Result<ClusterHistoryPage, RPCError>,
        consumers: (any SharedConsumerStore)? = nil
    ) {
        self.status = status
        self.isLeader = isLeader
        self.handOff = handOff
        self.history = history
        self.consumers = consumers
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
    /// Methods a node that does not lead hands to the leader.
    public static let leaderMethods = ["run_pipeline", "set_trading_state", "get_portfolio"]

    /// How long a handed-over `set_trading_state` or `get_portfolio` waits for the leader.
    static let leaderCallTimeout: Duration = .seconds(10)

    /// Answers a call another cluster node handed to this one (the leader), under what is
    /// left of the caller's deadline: the result's JSON, or the error object's JSON
    /// (`isError`).
    public func runHandedOff(method: String, params: String, remaining: Duration) async -> (
        json: String, isError: Bool
    ) {
        guard mayTrade else {
            return (
                JSONWriter.string(RPCError.notLeader("it lost the lead before answering the handed-over call").json),
                true
            )
        }
        switch method {
        case "run_pipeline":
            return await DaemonMethods.runHandedOff(params: params, remaining: remaining, daemon: self)
        case "set_trading_state":
            return await TradingStateMethods.runHandedOff(params: params, daemon: self)
        case "get_portfolio":
            return (JSONWriter.string(await PortfolioMethods.portfolio(pipeline)), false)
        default:
            return (JSONWriter.string(RPCError.methodNotFound(method).json), true)
        }
    }

    /// Parses handed-over params (a JSON object) as `P`.
    static func handedOverParams<P: MethodParameters>(_ text: String, as: P.Type) throws(RPCError) -> P {
        guard case .object(let object)? = try? JSONParser.parse(text) else {
            throw .invalidParams(path: "", "handed-over params are not a JSON object")
        }
        return try P(from: ParamReader(object))
    }
}
