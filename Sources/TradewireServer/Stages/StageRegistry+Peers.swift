import Foundation
import Synchronization
import TradewireJSON
import TradewirePipeline
import TradewireRPC

/// A stage group with members connected to another cluster node (PROTOCOL §13).
public struct PeerStageGroup: Sendable, Equatable {
    public var node: String
    public var stage: PipelineStage
    public var name: String
    public var mode: StageMode
    public var timeoutMilliseconds: Int
    public var onFailure: StageFailurePolicy
    public var durable: Bool
    /// Members connected there.
    public var members: Int
    /// The calls they take at once (the sum of their `concurrency`).
    public var concurrency: Int

    public init(
        node: String, stage: PipelineStage, name: String, mode: StageMode, timeoutMilliseconds: Int,
        onFailure: StageFailurePolicy, durable: Bool, members: Int, concurrency: Int
    ) {
        self.node = node
        self.stage = stage
        self.name = name
        self.mode = mode
        self.timeoutMilliseconds = timeoutMilliseconds
        self.onFailure = onFailure
        self.durable = durable
        self.members = members
        self.concurrency = concurrency
    }
}

/// Sends a stage call to a cluster node (`params` as ``StageRegistry/serveForwarded(params:remaining:)``
/// reads them) and returns the member's result, or why there is none.
public typealias PeerStageCaller =
    @Sendable (_ node: String, _ stage: PipelineStage, _ params: String, _ timeout: Duration) async -> Result<
        JSONValue, StageFailure
    >

/// Other nodes' members of one group, as this node knows them.
struct PeerGroup {
    struct Node {
        var node: String
        var members: Int
        var concurrency: Int
        var inFlight = 0
        var lastPicked = 0
    }

    var options: StageGroupOptions
    var nodes: [Node]
    var statistics = StageGroupStatistics()
    var members: Int { nodes.reduce(0) { $0 + $1.members } }
    var inFlight: Int { nodes.reduce(0) { $0 + $1.inFlight } }
}

extension StageRegistry {
    /// Makes this registry a cluster node's: calls go to other nodes' members through `caller`.
    public func setPeerCaller(_ caller: @escaping PeerStageCaller) {
        peerCaller.withLock { $0 = caller }
    }

    /// The groups of the other cluster nodes now (replacing what was known); calls in
    /// flight to them keep their counts.
    public func setPeerGroups(_ groups: [PeerStageGroup]) {
        state.withLock { state in
            var peers: [StageGroupKey: PeerGroup] = [:]
            for group in groups where group.members > 0 {
                let key = StageGroupKey(stage: group.stage, name: group.name)
                let options = StageGroupOptions(
                    mode: group.mode, timeoutMilliseconds: group.timeoutMilliseconds, onFailure: group.onFailure,
                    durable: group.durable)
                var node = PeerGroup.Node(node: group.node, members: group.members, concurrency: group.concurrency)
                if let known = state.peers[key]?.nodes.first(where: { $0.node == group.node }) {
                    node.inFlight = known.inFlight
                    node.lastPicked = known.lastPicked
                }
                var peer =
                    peers[key]
                    ?? PeerGroup(options: options, nodes: [], statistics: state.peers[key]?.statistics ?? .init())
                peer.nodes.append(node)
                peers[key] = peer
            }
            state.peers = peers
            state.peerOrder = state.peerOrder.filter { peers[$0] != nil }
            for key in peers.keys.sorted(by: { ($0.stage.rawValue, $0.name) < ($1.stage.rawValue, $1.name) })
            where !state.peerOrder.contains(key) {
                state.peerOrder.append(key)
            }
        }
    }

    /// This node's groups with members, for the other nodes: `(stage, name, options,
    /// members, concurrency)` in creation order.
    public func localGroupsForCluster() -> [PeerStageGroup] {
        state.withLock { state in
            state.order.compactMap { key -> PeerStageGroup? in
                guard let group = state.groups[key], !group.members.isEmpty else { return nil }
                return PeerStageGroup(
                    node: "", stage: key.stage, name: key.name, mode: group.options.mode,
                    timeoutMilliseconds: group.options.timeoutMilliseconds, onFailure: group.options.onFailure,
                    durable: group.options.durable, members: group.members.count,
                    concurrency: group.members.reduce(0) { $0 + $1.concurrency })
            }
        }
    }

    static func hasFreeSlot(_ group: Group?) -> Bool {
        group?.members.contains { $0.inFlight < $0.concurrency } ?? false
    }

    /// The peer node with the fewest calls in flight below its members' concurrency (ties
    /// in turn); with `evenIfBusy`, the least loaded one when none is below. Counts the call.
    static func pickPeer(_ key: StageGroupKey, in state: inout State, evenIfBusy: Bool) -> String? {
        guard var peer = state.peers[key], !peer.nodes.isEmpty else { return nil }
        let best = leastLoaded(
            peer.nodes.map { ($0.inFlight, $0.lastPicked, evenIfBusy || $0.inFlight < $0.concurrency) })
        guard let index = best else { return nil }
        state.picks += 1
        peer.nodes[index].inFlight += 1
        peer.nodes[index].lastPicked = state.picks
        state.peers[key] = peer
        return peer.nodes[index].node
    }

    /// A call to a peer node ended.
    func endPeer(_ key: StageGroupKey, node: String) {
        state.withLock { state in
            guard var peer = state.peers[key], let index = peer.nodes.firstIndex(where: { $0.node == node }) else {
                return
            }
            peer.nodes[index].inFlight = max(0, peer.nodes[index].inFlight - 1)
            state.peers[key] = peer
        }
    }

    // MARK: serving another node's call

    /// A stage call another cluster node sent (`{"stage", "name", "mode", "call": {…}}`),
    /// served by a member connected here (never passed on to a third node): the member's
    /// result, or `{"reason", "message"}` with `isError`.
    public func serveForwarded(params text: String, remaining: Duration) async -> (json: String, isError: Bool) {
        func failure(_ failure: StageFailure) -> (json: String, isError: Bool) {
            let json: JSONValue = ["reason": JSONValue(failure.reason.rawValue), "message": JSONValue(failure.message)]
            return (JSONWriter.string(json), true)
        }
        guard let params = try? JSONParser.parse(text), let stage = params["stage"]?.stringValue,
            let pipelineStage = PipelineStage(rawValue: stage), let name = params["name"]?.stringValue,
            let mode = params["mode"]?.stringValue, let call = params["call"]?.objectValue
        else {
            return failure(StageFailure(.malformed, "a forwarded stage call that does not read"))
        }
        let key = StageGroupKey(stage: pipelineStage, name: name)
        let deadline = ContinuousClock.now + remaining
        let result = await RemoteStageGroup.callLocalMember(
            registry: self, key: key, deadline: deadline, timeoutMilliseconds: nil, localOnly: true
        ) { id, registration in
            var fields: JSONObject = ["registration": JSONValue(registration), "name": JSONValue(name)]
            fields["mode"] = JSONValue(mode)
            for member in call { fields[member.key] = member.value }
            let request: JSONValue = [
                "jsonrpc": "2.0", "id": JSONValue(id), "method": "stage.handle", "params": .object(fields),
            ]
            return JSONWriter.encode(request)
        }
        switch result {
        case .success(let json): return (JSONWriter.string(json), false)
        case .failure(let error): return failure(error)
        }
    }
}
