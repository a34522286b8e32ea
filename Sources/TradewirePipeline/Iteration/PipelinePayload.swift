import TradewireBus
import TradewireJSON
import TradewireTrading

/// The typed data of a pipeline event. In-process stages read it directly; remote
/// subscribers and history get its JSON (the shapes of PROTOCOL §4).
public enum PipelinePayload: EventPayload, Equatable {
    case marketData([String: MarketData])
    case signals([TradingSignal])
    case executions([ExecutionResult])
    case audit(AuditReport)

    public var jsonTypeName: String {
        switch self {
        case .marketData, .audit: "object"
        case .signals, .executions: "array"
        }
    }

    /// Rough sizes per element, measured on simulated data (used only for outbound budgets).
    public var estimatedJSONBytes: Int {
        switch self {
        case .marketData(let bySymbol): bySymbol.values.reduce(2) { $0 + 96 + $1.bars.count * 130 }
        case .signals(let signals): 2 + signals.count * 480
        case .executions(let results): 2 + results.count * 700
        case .audit: 700
        }
    }

    public func encodeJSON(to writer: inout JSONWriter) {
        switch self {
        case .marketData(let bySymbol):
            writer.beginObject()
            for symbol in bySymbol.keys.sorted() {
                writer.field(symbol, bySymbol[symbol]!)
            }
            writer.endObject()
        case .signals(let signals): writer.write(signals)
        case .executions(let results): writer.write(results)
        case .audit(let report): writer.write(report)
        }
    }

    /// Decodes a client's data for a pipeline event type, with JSON Pointer paths on error.
    /// Market data keys are upper-cased and must be valid symbols; each `symbol` field is
    /// set from its key.
    public static func decode(_ event: PipelineEvent, from json: JSONValue) throws(JSONDecodingError) -> PipelinePayload
    {
        switch event {
        case .dataReady:
            return .marketData(try decodeMarketData(json, path: "/data"))
        case .signalsReady, .validatedReady, .approvedReady:
            return .signals(try decodeJSONArray(json, path: "/data"))
        case .executedReady:
            return .executions(try decodeJSONArray(json, path: "/data"))
        case .auditReady:
            return .audit(try AuditReport(json: json, path: "/data"))
        }
    }

    /// `{SYMBOL: MarketData}` with symbol validation.
    public static func decodeMarketData(_ json: JSONValue, path: String) throws(JSONDecodingError) -> [String:
        MarketData]
    {
        let reader = try JSONObjectReader(json, path: path)
        var result: [String: MarketData] = [:]
        for member in reader.object {
            let memberPath = reader.pointer(member.key)
            let symbol: String
            do { symbol = try SymbolValidation.normalize(member.key) } catch {
                throw JSONDecodingError(path: memberPath, message: error.description)
            }
            var data = try MarketData(json: member.value, path: memberPath)
            data.symbol = symbol
            result[symbol] = data
        }
        return result
    }
}
