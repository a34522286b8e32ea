import Foundation
import Logging
import Synchronization
import TradewireBus
import TradewireCluster
import TradewireJSON
import TradewirePipeline
import TradewireRPC
import TradewireServer
import TradewireTrading

/// A cluster node's daemon (PROTOCOL §13): only the leader trades. The loop runs while
/// this node leads and stops the moment it does not; a new leader trades once its book is
/// the shared journal's (``ready``), and then answers the calls only the leader answers
/// (`run_pipeline`, `set_trading_state`, `get_portfolio`) that other nodes hand it through
/// the database, and applies retention to the shared journal. Every node also serves stage
/// calls for its members from the other nodes.
final class ClusterWiring: Sendable {
    let member: ClusterMember
    let daemon: Daemon
    let tradingState: TradingStateController
    let startingCash: Money
    /// A handed-over `run_pipeline` without `timeout_ms` gets this deadline.
    let defaultTimeout: Duration
    let startLoop: Bool
    /// `--retain-events` and `--retain-days`, applied by the leader.
    let retention: JournalRetentionPolicy
    let logger: Logger
    /// The epoch whose book is restored (trading waits for it).
    private let ready = Mutex<Int?>(nil)
    /// The takeover in progress, then the serving of handed-over calls.
    private let leading = Mutex<Task<Void, Never>?>(nil)

    init(
        member: ClusterMember, daemon: Daemon, tradingState: TradingStateController, startingCash: Money,
        defaultTimeout: Duration, startLoop: Bool, retention: JournalRetentionPolicy, logger: Logger
    ) {
        self.member = member
        self.daemon = daemon
        self.tradingState = tradingState
        self.startingCash = startingCash
        self.defaultTimeout = defaultTimeout
        self.startLoop = startLoop
        self.retention = retention
        self.logger = logger
    }

    /// Makes the daemon a cluster node (before it serves its first request).
    func install() {
        daemon.setCluster(
            ClusterHooks(
                status: { [member] in member.statusJSON },
                isLeader: { [self] in mayTrade },
                handOff: { [self] method, params, timeout in
                    await handOff(method, params, timeout: timeout ?? defaultTimeout)
                },
                history: { [member] query in
                    // Known to be away: answer from this node's own history at once.
                    guard member.isConnected else {
                        return .failure(.clusterUnavailable("the last heartbeat failed"))
                    }
                    return await Self.history(member.journal, query)
                }, consumers: ClusterConsumerStore(consumers: member.consumers)))
        daemon.stages.setPeerCaller { [self] node, stage, params, timeout in
            await callStage(on: node, stage: stage, params: params, timeout: timeout)
        }
    }

    /// True while this node leads and its book is the shared journal's.
    var mayTrade: Bool {
        let leadership = member.elector.leadership
        return leadership.isLeader && ready.withLock { $0 } == leadership.epoch
    }

    /// Follows the cluster until cancelled: the shared journal and the election, the stage
    /// groups of every node, and the stage calls other nodes send to members connected here.
    func run(bus: EventBus, after start: Int) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await self.member.run(bus: bus, after: start) { leadership in await self.leadershipChanged(leadership) }
            }
            group.addTask { await self.syncStageGroups() }
            // An execution call is written to disk at every step (it may place orders: it must
            // never run twice); other stage calls may run again after a database crash (they
            // decide, they do not trade), so their rows need not wait for the disk.
            for (kind, durable) in [(Self.stageKind, true), (Self.fastStageKind, false)] {
                group.addTask {
                    let stages = self.daemon.stages
                    await self.member.calls.serve(kinds: [kind], epoch: 0, concurrency: 64, durable: durable) { call in
                        let answer = await stages.serveForwarded(params: call.params, remaining: call.remaining)
                        return ClusterCallReply(json: answer.json, isError: answer.isError)
                    }
                }
            }
            await group.next()
            group.cancelAll()
        }
        leading.withLock { $0 }?.cancel()
    }

    /// `tw_calls` kinds of stage calls: execution, and the other stages.
    static let stageKind = "stage"
    static let fastStageKind = "stage.fast"

    /// Publishes this node's stage groups (when they changed, and every 10 s) and learns the
    /// other nodes', twice a second.
    private func syncStageGroups() async {
        var published: [ClusterStageGroup]?
        var publishedAt = ContinuousClock.now
        var failing = false
        while !Task.isCancelled {
            let local = daemon.stages.localGroupsForCluster().enumerated().map { position, group in
                ClusterStageGroup(
                    nodeID: member.nodeID, stage: group.stage.rawValue, name: group.name, mode: group.mode.rawValue,
                    timeoutMilliseconds: group.timeoutMilliseconds, onFailure: group.onFailure.rawValue,
                    durable: group.durable, members: group.members, concurrency: group.concurrency, position: position)
            }
            do {
                if local != published || ContinuousClock.now - publishedAt > .seconds(10) {
                    try await member.stageDirectory.publish(local)
                    published = local
                    publishedAt = .now
                }
                let others = try await member.stageDirectory.others()
                daemon.stages.setPeerGroups(others.compactMap(Self.peerGroup))
                if failing { logger.notice("cluster.stages.syncing_again") }
                failing = false
            } catch {
                if !failing { logger.warning("cluster.stages.sync_failed", metadata: ["error": "\(error)"]) }
                failing = true
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    private static func peerGroup(_ group: ClusterStageGroup) -> PeerStageGroup? {
        guard let stage = PipelineStage(rawValue: group.stage), let mode = StageMode(rawValue: group.mode),
            let onFailure = StageFailurePolicy(rawValue: group.onFailure)
        else { return nil }
        return PeerStageGroup(
            node: group.nodeID, stage: stage, name: group.name, mode: mode,
            timeoutMilliseconds: group.timeoutMilliseconds, onFailure: onFailure, durable: group.durable,
            members: group.members, concurrency: group.concurrency)
    }

    /// A stage call for a member connected to `node`, through the database; the member's
    /// result, or why there is none.
    private func callStage(on node: String, stage: PipelineStage, params: String, timeout: Duration) async -> Result<
        JSONValue, StageFailure
    > {
        let durable = stage == .execution
        let reply: ClusterCallReply
        do {
            reply = try await member.calls.submit(
                kind: durable ? Self.stageKind : Self.fastStageKind, params: params, timeout: timeout, target: node,
                grace: .milliseconds(250), durable: durable)
        } catch {
            if error.kind == .timedOut {
                return .failure(StageFailure(.timeout, "node \(node) did not answer within the deadline"))
            }
            return .failure(StageFailure(.disconnected, "node \(node) cannot be reached: \(error.message)"))
        }
        guard let json = try? JSONParser.parse(reply.json) else {
            return .failure(StageFailure(.malformed, "node \(node) answered what does not read as JSON"))
        }
        guard reply.isError else { return .success(json) }
        let reason = json["reason"]?.stringValue.flatMap(StageFailureReason.init(rawValue:)) ?? .error
        return .failure(StageFailure(reason, "on node \(node): \(json["message"]?.stringValue ?? "failed")"))
    }

    private func leadershipChanged(_ leadership: Leadership) async {
        logger.notice(
            "cluster.leadership.changed",
            metadata: [
                "cluster.leader": "\(leadership.leader ?? "none")", "cluster.epoch": "\(leadership.epoch)",
                "cluster.is_leader": "\(leadership.isLeader)",
            ])
        guard leadership.isLeader else {
            leading.withLock { $0 }?.cancel()
            ready.withLock { $0 = nil }
            _ = await daemon.pipeline.loop.stop()
            return
        }
        guard ready.withLock({ $0 }) != leadership.epoch else { return }
        // The takeover runs beside the elector (a fold of a long journal takes seconds, and
        // the lease must go on being renewed meanwhile); losing the lead cancels it.
        let task = Task { await self.lead(leadership) }
        leading.withLock { $0 = task }
    }

    /// A new leader's work: restore the book, answer the calls its predecessor left
    /// unanswered, start the loop, then serve handed-over calls until the lead is lost.
    private func lead(_ leadership: Leadership) async {
        do {
            try await Self.takeOver(
                member.journal, daemon: daemon, tradingState: tradingState, startingCash: startingCash, logger: logger)
        } catch {
            // Without the book there is no trading: leader in name, trades refused.
            logger.error("cluster.takeover.failed", metadata: ["error": "\(error)"])
            return
        }
        guard !Task.isCancelled, member.elector.leadership == leadership else { return }
        // The takeover aborted the iterations of lost leaders; their callers hear so.
        let lost = RPCError.leaderLost(
            "the leader that took the call was lost before it answered (a run_pipeline's iteration was aborted: see iteration_aborted; a set_trading_state may or may not have been applied: see get_status)"
        )
        do {
            let failed = try await member.calls.failOrphans(
                kinds: Daemon.leaderMethods, before: leadership.epoch,
                reply: ClusterCallReply(json: JSONWriter.string(lost.json), isError: true))
            if failed > 0 { logger.notice("cluster.calls.orphans_answered", metadata: ["calls.count": "\(failed)"]) }
        } catch {
            logger.warning("cluster.calls.orphans_unanswered", metadata: ["error": "\(error)"])
        }
        ready.withLock { $0 = leadership.epoch }
        if startLoop { _ = await daemon.pipeline.loop.start() }
        let daemon = self.daemon
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.retain() }
            group.addTask {
                await self.member.calls.serve(kinds: Daemon.leaderMethods, epoch: leadership.epoch) { call in
                    let answer = await daemon.runHandedOff(
                        method: call.kind, params: call.params, remaining: call.remaining)
                    return ClusterCallReply(json: answer.json, isError: answer.isError)
                }
            }
        }
    }

    /// `get_event_history` on the shared journal.
    private static func history(_ journal: ClusterJournal, _ query: JournalQuery) async -> Result<
        ClusterHistoryPage, RPCError
    > {
        do {
            let records = try await journal.read(query)
            let bounds = try await journal.bounds()
            return .success(
                ClusterHistoryPage(
                    records: records.map { ($0.record, $0.node) }, oldestSeq: bounds.oldest, newestSeq: bounds.newest))
        } catch {
            return .failure(.clusterUnavailable(error.message))
        }
    }

    /// A call only the leader answers, handed to it; the leader's answer as this node's.
    private func handOff(_ method: String, _ params: String, timeout: Duration) async -> Result<[UInt8], RPCError> {
        let reply: ClusterCallReply
        do {
            reply = try await member.calls.submit(kind: method, params: params, timeout: timeout)
        } catch {
            switch error.kind {
            case .timedOut where method == "run_pipeline": return .failure(.handOffTimedOut(error.message))
            case .timedOut: return .failure(.notLeader("no leader answered \(method): \(error.message)"))
            case .overloaded: return .failure(.handOffOverloaded(error.message))
            default: return .failure(.clusterUnavailable(error.message))
            }
        }
        guard reply.isError else { return .success(Array(reply.json.utf8)) }
        guard let json = try? JSONParser.parse(reply.json), let error = RPCError(json: json) else {
            return .failure(.internalError("the leader's answer is not an error object: \(reply.json.prefix(200))"))
        }
        return .failure(error)
    }

    /// A new leader's book: the whole shared journal folded (oldest first) into the agents,
    /// the kill switch's state with it; iterations the old leader left open are aborted.
    static func takeOver(
        _ journal: ClusterJournal, daemon: Daemon, tradingState: TradingStateController, startingCash: Money,
        logger: Logger
    ) async throws {
        let started = ContinuousClock.now
        let folding = try await foldShared(journal, startingCash: startingCash)
        let fold = folding.fold
        let closes = folding.closes
        let held = Set(fold.ledger.positions.keys)
        let pipeline = daemon.pipeline
        let aborted = await PipelineRecovery.restore(
            fold, closes: closes.filter { held.contains($0.key) }, bus: pipeline.bus, agents: pipeline.agents,
            orchestrator: pipeline.orchestrator, loop: pipeline.loop, logger: logger)
        _ = tradingState.restore(recovered: fold.tradingState)
        logger.notice(
            "cluster.takeover.book_restored",
            metadata: [
                "recovery.as_of_seq": "\(fold.asOfSeq)", "recovery.orders": "\(fold.ledger.orders)",
                "recovery.aborted": "\(aborted.count)", "recovery.checkpoint_seq": "\(folding.checkpointSeq)",
                "recovery.seconds": "\((ContinuousClock.now - started).inSeconds)",
            ])
    }

    /// The shared journal folded from its book checkpoint (when one was saved) through
    /// `through` (everything when nil).
    static func foldShared(_ journal: ClusterJournal, startingCash: Money, through: Int? = nil) async throws
        -> SharedJournalFold
    {
        var folding = SharedJournalFold(startingCash: startingCash)
        if let bytes = try await journal.loadState(PipelineRecovery.checkpointKey) {
            let saved = try JournalFold(checkpoint: try JSONParser.parse(bytes))
            if through.map({ saved.asOfSeq <= $0 }) ?? true { folding.start(from: saved) }
        }
        while true {
            if Task.isCancelled { throw CancellationError() }
            let page = try await journal.read(after: folding.cursor, limit: 1000)
            let passed = folding.apply(page, through: through)
            if passed || page.count < 1000 { break }
        }
        return folding
    }

    /// The leader's retention (`--retain-events`, `--retain-days`) on the shared journal,
    /// every 5 s: a book checkpoint in `tw_state` (at most once a minute) covers what goes,
    /// then the events below it are deleted in batches. A takeover folds from the checkpoint.
    private func retain() async {
        var covered: Int?
        var checkpointedAt: ContinuousClock.Instant?
        if let bytes = try? await member.journal.loadState(PipelineRecovery.checkpointKey),
            let saved = try? JournalFold(checkpoint: try JSONParser.parse(bytes))
        {
            covered = saved.asOfSeq
        }
        let journal = member.journal
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(5))
            guard !Task.isCancelled else { return }
            let cutoff = Date().addingTimeInterval(-Double(retention.maximumDays) * 86_400)
            do {
                guard
                    let boundary = try await journal.pruneBoundary(
                        keepingAtMost: retention.maximumEvents, olderThan: cutoff)
                else { continue }
                if covered.map({ $0 < boundary - 1 }) ?? true,
                    checkpointedAt.map({ ContinuousClock.now - $0 >= .seconds(60) }) ?? true
                {
                    let folding = try await Self.foldShared(journal, startingCash: startingCash, through: boundary - 1)
                    try await journal.saveState(
                        PipelineRecovery.checkpointKey, JSONWriter.encode(folding.fold.checkpointJSON))
                    covered = folding.fold.asOfSeq
                    checkpointedAt = .now
                    logger.info(
                        "cluster.checkpoint.saved", metadata: ["journal.checkpoint_seq": "\(folding.fold.asOfSeq)"])
                }
                guard let covered else { continue }
                try await journal.prune(below: min(boundary, covered + 1))
            } catch {
                logger.error("cluster.retention.failed", metadata: ["error": "\(error)"])
            }
        }
    }

}

/// The fold of a cluster's shared journal, page by page (synchronous: the pages are read
/// by the caller).
struct SharedJournalFold {
    var fold: JournalFold
    var closes: [String: Double] = [:]
    var cursor = 0

    init(startingCash: Money) { fold = JournalFold(startingCash: startingCash) }

    /// The checkpoint's seq this fold started from (0: none).
    var checkpointSeq = 0

    /// Starts from a saved checkpoint instead of the beginning.
    mutating func start(from checkpoint: JournalFold) {
        fold = checkpoint
        checkpointSeq = checkpoint.asOfSeq
        cursor = checkpoint.asOfSeq
    }

    /// Folds a page, up to `through`; true once a record past it was met.
    mutating func apply(_ page: [ClusterRecord], through: Int? = nil) -> Bool {
        for record in page {
            if let through, record.record.seq > through { return true }
            fold.apply(record.record)
            PipelineRecovery.noteCloses(record.record, into: &closes)
            cursor = record.record.seq
        }
        return false
    }
}
