import TradewireJSON

/// An exact ledger amount: a whole number of 1/10 000 dollars (hundredths of a cent).
///
/// Sums and products by integers are exact, so a ledger of any length never drifts. Convert
/// from `Double` only at the edges (prices, commissions), rounding to the nearest unit.
public struct Money: Sendable, Hashable, Comparable, AdditiveArithmetic, CustomStringConvertible, JSONEncodable {
    /// Units per dollar.
    public static let unitsPerDollar: Int64 = 10_000

    /// The amount in 1/10 000 dollars.
    public var units: Int64

    public init(units: Int64) { self.units = units }

    /// Rounds to the nearest 1/10 000 dollar (halves away from zero). NaN becomes zero;
    /// infinities and values beyond ±9.2e14 dollars saturate.
    public init(dollars: Double) {
        let scaled = (dollars * Double(Self.unitsPerDollar)).rounded()
        if scaled.isNaN {
            units = 0
        } else if scaled >= 9.2e18 {
            units = .max
        } else if scaled <= -9.2e18 {
            units = .min
        } else {
            units = Int64(scaled)
        }
    }

    public static let zero = Money(units: 0)

    /// The amount as a `Double` (for display and ratios, not for accumulation).
    public var dollars: Double { Double(units) / Double(Self.unitsPerDollar) }

    public static func + (lhs: Money, rhs: Money) -> Money { Money(units: lhs.units + rhs.units) }
    public static func - (lhs: Money, rhs: Money) -> Money { Money(units: lhs.units - rhs.units) }
    public static func * (lhs: Money, rhs: Int) -> Money { Money(units: lhs.units * Int64(rhs)) }
    public static func * (lhs: Int, rhs: Money) -> Money { Money(units: Int64(lhs) * rhs.units) }
    public static prefix func - (value: Money) -> Money { Money(units: -value.units) }
    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.units < rhs.units }

    /// `-$1234.5678` style, always four decimals.
    public var description: String {
        let negative = units < 0
        let magnitude = units.magnitude
        let whole = magnitude / UInt64(Self.unitsPerDollar)
        let fraction = magnitude % UInt64(Self.unitsPerDollar)
        var fractionText = String(fraction)
        while fractionText.count < 4 { fractionText = "0" + fractionText }
        return (negative ? "-$" : "$") + String(whole) + "." + fractionText
    }

    /// Written as a JSON number of dollars (exact to four decimals).
    public func encodeJSON(to writer: inout JSONWriter) { writer.write(dollars) }
}
