import TradewireJSON

/// An exact ledger amount: a whole number of 1/10 000 dollars (hundredths of a cent).
///
/// Sums and products by integers are exact, so a ledger of any length never drifts. Convert
/// from `Double` only at the edges (prices, commissions), rounding to the nearest unit.
///
/// The range is ±``max`` (about ±9.2e14 dollars). The operators `+`, `-` and `*` trap on
/// overflow like `Int64`'s; ledger code uses the checked forms (``adding(_:)``,
/// ``subtracting(_:)``, ``multiplied(by:)``, ``init(validatingDollars:)``), which throw
/// ``MoneyOverflow``, or the saturating ones for totals that are only displayed.
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

    /// Rounds to the nearest 1/10 000 dollar (halves away from zero).
    ///
    /// - Throws: ``MoneyOverflow`` for NaN, infinities and amounts beyond ±``maxDollars``.
    public init(validatingDollars dollars: Double) throws(MoneyOverflow) {
        let scaled = (dollars * Double(Self.unitsPerDollar)).rounded()
        // 2^63 units is the first amount an Int64 cannot hold.
        guard scaled >= -0x1p63, scaled < 0x1p63 else { throw MoneyOverflow(operation: "\(dollars) dollars") }
        units = Int64(scaled)
    }

    public static let zero = Money(units: 0)

    /// The largest amount a ledger can hold (about 9.2e14 dollars).
    public static let max = Money(units: .max)

    /// The largest amount a ledger can hold, in dollars, rounded down to a whole dollar
    /// (922 337 203 685 477) so that any `Double` at or below it converts without overflow.
    public static let maxDollars = Double(Int64.max / unitsPerDollar)

    /// The amount as a `Double` (for display and ratios, not for accumulation).
    public var dollars: Double { Double(units) / Double(Self.unitsPerDollar) }

    /// Traps on overflow; see ``adding(_:)``.
    public static func + (lhs: Money, rhs: Money) -> Money { Money(units: lhs.units + rhs.units) }
    /// Traps on overflow; see ``subtracting(_:)``.
    public static func - (lhs: Money, rhs: Money) -> Money { Money(units: lhs.units - rhs.units) }
    /// Traps on overflow; see ``multiplied(by:)``.
    public static func * (lhs: Money, rhs: Int) -> Money { Money(units: lhs.units * Int64(rhs)) }
    /// Traps on overflow; see ``multiplied(by:)``.
    public static func * (lhs: Int, rhs: Money) -> Money { Money(units: Int64(lhs) * rhs.units) }
    public static prefix func - (value: Money) -> Money { Money(units: -value.units) }
    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.units < rhs.units }

    /// `self + other`, and whether it overflowed (the partial value then wraps around).
    public func addingReportingOverflow(_ other: Money) -> (partialValue: Money, overflow: Bool) {
        let (value, overflow) = units.addingReportingOverflow(other.units)
        return (Money(units: value), overflow)
    }

    /// `self − other`, and whether it overflowed (the partial value then wraps around).
    public func subtractingReportingOverflow(_ other: Money) -> (partialValue: Money, overflow: Bool) {
        let (value, overflow) = units.subtractingReportingOverflow(other.units)
        return (Money(units: value), overflow)
    }

    /// `self × quantity`, and whether it overflowed (the partial value then wraps around).
    public func multipliedReportingOverflow(by quantity: Int) -> (partialValue: Money, overflow: Bool) {
        let (value, overflow) = units.multipliedReportingOverflow(by: Int64(quantity))
        return (Money(units: value), overflow)
    }

    /// `self + other`.
    ///
    /// - Throws: ``MoneyOverflow`` when the sum is beyond the ledger's range.
    public func adding(_ other: Money) throws(MoneyOverflow) -> Money {
        let (value, overflow) = addingReportingOverflow(other)
        guard !overflow else { throw MoneyOverflow(operation: "\(self) + \(other)") }
        return value
    }

    /// `self − other`.
    ///
    /// - Throws: ``MoneyOverflow`` when the difference is beyond the ledger's range.
    public func subtracting(_ other: Money) throws(MoneyOverflow) -> Money {
        let (value, overflow) = subtractingReportingOverflow(other)
        guard !overflow else { throw MoneyOverflow(operation: "\(self) - \(other)") }
        return value
    }

    /// `self × quantity`.
    ///
    /// - Throws: ``MoneyOverflow`` when the product is beyond the ledger's range.
    public func multiplied(by quantity: Int) throws(MoneyOverflow) -> Money {
        let (value, overflow) = multipliedReportingOverflow(by: quantity)
        guard !overflow else { throw MoneyOverflow(operation: "\(self) × \(quantity)") }
        return value
    }

    /// `self + other`, clamped to the ledger's range instead of overflowing.
    public func saturatingAdding(_ other: Money) -> Money {
        let (value, overflow) = addingReportingOverflow(other)
        guard overflow else { return value }
        return other.units > 0 ? Money(units: .max) : Money(units: .min)
    }

    /// `self × quantity`, clamped to the ledger's range instead of overflowing.
    public func saturatingMultiplied(by quantity: Int) -> Money {
        let (value, overflow) = multipliedReportingOverflow(by: quantity)
        guard overflow else { return value }
        return (units < 0) == (quantity < 0) ? Money(units: .max) : Money(units: .min)
    }

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

/// A ``Money`` operation whose result is beyond the ledger's range (about ±9.2e14 dollars).
public struct MoneyOverflow: Error, Sendable, Equatable, CustomStringConvertible {
    /// The operation that overflowed, e.g. `$100.0000 × 10000000000000`.
    public let operation: String

    public init(operation: String) { self.operation = operation }

    public var description: String { "amount overflows the ledger: \(operation)" }
}
