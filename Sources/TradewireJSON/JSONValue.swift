/// A JSON document held in memory.
///
/// Numbers keep the exact text they were written with (see ``JSONNumber``), so a value a
/// client sent is echoed byte for byte and huge or very precise numbers survive a round trip.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The JSON type name used on the wire: `object|array|string|number|boolean|null`.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    public var isNull: Bool { if case .null = self { true } else { false } }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var objectValue: JSONObject? { if case .object(let o) = self { o } else { nil } }
    public var numberValue: JSONNumber? { if case .number(let n) = self { n } else { nil } }

    /// The value as an integer, when it is a number with an integral value that fits.
    public var intValue: Int? { numberValue?.int }
    /// The value as a `Double`, when it is a finite number.
    public var doubleValue: Double? { numberValue?.double }

    /// Looks a key up when the value is an object.
    public subscript(key: String) -> JSONValue? { objectValue?[key] }

    public init(_ int: Int) { self = .number(JSONNumber(int)) }
    /// A non-finite double becomes `null` (JSON has no NaN or infinity).
    public init(_ double: Double) {
        if let n = JSONNumber(double) { self = .number(n) } else { self = .null }
    }
    public init(_ string: String) { self = .string(string) }
    public init(_ bool: Bool) { self = .bool(bool) }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(JSONNumber(value)) }
    public init(floatLiteral value: Double) { self.init(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { JSONObject.Member(key: $0.0, value: $0.1) }))
    }
}

extension JSONValue: CustomStringConvertible {
    /// Compact JSON text.
    public var description: String { JSONWriter.string(self) }
}
