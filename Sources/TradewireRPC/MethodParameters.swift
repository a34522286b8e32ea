import TradewireJSON

/// One declared parameter: its name, JSON Schema and summary (for `rpc.discover` and the
/// unknown-parameter check) and how to decode it (with -32602 and a JSON Pointer path on a
/// bad value). A parameter's name is written once, here.
public struct Param<Value: Sendable>: Sendable {
    public let description: ParamDescription
    let decode: @Sendable (JSONObjectReader) throws(RPCError) -> Value

    public init(
        _ description: ParamDescription, decode: @escaping @Sendable (JSONObjectReader) throws(RPCError) -> Value
    ) {
        self.description = description
        self.decode = decode
    }

    public var name: String { description.name }
}

/// Runs a reader-based body, turning decoding errors into -32602.
@inlinable
public func decodingParams<T>(_ body: () throws(JSONDecodingError) -> T) throws(RPCError) -> T {
    do { return try body() } catch { throw .invalidParams([error]) }
}

extension Param where Value == String {
    /// A required string.
    public static func string(_ name: String, summary: String, schema: JSONValue = ["type": "string"]) -> Param {
        Param(ParamDescription(name, schema: schema, required: true, summary: summary)) { reader throws(RPCError) in
            try decodingParams { () throws(JSONDecodingError) in try reader.string(name) }
        }
    }
}

extension Param where Value == String? {
    public static func optionalString(_ name: String, summary: String, schema: JSONValue = ["type": "string"])
        -> Param
    {
        Param(ParamDescription(name, schema: schema, summary: summary)) { reader throws(RPCError) in
            try decodingParams { () throws(JSONDecodingError) in try reader.optionalString(name) }
        }
    }
}

extension Param where Value == Int {
    /// A required integer within `range` (else -32602 "must be in a...b").
    public static func int(_ name: String, in range: ClosedRange<Int>, summary: String) -> Param {
        var schema: JSONObject = ["type": "integer", "minimum": JSONValue(range.lowerBound)]
        if range.upperBound < Int.max { schema["maximum"] = JSONValue(range.upperBound) }
        return Param(ParamDescription(name, schema: .object(schema), required: true, summary: summary)) {
            reader throws(RPCError) in
            let value = try decodingParams { () throws(JSONDecodingError) in try reader.int(name) }
            guard range.contains(value) else {
                throw .invalidParams(path: reader.pointer(name), "must be in \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
    }
}

extension Param where Value == Int? {
    /// An optional integer; outside `range` → -32602 "must be in a...b" (or "must not be
    /// negative" for `0...`).
    public static func optionalInt(_ name: String, in range: ClosedRange<Int>, summary: String) -> Param {
        var schema: JSONObject = ["type": "integer", "minimum": JSONValue(range.lowerBound)]
        if range.upperBound < Int.max { schema["maximum"] = JSONValue(range.upperBound) }
        return Param(ParamDescription(name, schema: .object(schema), summary: summary)) { reader throws(RPCError) in
            let value = try decodingParams { () throws(JSONDecodingError) in try reader.optionalInt(name) }
            if let value, !range.contains(value) {
                throw .invalidParams(
                    path: reader.pointer(name),
                    range.upperBound == Int.max && range.lowerBound == 0
                        ? "must not be negative" : "must be in \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
    }
}

extension Param where Value == Double? {
    public static func optionalDouble(_ name: String, in range: ClosedRange<Double>, summary: String) -> Param {
        let schema: JSONValue = ["type": "number", "minimum": JSONValue(range.lowerBound)]
        return Param(ParamDescription(name, schema: schema, summary: summary)) { reader throws(RPCError) in
            let value = try decodingParams { () throws(JSONDecodingError) in try reader.optionalDouble(name) }
            if let value, !range.contains(value) {
                throw .invalidParams(path: reader.pointer(name), "must be in \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
    }
}

extension Param {
    /// An optional string naming one of `Choice`'s cases (by raw value); anything else →
    /// -32602 listing the choices. The schema's `enum` comes from the same cases.
    public static func optionalChoice<Choice: RawRepresentable & CaseIterable & Sendable>(
        _ name: String, of type: Choice.Type, summary: String
    ) -> Param<Choice?> where Choice.RawValue == String, Value == Choice? {
        let names = Choice.allCases.map(\.rawValue)
        let schema: JSONValue = ["type": "string", "enum": .array(names.map { JSONValue($0) })]
        return Param(ParamDescription(name, schema: schema, summary: summary)) { reader throws(RPCError) in
            guard let text = try decodingParams({ () throws(JSONDecodingError) in try reader.optionalString(name) })
            else { return nil }
            guard let choice = Choice(rawValue: text) else {
                throw .invalidParams(
                    path: reader.pointer(name), "unknown \(name) \"\(text)\"; one of \(names.joined(separator: ", "))")
            }
            return choice
        }
    }
}

extension Param where Value == Bool? {
    public static func optionalBool(_ name: String, summary: String) -> Param {
        Param(ParamDescription(name, schema: ["type": "boolean"], summary: summary)) { reader throws(RPCError) in
            try decodingParams { () throws(JSONDecodingError) in try reader.optionalBool(name) }
        }
    }
}

extension Param where Value == JSONObjectReader? {
    public static func optionalObject(_ name: String, summary: String) -> Param {
        Param(ParamDescription(name, schema: ["type": "object"], summary: summary)) { reader throws(RPCError) in
            try decodingParams { () throws(JSONDecodingError) in try reader.optionalObject(name) }
        }
    }
}

extension Param where Value == JSONValue? {
    /// Any JSON value, taken as is.
    public static func anyValue(_ name: String, summary: String, schema: JSONValue = [:]) -> Param {
        Param(ParamDescription(name, schema: schema, summary: summary)) { reader throws(RPCError) in
            reader.value(name)
        }
    }
}

extension Param {
    /// This parameter's value, decoded further by `transform` (whose errors keep their
    /// paths); the declaration stays the same.
    public func map<T: Sendable>(
        schema: JSONValue? = nil, _ transform: @escaping @Sendable (Value, String) throws(RPCError) -> T
    ) -> Param<T> {
        var description = self.description
        if let schema { description.schema = schema }
        let decode = self.decode
        // Params are read at the top level, so the path is fixed: computed once, here, and
        // not on every request (escaping a JSON Pointer goes through Foundation).
        let path = jsonPointer("", name)
        return Param<T>(description) { reader throws(RPCError) in
            try transform(try decode(reader), path)
        }
    }
}

/// A method's parameters, declared once: the parameter list drives the unknown-parameter
/// check and `rpc.discover`, and ``init(from:)`` reads each through its declaration.
public protocol MethodParameters: Sendable {
    static var parameters: [ParamDescription] { get }
    init(from params: ParamReader) throws(RPCError)
}

/// A method without parameters.
public struct NoParameters: MethodParameters {
    public static let parameters: [ParamDescription] = []
    public init(from params: ParamReader) {}
}

/// Reads declared parameters from a request's params.
public struct ParamReader: Sendable {
    public let reader: JSONObjectReader
    /// The request's ``RPCRequest/rawData``.
    private let rawData: RawJSON?

    public init(_ params: JSONObject, rawData: RawJSON? = nil) {
        reader = JSONObjectReader(object: params, path: "")
        self.rawData = rawData
    }

    public func callAsFunction<V>(_ param: Param<V>) throws(RPCError) -> V { try param.decode(reader) }

    /// The value of `param` as compact bytes, when the parser kept it so (see
    /// ``RPCRequest/rawData``); nil means: read it with ``callAsFunction(_:)``.
    public func raw(_ param: Param<JSONValue?>) -> RawJSON? {
        param.name == RPCRequest.rawParam ? rawData : nil
    }

    /// True when the request names `param` (whatever its value).
    public func has<V>(_ param: Param<V>) -> Bool { reader.value(param.name) != nil }
}
