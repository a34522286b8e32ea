import CoreMetrics
import Foundation
import Logging
import TradewireBus
import TradewireJSON
import TradewirePipeline
import TradewireRPC
import TradewireTrading

#if canImport(Glibc)
    import Glibc
#endif

/// Binds every method of PROTOCOL §5 to the bus and the pipeline. Handlers return their
/// result; the connection writes it (inside a batch, into the batch array).
enum DaemonMethods {
    private static let object: JSONValue = ["type": "object"]
    /// A result schema: an object with these required keys.
    static func objectWith(_ keys: [String]) -> JSONValue {
        ["type": "object", "required": .array(keys.map { JSONValue($0) })]
    }

    static func register(into registry: inout MethodRegistry<RequestContext>) {
        registry.register(
            "subscribe", summary: "Receive events whose type matches a pattern (* and ?) as `event` notifications.",
            params: SubscribeParams.self, result: objectWith(["subscription", "event_type"]), handler: subscribe)
        registry.register(
            "unsubscribe", summary: "Remove this connection's subscription by id, or all with exactly this pattern.",
            params: UnsubscribeParams.self, result: objectWith(["removed"]), handler: unsubscribe)
        registry.register(
            "publish", summary: "Publish an event; pipeline event types start a new iteration from that stage.",
            params: PublishParams.self, result: objectWith(["seq", "event_type", "timestamp", "subscribers"]),
            handler: publish)
        registry.register(
            "run_pipeline", summary: "Run one iteration: data, strategy, quant, risk, execution, audit.",
            params: RunPipelineParams.self,
            result: objectWith([
                "iteration", "iteration_id", "symbols", "duration_seconds", "market_data", "signals",
                "validated_signals", "approved_signals", "rejected_signals", "execution_results", "audit_report",
                "errors", "handlers", "dry_run",
            ]), handler: runPipeline)
        registry.register(
            "get_stats", summary: "Bus and pipeline counters.", params: NoParameters.self,
            result: objectWith([
                "total_event_types", "total_subscribers", "event_types", "total_events_published", "events_published",
                "events_delivered", "events_dropped", "handler_errors", "published_by_type", "connections",
                "history_size", "history_capacity", "uptime_seconds", "pipeline",
            ]), handler: getStats)
        registry.register(
            "get_event_history", summary: "Recorded events, oldest first: filter, then keep the last `limit`.",
            params: GetEventHistoryParams.self, result: objectWith(["events", "oldest_seq", "newest_seq", "capacity"]),
            handler: getEventHistory)
        registry.register(
            "start_loop", summary: "Start the continuous loop (or update its interval and symbols).",
            params: StartLoopParams.self, result: objectWith(["running", "interval_seconds"]), handler: startLoop)
        registry.register(
            "stop_loop", summary: "Stop the loop; an iteration in flight finishes first.", params: NoParameters.self,
            result: objectWith(["running", "iterations"]), handler: stopLoop)
        registry.register(
            "get_status", summary: "Version, pid, socket, mode, uptime, loop state and stage groups.",
            params: NoParameters.self,
            result: objectWith([
                "version", "api_level", "pid", "socket", "mode", "uptime_seconds", "loop", "stages", "trading_state",
            ]),
            handler: getStatus)
        registry.register(
            "ping", summary: "Liveness check.", params: NoParameters.self, result: objectWith(["pong"])
        ) { _, _ in .success(pong) }
        registry.register(
            "rpc.discover", summary: "This OpenRPC document.", params: NoParameters.self,
            result: objectWith(["openrpc", "info", "methods"])
        ) { _, context in .success(context.daemon.discoverDocument) }
        registry.register(
            "shutdown", summary: "Reply, notify every connection, then stop gracefully.", params: NoParameters.self,
            result: objectWith(["ok"]), handler: shutdown)
    }

    private static let pong: [UInt8] = Array(#"{"pong":true}"#.utf8)

    /// `since_seq` may not be ahead of the newest event (a client that resumes from a seq this
    /// daemon never issued is talking to a daemon that restarted).
    private static func checkSinceSeq(_ value: Int?, _ bus: EventBus) throws(RPCError) {
        guard let value else { return }
        let newest = bus.lastSeq
        guard value <= newest else {
            throw .invalidParams(path: "/since_seq", "since_seq is ahead of the newest event (\(newest))")
        }
    }

    // MARK: subscribe / unsubscribe

    /// Acknowledges first, then goes live: the subscription is created (and its replay
    /// queued) right after the ack is queued, so the ack always precedes its first event.
    static func subscribe(_ params: SubscribeParams, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let bus = context.daemon.bus
        try checkSinceSeq(params.sinceSeq, bus)
        if let name = params.consumer { return try ConsumerMethods.subscribe(params, name: name, context) }
        let connection = context.connection
        let text = params.text
        let ack: @Sendable (SubscriptionID) -> [UInt8] = { id in
            JSONWriter.encode(["subscription": JSONValue(id.description), "event_type": JSONValue(text)] as JSONValue)
        }
        // Subscribing twice is a no-op, also before the first one went live (in one batch).
        if let existing = bus.subscription(owner: connection.owner, pattern: params.pattern)
            ?? connection.pendingSubscription(params.pattern.text)
        {
            return .success(ack(existing))
        }
        let id = bus.reserveSubscriptionID()
        connection.setPendingSubscription(params.pattern.text, id)
        let pattern = params.pattern
        let since = params.sinceSeq
        let journal = context.daemon.pipeline.journal
        let outbox = connection.outbox
        let prefix = Outbox.EventPrefix(id)
        let deliver: @Sendable (Event) -> Void = { event in outbox.enqueue(event: event, prefix: prefix) }
        let onGap: @Sendable (SubscriptionID, ReplayGap) -> Void = { id, gap in
            outbox.enqueueGap(id, firstSeq: gap.firstSeq, lastSeq: gap.lastSeq)
        }
        // A cluster node replays what its ring no longer holds from the shared journal.
        if let readShared = context.daemon.clusterHistory, let plan = bus.journalReplayPlan(pattern, after: since) {
            return .deferredThen {
                let read = await Daemon.replayRead(plan, from: readShared)
                return .success(
                    (
                        ack(id),
                        {
                            connection.setPendingSubscription(pattern.text, nil)
                            bus.subscribe(
                                pattern, owner: connection.owner, replayingAfter: since, journalRead: read, id: id,
                                deliver: deliver, onGap: onGap)
                        }
                    ))
            }
        }
        return .successThen(ack(id)) {
            connection.setPendingSubscription(pattern.text, nil)
            bus.subscribe(
                pattern, owner: connection.owner, replayingAfter: since, from: journal, id: id, deliver: deliver,
                onGap: onGap)
        }
    }

    static func unsubscribe(_ params: UnsubscribeParams, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let bus = context.daemon.bus
        let owner = context.connection.owner
        let removed: Int
        switch params.target {
        case .subscription(let id):
            // An id that matches nothing, well-formed or not, removes nothing (not an error).
            // A consumer's subscription leaves the consumer (which keeps its position).
            removed =
                SubscriptionID(id).map { id in
                    bus.unsubscribe(id, owner: owner)
                        || context.daemon.consumers.leave(subscription: id, connectionID: context.connection.id)
                        || context.daemon.sharedConsumers?.leave(subscription: id, connectionID: context.connection.id)
                            == true
                        ? 1 : 0
                } ?? 0
        case .pattern(let type):
            removed = bus.unsubscribe(pattern: type, owner: owner)
        }
        return .result(["removed": JSONValue(removed)] as JSONValue)
    }

    // MARK: publish

    /// `tradewire_publish_seconds`: from a publish request to its receipt. Created on first
    /// use, after the executable bootstrapped its metrics system (a no-op without `--http`).
    static let publishSeconds = CoreMetrics.Timer(label: MetricName.publishSeconds)

    static func publish(_ params: PublishParams, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        switch try publishAnswer(params, context) {
        case .receipt(let published): .success(receiptBytes(published))
        case .afterDispatch(let published, let stopwatch):
            .later { complete in
                whenSettled(published, stopwatch) { settled in
                    complete(settled.map { receiptBytes(published) })
                }
            }
        case .outcome(let outcome): outcome
        }
    }

    /// How a publish is answered: a receipt now or once its event is delivered, or a method
    /// outcome (a client-started iteration).
    enum PublishAnswer {
        /// Delivered, with nothing to await: the receipt is due now (a connection writes it
        /// from the event when it drains: ``Outbox/enqueue(receipt:event:subscribers:)``).
        case receipt(PublishedEvent)
        /// Waiting for its journal batch: answered through ``whenSettled(_:_:_:)``.
        case afterDispatch(PublishedEvent, MetricsStopwatch)
        case outcome(MethodOutcome)
    }

    /// Calls `settled` once a publish that waited for its journal batch may be answered:
    /// delivered and its in-process handlers finished (success: its receipt is due), or not
    /// stored (a sequencing journal out of reach). Runs on the journal's writer thread (or
    /// the cluster tail's), or in a task when async handlers matched.
    static func whenSettled(
        _ published: PublishedEvent, _ stopwatch: MetricsStopwatch,
        _ settled: @escaping @Sendable (Result<Void, RPCError>) -> Void
    ) {
        published.whenDispatched { hasPendingHandlers in
            if let failure = published.failure {
                settled(.failure(.clusterUnavailable(failure)))
                return
            }
            guard hasPendingHandlers else {
                stopwatch.record(into: publishSeconds)
                settled(.success(()))
                return
            }
            Task {
                await published.handlersFinished()
                stopwatch.record(into: publishSeconds)
                settled(.success(()))
            }
        }
    }

    /// ``publish(_:_:)``, with an immediate receipt left for the caller to write.
    static func publishAnswer(_ params: PublishParams, _ context: RequestContext) throws(RPCError) -> PublishAnswer {
        let daemon = context.daemon
        if let bucket = context.connection.publishBucket, let wait = bucket.take() {
            throw .rateLimited(
                retryAfterMilliseconds: max(1, Int((wait.inSeconds * 1000).rounded(.up))),
                perSecond: bucket.rate.perSecond,
                burst: bucket.rate.burst)
        }
        let stopwatch = MetricsStopwatch()
        if let pipelineEvent = PipelineEvent.named(params.type) {
            // A client-started iteration trades: only on the cluster's leader (PROTOCOL §13).
            if !daemon.mayTrade {
                throw .notLeader(
                    "publish pipeline events to the leader (get_status.cluster.leader); a new leader takes them once its book is restored"
                )
            }
            let payload: PipelinePayload
            do { payload = try PipelinePayload.decode(pipelineEvent, from: params.data) } catch {
                throw .invalidParams([error])
            }
            let publication = daemon.pipeline.orchestrator.publishClientEvent(
                pipelineEvent, payload: payload, metadata: params.metadata)
            return .outcome(
                .deferred {
                    let outcome = await publication.reaction()
                    stopwatch.record(into: publishSeconds)
                    return .success(receiptBytes(outcome.published, iteration: outcome.iteration))
                })
        }
        let published = daemon.bus.publishRecording(params.type, payload: params.payload, metadata: params.metadata)
        if let failure = published.failure { throw .clusterUnavailable(failure) }
        if published.isDispatched && !published.hasPendingHandlers {
            stopwatch.record(into: publishSeconds)
            return .receipt(published)
        }
        // Answered once the event is delivered (its journal batch committed) and its
        // in-process handlers finished.
        return .afterDispatch(published, stopwatch)
    }

    /// The publish result; a client-started iteration adds `iteration`, `iteration_id`,
    /// `completed` and the run's counts (`signals`, `approved`, `rejected`, `executed`) and
    /// `errors` (PROTOCOL §9).
    static func receiptBytes(_ published: PublishedEvent, iteration: ClientIteration? = nil) -> [UInt8] {
        // Read once: a journaled publish's event sits behind its ticket's lock.
        let event = published.event
        // The keys, the numbers and the timestamp take up to 120 bytes: one allocation, no growth.
        var writer = JSONWriter(reservingCapacity: 128 + event.type.utf8.count + (iteration == nil ? 0 : 256))
        writer.beginObject()
        writer.plainKey("seq")
        writer.write(event.seq)
        writer.plainKey("event_type")
        writer.write(event.type)
        writer.plainKey("timestamp")
        writer.writeRaw(event.timestampText)
        writer.plainKey("subscribers")
        writer.write(published.clientSubscribers)
        if let iteration {
            writer.field("iteration", iteration.number)
            writer.field("iteration_id", iteration.id)
            writer.field("completed", iteration.completed)
            let result = iteration.result
            writer.field("signals", result?.signals.count ?? 0)
            writer.field("approved", result?.approvedSignals.count ?? 0)
            writer.field("rejected", result?.rejectedSignals.count ?? 0)
            writer.field("executed", result?.executedCount ?? 0)
            writer.key("errors")
            writer.write(result?.errors ?? [])
        }
        writer.endObject()
        return writer.bytes
    }

    // MARK: run_pipeline

    static func runPipeline(_ params: RunPipelineParams, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let pipeline = context.daemon.pipeline
        let orchestrator = pipeline.orchestrator
        let includeMarketData = params.includeMarketData
        if let replayOf = params.replay {
            return replay(replayOf, params: params, pipeline: pipeline)
        }
        let request = params.request
        // Only the cluster's leader trades (PROTOCOL §13): elsewhere a non-dry run is handed
        // to the leader through the database and answered when it finishes. Dry runs run
        // anywhere.
        if !request.dryRun && !context.daemon.mayTrade {
            guard let handOff = context.daemon.handOff else {
                throw .notLeader("run it on the leader (get_status.cluster.leader), or as a dry run here")
            }
            let sent = JSONWriter.string(JSONValue.object(params.sent))
            let timeout = request.timeout
            return .deferred {
                switch await handOff("run_pipeline", sent, timeout) {
                case .success(let bytes): .success(bytes)
                case .failure(let error): .failure(error)
                }
            }
        }
        return .deferred {
            do {
                let result = try await orchestrator.run(request)
                var writer = JSONWriter(reservingCapacity: 4096)
                result.encodeJSON(to: &writer, includeMarketData: includeMarketData)
                return .success(writer.bytes)
            } catch {
                return .failure(error.rpcError)
            }
        }
    }

    /// A non-dry `run_pipeline` another cluster node handed to this one (the leader): run
    /// under what is left of the caller's deadline, answered with the result's JSON or the
    /// error object's JSON (`isError`).
    static func runHandedOff(params text: String, remaining: Duration, daemon: Daemon) async -> (
        json: String, isError: Bool
    ) {
        func failure(_ error: RPCError) -> (json: String, isError: Bool) {
            (JSONWriter.string(error.json), true)
        }
        let params: RunPipelineParams
        do throws(RPCError) {
            params = try Daemon.handedOverParams(text, as: RunPipelineParams.self)
        } catch {
            return failure(error)
        }
        var request = params.request
        request.dryRun = false
        request.timeout = remaining
        do {
            let result = try await daemon.pipeline.orchestrator.run(request)
            var writer = JSONWriter(reservingCapacity: 4096)
            result.encodeJSON(to: &writer, includeMarketData: params.includeMarketData)
            return (String(decoding: writer.bytes, as: UTF8.self), false)
        } catch {
            return failure(error.rpcError)
        }
    }

    /// `run_pipeline {replay}`: the recorded iteration's market data through today's agents,
    /// against the account as it was then, as a dry run; the result lists the differences.
    private static func replay(_ iterationID: String, params: RunPipelineParams, pipeline: PipelineHost)
        -> MethodOutcome
    {
        guard let journal = pipeline.journal else {
            return .failure(
                .unknownIteration(
                    iterationID, "iteration \(iterationID) cannot be replayed: the daemon runs --ephemeral"))
        }
        let includeMarketData = params.includeMarketData
        let startingCash = Money(dollars: pipeline.agents.risk.config.startingCash)
        let strategy = params.request.strategy
        let timeout = params.request.timeout
        return .deferred {
            let recorded: RecordedIteration
            var request: IterationRequest
            do {
                // Journal reads and the fold run off the event loop (this is a task already).
                recorded = try IterationReplay.load(journal, iterationID: iterationID)
                request = try IterationReplay.request(
                    for: recorded, journal: journal, startingCash: startingCash, timeout: timeout)
            } catch let error as ReplayError {
                let message =
                    error.iterationID.isEmpty
                    ? "iteration \(iterationID) cannot be replayed: \(error.message)" : error.message
                return .failure(.unknownIteration(iterationID, message))
            } catch {
                return .failure(.internalError("replay of \(iterationID): \(error)"))
            }
            // Today's selector picks the strategy again, unless the caller overrides it.
            request.strategy = strategy
            do {
                var result = try await pipeline.orchestrator.run(request)
                result.replay = ReplayOutcome(
                    of: iterationID, differences: IterationReplay.differences(recorded, result))
                var writer = JSONWriter(reservingCapacity: 4096)
                result.encodeJSON(to: &writer, includeMarketData: includeMarketData)
                return .success(writer.bytes)
            } catch {
                return .failure(error.rpcError)
            }
        }
    }

    // MARK: stats and history

    static func getStats(_ params: NoParameters, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let daemon = context.daemon
        let stats = daemon.bus.statistics()
        func counts(_ dictionary: [String: Int]) -> JSONValue {
            .object(JSONObject(dictionary.keys.sorted().map { .init(key: $0, value: JSONValue(dictionary[$0]!)) }))
        }
        let result: JSONValue = [
            "total_event_types": JSONValue(stats.totalEventTypes),
            "total_subscribers": JSONValue(stats.totalSubscribers),
            "event_types": counts(stats.clientSubscriptionsByPattern),
            "total_events_published": JSONValue(stats.lastSeq),  // seqs ever assigned: carried over a restart (§14)
            "events_published": JSONValue(stats.eventsPublished),
            "events_delivered": JSONValue(stats.eventsDelivered),
            "events_dropped": JSONValue(daemon.connections.eventsDropped),
            "handler_errors": JSONValue(stats.handlerErrors),
            "published_by_type": counts(stats.publishedByType),
            "internal_handlers": counts(stats.internalHandlersByPattern),
            "connections": JSONValue(daemon.connections.count),
            "history_size": JSONValue(stats.historySize),
            "history_capacity": JSONValue(stats.historyCapacity),
            "last_seq": JSONValue(stats.lastSeq),
            "uptime_seconds": JSONValue(daemon.uptimeSeconds),
            "pipeline": daemon.pipeline.orchestrator.metrics.snapshot(),
            "stage_stray_replies": JSONValue(daemon.stages.strayReplies),
        ]
        return .result(result)
    }

    static func getEventHistory(_ params: GetEventHistoryParams, _ context: RequestContext) throws(RPCError)
        -> MethodOutcome
    {
        let bus = context.daemon.bus
        try checkSinceSeq(params.sinceSeq, bus)
        if let journal = context.daemon.pipeline.journal {
            return try journalHistory(params, journal, context.daemon)
        }
        if let read = context.daemon.clusterHistory {
            return clusterHistory(params, read, context.daemon)
        }
        let page = bus.history(matching: params.pattern, sinceSeq: params.sinceSeq, limit: params.limit)
        return try historyAnswer(
            page.records, oldestSeq: page.oldestSeq, newestSeq: page.newestSeq, capacity: page.capacity,
            cap: context.daemon.configuration.maxResponseBytes
        ) { writer, record in record.encodeJSON(to: &writer, includeData: params.includeData) }
    }

    /// `{"events": […], "oldest_seq", "newest_seq", "capacity"}`, refused with -32602 at
    /// `/limit` once the answer would exceed `cap` bytes.
    private static func historyAnswer<Record>(
        _ records: [Record], oldestSeq: Int?, newestSeq: Int?, capacity: Int, cap: Int,
        encode: (inout JSONWriter, Record) -> Void
    ) throws(RPCError) -> MethodOutcome {
        var writer = JSONWriter(reservingCapacity: 256 + records.count * 256)
        writer.beginObject()
        writer.key("events")
        writer.beginArray()
        for (index, record) in records.enumerated() {
            encode(&writer, record)
            guard writer.bytes.count <= cap else {
                throw .invalidParams(
                    path: "/limit",
                    "the answer would exceed \(cap) bytes after \(index + 1) of \(records.count) events; ask for fewer (limit, since_seq, event_type) or leave the data out (include_data: false)"
                )
            }
        }
        writer.endArray()
        writer.field("oldest_seq", oldestSeq)
        writer.field("newest_seq", newestSeq)
        writer.field("capacity", capacity)
        writer.endObject()
        return .success(writer.bytes)
    }

    /// Most records one history answer reads from the journal.
    static let maximumJournalHistory = 1_000_000

    /// History from the journal: every retained event, not only the in-memory ring.
    private static func journalHistory(
        _ params: GetEventHistoryParams, _ journal: any EventJournal, _ daemon: Daemon
    ) throws(RPCError) -> MethodOutcome {
        let wanted = params.limit.flatMap { $0 > 0 ? $0 : nil }
        let records: [JournalRecord]
        let summary: JournalSummary
        do {
            records = try journal.read(
                JournalQuery(
                    afterSeq: params.sinceSeq, pattern: params.pattern?.text,
                    limit: wanted ?? maximumJournalHistory + 1, newest: wanted != nil))
            summary = try journal.summary()
        } catch {
            throw .internalError("journal read failed: \(error.message)")
        }
        guard records.count <= maximumJournalHistory else {
            throw .invalidParams(
                path: "/limit",
                "more than \(maximumJournalHistory) events match; ask for fewer (limit, since_seq, event_type)")
        }
        // Subscriber counts are known for events still in memory (the journal keeps them at 0).
        let ring = daemon.bus.history(sinceSeq: records.first.map { $0.seq - 1 })
        var counts: [Int: Int] = [:]
        for record in ring.records { counts[record.event.seq] = record.subscriberCount }
        return try historyAnswer(
            records, oldestSeq: summary.oldestSeq, newestSeq: summary.newestSeq,
            capacity: daemon.pipeline.retention.maximumEvents, cap: daemon.configuration.maxResponseBytes
        ) { writer, record in
            record.encodeJSON(
                to: &writer, includeData: params.includeData,
                subscriberCount: counts[record.seq] ?? record.subscriberCount)
        }
    }

    /// History from a cluster's shared journal: every node's events, also from before this
    /// node started (PROTOCOL §13), each with its `node`.
    private static func clusterHistory(
        _ params: GetEventHistoryParams,
        _ read: @escaping @Sendable (JournalQuery) async -> Result<ClusterHistoryPage, RPCError>, _ daemon: Daemon
    ) -> MethodOutcome {
        let wanted = params.limit.flatMap { $0 > 0 ? $0 : nil }
        let query = JournalQuery(
            afterSeq: params.sinceSeq, pattern: params.pattern?.text, limit: wanted ?? maximumClusterHistory + 1,
            newest: wanted != nil)
        return .deferred {
            let page: ClusterHistoryPage
            switch await read(query) {
            case .success(let read): page = read
            case .failure(let error) where error.type == "cluster_unavailable":
                // The database is away: what this node delivered stays readable (PROTOCOL §13).
                let ring = daemon.bus.history(matching: params.pattern, sinceSeq: params.sinceSeq, limit: params.limit)
                return bytes { () throws(RPCError) in
                    try historyAnswer(
                        ring.records, oldestSeq: ring.oldestSeq, newestSeq: ring.newestSeq, capacity: ring.capacity,
                        cap: daemon.configuration.maxResponseBytes
                    ) { writer, record in record.encodeJSON(to: &writer, includeData: params.includeData) }
                }
            case .failure(let error): return .failure(error)
            }
            guard page.records.count <= maximumClusterHistory else {
                return .failure(
                    .invalidParams(
                        path: "/limit",
                        "more than \(maximumClusterHistory) events match; ask for fewer (limit, since_seq, event_type)")
                )
            }
            let ring = daemon.bus.history(sinceSeq: page.records.first.map { $0.record.seq - 1 })
            var counts: [Int: Int] = [:]
            for record in ring.records { counts[record.event.seq] = record.subscriberCount }
            return bytes { () throws(RPCError) in
                try historyAnswer(
                    page.records, oldestSeq: page.oldestSeq, newestSeq: page.newestSeq,
                    capacity: daemon.pipeline.retention.maximumEvents, cap: daemon.configuration.maxResponseBytes
                ) { writer, entry in
                    entry.record.encodeJSON(
                        to: &writer, includeData: params.includeData,
                        subscriberCount: counts[entry.record.seq] ?? 0, node: entry.node)
                }
            }
        }
    }

    /// A history answer's bytes, for a deferred method.
    private static func bytes(_ answer: () throws(RPCError) -> MethodOutcome) -> Result<[UInt8], RPCError> {
        do throws(RPCError) {
            guard case .success(let bytes) = try answer() else { return .failure(.internalError("history answer")) }
            return .success(bytes)
        } catch {
            return .failure(error)
        }
    }

    /// Most records one cluster history answer reads (one read of the shared journal).
    static let maximumClusterHistory = 99_999

    // MARK: loop and status

    static func startLoop(_ params: StartLoopParams, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let pipeline = context.daemon.pipeline
        if !context.daemon.mayTrade {
            throw .notLeader("the loop runs on the leader")
        }
        return .deferred {
            let status = await pipeline.startLoop(intervalSeconds: params.intervalSeconds, symbols: params.symbols)
            let result: JSONValue = [
                "running": JSONValue(status.running), "interval_seconds": JSONValue(status.intervalSeconds),
            ]
            return .success(JSONWriter.encode(result))
        }
    }

    static func stopLoop(_ params: NoParameters, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let pipeline = context.daemon.pipeline
        return .deferred {
            let status = await pipeline.stopLoop()
            let result: JSONValue = ["running": JSONValue(status.running), "iterations": JSONValue(status.iterations)]
            return .success(JSONWriter.encode(result))
        }
    }

    static func getStatus(_ params: NoParameters, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let daemon = context.daemon
        return .deferred { .success(JSONWriter.encode(await status(daemon))) }
    }

    /// The `get_status` result.
    static func status(_ daemon: Daemon) async -> JSONValue {
        do {
            let status = await daemon.pipeline.loop.status
            let last: JSONValue = status.lastIteration.map { $0.jsonValue } ?? .null
            let result: JSONValue = [
                "version": JSONValue(Daemon.version),
                "api_level": JSONValue(Daemon.apiLevel),
                "pid": JSONValue(Int(getpid())),
                "socket": JSONValue(daemon.configuration.socketPath),
                "mode": JSONValue(daemon.pipeline.orchestrator.mode.rawValue),
                "uptime_seconds": JSONValue(daemon.uptimeSeconds),
                "loop": [
                    "running": JSONValue(status.running),
                    "interval_seconds": JSONValue(status.intervalSeconds),
                    "iterations": JSONValue(status.iterations),
                    "last_iteration": last,
                ],
                "stages": daemon.stages.status(),
                "instance_id": JSONValue(daemon.instanceID),
                "journal": journalStatus(daemon),
                "cluster": daemon.clusterStatus,
                "trading_state": daemon.pipeline.agents.tradingSwitch.current.jsonValue,
            ]
            return result
        }
    }

    /// `get_status.journal`: null when ephemeral.
    private static func journalStatus(_ daemon: Daemon) -> JSONValue {
        guard let journal = daemon.pipeline.journal else { return .null }
        guard let summary = try? journal.summary() else { return ["journal_id": JSONValue(journal.journalID)] }
        return [
            "path": JSONValue(summary.location), "journal_id": JSONValue(summary.journalID),
            "events": JSONValue(summary.events), "oldest_seq": summary.oldestSeq.map { JSONValue($0) } ?? .null,
            "newest_seq": summary.newestSeq.map { JSONValue($0) } ?? .null, "bytes": JSONValue(summary.bytes),
            "fsync": JSONValue(summary.sync.rawValue),
        ]
    }

    static func shutdown(_ params: NoParameters, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let connection = context.connection
        let daemon = context.daemon
        daemon.logger.notice("server.shutdown.requested", metadata: ["connection": "\(connection.id)"])
        // The reply (or the batch holding it) is queued first; then every connection, this
        // one too, hears `shutdown`.
        return .successThen(Array(#"{"ok":true}"#.utf8)) {
            daemon.connections.beginDrain(reason: "shutdown requested by a client")
            daemon.requestShutdown(reason: "shutdown requested by a client")
        }
    }
}

extension PipelineError: RPCErrorConvertible {
    public var rpcError: RPCError {
        switch self {
        case .noMarketData(let iteration, let iterationID, let errors):
            return RPCError(
                code: -32010, message: description, type: "no_market_data",
                details: [
                    "iteration": JSONValue(iteration), "iteration_id": JSONValue(iterationID),
                    "errors": .array(errors.map(\.jsonValue)),
                ])
        case .timeout(let iteration, let iterationID, let stage):
            return RPCError(
                code: -32011, message: description, type: "pipeline_timeout",
                details: [
                    "iteration": JSONValue(iteration), "iteration_id": JSONValue(iterationID),
                    "stage": JSONValue(stage.rawValue),
                ])
        }
    }
}

extension Error {
    /// The JSON-RPC rendering of any error (unknown ones are internal errors).
    var rpcError: RPCError {
        if let convertible = self as? any RPCErrorConvertible { return convertible.rpcError }
        return .internalError(String(describing: self))
    }
}
