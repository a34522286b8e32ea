import Foundation
import TradewireJSON
import TradewireTrading

/// A configuration value that could not be used, named by where it came from.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// e.g. `SYMBOLS`, `config file key risk_max_qty`.
    public let source: String
    public let message: String
    public var description: String { "\(source): \(message)" }
}

/// Everything the pipeline needs to know, layered: defaults, then a JSON config file, then
/// the original system's environment variables (then, in the daemon, command-line flags).
public struct PipelineConfiguration: Sendable, Equatable {
    public var symbols = ["AAPL", "MSFT", "GOOGL"]
    public var loopIntervalSeconds = 60.0
    public var mode = OrchestratorMode.async
    public var dataProvider = DataProviderSpec.simulated
    public var seed: UInt64 = 42
    public var iterationTimeoutSeconds = 300.0
    public var historyCapacity = 1000
    public var trading = TradingConfig()
    /// When the kill switch halts trading by itself (default: never).
    public var haltTriggers = HaltTriggers()

    /// Smallest loop interval accepted.
    public static let minimumLoopInterval = 0.1
    /// Largest loop interval accepted (one day).
    public static let maximumLoopInterval = 86_400.0

    public init() {}

    /// Environment variables read, with the config-file key of the same meaning.
    public static let environmentKeys: [(env: String, key: String)] = [
        ("SYMBOLS", "symbols"), ("LOOP_INTERVAL_SECONDS", "loop_interval_seconds"),
        ("USE_ASYNC_ORCHESTRATOR", "use_async_orchestrator"), ("RISK_MAX_PER_TRADE", "risk_max_per_trade"),
        ("RISK_MAX_DAILY_LOSS", "risk_max_daily_loss"), ("RISK_MIN_CONFIDENCE", "risk_min_confidence"),
        ("RISK_MAX_QTY", "risk_max_qty"), ("RISK_DEFAULT_ACCOUNT_BALANCE", "risk_default_account_balance"),
        ("RISK_MAX_POSITION_PCT", "risk_max_position_pct"),
        ("QUANT_MIN_SHARPE", "quant_min_sharpe"), ("QUANT_MAX_DRAWDOWN", "quant_max_drawdown"),
        ("HALT_ON_DRAWDOWN_PCT", "halt_on_drawdown_pct"), ("HALT_ON_ERRORS", "halt_on_errors"),
    ]

    /// Keys a config file may hold: the environment names in lower case, plus the rest.
    public static let fileKeys: Set<String> = Set(environmentKeys.map(\.key)).union([
        "mode", "data_provider", "seed", "iteration_timeout_seconds", "history_capacity", "strategy_selector",
        "slippage_bps", "commission_per_share", "starting_cash", "allow_shorting", "bars_per_symbol",
    ])

    /// Defaults, overlaid by `configFile` (if any), overlaid by `environment`.
    public static func load(configFile: String?, environment: [String: String]) throws(ConfigurationError)
        -> PipelineConfiguration
    {
        var configuration = PipelineConfiguration()
        if let configFile { try configuration.apply(configFile: configFile) }
        try configuration.apply(environment: environment)
        return configuration
    }

    /// Applies a JSON config file: an object whose keys are ``fileKeys``.
    public mutating func apply(configFile path: String) throws(ConfigurationError) {
        let source = "config file \(path)"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(source: source, message: "cannot be read")
        }
        let json: JSONValue
        do { json = try JSONParser.parse(data) } catch {
            throw ConfigurationError(source: source, message: "not valid JSON: \(error)")
        }
        guard case .object(let object) = json else {
            throw ConfigurationError(source: source, message: "must be a JSON object")
        }
        for member in object {
            guard Self.fileKeys.contains(member.key) else {
                throw ConfigurationError(
                    source: source,
                    message: "unknown key \"\(member.key)\" (known: \(Self.fileKeys.sorted().joined(separator: ", ")))")
            }
            let text: String
            switch member.value {
            case .string(let s): text = s
            case .number(let n): text = n.text
            case .bool(let b): text = b ? "true" : "false"
            case .array(let items):
                guard member.key == "symbols", let strings = items.map(\.stringValue) as? [String] else {
                    throw ConfigurationError(source: "\(source) key \(member.key)", message: "unexpected array")
                }
                text = strings.joined(separator: ",")
            default:
                throw ConfigurationError(
                    source: "\(source) key \(member.key)", message: "unexpected \(member.value.typeName)")
            }
            try set(member.key, text, source: "\(source) key \(member.key)")
        }
    }

    /// Applies the original system's environment variables that are present.
    public mutating func apply(environment: [String: String]) throws(ConfigurationError) {
        for (env, key) in Self.environmentKeys {
            guard let value = environment[env], !value.isEmpty else { continue }
            try set(key, value, source: env)
        }
    }

    /// Sets one setting from text (the shared parser for files, environment and flags).
    public mutating func set(_ key: String, _ text: String, source: String) throws(ConfigurationError) {
        func number(_ range: ClosedRange<Double>) throws(ConfigurationError) -> Double {
            guard let value = Double(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
                throw ConfigurationError(
                    source: source,
                    message: "expected a number in \(range.lowerBound)...\(range.upperBound), got \"\(text)\"")
            }
            return value
        }
        func integer(_ range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
                throw ConfigurationError(
                    source: source,
                    message: "expected an integer in \(range.lowerBound)...\(range.upperBound), got \"\(text)\"")
            }
            return value
        }
        func flag() throws(ConfigurationError) -> Bool {
            switch text.trimmingCharacters(in: .whitespaces).lowercased() {
            case "true", "1", "yes", "on": return true
            case "false", "0", "no", "off": return false
            default: throw ConfigurationError(source: source, message: "expected true or false, got \"\(text)\"")
            }
        }
        switch key {
        case "symbols": symbols = try Self.parseSymbols(text, source: source)
        case "loop_interval_seconds":
            loopIntervalSeconds = try number(Self.minimumLoopInterval...Self.maximumLoopInterval)
        case "use_async_orchestrator":
            // The original compared case-insensitively with "true": anything else meant sync.
            mode = text.trimmingCharacters(in: .whitespaces).lowercased() == "true" ? .async : .sync
        case "mode":
            guard let parsed = OrchestratorMode(rawValue: text.lowercased()) else {
                throw ConfigurationError(source: source, message: "expected async or sync, got \"\(text)\"")
            }
            mode = parsed
        case "risk_max_per_trade": trading.riskMaxPerTrade = try number(0.0001...1)
        case "risk_max_daily_loss": trading.riskMaxDailyLoss = try number(0.0001...1)
        case "risk_min_confidence": trading.riskMinConfidence = try number(0...1)
        case "risk_max_qty": trading.riskMaxQty = try integer(1...1_000_000)
        case "risk_default_account_balance": trading.riskDefaultAccountBalance = try number(1...1e12)
        case "risk_max_position_pct":
            // 0 < x ≤ 1: the share of equity one position may reach.
            let value = try number(0...1)
            guard value > 0 else {
                throw ConfigurationError(source: source, message: "expected a number in (0, 1], got \"\(text)\"")
            }
            trading.riskMaxPositionPct = value
        case "quant_min_sharpe": quantMinSharpe = try number(0.0001...100)
        case "quant_max_drawdown": trading.quantMaxDrawdown = try number(0.0001...1)
        case "data_provider":
            guard let spec = DataProviderSpec(parsing: text) else {
                throw ConfigurationError(source: source, message: "expected simulated or csv:DIR, got \"\(text)\"")
            }
            if case .csv(let directory) = spec {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory),
                    isDirectory.boolValue
                else {
                    throw ConfigurationError(
                        source: source,
                        message:
                            "the csv: directory \(directory) does not exist (it should hold one SYMBOL.csv per symbol)")
                }
            }
            dataProvider = spec
        case "seed":
            guard let value = UInt64(text.trimmingCharacters(in: .whitespaces)) else {
                throw ConfigurationError(source: source, message: "expected a non-negative integer, got \"\(text)\"")
            }
            seed = value
        case "iteration_timeout_seconds": iterationTimeoutSeconds = try number(0.001...3600)
        case "history_capacity": historyCapacity = try integer(1...10_000_000)
        case "strategy_selector":
            guard let selector = StrategySelector(parsing: text) else {
                throw ConfigurationError(
                    source: source,
                    message: "expected regime or fixed:NAME (one of the ten strategies), got \"\(text)\"")
            }
            trading.strategySelector = selector
        case "slippage_bps": trading.slippageBps = try number(0...1000)
        case "commission_per_share": trading.commissionPerShare = try number(0...100)
        case "starting_cash": trading.startingCash = try number(1...1e12)
        case "allow_shorting": trading.allowShorting = try flag()
        case "bars_per_symbol": trading.barsPerSymbol = try integer(2...10_000)
        case "halt_on_drawdown_pct":
            // 0 < x ≤ 100: percent below the running peak of equity.
            let value = try number(0...100)
            guard value > 0 else {
                throw ConfigurationError(source: source, message: "expected a number in (0, 100], got \"\(text)\"")
            }
            haltTriggers.drawdownPercent = value
        case "halt_on_errors": haltTriggers.errorIterations = try integer(1...HaltTriggers.maximumErrorIterations)
        default: throw ConfigurationError(source: source, message: "unknown setting \(key)")
        }
    }

    private var quantMinSharpe: Double {
        get { trading.quantMinSharpe }
        set { trading.quantMinSharpe = newValue }
    }

    /// Comma-separated symbols: stripped, upper-cased, validated, de-duplicated.
    public static func parseSymbols(_ text: String, source: String) throws(ConfigurationError) -> [String] {
        var result: [String] = []
        for raw in text.split(separator: ",") {
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { continue }
            do {
                let symbol = try SymbolValidation.normalize(trimmed)
                if !result.contains(symbol) { result.append(symbol) }
            } catch {
                throw ConfigurationError(source: source, message: error.description)
            }
        }
        guard !result.isEmpty else { throw ConfigurationError(source: source, message: "no symbols") }
        return result
    }
}
