import Foundation
import TradewireTrading

/// What one iteration should do (the parameters of `run_pipeline`).
public struct IterationRequest: Sendable {
    /// Most symbols one iteration takes (`run_pipeline` with more → -32602).
    public static let maximumSymbols = 10_000

    /// Symbols to fetch; nil means the configured list (or `marketData`'s keys when given).
    public var symbols: [String]?
    /// Market data supplied by the caller: the data stage uses it instead of the provider.
    public var marketData: [String: MarketData]?
    /// Replaces the strategy selector for this iteration.
    public var strategy: StrategyName?
    /// Nothing reaches the broker and no portfolio or risk-budget state changes.
    public var dryRun: Bool
    /// Deadline; nil means the configured default (300 s).
    public var timeout: Duration?
    /// Started by the continuous loop (its events carry `metadata.loop`, so recovery can
    /// count loop iterations).
    public var fromLoop = false
    /// Replays a recorded iteration (always a dry run): the account and the day it saw.
    public var replay: ReplayBasis?

    public init(
        symbols: [String]? = nil, marketData: [String: MarketData]? = nil, strategy: StrategyName? = nil,
        dryRun: Bool = false, timeout: Duration? = nil
    ) {
        self.symbols = symbols
        self.marketData = marketData
        self.strategy = strategy
        self.dryRun = dryRun
        self.timeout = timeout
    }
}

/// What a replayed iteration runs against: the account as it was when the recorded iteration
/// started (PROTOCOL §10), rebuilt from the journal.
public struct ReplayBasis: Sendable {
    /// The recorded iteration's id.
    public var of: String
    /// The books then (cash, positions, marks).
    public var account: AccountSnapshot
    /// Risk committed that day before the iteration.
    public var committedRisk: Double
    /// When the recorded iteration started (its risk-budget day).
    public var asOf: Date
    /// The trading state then (PROTOCOL §12).
    public var tradingState: TradingStateSnapshot?

    public init(
        of: String, account: AccountSnapshot, committedRisk: Double, asOf: Date,
        tradingState: TradingStateSnapshot? = nil
    ) {
        self.of = of
        self.account = account
        self.committedRisk = committedRisk
        self.asOf = asOf
        self.tradingState = tradingState
    }
}
