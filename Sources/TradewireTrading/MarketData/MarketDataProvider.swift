import Foundation

/// A source of daily bars.
public protocol MarketDataProvider: Sendable {
    /// A short name for logs (`simulated`, `csv:DIR`).
    var name: String { get }
    /// Up to `bars` daily bars for `symbol` (an already normalised symbol), oldest first,
    /// ending on or before the UTC day of `asOf`.
    func marketData(for symbol: String, bars: Int, asOf: Date) async throws -> MarketData
}
