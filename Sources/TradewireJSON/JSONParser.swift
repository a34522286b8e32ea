/// Why a text is not valid JSON, and where.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        case unexpectedEnd = "unexpected end of input"
        case unexpectedCharacter = "unexpected character"
        case invalidNumber = "invalid number"
        case invalidString = "invalid string"
        case invalidEscape = "invalid escape sequence"
        case invalidUTF8 = "invalid UTF-8"
        case tooDeep = "nesting too deep"
        case trailingCharacters = "unexpected characters after the JSON value"
    }
    public let reason: Reason
    /// Byte offset into the input.
    public let offset: Int

    public var description: String { "\(reason.rawValue) at byte \(offset)" }
}

/// A strict RFC 8259 parser working directly on UTF-8 bytes.
///
/// Nesting is bounded (``maximumDepth``) so hostile input cannot exhaust the stack.
public struct JSONParser {
    /// Deepest array/object nesting accepted.
    public static let maximumDepth = 512

    /// Parses one complete JSON text (surrounding whitespace allowed).
    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError>? = bytes.withContiguousStorageIfAvailable { buffer in
            parseBuffer(UnsafeRawBufferPointer(buffer))
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBytes { parseBuffer($0) }.get()
    }

    /// Parses a string's UTF-8.
    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        var text = text
        let result = text.withUTF8 { parseBuffer(UnsafeRawBufferPointer($0)) }
        return try result.get()
    }

    /// Parses one complete JSON text, keeping the member `path.inner` of the root object's
    /// member `path.outer` (a request's `params.data`) as compact bytes instead of a tree.
    ///
    /// In the returned tree that member's value is `null`, a placeholder: read the value from
    /// `raw` when it is non-nil. Input the fast path declines (escapes other than `\"`,
    /// `\\`, `\n`, `\r`, `\t`; anything invalid) is parsed into the tree as usual, with
    /// `raw` nil, so errors and results are those of ``parse(_:)-(some Collection<UInt8>)``.
    /// When the member repeats, the last occurrence wins, as in ``JSONObject``.
    public static func parse(
        _ bytes: some Collection<UInt8>, keepingRaw path: (outer: String, inner: String)
    ) throws(JSONParseError) -> (value: JSONValue, raw: RawJSON?) {
        let result: Result<(JSONValue, RawJSON?), JSONParseError>? = bytes.withContiguousStorageIfAvailable {
            parseBuffer(UnsafeRawBufferPointer($0), keepingRaw: path)
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBytes { parseBuffer($0, keepingRaw: path) }.get()
    }

    static func parseBuffer(_ buffer: UnsafeRawBufferPointer) -> Result<JSONValue, JSONParseError> {
        parseBuffer(buffer, keepingRaw: nil).map(\.0)
    }

    private static func parseBuffer(
        _ buffer: UnsafeRawBufferPointer, keepingRaw path: (outer: String, inner: String)?
    ) -> Result<(JSONValue, RawJSON?), JSONParseError> {
        var parser = JSONParser(buffer: buffer)
        parser.rawPath = path
        do {
            parser.skipWhitespace()
            let value = try parser.parseValue(depth: 0, role: path == nil ? .other : .root)
            parser.skipWhitespace()
            if parser.index != buffer.count {
                throw JSONParseError(reason: .trailingCharacters, offset: parser.index)
            }
            return .success((value, parser.raw))
        } catch let error as JSONParseError {
            return .failure(error)
        } catch {
            return .failure(JSONParseError(reason: .unexpectedCharacter, offset: parser.index))
        }
    }

    let buffer: UnsafeRawBufferPointer
    var index = 0
    /// Which member to keep raw (nil: none), and what was kept.
    private var rawPath: (outer: String, inner: String)?
    private var raw: RawJSON?

    /// Where an object sits on the way to the member kept raw.
    private enum Role {
        case root, outer, other
    }

    init(buffer: UnsafeRawBufferPointer) { self.buffer = buffer }

    private func fail(_ reason: JSONParseError.Reason, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(reason: reason, offset: offset ?? index)
    }

    mutating func skipWhitespace() {
        while index < buffer.count {
            switch buffer[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue(depth: Int, role: Role = .other) throws(JSONParseError) -> JSONValue {
        guard index < buffer.count else { throw fail(.unexpectedEnd) }
        switch buffer[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1, role: role)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw fail(.unexpectedCharacter)
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= buffer.count else { throw fail(.unexpectedEnd) }
        let base = literal.utf8Start
        for i in 0..<count where buffer[index + i] != base[i] {
            throw fail(.unexpectedCharacter, at: index + i)
        }
        index += count
    }

    private mutating func parseObject(depth: Int, role: Role = .other) throws(JSONParseError) -> JSONValue {
        guard depth <= Self.maximumDepth else { throw fail(.tooDeep) }
        index += 1  // {
        var members: [JSONObject.Member] = []
        skipWhitespace()
        guard index < buffer.count else { throw fail(.unexpectedEnd) }
        if buffer[index] == UInt8(ascii: "}") {
            index += 1
            return .object(JSONObject())
        }
        while true {
            skipWhitespace()
            guard index < buffer.count else { throw fail(.unexpectedEnd) }
            guard buffer[index] == UInt8(ascii: "\"") else { throw fail(.unexpectedCharacter) }
            let key = try parseString()
            skipWhitespace()
            guard index < buffer.count else { throw fail(.unexpectedEnd) }
            guard buffer[index] == UInt8(ascii: ":") else { throw fail(.unexpectedCharacter) }
            index += 1
            skipWhitespace()
            let value: JSONValue
            switch role {
            case .root where key == rawPath?.outer:
                // A repeated outer member replaces the earlier one, and what was kept from it.
                raw = nil
                value = try parseValue(depth: depth, role: .outer)
            case .outer where key == rawPath?.inner:
                raw = compactValue(depth: depth)
                value = raw == nil ? try parseValue(depth: depth) : .null
            default:
                value = try parseValue(depth: depth)
            }
            members.append(JSONObject.Member(key: key, value: value))
            skipWhitespace()
            guard index < buffer.count else { throw fail(.unexpectedEnd) }
            switch buffer[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return .object(JSONObject(members))
            default: throw fail(.unexpectedCharacter)
            }
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= Self.maximumDepth else { throw fail(.tooDeep) }
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        guard index < buffer.count else { throw fail(.unexpectedEnd) }
        if buffer[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard index < buffer.count else { throw fail(.unexpectedEnd) }
            switch buffer[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                return .array(elements)
            default: throw fail(.unexpectedCharacter)
            }
        }
    }

    mutating func parseNumber() throws(JSONParseError) -> JSONNumber {
        let start = index
        if buffer[index] == UInt8(ascii: "-") { index += 1 }
        guard index < buffer.count else { throw fail(.invalidNumber) }
        if buffer[index] == UInt8(ascii: "0") {
            index += 1
        } else if isDigit(buffer[index]) {
            while index < buffer.count, isDigit(buffer[index]) { index += 1 }
        } else {
            throw fail(.invalidNumber)
        }
        if index < buffer.count, buffer[index] == UInt8(ascii: ".") {
            index += 1
            guard index < buffer.count, isDigit(buffer[index]) else { throw fail(.invalidNumber) }
            while index < buffer.count, isDigit(buffer[index]) { index += 1 }
        }
        if index < buffer.count, buffer[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < buffer.count, buffer[index] == UInt8(ascii: "+") || buffer[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard index < buffer.count, isDigit(buffer[index]) else { throw fail(.invalidNumber) }
            while index < buffer.count, isDigit(buffer[index]) { index += 1 }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[start..<index]), as: UTF8.self)
        return JSONNumber(validatedText: text)
    }

    @inline(__always) func isDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes; validate UTF-8 once.
        var sawHighBit = false
        while index < buffer.count {
            let byte = buffer[index]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeRawBufferPointer(rebasing: buffer[start..<index])
                index += 1
                if !sawHighBit {
                    return String(decoding: slice, as: UTF8.self)
                }
                guard let s = String(validating: slice, as: UTF8.self) else {
                    throw fail(.invalidUTF8, at: start)
                }
                return s
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw fail(.invalidString) }
            if byte >= 0x80 { sawHighBit = true }
            index += 1
        }
        guard index < buffer.count else { throw fail(.unexpectedEnd) }
        // Slow path: escapes present.
        var bytes = [UInt8](UnsafeRawBufferPointer(rebasing: buffer[start..<index]))
        while index < buffer.count {
            let byte = buffer[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let s = String(validating: bytes, as: UTF8.self) else {
                    throw fail(.invalidUTF8, at: start)
                }
                return s
            case UInt8(ascii: "\\"):
                index += 1
                guard index < buffer.count else { throw fail(.unexpectedEnd) }
                let escape = buffer[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): bytes.append(UInt8(ascii: "/"))
                case UInt8(ascii: "b"): bytes.append(0x08)
                case UInt8(ascii: "f"): bytes.append(0x0C)
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard index + 1 < buffer.count, buffer[index] == UInt8(ascii: "\\"),
                            buffer[index + 1] == UInt8(ascii: "u")
                        else { throw fail(.invalidEscape) }
                        index += 2
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail(.invalidEscape) }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw fail(.invalidEscape)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw fail(.invalidEscape) }
                    bytes.append(contentsOf: String(Character(unicode)).utf8)
                default:
                    throw fail(.invalidEscape, at: index - 1)
                }
            default:
                if byte < 0x20 { throw fail(.invalidString) }
                bytes.append(byte)
                index += 1
            }
        }
        throw fail(.unexpectedEnd)
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= buffer.count else { throw fail(.unexpectedEnd) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = buffer[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail(.invalidEscape)
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }
}
