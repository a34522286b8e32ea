import TradewireJSON

/// A symbol that a stage had to skip, and why.
public struct SymbolFailure: Sendable, Hashable, JSONEncodable {
    public var symbol: String
    public var message: String

    public init(symbol: String, message: String) {
        self.symbol = symbol
        self.message = message
    }

    /// `{"symbol", "message"}`.
    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("symbol", symbol)
        writer.field("message", message)
        writer.endObject()
    }
}
