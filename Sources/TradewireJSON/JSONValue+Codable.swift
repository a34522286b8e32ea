/// `Codable` bridge: a `JSONValue` encodes and decodes as the JSON it holds, so models that
/// convert to and from `JSONValue` can offer `Codable` with exactly their wire shape.
extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? container.decode(Int.self) {
            self = .number(JSONNumber(i))
        } else if let d = try? container.decode(Double.self) {
            self = JSONValue(d)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JSONValue].self) {
            self = .array(a)
        } else if let o = try? container.decode([String: JSONValue].self) {
            self = .object(
                JSONObject(o.sorted { $0.key < $1.key }.map { JSONObject.Member(key: $0.key, value: $0.value) }))
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .number(let n):
            if let i = Int(n.text) {
                try container.encode(i)
            } else if let d = n.double {
                try container.encode(d)
            } else {
                // Never silently change a number: one beyond Double's range cannot go through Encoder.
                throw EncodingError.invalidValue(
                    n.text, .init(codingPath: encoder.codingPath, debugDescription: "number out of Double range"))
            }
        case .string(let s): try container.encode(s)
        case .array(let a): try container.encode(a)
        case .object(let o):
            var dict: [String: JSONValue] = [:]
            for m in o { dict[m.key] = m.value }
            try container.encode(dict)
        }
    }
}

extension JSONEncodable {
    /// This value as an in-memory JSON tree (encode, then parse: for tests and slow paths).
    public var jsonValue: JSONValue {
        // The writer only emits valid JSON, so parsing it back cannot fail.
        (try? JSONParser.parse(JSONWriter.encode(self))) ?? .null
    }
}
