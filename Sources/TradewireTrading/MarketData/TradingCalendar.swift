import Foundation

/// Weekday arithmetic on UTC days (no holidays): the simulated market trades Monday–Friday.
enum TradingCalendar {
    /// Days since 1970-01-01 (a Thursday) of a date's UTC day.
    static func utcDay(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 / 86_400).rounded(.down))
    }

    /// The index of a day among all weekdays (Monday 1969-12-29 is 0); a weekend day maps to
    /// the Friday before it.
    static func tradingIndex(ofDay day: Int64) -> Int64 {
        let m = day + 3
        let week = floorDiv(m, 7)
        let weekday = m - week * 7
        return week * 5 + min(weekday, 4)
    }

    /// The UTC day of a trading index (inverse of ``tradingIndex(ofDay:)`` on weekdays).
    static func day(ofTradingIndex index: Int64) -> Int64 {
        let week = floorDiv(index, 5)
        let weekday = index - week * 5
        return week * 7 + weekday - 3
    }

    /// Midnight UTC of a day.
    static func date(ofDay day: Int64) -> Date {
        Date(timeIntervalSince1970: Double(day) * 86_400)
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }
}
