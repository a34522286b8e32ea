import DequeModule
import Logging
import Synchronization
import TradewireJSON
import TradewirePipeline
import TradewireRPC

/// The remote stage groups (PROTOCOL §9): who serves which stage, the calls in flight to
/// them, and their counters. The pipeline reads it as its ``StageHandlerSource``; the
/// connection handlers feed it replies and closed connections.
///
/// One lock guards everything here: stage calls are few compared with publishes, and each
/// operation under the lock is a few dictionary updates.
public final class StageRegistry: StageHandlerSource, Sendable {
    /// Stages a handler can serve.
    static let servable: [PipelineStage] = [.data, .strategy, .quant, .risk, .execution]
    /// Late-reply ids remembered (to count replies to cancelled calls).
    static let rememberedCancelledCalls = 4096
    /// Groups one stage may have (each `after` group is called in every iteration).
    static let maximumGroupsPerStage = 64
    /// Members one group may have.
    static let maximumMembersPerGroup = 1024

    struct Member {
        var registration: String
        var connection: ServerConnection
        var concurrency: Int
        var inFlight = 0
        var lastPicked = 0
    }

    struct Group {
        var key: StageGroupKey
        var options: StageGroupOptions
        var members: [Member] = []
        var statistics = StageGroupStatistics()
        var slotWaiters: [ObjectIdentifier: Rendezvous<SlotWake>] = [:]
    }

    struct PendingCall {
        var key: StageGroupKey
        var connectionID: Int
        var registration: String
        var answer: Rendezvous<StageCallAnswer>
    }

    struct State {
        var groups: [StageGroupKey: Group] = [:]
        /// Group keys in creation order (`after` groups run in this order).
        var order: [StageGroupKey] = []
        var nextRegistration = 1
        var nextCall = 1
        var picks = 0
        var pending: [String: PendingCall] = [:]
        var cancelled: [String: StageGroupKey] = [:]
        var cancelledOrder = Deque<String>()
        var strayReplies = 0
        /// Groups with members on other cluster nodes (``setPeerGroups(_:)``).
        var peers: [StageGroupKey: PeerGroup] = [:]
        /// Peer groups in the order they became known (those with no local group run after
        /// the local ones, in this order).
        var peerOrder: [StageGroupKey] = []
    }

    let state = Mutex(State())
    let logger: Logger
    /// How calls reach members on other cluster nodes (nil outside a cluster).
    let peerCaller = Mutex<PeerStageCaller?>(nil)

    public init(logger: Logger) {
        self.logger = logger
    }

    // MARK: the pipeline's view

    public func handlers(for stage: PipelineStage) -> StageHandlers {
        state.withLock { state in
            var handlers = StageHandlers()
            for (key, options) in Self.groupsInOrder(state) where key.stage == stage {
                let handler = RemoteStageGroup(registry: self, key: key, options: options)
                if options.mode == .replace {
                    if handlers.replace == nil { handlers.replace = handler }
                } else {
                    handlers.after.append(handler)
                }
            }
            return handlers
        }
    }

    /// Every group, this node's first (creation order), then those only other cluster nodes
    /// have (in the order they became known), with their options.
    static func groupsInOrder(_ state: State) -> [(StageGroupKey, StageGroupOptions)] {
        var groups: [(StageGroupKey, StageGroupOptions)] = []
        for key in state.order {
            if let group = state.groups[key] { groups.append((key, group.options)) }
        }
        for key in state.peerOrder where state.groups[key] == nil {
            if let peer = state.peers[key] { groups.append((key, peer.options)) }
        }
        return groups
    }

    // MARK: membership

    /// The first option given that differs from the group's (nil: none).
    static func mismatch(
        _ options: StageGroupOptions, mode: StageMode?, timeoutMilliseconds: Int?, onFailure: StageFailurePolicy?,
        durable: Bool?
    ) -> String? {
        let given: [(String, Bool)] = [
            ("mode", mode.map { $0 == options.mode } ?? true),
            ("timeout_ms", timeoutMilliseconds.map { $0 == options.timeoutMilliseconds } ?? true),
            ("on_failure", onFailure.map { $0 == options.onFailure } ?? true),
            ("durable", durable.map { $0 == options.durable } ?? true),
        ]
        return given.first { !$0.1 }?.0
    }

    /// Adds `connection` to the group (stage, name), creating it with `options` (each nil
    /// taking the group's value, or the default for a new group).
    func register(
        stage: PipelineStage, name: String, mode: StageMode?, timeoutMilliseconds: Int?,
        onFailure: StageFailurePolicy?, durable: Bool?, concurrency: Int, connection: ServerConnection
    ) throws(RPCError) -> StageRegistration {
        let key = StageGroupKey(stage: stage, name: name)
        let result: Result<StageRegistration, RPCError> = state.withLock { state in
            var group: Group
            // A group of the same name on another cluster node is the same group: its options.
            let peer = state.groups[key] == nil ? state.peers[key] : nil
            if let options = state.groups[key]?.options ?? peer?.options,
                let mismatch = Self.mismatch(
                    options, mode: mode, timeoutMilliseconds: timeoutMilliseconds, onFailure: onFailure,
                    durable: durable)
            {
                return .failure(
                    .invalidParams(
                        path: "/\(mismatch)",
                        "the group \(stage.rawValue)/\(name) already has a different \(mismatch)\(peer == nil ? "" : " (on another node)"); omit it to take the group's"
                    ))
            }
            if let existing = state.groups[key] {
                group = existing
                if let mine = existing.members.first(where: { $0.connection.id == connection.id }) {
                    return .failure(
                        .invalidParams(
                            path: "/name",
                            "this connection is already a member of \(stage.rawValue)/\(name) (registration \(mine.registration))"
                        ))
                }
                guard existing.members.count < Self.maximumMembersPerGroup else {
                    return .failure(
                        .invalidParams(
                            path: "/name",
                            "the group \(stage.rawValue)/\(name) already has \(Self.maximumMembersPerGroup) members"))
                }
            } else {
                let groups = state.order.filter { $0.stage == stage }.count
                guard groups < Self.maximumGroupsPerStage else {
                    return .failure(
                        .invalidParams(
                            path: "/stage",
                            "stage \(stage.rawValue) already has \(Self.maximumGroupsPerStage) groups; unregister one first"
                        ))
                }
                let options = StageGroupOptions(
                    mode: mode ?? peer?.options.mode ?? .after,
                    timeoutMilliseconds: timeoutMilliseconds ?? peer?.options.timeoutMilliseconds ?? 5000,
                    onFailure: onFailure ?? peer?.options.onFailure ?? .defaultPolicy(for: stage),
                    durable: durable ?? peer?.options.durable ?? false)
                if stage == .risk && options.mode == .replace {
                    return .failure(
                        .invalidParams(path: "/mode", "risk cannot be replaced: the built-in risk agent always runs"))
                }
                if options.onFailure == .fallback && options.mode != .replace {
                    return .failure(.invalidParams(path: "/on_failure", "fallback is for replace groups only"))
                }
                // One replace group per stage in the whole cluster (as far as this node knows:
                // the other nodes' groups are learnt twice a second).
                if options.mode == .replace,
                    let other = state.groups.values.first(where: {
                        $0.key.stage == stage && $0.options.mode == .replace
                    })?.key
                        ?? state.peers.first(where: {
                            $0.key.stage == stage && $0.key != key && $0.value.options.mode == .replace
                        })?.key
                {
                    return .failure(.stageConflict(stage: stage.rawValue, existing: other.name))
                }
                group = Group(key: key, options: options)
                state.order.append(key)
            }
            let registration = "r-\(state.nextRegistration)"
            state.nextRegistration += 1
            group.members.append(Member(registration: registration, connection: connection, concurrency: concurrency))
            let waiters = group.slotWaiters
            group.slotWaiters = [:]
            state.groups[key] = group
            for waiter in waiters.values { waiter.resolve(.changed) }
            return .success(
                StageRegistration(
                    registration: registration, key: key, options: group.options, members: group.members.count))
        }
        let registration = try result.get()
        logger.info(
            "stage.member.registered",
            metadata: [
                "stage": "\(stage.rawValue)", "handler.name": "\(name)", "registration": "\(registration.registration)",
                "connection": "\(connection.id)", "members": "\(registration.members)",
            ])
        return registration
    }

    /// The durable groups, in creation order, as a state document: `[{"stage", "name", "mode",
    /// "timeout_ms", "on_failure"}]` (PROTOCOL §14: they survive a restart, without members).
    public func durableGroupsJSON() -> JSONValue {
        state.withLock { state in
            .array(
                state.order.compactMap { key -> JSONValue? in
                    guard let group = state.groups[key], group.options.durable else { return nil }
                    return [
                        "stage": JSONValue(key.stage.rawValue), "name": JSONValue(key.name),
                        "mode": JSONValue(group.options.mode.rawValue),
                        "timeout_ms": JSONValue(group.options.timeoutMilliseconds),
                        "on_failure": JSONValue(group.options.onFailure.rawValue),
                    ]
                })
        }
    }

    /// Recreates the durable groups of ``durableGroupsJSON()`` without members (at start);
    /// entries that do not read back are skipped and logged. Returns how many were restored.
    @discardableResult
    public func restoreDurableGroups(_ json: JSONValue) -> Int {
        var restored = 0
        for (index, item) in (json.arrayValue ?? []).enumerated() {
            guard let stage = item["stage"]?.stringValue.flatMap(PipelineStage.init(rawValue:)),
                Self.servable.contains(stage), let name = item["name"]?.stringValue,
                let mode = item["mode"]?.stringValue.flatMap(StageMode.init(rawValue:)),
                let timeout = item["timeout_ms"]?.intValue, timeout > 0,
                let onFailure = item["on_failure"]?.stringValue.flatMap(StageFailurePolicy.init(rawValue:))
            else {
                logger.warning("stage.durable.unreadable", metadata: ["index": "\(index)"])
                continue
            }
            let key = StageGroupKey(stage: stage, name: name)
            let options = StageGroupOptions(
                mode: mode, timeoutMilliseconds: timeout, onFailure: onFailure, durable: true)
            let added = state.withLock { state -> Bool in
                guard state.groups[key] == nil else { return false }
                state.groups[key] = Group(key: key, options: options)
                state.order.append(key)
                return true
            }
            if added {
                restored += 1
                logger.info(
                    "stage.durable.restored", metadata: ["stage": "\(stage.rawValue)", "handler.name": "\(name)"])
            }
        }
        return restored
    }

    /// Removes one membership of `connectionID`'s; 0 when it names none of its own.
    func unregister(registration: String, connectionID: Int) -> Int {
        state.withLock { state in
            for (key, var group) in state.groups {
                guard let index = group.members.firstIndex(where: { $0.registration == registration }),
                    group.members[index].connection.id == connectionID
                else { continue }
                group.members.remove(at: index)
                Self.store(group, key: key, in: &state)
                return 1
            }
            return 0
        }
    }

    /// Removes a whole group, durable or not; its members' calls in flight still finish.
    func unregister(stage: PipelineStage, name: String) -> Int {
        state.withLock { state in
            let key = StageGroupKey(stage: stage, name: name)
            guard let group = state.groups.removeValue(forKey: key) else { return 0 }
            state.order.removeAll { $0 == key }
            for waiter in group.slotWaiters.values { waiter.resolve(.changed) }
            return 1
        }
    }

    /// A connection closed: its memberships go, and each call in flight to it is handed to
    /// another member (or fails `disconnected`).
    func connectionClosed(_ connectionID: Int) {
        let orphans: [Rendezvous<StageCallAnswer>] = state.withLock { state in
            for (key, var group) in state.groups
            where group.members.contains(where: { $0.connection.id == connectionID }) {
                group.members.removeAll { $0.connection.id == connectionID }
                Self.store(group, key: key, in: &state)
            }
            return state.pending.values.filter { $0.connectionID == connectionID }.map(\.answer)
        }
        for answer in orphans { answer.resolve(.disconnected) }
    }

    /// Stores `group` back, or removes it when it has no member and is not durable; wakes
    /// calls waiting for a slot either way.
    private static func store(_ group: Group, key: StageGroupKey, in state: inout State) {
        var group = group
        let waiters = group.slotWaiters
        group.slotWaiters = [:]
        if group.members.isEmpty && !group.options.durable {
            state.groups[key] = nil
            state.order.removeAll { $0 == key }
        } else {
            state.groups[key] = group
        }
        for waiter in waiters.values { waiter.resolve(.changed) }
    }

    // MARK: replies

    /// A reply a connection sent: it completes its call, or is counted as late or stray.
    func receive(_ reply: RPCReply, from connectionID: Int) {
        let answer: Rendezvous<StageCallAnswer>? = state.withLock { state in
            guard case .string(let id) = reply.id else {
                state.strayReplies += 1
                return nil
            }
            if let call = state.pending[id], call.connectionID == connectionID { return call.answer }
            if let key = state.cancelled.removeValue(forKey: id) {
                state.groups[key]?.statistics.lateReplies += 1
            } else {
                state.strayReplies += 1
            }
            return nil
        }
        if let answer {
            answer.resolve(.reply(reply.outcome))
        } else {
            logger.debug("stage.reply.dropped", metadata: ["connection": "\(connectionID)", "reply.id": "\(reply.id)"])
        }
    }

    /// A connection sent a line over the message limit: when it has exactly one call in
    /// flight, that call's reply was it.
    func oversizedLine(from connectionID: Int, limit: Int) {
        let answer: Rendezvous<StageCallAnswer>? = state.withLock { state in
            let calls = state.pending.values.filter { $0.connectionID == connectionID }
            return calls.count == 1 ? calls[0].answer : nil
        }
        answer?.resolve(.tooLarge(limit: limit))
    }

    /// Replies that matched no call and no cancelled call.
    var strayReplies: Int { state.withLock { $0.strayReplies } }

    // MARK: calls

    enum Acquired {
        case member(registration: String, connection: ServerConnection)
        /// A member on another cluster node (release with ``endPeer(_:node:)``).
        case peer(node: String)
        case busy(Rendezvous<SlotWake>)
        case noMember
    }

    /// Takes a slot on the member with the fewest calls in flight below its concurrency
    /// (ties in turn), or a waiter for the next change. Unless `localOnly`, a group whose
    /// members here are all busy (or absent) sends the call to another cluster node with
    /// members of it.
    func acquire(_ key: StageGroupKey, localOnly: Bool = false) -> Acquired {
        state.withLock { state in
            if !localOnly && !Self.hasFreeSlot(state.groups[key]) {
                let local = state.groups[key].map { !$0.members.isEmpty } ?? false
                if let node = Self.pickPeer(key, in: &state, evenIfBusy: !local) { return .peer(node: node) }
            }
            guard var group = state.groups[key], !group.members.isEmpty else { return .noMember }
            let best = Self.leastLoaded(
                group.members.map { ($0.inFlight, $0.lastPicked, $0.inFlight < $0.concurrency) })
            guard let index = best else {
                let waiter = Rendezvous<SlotWake>()
                group.slotWaiters[ObjectIdentifier(waiter)] = waiter
                state.groups[key] = group
                return .busy(waiter)
            }
            state.picks += 1
            group.members[index].inFlight += 1
            group.members[index].lastPicked = state.picks
            state.groups[key] = group
            return .member(registration: group.members[index].registration, connection: group.members[index].connection)
        }
    }

    /// The index of the entry with the fewest calls in flight among the eligible ones, a tie
    /// going to the one picked longest ago.
    static func leastLoaded(_ entries: [(inFlight: Int, lastPicked: Int, eligible: Bool)]) -> Int? {
        var best: Int?
        for (index, entry) in entries.enumerated() where entry.eligible {
            if let b = best {
                let current = entries[b]
                if entry.inFlight < current.inFlight
                    || (entry.inFlight == current.inFlight && entry.lastPicked < current.lastPicked)
                {
                    best = index
                }
            } else {
                best = index
            }
        }
        return best
    }

    func forget(_ waiter: Rendezvous<SlotWake>, in key: StageGroupKey) {
        state.withLock { _ = $0.groups[key]?.slotWaiters.removeValue(forKey: ObjectIdentifier(waiter)) }
    }

    /// Registers a call about to be sent; returns its id (`c-N`). When the member left
    /// since it was chosen, the call is answered `disconnected` at once.
    func begin(
        _ key: StageGroupKey, registration: String, connectionID: Int, answer: Rendezvous<StageCallAnswer>
    ) -> String {
        let (id, gone) = state.withLock { state in
            let id = "c-\(state.nextCall)"
            state.nextCall += 1
            state.pending[id] = PendingCall(
                key: key, connectionID: connectionID, registration: registration, answer: answer)
            let present = state.groups[key]?.members.contains { $0.connection.id == connectionID } ?? false
            return (id, !present)
        }
        if gone { answer.resolve(.disconnected) }
        return id
    }

    /// A call's wait ended: its slot is free again; a cancelled one is remembered so that
    /// its late reply is counted.
    func end(_ id: String, _ key: StageGroupKey, registration: String, cancelled: Bool) {
        state.withLock { state in
            state.pending[id] = nil
            if cancelled {
                state.cancelled[id] = key
                state.cancelledOrder.append(id)
                if state.cancelledOrder.count > Self.rememberedCancelledCalls,
                    let oldest = state.cancelledOrder.popFirst()
                {
                    state.cancelled[oldest] = nil
                }
            }
            guard var group = state.groups[key] else { return }
            if let index = group.members.firstIndex(where: { $0.registration == registration }) {
                group.members[index].inFlight -= 1
            }
            let waiters = group.slotWaiters
            group.slotWaiters = [:]
            state.groups[key] = group
            for waiter in waiters.values { waiter.resolve(.changed) }
        }
    }

    /// Counts a finished call.
    func record(_ key: StageGroupKey, milliseconds: Double, failure: StageFailure?) {
        state.withLock { state in
            if var group = state.groups[key] {
                group.statistics.count(milliseconds: milliseconds, failure: failure)
                state.groups[key] = group
            } else if var peer = state.peers[key] {
                peer.statistics.count(milliseconds: milliseconds, failure: failure)
                state.peers[key] = peer
            }
        }
    }

    // MARK: status

    /// `stages` of get_status: every servable stage, each with its groups in order; members
    /// and calls in flight count those on other cluster nodes too.
    func status() -> JSONValue {
        state.withLock { state in
            var byStage = JSONObject()
            for stage in Self.servable {
                var groups: [JSONValue] = []
                for (key, options) in Self.groupsInOrder(state) where key.stage == stage {
                    let group = state.groups[key]
                    let peer = state.peers[key]
                    let stats = group?.statistics ?? peer?.statistics ?? StageGroupStatistics()
                    let members = (group?.members.count ?? 0) + (peer?.members ?? 0)
                    let inFlight = (group?.members.reduce(0) { $0 + $1.inFlight } ?? 0) + (peer?.inFlight ?? 0)
                    groups.append([
                        "name": JSONValue(key.name), "mode": JSONValue(options.mode.rawValue),
                        "timeout_ms": JSONValue(options.timeoutMilliseconds),
                        "on_failure": JSONValue(options.onFailure.rawValue),
                        "durable": JSONValue(options.durable), "members": JSONValue(members),
                        "in_flight": JSONValue(inFlight),
                        "calls": JSONValue(stats.calls), "failures": JSONValue(stats.failures),
                        "timeouts": JSONValue(stats.timeouts), "late_replies": JSONValue(stats.lateReplies),
                        "p50_ms": stats.percentile(0.5).map { JSONValue($0) } ?? .null,
                        "p99_ms": stats.percentile(0.99).map { JSONValue($0) } ?? .null,
                    ])
                }
                byStage[stage.rawValue] = .array(groups)
            }
            return .object(byStage)
        }
    }
}
