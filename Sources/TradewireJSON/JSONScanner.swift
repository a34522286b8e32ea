/// Reads the members of a small, flat JSON object in order, without building a tree: the
/// fast path for a message whose shape is known (a `publish` request).
///
/// Every read either succeeds or returns nil/false, and a scanner that declined once is
/// not used further: the caller then parses the text with ``JSONParser`` as usual, which
/// gives the results and error messages. So the scanner accepts only what it can read
/// exactly as the parser would: plain ASCII keys and strings (no escapes), and values copied
/// by the parser's own compact copy (``RawJSON``).
public struct JSONScanner {
    private var parser: JSONParser

    private init(_ buffer: UnsafeRawBufferPointer) { parser = JSONParser(buffer: buffer) }

    /// Runs `body` over `bytes`; its result, or nil when it declined.
    public static func scan<Result>(
        _ bytes: UnsafeRawBufferPointer, _ body: (inout JSONScanner) -> Result?
    ) -> Result? {
        var scanner = JSONScanner(bytes)
        return body(&scanner)
    }

    /// Expects `{` (after whitespace).
    public mutating func beginObject() -> Bool {
        parser.skipWhitespace()
        guard parser.index < parser.buffer.count, parser.buffer[parser.index] == UInt8(ascii: "{") else {
            return false
        }
        parser.index += 1
        return true
    }

    /// What ``nextKey(first:)`` found.
    public enum Member {
        /// A member's key (plain ASCII, its bytes valid while the scanned buffer is); the
        /// cursor is on its value.
        case key(UnsafeRawBufferPointer)
        /// The object's closing `}`.
        case end
        /// Anything else: decline.
        case invalid
    }

    /// The next member's key, or the object's end. `first`: no `,` precedes it (the first
    /// member, right after ``beginObject()``).
    public mutating func nextKey(first: Bool) -> Member {
        parser.skipWhitespace()
        guard parser.index < parser.buffer.count else { return .invalid }
        if parser.buffer[parser.index] == UInt8(ascii: "}") {
            parser.index += 1
            return .end
        }
        if !first {
            guard parser.buffer[parser.index] == UInt8(ascii: ",") else { return .invalid }
            parser.index += 1
            parser.skipWhitespace()
        }
        guard let key = plainString() else { return .invalid }
        parser.skipWhitespace()
        guard parser.index < parser.buffer.count, parser.buffer[parser.index] == UInt8(ascii: ":") else {
            return .invalid
        }
        parser.index += 1
        parser.skipWhitespace()
        return .key(key)
    }

    /// A string of printable ASCII without escapes (its bytes, quotes excluded); nil for
    /// anything else, which the parser reads.
    public mutating func plainString() -> UnsafeRawBufferPointer? {
        let buffer = parser.buffer
        guard parser.index < buffer.count, buffer[parser.index] == UInt8(ascii: "\"") else { return nil }
        let start = parser.index + 1
        var index = start
        while index < buffer.count {
            let byte = buffer[index]
            if byte == UInt8(ascii: "\"") {
                parser.index = index + 1
                return UnsafeRawBufferPointer(rebasing: buffer[start..<index])
            }
            guard byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\\") else { return nil }
            index += 1
        }
        return nil
    }

    /// A number, exactly as the parser reads it.
    public mutating func number() -> JSONNumber? {
        let buffer = parser.buffer
        guard parser.index < buffer.count else { return nil }
        let first = buffer[parser.index]
        guard first == UInt8(ascii: "-") || parser.isDigit(first) else { return nil }
        return try? parser.parseNumber()
    }

    /// Any value as compact bytes, as ``JSONParser/parse(_:keepingRaw:)`` keeps a member at
    /// `depth` (the number of objects around it).
    public mutating func compactValue(depth: Int) -> RawJSON? {
        parser.compactValue(depth: depth)
    }

    /// True when only whitespace is left.
    public mutating func atEnd() -> Bool {
        parser.skipWhitespace()
        return parser.index == parser.buffer.count
    }
}

extension UnsafeRawBufferPointer {
    /// True when these bytes spell `text` (ASCII).
    public func equals(_ text: StaticString) -> Bool {
        guard count == text.utf8CodeUnitCount else { return false }
        let expected = text.utf8Start
        for i in 0..<count where self[i] != expected[i] { return false }
        return true
    }
}
