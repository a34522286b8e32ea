import Foundation
import Logging
import Testing
import TradewireJSON

@testable import TradewireTrading

/// A logger that drops everything.
let quietLogger = Logger(label: "tradewire.trading.tests", factory: { _ in SwiftLogNoOpLogHandler() })

/// 2024-03-01T00:00:00Z (a Friday).
let baseDate = Date(timeIntervalSince1970: 1_709_251_200)

/// A UTC date from `YYYY-MM-DD` or RFC 3339 text.
func utc(_ text: String) -> Date {
    guard let date = RFC3339.date(from: text) else { fatalError("bad date \(text) in a test") }
    return date
}

/// Bars from closes: open = previous close (first: the close), high/low `spread` beyond
/// open/close, volume 1e6, one bar per day ending on `end`.
func makeBars(_ closes: [Double], spread: Double = 1, end: Date = baseDate) -> [Bar] {
    var bars: [Bar] = []
    for (i, close) in closes.enumerated() {
        let open = i == 0 ? close : closes[i - 1]
        let day = end.addingTimeInterval(Double(i - closes.count + 1) * 86_400)
        bars.append(
            Bar(
                timestamp: day, open: open, high: max(open, close) + spread, low: min(open, close) - spread,
                close: close,
                volume: 1_000_000))
    }
    return bars
}

/// `count` closes `start + step·i`.
func linear(_ count: Int, start: Double = 100, step: Double = 0.1) -> [Double] {
    (0..<count).map { start + step * Double($0) }
}

/// MarketData for closes.
func marketData(_ symbol: String, _ closes: [Double], spread: Double = 1) -> MarketData {
    MarketData(symbol: symbol, bars: makeBars(closes, spread: spread))
}

/// A deterministic "noisy" series: linear drift plus a fixed zig-zag.
func zigzag(_ count: Int, start: Double = 100, drift: Double, amplitude: Double) -> [Double] {
    (0..<count).map { i in start + drift * Double(i) + (i % 2 == 0 ? amplitude : -amplitude) }
}

/// The object keys of an encoded model, in order.
func encodedKeys(_ value: some JSONEncodable) throws -> [String] {
    let json = try JSONParser.parse(JSONWriter.encode(value))
    return json.objectValue?.members.map(\.key) ?? []
}

/// The fixtures directory copied into the test bundle.
var fixturesDirectory: String {
    Bundle.module.resourceURL!.appendingPathComponent("Fixtures").path
}

func signal(
    _ symbol: String, _ action: SignalAction, confidence: Double = 0.8, price: Double? = 100, approved: Bool = false,
    qty: Int? = nil
) -> TradingSignal {
    TradingSignal(
        id: "t-\(symbol)", symbol: symbol, action: action, strategyName: "TrendFollowing", confidence: confidence,
        timestamp: baseDate, price: price, qty: qty, approved: approved)
}

/// A broker account snapshot: `positions` marked at `marks` (default 100 a share), equity =
/// cash + Σ position × mark.
func account(cash: Double, positions: [String: Int] = [:], marks: [String: Double] = [:]) -> AccountSnapshot {
    var equity = Money(dollars: cash)
    var markMoney: [String: Money] = [:]
    for (symbol, qty) in positions {
        let mark = Money(dollars: marks[symbol] ?? 100)
        markMoney[symbol] = mark
        equity = equity + mark * qty
    }
    return AccountSnapshot(
        cash: Money(dollars: cash), equity: equity, positions: positions, marks: markMoney, commissionPaid: .zero,
        orders: 0)
}
