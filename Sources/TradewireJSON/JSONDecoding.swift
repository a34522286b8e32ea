import Foundation

/// A value that does not have the shape a model expects, with the JSON Pointer to it.
public struct JSONDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// JSON Pointer (RFC 6901) to the offending value, e.g. `/symbols/2`.
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path.isEmpty ? "/" : path): \(message)" }
}

/// A model that can be built from JSON, reporting the path of the first bad value.
public protocol JSONDecodable: Sendable {
    init(json: JSONValue, path: String) throws(JSONDecodingError)
}

/// Appends one reference token to a JSON Pointer, escaping `~` and `/`.
public func jsonPointer(_ base: String, _ token: String) -> String {
    guard token.contains("~") || token.contains("/") else { return base + "/" + token }
    return base + "/" + token.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
}

public func jsonPointer(_ base: String, _ index: Int) -> String { base + "/" + String(index) }

/// Typed, path-aware access to the members of a JSON object.
///
/// "Optional" accessors treat an absent key and an explicit `null` alike.
public struct JSONObjectReader: Sendable {
    public let object: JSONObject
    public let path: String

    public init(_ value: JSONValue, path: String) throws(JSONDecodingError) {
        guard case .object(let object) = value else {
            throw JSONDecodingError(path: path, message: "expected an object, got \(value.typeName)")
        }
        self.object = object
        self.path = path
    }

    public init(object: JSONObject, path: String) {
        self.object = object
        self.path = path
    }

    public func pointer(_ key: String) -> String { jsonPointer(path, key) }

    /// The raw value, nil when absent or null.
    public func value(_ key: String) -> JSONValue? {
        guard let v = object[key], !v.isNull else { return nil }
        return v
    }

    private func missing(_ key: String) -> JSONDecodingError {
        JSONDecodingError(path: pointer(key), message: "required")
    }

    private func wrong(_ key: String, _ expected: String, _ got: JSONValue) -> JSONDecodingError {
        JSONDecodingError(path: pointer(key), message: "expected \(expected), got \(got.typeName)")
    }

    public func optionalString(_ key: String) throws(JSONDecodingError) -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw wrong(key, "a string", v) }
        return s
    }

    public func string(_ key: String) throws(JSONDecodingError) -> String {
        guard let s = try optionalString(key) else { throw missing(key) }
        return s
    }

    public func optionalDouble(_ key: String) throws(JSONDecodingError) -> Double? {
        guard let v = value(key) else { return nil }
        guard case .number(let n) = v else { throw wrong(key, "a number", v) }
        guard let d = n.double else { throw JSONDecodingError(path: pointer(key), message: "number out of range") }
        return d
    }

    public func double(_ key: String) throws(JSONDecodingError) -> Double {
        guard let d = try optionalDouble(key) else { throw missing(key) }
        return d
    }

    public func optionalInt(_ key: String) throws(JSONDecodingError) -> Int? {
        guard let v = value(key) else { return nil }
        guard case .number(let n) = v else { throw wrong(key, "an integer", v) }
        guard let i = n.int else { throw JSONDecodingError(path: pointer(key), message: "expected an integer") }
        return i
    }

    public func int(_ key: String) throws(JSONDecodingError) -> Int {
        guard let i = try optionalInt(key) else { throw missing(key) }
        return i
    }

    public func optionalBool(_ key: String) throws(JSONDecodingError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw wrong(key, "a boolean", v) }
        return b
    }

    public func bool(_ key: String) throws(JSONDecodingError) -> Bool {
        guard let b = try optionalBool(key) else { throw missing(key) }
        return b
    }

    public func optionalDate(_ key: String) throws(JSONDecodingError) -> Date? {
        guard let s = try optionalString(key) else { return nil }
        guard let d = RFC3339.date(from: s) else {
            throw JSONDecodingError(path: pointer(key), message: "expected an RFC 3339 timestamp")
        }
        return d
    }

    public func date(_ key: String) throws(JSONDecodingError) -> Date {
        guard let d = try optionalDate(key) else { throw missing(key) }
        return d
    }

    public func optionalObject(_ key: String) throws(JSONDecodingError) -> JSONObjectReader? {
        guard let v = value(key) else { return nil }
        return try JSONObjectReader(v, path: pointer(key))
    }

    public func optionalArray(_ key: String) throws(JSONDecodingError) -> [JSONValue]? {
        guard let v = value(key) else { return nil }
        guard case .array(let a) = v else { throw wrong(key, "an array", v) }
        return a
    }

    public func array(_ key: String) throws(JSONDecodingError) -> [JSONValue] {
        guard let a = try optionalArray(key) else { throw missing(key) }
        return a
    }

    public func decode<T: JSONDecodable>(_ type: T.Type = T.self, _ key: String) throws(JSONDecodingError) -> T {
        guard let v = value(key) else { throw missing(key) }
        return try T(json: v, path: pointer(key))
    }

    public func decodeIfPresent<T: JSONDecodable>(_ type: T.Type = T.self, _ key: String) throws(JSONDecodingError)
        -> T?
    {
        guard let v = value(key) else { return nil }
        return try T(json: v, path: pointer(key))
    }

    public func decodeArray<T: JSONDecodable>(_ type: T.Type = T.self, _ key: String) throws(JSONDecodingError)
        -> [T]
    {
        let elements = try array(key)
        var result: [T] = []
        result.reserveCapacity(elements.count)
        let base = pointer(key)
        for (i, element) in elements.enumerated() {
            result.append(try T(json: element, path: jsonPointer(base, i)))
        }
        return result
    }

    /// Fails on the first key not in `allowed`.
    public func rejectUnknownKeys(_ allowed: Set<String>) throws(JSONDecodingError) {
        for member in object where !allowed.contains(member.key) {
            throw JSONDecodingError(path: pointer(member.key), message: "unknown parameter")
        }
    }
}

/// Decodes a JSON array of models, with `/index` paths.
public func decodeJSONArray<T: JSONDecodable>(_ value: JSONValue, path: String) throws(JSONDecodingError) -> [T] {
    guard case .array(let elements) = value else {
        throw JSONDecodingError(path: path, message: "expected an array, got \(value.typeName)")
    }
    var result: [T] = []
    result.reserveCapacity(elements.count)
    for (i, element) in elements.enumerated() {
        result.append(try T(json: element, path: jsonPointer(path, i)))
    }
    return result
}

extension JSONValue {
    /// Parses JSON text into any ``JSONDecodable`` model.
    public func decode<T: JSONDecodable>(_ type: T.Type) throws(JSONDecodingError) -> T {
        try T(json: self, path: "")
    }
}
