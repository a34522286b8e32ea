import Foundation
import TradewireJSON

/// The counts of one pipeline iteration, handed to ``AuditAgent``.
///
/// JSON: `{"iteration_number", "timestamp", "symbols_processed", "signals_generated",
/// "signals_validated", "signals_approved", "signals_executed", "execution_results", "errors",
/// "duration_seconds"}`. Decoding requires `iteration_number`; counts default to 0, lists to
/// empty, `timestamp` to now.
public struct IterationSummary: Sendable, JSONModel {
    public var iterationNumber: Int
    public var timestamp: Date
    public var symbolsProcessed: [String]
    public var signalsGenerated: Int
    public var signalsValidated: Int
    /// Approved signals, HOLD included.
    public var signalsApproved: Int
    /// Results with `executed: true`.
    public var signalsExecuted: Int
    public var executionResults: [ExecutionResult]
    public var errors: [String]
    public var durationSeconds: Double

    public init(
        iterationNumber: Int, timestamp: Date, symbolsProcessed: [String] = [], signalsGenerated: Int = 0,
        signalsValidated: Int = 0, signalsApproved: Int = 0, signalsExecuted: Int = 0,
        executionResults: [ExecutionResult] = [], errors: [String] = [], durationSeconds: Double = 0
    ) {
        self.iterationNumber = iterationNumber
        self.timestamp = timestamp
        self.symbolsProcessed = symbolsProcessed
        self.signalsGenerated = signalsGenerated
        self.signalsValidated = signalsValidated
        self.signalsApproved = signalsApproved
        self.signalsExecuted = signalsExecuted
        self.executionResults = executionResults
        self.errors = errors
        self.durationSeconds = durationSeconds
    }

    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("iteration_number", iterationNumber)
        writer.field("timestamp", timestamp)
        writer.field("symbols_processed", symbolsProcessed)
        writer.field("signals_generated", signalsGenerated)
        writer.field("signals_validated", signalsValidated)
        writer.field("signals_approved", signalsApproved)
        writer.field("signals_executed", signalsExecuted)
        writer.field("execution_results", executionResults)
        writer.field("errors", errors)
        writer.field("duration_seconds", durationSeconds)
        writer.endObject()
    }

    public init(json: JSONValue, path: String) throws(JSONDecodingError) {
        let r = try JSONObjectReader(json, path: path)
        iterationNumber = try r.int("iteration_number")
        timestamp = try r.optionalDate("timestamp") ?? Date()
        let symbols = try r.optionalArray("symbols_processed") ?? []
        var names: [String] = []
        for (i, v) in symbols.enumerated() {
            guard case .string(let s) = v else {
                throw JSONDecodingError(
                    path: jsonPointer(r.pointer("symbols_processed"), i), message: "expected a string")
            }
            names.append(s)
        }
        symbolsProcessed = names
        signalsGenerated = try r.optionalInt("signals_generated") ?? 0
        signalsValidated = try r.optionalInt("signals_validated") ?? 0
        signalsApproved = try r.optionalInt("signals_approved") ?? 0
        signalsExecuted = try r.optionalInt("signals_executed") ?? 0
        executionResults =
            r.value("execution_results") == nil ? [] : try r.decodeArray(ExecutionResult.self, "execution_results")
        let errorValues = try r.optionalArray("errors") ?? []
        var messages: [String] = []
        for (i, v) in errorValues.enumerated() {
            guard case .string(let s) = v else {
                throw JSONDecodingError(path: jsonPointer(r.pointer("errors"), i), message: "expected a string")
            }
            messages.append(s)
        }
        errors = messages
        durationSeconds = try r.optionalDouble("duration_seconds") ?? 0
    }
}
