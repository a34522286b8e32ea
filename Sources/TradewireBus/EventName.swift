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
        let valid = utf8.withContiguousStorageIfAvailable { bytes in
            for byte in bytes where !isNameByte(byte) { return false }
            return true
        }
        guard valid ?? utf8.allSatisfy(isNameByte) else {
            throw ValidationError(description: "event type may only contain A-Z a-z 0-9 _ . : -")
        }
    }
}

/// A subscription pattern: an event type that may use `*` (any run, including none) and
/// `?` (exactly one character). `*` alone matches every event.
public struct EventPattern: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    private let kind: Kind

    private enum Kind: Sendable {
        /// No wildcard: matching is string equality.
        case literal
        /// `*` alone (or only stars).
        case everything
        case glob(GlobMatcher)
    }

    /// True when the pattern has no wildcard, so matching is string equality.
    public var isLiteral: Bool { if case .literal = kind { true } else { false } }

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
        if !utf8.contains(where: { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") }) {
            kind = .literal
        } else if utf8.allSatisfy({ $0 == UInt8(ascii: "*") }) {
            kind = .everything
        } else {
            // Compiled once here: a subscription's pattern is matched against every new event type.
            kind = .glob(GlobMatcher(utf8))
        }
    }

    public var description: String { text }

    /// Glob match with `*` and `?`, linear in the length of `type` (see ``GlobMatcher``).
    public func matches(_ type: String) -> Bool {
        switch kind {
        case .literal: return type == text
        case .everything: return true
        case .glob(let matcher):
            var type = type
            return type.withUTF8 { matcher.matches($0) }
        }
    }

    public static func == (lhs: EventPattern, rhs: EventPattern) -> Bool { lhs.text == rhs.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }
}
