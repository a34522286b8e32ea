import Foundation
import TradewireBus
import TradewireJSON
import TradewireTrading

/// `"replay": {"of", "differences"}` of a replayed iteration's result (PROTOCOL §10).
public struct ReplayOutcome: Sendable, Equatable, JSONEncodable {
    public var of: String
    public var differences: [ReplayDifference]

    public init(of: String, differences: [ReplayDifference]) {
        self.of = of
        self.differences = differences
    }

    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("of", of)
        writer.field("differences", differences)
        writer.endObject()
    }
}

/// One decision that came out differently today: `{"stage", "symbol", "field", "recorded",
/// "now"}` (a signal present on one side only has field `signal` and null on the other).
public struct ReplayDifference: Sendable, Equatable, JSONEncodable {
    public var stage: PipelineStage
    public var symbol: String
    public var field: String
    public var recorded: JSONValue
    public var now: JSONValue

    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("stage", stage.rawValue)
        writer.field("symbol", symbol)
        writer.field("field", field)
        writer.field("recorded", recorded)
        writer.field("now", now)
        writer.endObject()
    }
}

/// An iteration as the journal recorded it.
public struct RecordedIteration: Sendable {
    public var id: String
    public var number: Int
    /// The seq of its `data_ready` (the account it saw is the fold before it).
    public var dataSeq: Int
    public var startedAt: Date
    public var marketData: [String: MarketData]
    public var signals: [TradingSignal] = []
    public var validated: [TradingSignal] = []
    public var approved: [TradingSignal] = []
    public var executions: [ExecutionResult] = []
}

/// Why a replay cannot run.
public struct ReplayError: Error, Sendable, Equatable, CustomStringConvertible {
    public var iterationID: String
    public var message: String
    public var description: String { message }
}

/// Replays a recorded iteration through today's agents (PROTOCOL §10): its market data, the
/// account, risk budget and trading state as they were when it started (the journal's fold before its
/// `data_ready`), always as a dry run; then lists what came out differently.
public enum IterationReplay {
    /// Reads `iterationID`'s events from the journal.
    ///
    /// - Throws: ``ReplayError`` when the journal holds no `data_ready` for it (unknown,
    ///   pruned, or started by a client from a later stage).
    public static func load(_ journal: any EventJournal, iterationID: String) throws -> RecordedIteration {
        let types = PipelineEvent.allCases.map(\.rawValue)
        let records = try journal.records(ofIteration: iterationID, types: types)
        guard let data = records.first(where: { $0.type == PipelineEvent.dataReady.rawValue }),
            let metadata = try? JSONParser.parse(data.metadata), let number = metadata["iteration"]?.intValue
        else {
            throw ReplayError(
                iterationID: iterationID,
                message: "iteration \(iterationID) is not in the journal (unknown, pruned, or without market data)")
        }
        let marketData = try PipelinePayload.decodeMarketData(try JSONParser.parse(data.data), path: "")
        var recorded = RecordedIteration(
            id: iterationID, number: number, dataSeq: data.seq, startedAt: data.timestamp, marketData: marketData)
        for record in records where record.seq > data.seq {
            guard let event = PipelineEvent(rawValue: record.type), let json = try? JSONParser.parse(record.data)
            else { continue }
            switch event {
            case .signalsReady: recorded.signals = list(json, TradingSignal.self)
            case .validatedReady: recorded.validated = list(json, TradingSignal.self)
            case .approvedReady: recorded.approved = list(json, TradingSignal.self)
            case .executedReady: recorded.executions = list(json, ExecutionResult.self)
            case .dataReady, .auditReady: break
            }
        }
        return recorded
    }

    /// The request that replays `recorded`: its market data, as a dry run, against the
    /// account and budget of the fold through the record before its `data_ready`.
    public static func request(
        for recorded: RecordedIteration, journal: any EventJournal, startingCash: Money, timeout: Duration? = nil
    ) throws -> IterationRequest {
        let (fold, _, _) = try PipelineRecovery.fold(journal, startingCash: startingCash, through: recorded.dataSeq - 1)
        var request = IterationRequest(
            symbols: recorded.marketData.keys.sorted(), marketData: recorded.marketData, dryRun: true, timeout: timeout)
        request.replay = ReplayBasis(
            of: recorded.id, account: fold.ledger.accountSnapshot,
            committedRisk: fold.committedRisk(on: recorded.startedAt),
            asOf: recorded.startedAt, tradingState: fold.tradingState ?? .initial(at: recorded.startedAt))
        return request
    }

    /// Every signal, approval and fill of `result` that differs from `recorded`.
    public static func differences(_ recorded: RecordedIteration, _ result: IterationResult) -> [ReplayDifference] {
        var differences: [ReplayDifference] = []
        func add(_ stage: PipelineStage, _ symbol: String, _ field: String, _ then: JSONValue, _ now: JSONValue) {
            guard !same(then, now) else { return }
            differences.append(ReplayDifference(stage: stage, symbol: symbol, field: field, recorded: then, now: now))
        }
        compareSignals(.strategy, recorded.signals, result.signals, fields: ["action", "confidence"], add)
        compareSignals(.quant, recorded.validated, result.validatedSignals, fields: ["action", "confidence"], add)
        // Risk: which validated signals were approved, and their size.
        let approvedThen = Dictionary(recorded.approved.map { (key($0), $0) }, uniquingKeysWith: { a, _ in a })
        let approvedNow = Dictionary(result.approvedSignals.map { (key($0), $0) }, uniquingKeysWith: { a, _ in a })
        let validatedKeys = Set(recorded.validated.map(key)).union(result.validatedSignals.map(key))
        for signalKey in validatedKeys.sorted(by: { ($0.symbol, $0.strategy) < ($1.symbol, $1.strategy) }) {
            let then = approvedThen[signalKey]
            let now = approvedNow[signalKey]
            add(.risk, signalKey.symbol, "approved", JSONValue(then != nil), JSONValue(now != nil))
            if let then, let now {
                add(.risk, signalKey.symbol, "qty", value(then.qty), value(now.qty))
            }
        }
        // Execution: the fill each order got then, and would get now.
        let fillsThen = Dictionary(recorded.executions.map { ($0.signal.symbol, $0) }, uniquingKeysWith: { a, _ in a })
        let fillsNow = Dictionary(
            result.executionResults.map { ($0.signal.symbol, $0) }, uniquingKeysWith: { a, _ in a })
        for symbol in Set(fillsThen.keys).union(fillsNow.keys).sorted() {
            guard let then = fillsThen[symbol], let now = fillsNow[symbol] else {
                add(
                    .execution, symbol, "fill", fillsThen[symbol].map(fillSummary) ?? .null,
                    fillsNow[symbol].map(fillSummary) ?? .null)
                continue
            }
            add(.execution, symbol, "side", value(then.side?.rawValue), value(now.side?.rawValue))
            add(.execution, symbol, "quantity", value(then.quantity), value(now.quantity))
            add(.execution, symbol, "fill_price", value(then.fillPrice), value(now.fillPrice))
            add(.execution, symbol, "error", value(then.error), value(now.error))
        }
        return differences
    }

    private struct SignalKey: Hashable {
        var symbol: String
        var strategy: String
    }

    private static func key(_ signal: TradingSignal) -> SignalKey {
        SignalKey(symbol: signal.symbol, strategy: signal.strategyName)
    }

    private static func compareSignals(
        _ stage: PipelineStage, _ then: [TradingSignal], _ now: [TradingSignal], fields: [String],
        _ add: (PipelineStage, String, String, JSONValue, JSONValue) -> Void
    ) {
        let before = Dictionary(then.map { (key($0), $0) }, uniquingKeysWith: { a, _ in a })
        let after = Dictionary(now.map { (key($0), $0) }, uniquingKeysWith: { a, _ in a })
        for signalKey in Set(before.keys).union(after.keys).sorted(by: {
            ($0.symbol, $0.strategy) < ($1.symbol, $1.strategy)
        }) {
            guard let a = before[signalKey], let b = after[signalKey] else {
                add(
                    stage, signalKey.symbol, "signal", before[signalKey].map(signalSummary) ?? .null,
                    after[signalKey].map(signalSummary) ?? .null)
                continue
            }
            for field in fields {
                switch field {
                case "action":
                    add(stage, signalKey.symbol, field, JSONValue(a.action.rawValue), JSONValue(b.action.rawValue))
                default: add(stage, signalKey.symbol, field, JSONValue(a.confidence), JSONValue(b.confidence))
                }
            }
        }
    }

    private static func signalSummary(_ signal: TradingSignal) -> JSONValue {
        [
            "action": JSONValue(signal.action.rawValue), "strategy_name": JSONValue(signal.strategyName),
            "confidence": JSONValue(signal.confidence),
        ]
    }

    private static func fillSummary(_ result: ExecutionResult) -> JSONValue {
        [
            "side": value(result.side?.rawValue), "quantity": value(result.quantity),
            "fill_price": value(result.fillPrice),
        ]
    }

    private static func value(_ double: Double?) -> JSONValue { double.map { JSONValue($0) } ?? .null }
    private static func value(_ int: Int?) -> JSONValue { int.map { JSONValue($0) } ?? .null }
    private static func value(_ string: String?) -> JSONValue { string.map { JSONValue($0) } ?? .null }

    /// Equal JSON, numbers within 1e-9 (a recorded double reads back exactly, but a
    /// recomputation may differ in the last bit).
    private static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue { return abs(x - y) <= 1e-9 * max(1, abs(x), abs(y)) }
        return a == b
    }

    private static func list<T: JSONDecodable>(_ json: JSONValue, _ type: T.Type) -> [T] {
        (json.arrayValue ?? []).enumerated().compactMap { index, item in try? T(json: item, path: "/\(index)") }
    }
}
