/// Every tunable of the trading module, with the PROTOCOL/ARCHITECTURE defaults.
///
/// The pipeline fills it from flags, environment (the original's names: `RISK_*`,
/// `QUANT_*`) and the config file; the trading module only reads it.
public struct TradingConfig: Sendable, Equatable {
    /// Fraction of equity at risk per trade (RISK_MAX_PER_TRADE).
    public var riskMaxPerTrade = 0.02
    /// Fraction of equity that may be committed as risk per UTC day (RISK_MAX_DAILY_LOSS).
    public var riskMaxDailyLoss = 0.05
    /// Signals below this confidence are rejected (RISK_MIN_CONFIDENCE).
    public var riskMinConfidence = 0.3
    /// Largest order size in shares (RISK_MAX_QTY).
    public var riskMaxQty = 1000
    /// Largest share of equity one position may reach through a BUY, in (0, 1]
    /// (RISK_MAX_POSITION_PCT).
    public var riskMaxPositionPct = 0.20
    /// Balance used when the broker's equity is not a positive finite number (RISK_DEFAULT_ACCOUNT_BALANCE).
    public var riskDefaultAccountBalance = 10_000.0
    /// Annualised Sharpe below which quant scales confidence down (QUANT_MIN_SHARPE).
    public var quantMinSharpe = 0.8
    /// Maximum drawdown above which quant scales confidence down (QUANT_MAX_DRAWDOWN).
    public var quantMaxDrawdown = 0.15
    /// `regime` (default) or `fixed:NAME`.
    public var strategySelector: StrategySelector = .regime
    /// Paper-broker slippage in basis points: buys fill higher, sells lower.
    public var slippageBps = 5.0
    /// Paper-broker commission in dollars per share.
    public var commissionPerShare = 0.005
    /// Paper-broker starting cash in dollars.
    public var startingCash = 100_000.0
    /// Whether the paper broker accepts sells beyond the position held.
    public var allowShorting = false
    /// Daily bars fetched per symbol.
    public var barsPerSymbol = 252
    /// How long fetched market data is reused, in seconds (0 disables the cache).
    public var dataCacheTTLSeconds = 60.0

    public init() {}
}
