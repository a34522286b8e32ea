/// One JSON value kept as its compact text instead of a tree: what a daemon forwards without
/// reading (a published event's `data`).
///
/// The bytes are exactly what ``JSONWriter`` writes for the parsed value, so forwarding them
/// is indistinguishable from parsing and encoding again, at the cost of one copy.
public struct RawJSON: Sendable, Hashable {
    /// Compact JSON text of one value.
    public let bytes: [UInt8]

    /// Wraps bytes that are known to be one compact JSON value (``JSONParser`` made them).
    init(compact bytes: [UInt8]) { self.bytes = bytes }

    /// The compact encoding of a parsed value.
    public init(_ value: JSONValue) { self.bytes = JSONWriter.encode(value) }

    /// The value as a tree (parsed on demand; never fails for bytes the parser made).
    public var value: JSONValue {
        (try? JSONParser.parse(bytes)) ?? .null
    }

    /// The JSON type name used on the wire: `object|array|string|number|boolean|null`.
    public var typeName: String {
        switch bytes.first {
        case UInt8(ascii: "{"): "object"
        case UInt8(ascii: "["): "array"
        case UInt8(ascii: "\""): "string"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): "boolean"
        case UInt8(ascii: "n"), nil: "null"
        default: "number"
        }
    }
}

extension RawJSON: JSONEncodable {
    public func encodeJSON(to writer: inout JSONWriter) { writer.writeRaw(bytes) }
}
