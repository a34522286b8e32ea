/// How ``StrategyAgent`` picks a strategy per symbol.
public enum StrategySelector: Sendable, Hashable, CustomStringConvertible {
    /// The deterministic market-regime mapping (``RegimeSelector``), the default.
    case regime
    /// Always this strategy (symbols with too few bars for it fail with "insufficient data").
    case fixed(StrategyName)

    /// Parses `regime` or `fixed:NAME` (NAME: one of the ten names or a legacy alias, any case).
    public init?(parsing text: String) {
        let trimmed = text.trimmingASCIIWhitespace()
        if trimmed.lowercased() == "regime" {
            self = .regime
            return
        }
        guard trimmed.lowercased().hasPrefix("fixed:") else { return nil }
        guard let name = StrategyName(lenient: String(trimmed.dropFirst("fixed:".count))) else { return nil }
        self = .fixed(name)
    }

    /// `regime` or `fixed:NAME` (round-trips through ``init(parsing:)``).
    public var description: String {
        switch self {
        case .regime: "regime"
        case .fixed(let name): "fixed:\(name.rawValue)"
        }
    }
}
