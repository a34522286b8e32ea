/// Writes compact JSON into a byte buffer.
///
/// Commas are placed automatically: call `beginObject`/`key`/value…/`endObject` in order.
/// Output never contains a raw newline, so one value is one protocol line.
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8]
    private var needsComma = false

    public init(reservingCapacity capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Encodes one value as compact JSON text.
    public static func string(_ value: some JSONEncodable) -> String {
        String(decoding: encode(value), as: UTF8.self)
    }

    /// Encodes one value as compact JSON bytes.
    public static func encode(_ value: some JSONEncodable) -> [UInt8] {
        var writer = JSONWriter()
        value.encodeJSON(to: &writer)
        return writer.bytes
    }

    @inline(__always) private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    public mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    public mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// Writes an object key; the next write is its value.
    public mutating func key(_ key: String) {
        separate()
        writeEscaped(key)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    /// A key written as is: for literals that need no escaping (no `"`, `\` or control
    /// characters), on paths where escaping each key shows in a profile.
    public mutating func plainKey(_ key: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        needsComma = false
    }

    public mutating func writeNull() {
        separate()
        bytes.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
        needsComma = true
    }

    public mutating func write(_ value: Bool) {
        separate()
        if value {
            bytes.append(contentsOf: [0x74, 0x72, 0x75, 0x65])
        } else {
            bytes.append(contentsOf: [0x66, 0x61, 0x6C, 0x73, 0x65])
        }
        needsComma = true
    }

    public mutating func write(_ value: Int) {
        separate()
        appendInteger(value)
        needsComma = true
    }

    /// Non-finite doubles are written as `null`.
    public mutating func write(_ value: Double) {
        guard let number = JSONNumber(value) else { return writeNull() }
        write(number)
    }

    public mutating func write(_ number: JSONNumber) {
        separate()
        bytes.append(contentsOf: number.text.utf8)
        needsComma = true
    }

    public mutating func write(_ value: String) {
        separate()
        writeEscaped(value)
        needsComma = true
    }

    /// Appends bytes that already hold one complete, compact JSON value.
    public mutating func writeRaw(_ json: some Collection<UInt8>) {
        separate()
        bytes.append(contentsOf: json)
        needsComma = true
    }

    /// ``writeRaw(_:)-(some Collection<UInt8>)`` for an array: one copy, even when called
    /// from another module (where the generic version may run unspecialized, a byte at a time).
    public mutating func writeRaw(_ json: [UInt8]) {
        separate()
        bytes.append(contentsOf: json)
        needsComma = true
    }

    /// ``writeRaw(_:)-(some Collection<UInt8>)`` for borrowed bytes (one copy).
    public mutating func writeRaw(bytes json: UnsafeRawBufferPointer) {
        separate()
        bytes.append(contentsOf: json)
        needsComma = true
    }

    /// ``writeRaw(_:)-(some Collection<UInt8>)`` for an array slice (one copy).
    public mutating func writeRaw(_ json: ArraySlice<UInt8>) {
        separate()
        bytes.append(contentsOf: json)
        needsComma = true
    }

    public mutating func write(_ value: some JSONEncodable) {
        value.encodeJSON(to: &self)
    }

    public mutating func write(_ value: (some JSONEncodable)?) {
        if let value { value.encodeJSON(to: &self) } else { writeNull() }
    }

    // MARK: fields (key + value)

    public mutating func field(_ name: String, _ value: String) { key(name); write(value) }
    public mutating func field(_ name: String, _ value: Int) { key(name); write(value) }
    public mutating func field(_ name: String, _ value: Double) { key(name); write(value) }
    public mutating func field(_ name: String, _ value: Bool) { key(name); write(value) }
    public mutating func field(_ name: String, _ value: some JSONEncodable) { key(name); value.encodeJSON(to: &self) }
    public mutating func field(_ name: String, _ value: String?) {
        key(name)
        if let value { write(value) } else { writeNull() }
    }
    public mutating func field(_ name: String, _ value: Int?) {
        key(name)
        if let value { write(value) } else { writeNull() }
    }
    public mutating func field(_ name: String, _ value: Double?) {
        key(name)
        if let value { write(value) } else { writeNull() }
    }
    public mutating func field(_ name: String, _ value: (some JSONEncodable)?) {
        key(name)
        if let value { value.encodeJSON(to: &self) } else { writeNull() }
    }

    // MARK: internals

    private mutating func appendInteger(_ value: Int) {
        if value >= 0 && value < 10 {
            bytes.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        DecimalDigits.withText(of: value) { bytes.append(contentsOf: $0) }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private mutating func writeEscaped(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in
            var runStart = 0
            for i in 0..<utf8.count {
                let byte = utf8[i]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                if runStart < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
                runStart = i + 1
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
                case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
                case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
                case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
                default:
                    bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30])
                    bytes.append(Self.hexDigits[Int(byte >> 4)])
                    bytes.append(Self.hexDigits[Int(byte & 0xF)])
                }
            }
            if runStart < utf8.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// A value that writes itself as JSON.
public protocol JSONEncodable: Sendable {
    func encodeJSON(to writer: inout JSONWriter)
}

extension JSONValue: JSONEncodable {
    public func encodeJSON(to writer: inout JSONWriter) {
        switch self {
        case .null: writer.writeNull()
        case .bool(let b): writer.write(b)
        case .number(let n): writer.write(n)
        case .string(let s): writer.write(s)
        case .array(let elements):
            writer.beginArray()
            for element in elements { element.encodeJSON(to: &writer) }
            writer.endArray()
        case .object(let object):
            object.encodeJSON(to: &writer)
        }
    }
}

extension JSONObject: JSONEncodable {
    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        for member in members {
            writer.key(member.key)
            member.value.encodeJSON(to: &writer)
        }
        writer.endObject()
    }
}

extension String: JSONEncodable {
    public func encodeJSON(to writer: inout JSONWriter) { writer.write(self) }
}

extension Int: JSONEncodable {
    public func encodeJSON(to writer: inout JSONWriter) { writer.write(self) }
}

extension Double: JSONEncodable {
    public func encodeJSON(to writer: inout JSONWriter) { writer.write(self) }
}

extension Bool: JSONEncodable {
    public func encodeJSON(to writer: inout JSONWriter) { writer.write(self) }
}

extension Array: JSONEncodable where Element: JSONEncodable {
    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginArray()
        for element in self { element.encodeJSON(to: &writer) }
        writer.endArray()
    }
}

extension Optional: JSONEncodable where Wrapped: JSONEncodable {
    public func encodeJSON(to writer: inout JSONWriter) {
        if let self { self.encodeJSON(to: &writer) } else { writer.writeNull() }
    }
}
