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

/// Binds every method of PROTOCOL §5 to the bus and the pipeline.
enum DaemonMethods {
    static func register(into registry: inout MethodRegistry<RequestContext>) {
        registry.register(MethodSchemas.subscribe, handler: subscribe)
        registry.register(MethodSchemas.unsubscribe, handler: unsubscribe)
        registry.register(MethodSchemas.publish, handler: publish)
        registry.register(MethodSchemas.runPipeline, handler: runPipeline)
        registry.register(MethodSchemas.getStats, handler: getStats)
        registry.register(MethodSchemas.getEventHistory, handler: getEventHistory)
        registry.register(MethodSchemas.startLoop, handler: startLoop)
        registry.register(MethodSchemas.stopLoop, handler: stopLoop)
        registry.register(MethodSchemas.getStatus, handler: getStatus)
        registry.register(MethodSchemas.ping) { _, _ in .success(pong) }
        registry.register(MethodSchemas.discover) { _, context in .success(context.daemon.discoverDocument) }
        registry.register(MethodSchemas.shutdown, handler: shutdown)
    }

    private static let pong: [UInt8] = Array(#"{"pong":true}"#.utf8)

    /// Runs a reader-based body, turning decoding errors into -32602.
    private static func params<T>(_ body: () throws(JSONDecodingError) -> T) throws(RPCError) -> T {
        do { return try body() } catch { throw .invalidParams([error]) }
    }

    private static func pattern(_ text: String, path: String) throws(RPCError) -> EventPattern {
        do { return try EventPattern(text) } catch { throw .invalidParams(path: path, error.description) }
    }

    private static func nonNegative(_ value: Int?, path: String) throws(RPCError) -> Int? {
        if let value, value < 0 { throw .invalidParams(path: path, "must not be negative") }
        return value
    }

    /// `since_seq`: not negative, and not ahead of the newest event (a client that resumes
    /// from a seq this daemon never issued is talking to a daemon that restarted).
    private static func sinceSeq(_ value: Int?, _ bus: EventBus) throws(RPCError) -> Int? {
        guard let value = try nonNegative(value, path: "/since_seq") else { return nil }
        let newest = bus.lastSeq
        guard value <= newest else {
            throw .invalidParams(path: "/since_seq", "since_seq is ahead of the newest event (\(newest))")
        }
        return value
    }

    // MARK: subscribe / unsubscribe

    static func subscribe(_ request: RPCRequest, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let reader = request.reader
        let text = try params { () throws(JSONDecodingError) in try reader.string("event_type") }
        let pattern = try pattern(text, path: "/event_type")
        let since = try sinceSeq(
            try params { () throws(JSONDecodingError) in try reader.optionalInt("since_seq") }, context.daemon.bus)
        let connection = context.connection
        let outbox = connection.outbox
        let prefixBox = PrefixBox()
        let ackLine: @Sendable (SubscriptionID) -> [UInt8] = { id in
            JSONWriter.encode(["subscription": JSONValue(id.description), "event_type": JSONValue(text)] as JSONValue)
        }
        let inBatch = context.inBatch
        let requestID = context.requestID
        let outcome = context.daemon.bus.subscribe(
            pattern, owner: connection.owner,
            handler: .sync { event in
                guard let prefix = prefixBox.prefix else { return }
                outbox.enqueue(event: event, prefix: prefix)
            },
            replay: since.map { ReplayRequest(sinceSeq: $0) },
            prelude: { id, gap in
                prefixBox.prefix = Outbox.EventPrefix(id)
                // The ack goes out before any event of the subscription (outside a batch).
                if !inBatch { connection.respond(id: requestID, .success(ackLine(id))) }
                if let gap { outbox.enqueueGap(id, firstSeq: gap.firstSeq, lastSeq: gap.lastSeq) }
            })
        if outcome.created && !inBatch { return .answered }
        return .success(ackLine(outcome.id))
    }

    static func unsubscribe(_ request: RPCRequest, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let reader = request.reader
        let (subscription, eventType) = try params { () throws(JSONDecodingError) in
            (try reader.optionalString("subscription"), try reader.optionalString("event_type"))
        }
        let bus = context.daemon.bus
        let owner = context.connection.owner
        let removed: Int
        switch (subscription, eventType) {
        case (let id?, nil):
            // An id that matches nothing, well-formed or not, removes nothing (not an error).
            removed = SubscriptionID(id).map { bus.unsubscribe($0, owner: owner) ? 1 : 0 } ?? 0
        case (nil, let type?):
            removed = bus.unsubscribe(pattern: type, owner: owner)
        default:
            throw .invalidParams(path: "", "give exactly one of subscription or event_type")
        }
        return .result(["removed": JSONValue(removed)] as JSONValue)
    }

    // MARK: publish

    static func publish(_ request: RPCRequest, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let reader = request.reader
        let type = try params { () throws(JSONDecodingError) in try reader.string("event_type") }
        do { try EventName.validateType(type) } catch { throw .invalidParams(path: "/event_type", error.description) }
        let data = request.params["data"] ?? .null
        let metadata: JSONObject = try params { () throws(JSONDecodingError) in
            try reader.optionalObject("metadata")?.object ?? [:]
        }
        let daemon = context.daemon
        if let pipelineEvent = PipelineEvent(rawValue: type) {
            let payload: PipelinePayload
            do { payload = try PipelinePayload.decode(pipelineEvent, from: data) } catch {
                throw .invalidParams([error])
            }
            let publication = daemon.orchestrator.publishClientEvent(
                pipelineEvent, payload: payload, metadata: metadata)
            return .deferred {
                let outcome = await publication.reaction()
                return .success(receiptBytes(outcome.published, iteration: outcome.iteration))
            }
        }
        let published = daemon.bus.publishRecording(type, payload: data, metadata: metadata)
        guard published.hasPendingHandlers else { return .success(receiptBytes(published)) }
        return .deferred {
            await published.handlersFinished()
            return .success(receiptBytes(published))
        }
    }

    /// The publish result; a client-started iteration adds `iteration`, `iteration_id`,
    /// `completed` and the run's counts (`signals`, `approved`, `rejected`, `executed`) and
    /// `errors` (PROTOCOL §9).
    private static func receiptBytes(_ published: PublishedEvent, iteration: ClientIteration? = nil) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 96)
        writer.beginObject()
        writer.field("seq", published.event.seq)
        writer.field("event_type", published.event.type)
        writer.key("timestamp")
        writer.writeRaw(published.event.timestampJSON)
        writer.field("subscribers", published.clientSubscribers)
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

    static func runPipeline(_ request: RPCRequest, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let reader = request.reader
        var symbols: [String]?
        if let parsed = try symbolList(reader) {
            guard !parsed.isEmpty else { throw .invalidParams(path: "/symbols", "must not be empty") }
            symbols = parsed
        }
        let timeoutMS = try params { () throws(JSONDecodingError) in try reader.optionalInt("timeout_ms") }
        if let timeoutMS, !(1...3_600_000).contains(timeoutMS) {
            throw .invalidParams(path: "/timeout_ms", "must be in 1...3600000")
        }
        var marketData: [String: MarketData]?
        if let raw = reader.value("market_data") {
            if case .object(let members) = raw { try symbolCount(members.count, path: "/market_data") }
            do { marketData = try PipelinePayload.decodeMarketData(raw, path: "/market_data") } catch {
                throw .invalidParams([error])
            }
        }
        let includeMarketData = try params { () throws(JSONDecodingError) in
            try reader.optionalBool("include_market_data") ?? false
        }
        var strategy: StrategyName?
        if let name = try params({ () throws(JSONDecodingError) in try reader.optionalString("strategy") }) {
            guard let parsed = StrategyName(rawValue: name) else {
                throw .invalidParams(
                    path: "/strategy",
                    "unknown strategy \"\(name)\"; one of \(StrategyName.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            strategy = parsed
        }
        let dryRun = try params { () throws(JSONDecodingError) in try reader.optionalBool("dry_run") ?? false }
        let iteration = IterationRequest(
            symbols: symbols, marketData: marketData, strategy: strategy, dryRun: dryRun,
            timeout: timeoutMS.map { .milliseconds($0) })
        let orchestrator = context.daemon.orchestrator
        return .deferred {
            do {
                let result = try await orchestrator.run(iteration)
                var writer = JSONWriter(reservingCapacity: 4096)
                result.encodeJSON(to: &writer, includeMarketData: includeMarketData)
                return .success(writer.bytes)
            } catch {
                return .failure(error.rpcError)
            }
        }
    }

    /// The optional `symbols` parameter: at most 10 000 strings, each a valid symbol
    /// (normalised), with a `/symbols/N` path on the first bad one.
    private static func symbolList(_ reader: JSONObjectReader) throws(RPCError) -> [String]? {
        guard let raw = try params({ () throws(JSONDecodingError) in try reader.optionalArray("symbols") }) else {
            return nil
        }
        try symbolCount(raw.count, path: "/symbols")
        var parsed: [String] = []
        parsed.reserveCapacity(raw.count)
        for (i, element) in raw.enumerated() {
            guard case .string(let text) = element else {
                throw .invalidParams(path: "/symbols/\(i)", "expected a string, got \(element.typeName)")
            }
            do { parsed.append(try SymbolValidation.normalize(text)) } catch {
                throw .invalidParams(path: "/symbols/\(i)", error.description)
            }
        }
        return parsed
    }

    private static func symbolCount(_ count: Int, path: String) throws(RPCError) {
        guard count <= IterationRequest.maximumSymbols else {
            throw .invalidParams(
                path: path, "at most \(IterationRequest.maximumSymbols) symbols per iteration, got \(count)")
        }
    }

    // MARK: stats and history

    static func getStats(_ request: RPCRequest, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let daemon = context.daemon
        let stats = daemon.bus.statistics()
        func counts(_ dictionary: [String: Int]) -> JSONValue {
            .object(JSONObject(dictionary.keys.sorted().map { .init(key: $0, value: JSONValue(dictionary[$0]!)) }))
        }
        let result: JSONValue = [
            "total_event_types": JSONValue(stats.totalEventTypes),
            "total_subscribers": JSONValue(stats.totalSubscribers),
            "event_types": counts(stats.clientSubscriptionsByPattern),
            "total_events_published": JSONValue(stats.eventsPublished),
            "events_published": JSONValue(stats.eventsPublished),
            "events_delivered": JSONValue(stats.eventsDelivered),
            "events_dropped": JSONValue(daemon.eventsDropped),
            "handler_errors": JSONValue(stats.handlerErrors),
            "published_by_type": counts(stats.publishedByType),
            "internal_handlers": counts(stats.internalHandlersByPattern),
            "connections": JSONValue(daemon.connectionCount),
            "history_size": JSONValue(stats.historySize),
            "history_capacity": JSONValue(stats.historyCapacity),
            "last_seq": JSONValue(stats.lastSeq),
            "uptime_seconds": JSONValue(daemon.uptimeSeconds),
            "pipeline": daemon.orchestrator.metrics.snapshot(),
        ]
        return .result(result)
    }

    static func getEventHistory(_ request: RPCRequest, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let reader = request.reader
        let (typeText, limit, since, includeData) = try params { () throws(JSONDecodingError) in
            (
                try reader.optionalString("event_type"), try reader.optionalInt("limit"),
                try reader.optionalInt("since_seq"), try reader.optionalBool("include_data") ?? true
            )
        }
        let pattern = try typeText.map { (text: String) throws(RPCError) in try Self.pattern(text, path: "/event_type")
        }
        _ = try nonNegative(limit, path: "/limit")
        _ = try sinceSeq(since, context.daemon.bus)
        let page = context.daemon.bus.history(matching: pattern, sinceSeq: since, limit: limit)
        var writer = JSONWriter(reservingCapacity: 256 + page.records.count * 256)
        writer.beginObject()
        writer.key("events")
        writer.beginArray()
        let cap = context.daemon.configuration.maxResponseBytes
        for (index, record) in page.records.enumerated() {
            record.encodeJSON(to: &writer, includeData: includeData)
            guard writer.bytes.count <= cap else {
                throw .invalidParams(
                    path: "/limit",
                    "the answer would exceed \(cap) bytes after \(index + 1) of \(page.records.count) events; ask for fewer (limit, since_seq, event_type) or leave the data out (include_data: false)"
                )
            }
        }
        writer.endArray()
        writer.field("oldest_seq", page.oldestSeq)
        writer.field("newest_seq", page.newestSeq)
        writer.field("capacity", page.capacity)
        writer.endObject()
        return .success(writer.bytes)
    }

    // MARK: loop and status

    static func startLoop(_ request: RPCRequest, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let reader = request.reader
        let interval = try params { () throws(JSONDecodingError) in try reader.optionalDouble("interval_seconds") }
        if let interval,
            !(PipelineConfiguration.minimumLoopInterval...PipelineConfiguration.maximumLoopInterval).contains(interval)
        {
            throw .invalidParams(
                path: "/interval_seconds",
                "must be in \(PipelineConfiguration.minimumLoopInterval)...\(PipelineConfiguration.maximumLoopInterval)"
            )
        }
        var symbols: [String]?
        if let parsed = try symbolList(reader), !parsed.isEmpty { symbols = parsed }
        let loop = context.daemon.loop
        let loopSymbols = symbols
        return .deferred {
            let status = await loop.start(intervalSeconds: interval, symbols: loopSymbols)
            let result: JSONValue = [
                "running": JSONValue(status.running), "interval_seconds": JSONValue(status.intervalSeconds),
            ]
            return .success(JSONWriter.encode(result))
        }
    }

    static func stopLoop(_ request: RPCRequest, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let loop = context.daemon.loop
        return .deferred {
            let status = await loop.stop()
            let result: JSONValue = ["running": JSONValue(status.running), "iterations": JSONValue(status.iterations)]
            return .success(JSONWriter.encode(result))
        }
    }

    static func getStatus(_ request: RPCRequest, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let daemon = context.daemon
        return .deferred {
            let status = await daemon.loop.status
            let last: JSONValue = status.lastIteration.map { $0.jsonValue } ?? .null
            let result: JSONValue = [
                "version": JSONValue(Daemon.version),
                "api_level": JSONValue(Daemon.apiLevel),
                "pid": JSONValue(Int(getpid())),
                "socket": JSONValue(daemon.configuration.socketPath),
                "mode": JSONValue(daemon.orchestrator.mode.rawValue),
                "uptime_seconds": JSONValue(daemon.uptimeSeconds),
                "loop": [
                    "running": JSONValue(status.running),
                    "interval_seconds": JSONValue(status.intervalSeconds),
                    "iterations": JSONValue(status.iterations),
                    "last_iteration": last,
                ],
            ]
            return .success(JSONWriter.encode(result))
        }
    }

    static func shutdown(_ request: RPCRequest, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let connection = context.connection
        let daemon = context.daemon
        daemon.logger.notice("server.shutdown.requested", metadata: ["connection": "\(connection.id)"])
        // The reply (or the batch holding it) is queued first; then every connection, this
        // one too, hears `shutdown`.
        return .successThen(Array(#"{"ok":true}"#.utf8)) {
            daemon.beginDrain(reason: "shutdown requested by a client")
            daemon.requestShutdown(reason: "shutdown requested by a client")
        }
    }
}

/// The subscription's notification prefix, set in the prelude (under the bus lock) before
/// the subscription can receive any event, and read only after.
final class PrefixBox: @unchecked Sendable {
    var prefix: Outbox.EventPrefix?
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
