import Logging
import TradewireTrading

/// The six agents of one pipeline and the state they share (broker, risk budget, audit log,
/// the kill switch).
public struct TradingAgents: Sendable {
    public let data: DataAgent
    public let strategy: StrategyAgent
    public let quant: QuantAgent
    public let risk: RiskAgent
    public let execution: ExecutionAgent
    public let audit: AuditAgent
    public let broker: PaperBroker
    public let riskBudget: RiskBudget
    public let auditLog: AuditLog
    /// The trading state risk enforces (PROTOCOL §12).
    public let tradingSwitch: TradingSwitch

    /// Builds a fresh set of agents with their own broker, budget and audit log.
    ///
    /// - Parameter orderIDPrefix: the start of the broker's order ids (the daemon makes it
    ///   unique per start).
    public init(
        config: TradingConfig, provider: any MarketDataProvider, logger: Logger, orderIDPrefix: String = "paper"
    ) {
        broker = PaperBroker(
            startingCash: config.startingCash, slippageBps: config.slippageBps,
            commissionPerShare: config.commissionPerShare, allowShorting: config.allowShorting,
            orderIDPrefix: orderIDPrefix)
        riskBudget = RiskBudget()
        auditLog = AuditLog()
        tradingSwitch = TradingSwitch()
        data = DataAgent(
            provider: provider, barsPerSymbol: config.barsPerSymbol, cacheTTLSeconds: config.dataCacheTTLSeconds,
            logger: logger)
        strategy = StrategyAgent(selector: config.strategySelector, logger: logger)
        quant = QuantAgent(minSharpe: config.quantMinSharpe, maxDrawdown: config.quantMaxDrawdown, logger: logger)
        risk = RiskAgent(config: config, budget: riskBudget, logger: logger)
        execution = ExecutionAgent(broker: broker, budget: riskBudget, logger: logger)
        audit = AuditAgent(log: auditLog, logger: logger)
    }
}
