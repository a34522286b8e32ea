import Foundation
import TradewireJSON

/// A wire model: encodes to and decodes from exactly its PROTOCOL §3 JSON shape.
///
/// Conforming types implement ``JSONEncodable`` and ``JSONDecodable``; `Codable` comes for
/// free through `JSONValue`'s bridge, so `JSONEncoder`/`JSONDecoder` see the same shape and
/// the same validation as the fast path.
public protocol JSONModel: Codable, Equatable, JSONEncodable, JSONDecodable {}

extension JSONModel {
    /// Encodes the model's JSON shape (via ``JSONValue``).
    public func encode(to encoder: any Encoder) throws {
        try jsonValue.encode(to: encoder)
    }

    /// Decodes and validates the model's JSON shape (via ``JSONValue``).
    public init(from decoder: any Decoder) throws {
        try self.init(json: JSONValue(from: decoder), path: "")
    }
}
