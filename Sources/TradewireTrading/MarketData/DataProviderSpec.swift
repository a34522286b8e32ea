/// Which market-data provider to use: `simulated` (default) or `csv:DIR`.
public enum DataProviderSpec: Equatable, Sendable, CustomStringConvertible {
    case simulated
    case csv(directory: String)

    /// Parses `simulated` or `csv:DIR` (DIR non-empty); nil for anything else.
    public init?(parsing text: String) {
        let trimmed = text.trimmingASCIIWhitespace()
        if trimmed.lowercased() == "simulated" {
            self = .simulated
            return
        }
        guard trimmed.lowercased().hasPrefix("csv:") else { return nil }
        let directory = String(trimmed.dropFirst(4))
        guard !directory.isEmpty else { return nil }
        self = .csv(directory: directory)
    }

    /// The provider; `seed` is used by the simulated one.
    public func makeProvider(seed: UInt64) -> any MarketDataProvider {
        switch self {
        case .simulated: SimulatedMarketDataProvider(seed: seed)
        case .csv(let directory): CSVMarketDataProvider(directory: directory)
        }
    }

    /// `simulated` or `csv:DIR` (round-trips through ``init(parsing:)``).
    public var description: String {
        switch self {
        case .simulated: "simulated"
        case .csv(let directory): "csv:\(directory)"
        }
    }
}
