import TradewireBus
import TradewireCluster
import TradewireJSON
import TradewireRPC
import TradewireServer

/// The cluster's consumer tables as the server's ``SharedConsumerStore``: each call is one
/// of ``ClusterConsumers``', its failure the JSON-RPC error a client gets (-32003 while the
/// database cannot be reached).
struct ClusterConsumerStore: SharedConsumerStore {
    let consumers: ClusterConsumers

    func open(_ settings: ConsumerSettings, since: Int?) async throws(RPCError) -> (
        settings: ConsumerSettings, created: Bool
    ) {
        try await mapped { () async throws(ClusterError) in try await consumers.open(settings, since: since) }
    }

    func claim(_ consumer: String, limit: Int) async throws(RPCError) -> [ClaimedEvent]? {
        do {
            return try await consumers.claim(consumer, limit: limit)
        } catch  where error.kind == .notFound {
            return nil
        } catch {
            throw Self.rpcError(error)
        }
    }

    func release(_ consumer: String, seqs: [Int], undelivered: Bool) async throws(RPCError) {
        try await mapped { () async throws(ClusterError) in
            try await consumers.release(consumer, seqs: seqs, undelivered: undelivered)
        }
    }

    func releaseAll() async throws(RPCError) {
        try await mapped { () async throws(ClusterError) in try await consumers.releaseAll() }
    }

    func ack(_ consumer: String, seq: Int) async throws(RPCError) -> Int {
        try await mapped { () async throws(ClusterError) in try await consumers.ack(consumer, seq: seq) }
    }

    func ack(_ consumer: String, seqs: [Int]) async throws(RPCError) -> Int {
        try await mapped { () async throws(ClusterError) in try await consumers.ack(consumer, seqs: seqs) }
    }

    func nak(_ consumer: String, seq: Int, delay: Duration, error: String?) async throws(RPCError) -> Bool {
        try await mapped { () async throws(ClusterError) in
            try await consumers.nak(consumer, seq: seq, delay: delay, error: error)
        }
    }

    func bury(_ consumer: String, seqs: [Int], error: String) async throws(RPCError) {
        try await mapped { () async throws(ClusterError) in try await consumers.bury(consumer, seqs: seqs, error: error)
        }
    }

    func publishMembers(_ counts: [String: Int]) async throws(RPCError) {
        try await mapped { () async throws(ClusterError) in try await consumers.publishMembers(counts) }
    }

    func list() async throws(RPCError) -> [ConsumerSummary] {
        try await mapped { () async throws(ClusterError) in try await consumers.list() }
    }

    func delete(_ consumer: String) async throws(RPCError) -> Int {
        try await mapped { () async throws(ClusterError) in try await consumers.delete(consumer) }
    }

    func deadLetters(consumer: String?, limit: Int) async throws(RPCError) -> [DeadLetter] {
        try await mapped { () async throws(ClusterError) in
            try await consumers.deadLetters(consumer: consumer, limit: limit)
        }
    }

    func retry(deadLetter id: Int) async throws(RPCError) -> Bool {
        try await mapped { () async throws(ClusterError) in try await consumers.retry(deadLetter: id) }
    }

    func discard(deadLetter id: Int) async throws(RPCError) -> Int {
        try await mapped { () async throws(ClusterError) in try await consumers.discard(deadLetter: id) }
    }

    private func mapped<T>(_ body: () async throws(ClusterError) -> T) async throws(RPCError) -> T {
        do { return try await body() } catch { throw Self.rpcError(error) }
    }

    static func rpcError(_ error: ClusterError) -> RPCError {
        switch error.kind {
        case .unavailable: .clusterUnavailable(error.message)
        case .overloaded:
            RPCError(
                code: -32001, message: error.message, type: "overloaded",
                details: ["max_consumers": JSONValue(ClusterConsumers.maximumConsumers)])
        default: .internalError(error.message)
        }
    }
}
