/// Rules for event type names and subscription patterns (PROTOCOL §3, §8).
public enum EventName {
    /// Longest event type or pattern, in characters.
    public static let maximumLength = 128

    /// Why a name or pattern was refused.
    public struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    @inline(__always) static func isNameByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"),
            UInt8(ascii: "-"):
            true
        default: false
        }
    }

    /// Checks an event type: 1–128 characters of `A-Z a-z 0-9 _ . : -`.
    public static func validateType(_ name: String) throws(ValidationError) {
        let utf8 = name.utf8
        guard !utf8.isEmpty else { throw ValidationError(description: "event type must not be empty") }
        guard utf8.count <= maximumLength else {
            throw ValidationError(description: "event type longer than \(maximumLength) characters")
        }
        guard utf8.allSatisfy(isNameByte) else {
            throw ValidationError(description: "event type may only contain A-Z a-z 0-9 _ . : -")
        }
    }
}

/// A subscription pattern: an event type that may use `*` (any run, including none) and
/// `?` (exactly one character). `*` alone matches every event.
public struct EventPattern: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    private let bytes: [UInt8]
    /// True when the pattern has no wildcard, so matching is string equality.
    public let isLiteral: Bool

    public init(_ text: String) throws(EventName.ValidationError) {
        let utf8 = Array(text.utf8)
        guard !utf8.isEmpty else { throw EventName.ValidationError(description: "pattern must not be empty") }
        guard utf8.count <= EventName.maximumLength else {
            throw EventName.ValidationError(description: "pattern longer than \(EventName.maximumLength) characters")
        }
        guard utf8.allSatisfy({ EventName.isNameByte($0) || $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") })
        else {
            throw EventName.ValidationError(description: "pattern may only contain A-Z a-z 0-9 _ . : - * ?")
        }
        self.text = text
        self.bytes = utf8
        self.isLiteral = !utf8.contains { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") }
    }

    public var description: String { text }

    /// Glob match with `*` and `?` (iterative, linear-time backtracking on the last star).
    public func matches(_ type: String) -> Bool {
        if isLiteral { return type == text }
        if bytes.count == 1 && bytes[0] == UInt8(ascii: "*") { return true }
        var type = type
        return type.withUTF8 { t in
            var p = 0
            var i = 0
            var star = -1
            var mark = 0
            while i < t.count {
                if p < bytes.count && (bytes[p] == UInt8(ascii: "?") || bytes[p] == t[i]) {
                    p += 1
                    i += 1
                } else if p < bytes.count && bytes[p] == UInt8(ascii: "*") {
                    star = p
                    mark = i
                    p += 1
                } else if star >= 0 {
                    p = star + 1
                    mark += 1
                    i = mark
                } else {
                    return false
                }
            }
            while p < bytes.count && bytes[p] == UInt8(ascii: "*") { p += 1 }
            return p == bytes.count
        }
    }

    public static func == (lhs: EventPattern, rhs: EventPattern) -> Bool { lhs.text == rhs.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }
}
