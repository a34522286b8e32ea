import Foundation

/// A timestamp as a JSON string, `"2026-11-25T14:20:08.123456Z"` (29 bytes, quotes
/// included), formatted once and held inline: an event carries it without an allocation of
/// its own, and every encoding of the event copies it from here.
public struct RFC3339Text: Sendable, Equatable, CustomStringConvertible {
    /// The bytes of the quoted text.
    public static let count = 29

    /// 32 bytes, of which the first 29 are the text.
    private var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    /// `date`'s text, in UTC, rounded to whole microseconds as ``RFC3339/wholeMicroseconds(_:)`` does.
    public init(_ date: Date) {
        let (seconds, micros) = RFC3339.wholeMicroseconds(date)
        self.init(seconds: seconds, micros: micros)
    }

    /// The text of `seconds` since 1970 plus `micros`, in UTC (micros beyond a second carry
    /// into `seconds`).
    public init(seconds: Int64, micros: Int64) {
        let (seconds, micros) = RFC3339.carried(seconds: seconds, micros: micros)
        Swift.withUnsafeMutableBytes(of: &storage) { raw in
            let out = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            out[0] = UInt8(ascii: "\"")
            RFC3339.write(seconds: seconds, micros: micros, to: out + 1)
            out[Self.count - 1] = UInt8(ascii: "\"")
        }
    }

    /// Replaces the six fraction digits (the text's second stays).
    fileprivate mutating func setMicros(_ micros: Int64) {
        Swift.withUnsafeMutableBytes(of: &storage) { raw in
            // `"YYYY-MM-DDTHH:MM:SS.ffffffZ"`: the fraction starts after the quote and 20 characters.
            RFC3339.writeMicros(micros, to: raw.baseAddress!.assumingMemoryBound(to: UInt8.self) + 21)
        }
    }

    /// Lends the 29 bytes of the quoted text.
    @inline(__always)
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: storage) { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw.prefix(Self.count)))
        }
    }

    /// The quoted text as an array (an allocation: for tests and cold paths).
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// The quoted text.
    public var description: String { String(decoding: bytes, as: UTF8.self) }

    public static func == (lhs: RFC3339Text, rhs: RFC3339Text) -> Bool {
        lhs.storage == rhs.storage
    }
}

/// Timestamps formatted a second at a time: the date and the time of day are written once
/// for each second, every text within it only its microseconds (an event bus stamps every
/// publish, most of them within the second of the one before).
public struct RFC3339SecondCache: Sendable {
    private var second: Int64?
    private var template = RFC3339Text(seconds: 0, micros: 0)

    public init() {}

    /// The text of `seconds` since 1970 plus `micros`, as ``RFC3339Text/init(seconds:micros:)``
    /// writes it.
    public mutating func text(seconds: Int64, micros: Int64) -> RFC3339Text {
        let (seconds, micros) = RFC3339.carried(seconds: seconds, micros: micros)
        if second != seconds {
            template = RFC3339Text(seconds: seconds, micros: 0)
            second = seconds
        }
        var text = template
        text.setMicros(micros)
        return text
    }
}

extension JSONWriter {
    /// Appends a formatted timestamp (a complete JSON string) as a value.
    public mutating func writeRaw(_ text: RFC3339Text) {
        text.withUnsafeBytes { writeRaw(bytes: $0) }
    }
}
