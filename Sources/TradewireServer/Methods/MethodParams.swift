import TradewireBus
import TradewireJSON
import TradewirePipeline
import TradewireRPC
import TradewireTrading

/// Parameter declarations shared by several methods.
enum CommonParams {
    static let symbolsSchema: JSONValue = [
        "type": "array", "maxItems": JSONValue(IterationRequest.maximumSymbols),
        "items": ["type": "string", "pattern": "^[A-Za-z][A-Za-z0-9.-]{0,9}$"],
    ]

    /// At most 10 000 strings, each a valid symbol (normalised), with a `/symbols/N` path on
    /// the first bad one.
    static func symbols(summary: String) -> Param<[String]?> {
        Param<[String]?>(ParamDescription("symbols", schema: symbolsSchema, summary: summary)) {
            reader throws(RPCError) in
            guard let raw = try decodingParams({ () throws(JSONDecodingError) in try reader.optionalArray("symbols") })
            else { return nil }
            try symbolCount(raw.count, path: "/symbols")
            var parsed: [String] = []
            parsed.reserveCapacity(raw.count)
            for (i, element) in raw.enumerated() {
                guard case .string(let text) = element else {
                    throw .invalidParams(path: "/symbols/\(i)", "expected a string, got \(element.typeName)")
                }
                do { parsed.append(try SymbolValidation.normalize(text)) } catch {
                    throw .invalidParams(path: "/symbols/\(i)", "\(error)")
                }
            }
            return parsed
        }
    }

    static func symbolCount(_ count: Int, path: String) throws(RPCError) {
        guard count <= IterationRequest.maximumSymbols else {
            throw .invalidParams(
                path: path, "at most \(IterationRequest.maximumSymbols) symbols per iteration, got \(count)")
        }
    }

    static func pattern(_ text: String, path: String) throws(RPCError) -> EventPattern {
        do { return try EventPattern(text) } catch { throw .invalidParams(path: path, "\(error)") }
    }

    static let sinceSeq = Param<Int?>.optionalInt(
        "since_seq", in: 0...Int.max, summary: "Only events with a greater seq (replayed first by subscribe).")
}

struct SubscribeParams: MethodParameters {
    static let eventType = Param<String>.string("event_type", summary: "Pattern, e.g. signals_ready or *.")
        .map { text, path throws(RPCError) in (text, try CommonParams.pattern(text, path: path)) }
    static let consumerName = Param<String?>.optionalString(
        "consumer", summary: "A durable consumer's name (1-64 chars of A-Z a-z 0-9 _ . : -): at-least-once delivery."
    ).map { (name: String?, path: String) throws(RPCError) -> String? in
        guard let name else { return nil }
        do { try ConsumerSettings.validateName(name) } catch { throw .invalidParams(path: path, "\(error)") }
        return name
    }
    static let ackWait = Param<Int?>.optionalInt(
        "ack_wait_ms", in: ConsumerSettings.ackWaitRange,
        summary: "Consumer: redeliver what is not acknowledged within this many ms (default 30000).")
    static let maxDeliver = Param<Int?>.optionalInt(
        "max_deliver", in: ConsumerSettings.maxDeliverRange,
        summary: "Consumer: attempts before an event becomes a dead letter (default 5).")
    static let maxInFlight = Param<Int?>.optionalInt(
        "max_in_flight", in: ConsumerSettings.maxInFlightRange,
        summary: "Consumer: unacknowledged events out at once (default 256).")
    static let parameters = [
        eventType.description, CommonParams.sinceSeq.description, consumerName.description, ackWait.description,
        maxDeliver.description, maxInFlight.description,
    ]

    var text: String
    var pattern: EventPattern
    var sinceSeq: Int?
    var consumer: String?
    var ackWaitMilliseconds: Int?
    var maxDeliver: Int?
    var maxInFlight: Int?

    init(from params: ParamReader) throws(RPCError) {
        (text, pattern) = try params(Self.eventType)
        sinceSeq = try params(CommonParams.sinceSeq)
        consumer = try params(Self.consumerName)
        ackWaitMilliseconds = try params(Self.ackWait)
        maxDeliver = try params(Self.maxDeliver)
        maxInFlight = try params(Self.maxInFlight)
        if consumer == nil,
            let option = [Self.ackWait.name, Self.maxDeliver.name, Self.maxInFlight.name].first(
                where: { params.reader.value($0) != nil })
        {
            throw .invalidParams(path: "/\(option)", "\(option) applies only to a consumer: give consumer too")
        }
    }
}

struct UnsubscribeParams: MethodParameters {
    static let subscription = Param<String?>.optionalString("subscription", summary: "A subscription id (s-N).")
    static let eventType = Param<String?>.optionalString("event_type", summary: "A pattern, compared exactly.")
    static let parameters = [subscription.description, eventType.description]

    enum Target {
        case subscription(String)
        case pattern(String)
    }
    var target: Target

    init(from params: ParamReader) throws(RPCError) {
        switch (try params(Self.subscription), try params(Self.eventType)) {
        case (let id?, nil): target = .subscription(id)
        case (nil, let pattern?): target = .pattern(pattern)
        default: throw .invalidParams(path: "", "give exactly one of subscription or event_type")
        }
    }
}

struct PublishParams: MethodParameters {
    static let eventType = Param<String>.string(
        "event_type", summary: "1-128 chars of A-Z a-z 0-9 _ . : -"
    ).map { type, path throws(RPCError) in
        do { try EventName.validateType(type) } catch { throw .invalidParams(path: path, "\(error)") }
        return type
    }
    static let data = Param<JSONValue?>.anyValue("data", summary: "Any JSON (default null).")
    static let metadata = Param<JSONObjectReader?>.optionalObject(
        "metadata", summary: "Free-form metadata kept with the event.")
    static let parameters = [eventType.description, data.description, metadata.description]

    var type: String
    /// The data as the parser kept it: compact bytes (``RawJSON``, only forwarded) or a tree.
    var payload: any EventPayload
    var metadata: JSONObject

    init(from params: ParamReader) throws(RPCError) {
        type = try params(Self.eventType)
        if let raw = params.raw(Self.data) {
            payload = raw
        } else {
            payload = try params(Self.data) ?? JSONValue.null
        }
        metadata = try params(Self.metadata)?.object ?? [:]
    }

    /// A `publish` read by the fast path (no metadata); nil when its type is not valid (the
    /// line then goes through the method table, which reports the error).
    init?(_ envelope: PublishEnvelope) {
        guard (try? EventName.validateType(envelope.eventType)) != nil else { return nil }
        type = envelope.eventType
        payload = envelope.data
        metadata = JSONObject()
    }

    /// The data as a tree (a pipeline event's payload is decoded from it).
    var data: JSONValue {
        if let raw = payload as? RawJSON { return raw.value }
        return payload as? JSONValue ?? .null
    }
}

struct RunPipelineParams: MethodParameters {
    static let symbols = CommonParams.symbols(summary: "Symbols (upper-cased); default the configured list.")
    static let timeout = Param<Int?>.optionalInt("timeout_ms", in: 1...3_600_000, summary: "Deadline (default 300000).")
    static let marketData = Param<JSONValue?>.anyValue(
        "market_data", summary: "{SYMBOL: MarketData} to use instead of the provider.", schema: ["type": "object"])
    static let includeMarketData = Param<Bool?>.optionalBool(
        "include_market_data", summary: "Return full MarketData instead of summaries.")
    static let strategy = Param<String?>.optionalString(
        "strategy", summary: "One of the ten strategy names: overrides the selector.")
    static let dryRun = Param<Bool?>.optionalBool("dry_run", summary: "Nothing reaches the broker; no state changes.")
    static let replay = Param<String?>.optionalString(
        "replay", summary: "An iteration_id from the journal: run its market data again (always a dry run).")
    static let parameters = [
        symbols.description, timeout.description, marketData.description, includeMarketData.description,
        strategy.description, dryRun.description, replay.description,
    ]

    var request: IterationRequest
    var includeMarketData: Bool
    /// The recorded iteration to replay.
    var replay: String?
    /// The params as sent (a follower hands them to the leader as they are).
    var sent: JSONObject

    init(from params: ParamReader) throws(RPCError) {
        sent = params.reader.object
        var symbols: [String]?
        if let parsed = try params(Self.symbols) {
            guard !parsed.isEmpty else { throw .invalidParams(path: "/symbols", "must not be empty") }
            symbols = parsed
        }
        var marketData: [String: MarketData]?
        if let raw = try params(Self.marketData) {
            if case .object(let members) = raw { try CommonParams.symbolCount(members.count, path: "/market_data") }
            do { marketData = try PipelinePayload.decodeMarketData(raw, path: "/market_data") } catch {
                throw .invalidParams([error])
            }
        }
        var strategy: StrategyName?
        if let name = try params(Self.strategy) {
            guard let parsed = StrategyName(rawValue: name) else {
                throw .invalidParams(
                    path: "/strategy",
                    "unknown strategy \"\(name)\"; one of \(StrategyName.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            strategy = parsed
        }
        request = IterationRequest(
            symbols: symbols, marketData: marketData, strategy: strategy, dryRun: try params(Self.dryRun) ?? false,
            timeout: try params(Self.timeout).map { .milliseconds($0) })
        includeMarketData = try params(Self.includeMarketData) ?? false
        replay = try params(Self.replay)
        if let replay {
            guard !replay.isEmpty, replay.utf8.count <= 256 else {
                throw .invalidParams(path: "/replay", "must be an iteration_id (1 to 256 bytes)")
            }
            if symbols != nil || marketData != nil {
                throw .invalidParams(
                    path: symbols != nil ? "/symbols" : "/market_data",
                    "a replay runs the recorded market data; leave symbols and market_data out")
            }
            if request.dryRun == false, try params(Self.dryRun) == false {
                throw .invalidParams(path: "/dry_run", "a replay is always a dry run")
            }
        }
    }
}

struct GetEventHistoryParams: MethodParameters {
    static let eventType = Param<String?>.optionalString("event_type", summary: "Pattern filter.")
    static let limit = Param<Int?>.optionalInt("limit", in: 0...Int.max, summary: "Keep the last N (0 or absent: all).")
    static let includeData = Param<Bool?>.optionalBool(
        "include_data", summary: "Default true; false leaves `data` out.")
    static let parameters = [
        eventType.description, limit.description, CommonParams.sinceSeq.description, includeData.description,
    ]

    var pattern: EventPattern?
    var limit: Int?
    var sinceSeq: Int?
    var includeData: Bool

    init(from params: ParamReader) throws(RPCError) {
        pattern = try params(Self.eventType).map { (text: String) throws(RPCError) in
            try CommonParams.pattern(text, path: "/event_type")
        }
        limit = try params(Self.limit)
        sinceSeq = try params(CommonParams.sinceSeq)
        includeData = try params(Self.includeData) ?? true
    }
}

struct StartLoopParams: MethodParameters {
    static let interval = Param<Double?>.optionalDouble(
        "interval_seconds",
        in: PipelineConfiguration.minimumLoopInterval...PipelineConfiguration.maximumLoopInterval,
        summary: "Seconds between iterations.")
    static let symbols = CommonParams.symbols(summary: "Symbols for loop iterations.")
    static let parameters = [interval.description, symbols.description]

    var intervalSeconds: Double?
    var symbols: [String]?

    init(from params: ParamReader) throws(RPCError) {
        intervalSeconds = try params(Self.interval)
        if let parsed = try params(Self.symbols), !parsed.isEmpty { symbols = parsed }
    }
}
