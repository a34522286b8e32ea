import Foundation

/// RFC 3339 timestamps in UTC with microseconds, written and read without `DateFormatter`
/// (which is slow and not thread-safe to share).
public enum RFC3339 {
    /// `2026-11-25T14:20:08.123456Z`
    public static func string(from date: Date) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(27)
        append(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `date` as whole seconds and microseconds since 1970, rounded the way the text is
    /// written: a journal that stores this reads back exactly the time it printed.
    public static func wholeMicroseconds(_ date: Date) -> (seconds: Int64, micros: Int64) {
        let interval = date.timeIntervalSince1970
        guard interval.isFinite, abs(interval) < 9e15 else { return (0, 0) }  // absurd dates never trap
        var seconds = Int64(interval.rounded(.down))
        var micros = Int64(((interval - Double(seconds)) * 1_000_000).rounded())
        if micros >= 1_000_000 {
            seconds += 1
            micros -= 1_000_000
        }
        return (seconds, micros)
    }

    /// The date of ``wholeMicroseconds(_:)``: the instant its RFC 3339 text names.
    public static func roundedToMicroseconds(_ date: Date) -> Date {
        let (seconds, micros) = wholeMicroseconds(date)
        return self.date(seconds: seconds, micros: micros)
    }

    /// The instant `seconds` since 1970 plus `micros`, as ``roundedToMicroseconds(_:)`` gives it.
    public static func date(seconds: Int64, micros: Int64) -> Date {
        Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }

    /// `micros` brought into `0..<1_000_000`, what it had beyond carried into `seconds`
    /// (wrapping, never trapping, at the ends of `Int64`).
    @inline(__always) static func carried(seconds: Int64, micros: Int64) -> (seconds: Int64, micros: Int64) {
        guard micros < 0 || micros >= 1_000_000 else { return (seconds, micros) }
        var carry = micros / 1_000_000
        var rest = micros % 1_000_000
        if rest < 0 {
            rest += 1_000_000
            carry -= 1
        }
        return (seconds &+ carry, rest)
    }

    /// Appends the timestamp's characters (no quotes).
    public static func append(_ date: Date, to bytes: inout [UInt8]) {
        RFC3339Text(date).withUnsafeBytes { quoted in
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: quoted.dropFirst().dropLast()))
        }
    }

    /// Writes the 27 characters (`2026-11-25T14:20:08.123456Z`) of `seconds` since 1970 plus
    /// `micros` (in `0..<1_000_000`) at `out`.
    static func write(seconds: Int64, micros: Int64, to out: UnsafeMutablePointer<UInt8>) {
        let days = floorDiv(seconds, 86_400)
        // In 0..<86 400; wrapping keeps it exact at the ends of Int64, where `days * 86 400` overflows.
        let secondOfDay = seconds &- days &* 86_400
        let (year, month, day) = civil(fromDays: days)
        let y = Int(year)
        let sod = Int(secondOfDay)
        // Two digits at a time with constant divisors (this runs for every event).
        writePair(y / 100 % 100, at: out)
        writePair(y % 100, at: out + 2)
        out[4] = UInt8(ascii: "-")
        writePair(Int(month), at: out + 5)
        out[7] = UInt8(ascii: "-")
        writePair(Int(day), at: out + 8)
        out[10] = UInt8(ascii: "T")
        writePair(sod / 3600, at: out + 11)
        out[13] = UInt8(ascii: ":")
        writePair(sod / 60 % 60, at: out + 14)
        out[16] = UInt8(ascii: ":")
        writePair(sod % 60, at: out + 17)
        out[19] = UInt8(ascii: ".")
        writeMicros(micros, to: out + 20)
        out[26] = UInt8(ascii: "Z")
    }

    /// Writes the six digits of `micros` (in `0..<1_000_000`) at `out`.
    @inline(__always) static func writeMicros(_ micros: Int64, to out: UnsafeMutablePointer<UInt8>) {
        let us = Int(micros)
        writePair(us / 10_000, at: out)
        writePair(us / 100 % 100, at: out + 2)
        writePair(us % 100, at: out + 4)
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fraction]]` with `Z`, `±HH:MM` or no zone
    /// (read as UTC); a space may stand for the `T`. Returns nil for anything else.
    public static func date(from string: String) -> Date? {
        let b = Array(string.utf8)
        var i = 0
        func number(_ width: Int) -> Int64? {
            guard i + width <= b.count else { return nil }
            var value: Int64 = 0
            for _ in 0..<width {
                let d = b[i] &- UInt8(ascii: "0")
                guard d < 10 else { return nil }
                value = value * 10 + Int64(d)
                i += 1
            }
            return value
        }
        func expect(_ c: Character) -> Bool {
            guard i < b.count, b[i] == c.asciiValue! else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var seconds = days(fromCivil: year, month, day) * 86_400
        var fraction = 0.0
        if i < b.count {
            guard b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: "t") || b[i] == UInt8(ascii: " ") else {
                return nil
            }
            i += 1
            guard let hour = number(2), expect(":"), let minute = number(2), hour < 24, minute < 60 else {
                return nil
            }
            var second: Int64 = 0
            if i < b.count, b[i] == UInt8(ascii: ":") {
                i += 1
                guard let s = number(2), s <= 60 else { return nil }
                second = s
                if i < b.count, b[i] == UInt8(ascii: ".") {
                    i += 1
                    var scale = 0.1
                    let start = i
                    while i < b.count, b[i] &- UInt8(ascii: "0") < 10 {
                        fraction += Double(b[i] - UInt8(ascii: "0")) * scale
                        scale /= 10
                        i += 1
                    }
                    guard i > start else { return nil }
                }
            }
            seconds += hour * 3600 + minute * 60 + second
            if i < b.count {
                if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
                    i += 1
                } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                    let sign: Int64 = b[i] == UInt8(ascii: "+") ? 1 : -1
                    i += 1
                    guard let oh = number(2) else { return nil }
                    _ = expect(":")
                    guard let om = number(2) else { return nil }
                    seconds -= sign * (oh * 3600 + om * 60)
                } else {
                    return nil
                }
            }
        }
        guard i == b.count else { return nil }
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    /// The UTC calendar day (`YYYY-MM-DD`) of a date.
    public static func day(of date: Date) -> String {
        String(string(from: date).prefix(10))
    }

    // Howard Hinnant's civil-from-days / days-from-civil algorithms.
    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    static func days(fromCivil y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// ⌊a / b⌋ for b > 0, without overflow at `Int64.min`.
    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let quotient = a / b
        return a % b < 0 ? quotient - 1 : quotient
    }

    @inline(__always) private static func writePair(_ value: Int, at out: UnsafeMutablePointer<UInt8>) {
        out[0] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value / 10)
        out[1] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10)
    }
}

extension Date: JSONEncodable {
    /// Dates are written as RFC 3339 UTC strings with microseconds.
    public func encodeJSON(to writer: inout JSONWriter) {
        writer.write(RFC3339.string(from: self))
    }
}
