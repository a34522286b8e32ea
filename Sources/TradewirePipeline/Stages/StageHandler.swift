import Foundation
import TradewireJSON
import TradewireTrading

/// How a stage handler takes part in its stage (PROTOCOL §9).
public enum StageMode: String, Sendable, CaseIterable {
    /// Receives the stage's output and returns a revised one.
    case after
    /// Produces the stage's output instead of the built-in agent.
    case replace
}

/// What a failed call means for the stage's output.
public enum StageFailurePolicy: String, Sendable, CaseIterable {
    /// The output stays as it was before the handler (replace: empty, each symbol an error).
    case skip
    /// Replace handlers only: the built-in agent produces the output.
    case fallback
    /// Risk rejects every non-HOLD signal; execution marks every order not executed; other
    /// stages behave as ``skip``.
    case failClosed = "fail_closed"

    /// The default for a stage: `fail_closed` for risk and execution, `skip` for the others.
    public static func defaultPolicy(for stage: PipelineStage) -> StageFailurePolicy {
        stage == .risk || stage == .execution ? .failClosed : .skip
    }
}

/// Why a call failed (`reason` of `stage_failed`, `outcome` of a handler record).
public enum StageFailureReason: String, Sendable, CaseIterable {
    case timeout, error, malformed, disconnected
    case noMember = "no_member"
}

/// A failed call: its reason and a human-readable message.
public struct StageFailure: Error, Sendable, Equatable {
    public var reason: StageFailureReason
    public var message: String

    public init(_ reason: StageFailureReason, _ message: String) {
        self.reason = reason
        self.message = message
    }
}

/// A stage's value: what the stage produces and what `after` handlers revise.
public enum StageValue: Sendable, Equatable {
    case marketData([String: MarketData])
    case signals([TradingSignal])
    case executions([ExecutionResult])

    /// Decodes a handler's result for `stage`, with the checks a client's published pipeline
    /// data gets (PROTOCOL §8); a problem throws with the member's JSON Pointer path.
    public static func decode(_ json: JSONValue, for stage: PipelineStage) throws(JSONDecodingError) -> StageValue {
        switch stage {
        case .data: return .marketData(try PipelinePayload.decodeMarketData(json, path: ""))
        case .strategy, .quant, .risk: return .signals(try decodeJSONArray(json, path: ""))
        case .execution: return .executions(try decodeJSONArray(json, path: ""))
        case .none, .audit: throw JSONDecodingError(path: "", message: "stage \(stage.rawValue) takes no handler")
        }
    }
}

extension StageValue: JSONEncodable {
    public func encodeJSON(to writer: inout JSONWriter) {
        switch self {
        case .marketData(let bySymbol): PipelinePayload.marketData(bySymbol).encodeJSON(to: &writer)
        case .signals(let signals): writer.write(signals)
        case .executions(let results): writer.write(results)
        }
    }
}

/// A stage's input (the `input` of a remote call, PROTOCOL §9).
public enum StageInput: Sendable, Equatable {
    /// data: the symbols to fetch.
    case symbols([String])
    /// strategy: market data per symbol.
    case marketData([String: MarketData])
    /// quant: the strategy's signals and the market data behind them.
    case signalsAndMarketData([TradingSignal], [String: MarketData])
    /// risk (validated signals) and execution (approved, non-HOLD signals).
    case signals([TradingSignal])

    /// True when a handler has nothing to work on (a group other than data is then not called).
    public var isEmpty: Bool {
        switch self {
        case .symbols: false
        case .marketData(let data): data.isEmpty
        case .signalsAndMarketData(let signals, _), .signals(let signals): signals.isEmpty
        }
    }
}

extension StageInput: JSONEncodable {
    public func encodeJSON(to writer: inout JSONWriter) {
        switch self {
        case .symbols(let symbols):
            writer.beginObject()
            writer.field("symbols", symbols)
            writer.endObject()
        case .marketData(let data): PipelinePayload.marketData(data).encodeJSON(to: &writer)
        case .signalsAndMarketData(let signals, let data):
            writer.beginObject()
            writer.field("signals", signals)
            writer.key("market_data")
            PipelinePayload.marketData(data).encodeJSON(to: &writer)
            writer.endObject()
        case .signals(let signals):
            writer.beginObject()
            writer.field("signals", signals)
            writer.endObject()
        }
    }
}

/// The account a risk or execution handler sees: `{"cash", "equity", "positions",
/// "risk_budget": {"day", "used", "limit"}}`.
public struct StageAccount: Sendable, Equatable, JSONEncodable {
    public var cash: Double
    public var equity: Double
    public var positions: [String: Int]
    /// The UTC trading day of the budget, `YYYY-MM-DD`.
    public var budgetDay: String
    public var budgetUsed: Double
    public var budgetLimit: Double

    public init(
        cash: Double, equity: Double, positions: [String: Int], budgetDay: String, budgetUsed: Double,
        budgetLimit: Double
    ) {
        self.cash = cash
        self.equity = equity
        self.positions = positions
        self.budgetDay = budgetDay
        self.budgetUsed = budgetUsed
        self.budgetLimit = budgetLimit
    }

    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("cash", cash)
        writer.field("equity", equity)
        writer.key("positions")
        writer.beginObject()
        for symbol in positions.keys.sorted() { writer.field(symbol, positions[symbol]!) }
        writer.endObject()
        writer.key("risk_budget")
        writer.beginObject()
        writer.field("day", budgetDay)
        writer.field("used", budgetUsed)
        writer.field("limit", budgetLimit)
        writer.endObject()
        writer.endObject()
    }
}

/// One call to a stage handler.
public struct StageCall: Sendable {
    public var stage: PipelineStage
    public var iteration: Int
    public var iterationID: String
    /// The iteration's deadline; a handler must answer before it (and before its own timeout).
    public var deadline: ContinuousClock.Instant
    /// The same deadline on the wall clock (`deadline` of the remote call, RFC 3339).
    public var deadlineDate: Date
    public var dryRun: Bool
    public var input: StageInput
    /// The output so far (`after` handlers); nil for `replace`.
    public var output: StageValue?
    /// Risk and execution only.
    public var account: StageAccount?

    public init(
        stage: PipelineStage, iteration: Int, iterationID: String, deadline: ContinuousClock.Instant,
        deadlineDate: Date, dryRun: Bool, input: StageInput, output: StageValue?, account: StageAccount?
    ) {
        self.stage = stage
        self.iteration = iteration
        self.iterationID = iterationID
        self.deadline = deadline
        self.deadlineDate = deadlineDate
        self.dryRun = dryRun
        self.input = input
        self.output = output
        self.account = account
    }

    /// Writes the call's fields after the handler's own (`registration`, `name`, `mode`):
    /// `stage, iteration, iteration_id, deadline, dry_run, input, output?, account?`.
    public func encodeFields(to writer: inout JSONWriter) {
        writer.field("stage", stage.rawValue)
        writer.field("iteration", iteration)
        writer.field("iteration_id", iterationID)
        writer.field("deadline", deadlineDate)
        writer.field("dry_run", dryRun)
        writer.key("input")
        input.encodeJSON(to: &writer)
        if let output {
            writer.key("output")
            output.encodeJSON(to: &writer)
        }
        if let account {
            writer.field("account", account)
        }
    }
}

/// What a handler produced: the stage's (revised) value and the per-symbol problems it met.
public struct StageReply: Sendable {
    public var value: StageValue
    public var errors: [StageError]

    public init(_ value: StageValue, errors: [StageError] = []) {
        self.value = value
        self.errors = errors
    }
}

/// One participant in a stage: a built-in agent or a remote group of handlers.
///
/// The pipeline calls a stage's `replace` handler (or its built-in agent), then its `after`
/// handlers in registration order, each seeing the previous output. It applies the
/// handler's ``onFailure`` policy when a call fails, enforces that risk only tightens, and
/// checks every result; a handler only has to answer the call.
public protocol StageHandler: Sendable {
    var stage: PipelineStage { get }
    var name: String { get }
    var mode: StageMode { get }
    var onFailure: StageFailurePolicy { get }
    /// Answers one call. A handler that is cancelled (the iteration was abandoned) should
    /// return promptly; its result is then ignored.
    func handle(_ call: StageCall) async -> Result<StageReply, StageFailure>
}

/// The remote handlers attached to one stage.
public struct StageHandlers: Sendable {
    public var replace: (any StageHandler)?
    public var after: [any StageHandler]

    public init(replace: (any StageHandler)? = nil, after: [any StageHandler] = []) {
        self.replace = replace
        self.after = after
    }

    public static let none = StageHandlers()
}

/// Where the pipeline finds the handlers of each stage (the daemon's stage registry).
public protocol StageHandlerSource: Sendable {
    /// The handlers of `stage` now; read once per stage per iteration.
    func handlers(for stage: PipelineStage) -> StageHandlers
}

/// No handlers: every stage runs its built-in agent alone.
public struct NoStageHandlers: StageHandlerSource {
    public init() {}
    public func handlers(for stage: PipelineStage) -> StageHandlers { .none }
}

/// One handler call in an iteration (`handlers` of the run result).
public struct HandlerCallRecord: Sendable, Equatable, JSONEncodable {
    public var stage: PipelineStage
    public var name: String
    public var mode: StageMode
    public var durationMilliseconds: Double
    /// nil when the call succeeded.
    public var failure: StageFailure?

    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("stage", stage.rawValue)
        writer.field("name", name)
        writer.field("mode", mode.rawValue)
        writer.field("duration_ms", durationMilliseconds)
        writer.field("outcome", failure?.reason.rawValue ?? "ok")
        if let failure { writer.field("message", failure.message) }
        writer.endObject()
    }
}
